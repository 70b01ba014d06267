"""Straight-line C for the column kernels' small DFTs (``columns.cu``), as radix-2 FFTs.

A column of the four-step engine is N1 = 32 points of which only the first ROWS hold samples
(the rest is the zero padding), its input is real, and only N1/2 + 1 bins are kept; the inverse
takes those N1/2 + 1 bins and keeps the real part of ROWS outputs. Written as a direct DFT (the
first version) that is (N1/2 + 1) · ROWS complex products per column whatever the zeros, and
each product's coefficient sits in constant memory, so none of the trivial ones (0, ±1) folds.
Here a radix-2 FFT is traced symbolically: every operation on a known zero, a factor of ±1 or
±i is dropped as it is traced, equal expressions are shared, and only what the kept outputs
need is emitted. The result is a C function of float statements with literal coefficients.

``forward(rows)`` / ``inverse(rows)`` return the C text; ``evaluate_forward`` /
``evaluate_inverse`` run the same traced program in float64 numpy-free Python (the twin the
tests hold to a direct DFT), and ``flops`` counts its operations. ``split(sign)`` and
``evaluate_split`` do the same for the complex P-point DFT across the parts of a split row
(``columns.cu``'s fused split and merge kernels, P = 8).
"""

from __future__ import annotations

import math

N1 = 32


class _Graph:
    """Hash-consed float expressions: ("in", name), ("add"|"sub", a, b), ("mul", a, const),
    ("neg", a). Node 0 is the constant zero."""

    def __init__(self):
        self.nodes: list[tuple] = [("zero",)]
        self.index: dict[tuple, int] = {("zero",): 0}

    def node(self, op: tuple) -> int:
        if op not in self.index:
            self.index[op] = len(self.nodes)
            self.nodes.append(op)
        return self.index[op]

    def input(self, name: str) -> int:
        return self.node(("in", name))

    def neg(self, a: int) -> int:
        if a == 0:
            return 0
        op = self.nodes[a]
        return op[1] if op[0] == "neg" else self.node(("neg", a))

    def add(self, a: int, b: int) -> int:
        if a == 0:
            return b
        if b == 0:
            return a
        if self.nodes[b][0] == "neg":
            return self.sub(a, self.nodes[b][1])
        if self.nodes[a][0] == "neg":
            return self.sub(b, self.nodes[a][1])
        return self.node(("add",) + tuple(sorted((a, b))))

    def sub(self, a: int, b: int) -> int:
        if b == 0:
            return a
        if a == 0:
            return self.neg(b)
        if self.nodes[b][0] == "neg":
            return self.add(a, self.nodes[b][1])
        return self.node(("sub", a, b))

    def mul(self, a: int, c: float) -> int:
        if a == 0 or c == 0.0:
            return 0
        if c == 1.0:
            return a
        if c == -1.0:
            return self.neg(a)
        if c < 0:
            return self.neg(self.node(("mul", a, -c)))
        return self.node(("mul", a, c))


def _root(k: int, n: int, sign: int) -> tuple[float, float]:
    """exp(sign · 2πi k / n), exact at the quarter and eighth turns."""
    k %= n
    q, rem = divmod(8 * k, n)
    if rem == 0:
        h = math.sqrt(0.5)
        c, s = [(1, 0), (h, h), (0, 1), (-h, h), (-1, 0), (-h, -h), (0, -1), (h, -h)][q]
    else:
        c, s = math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)
    return float(c), float(sign * s)


def _cmul(g: _Graph, z: tuple[int, int], w: tuple[float, float]) -> tuple[int, int]:
    (a, b), (c, s) = z, w
    if abs(c) == abs(s):  # an eighth turn: c (a ∓ b) etc., two products
        return (g.mul(g.sub(a, g.mul(b, s / c)), c), g.mul(g.add(b, g.mul(a, s / c)), c))
    return g.sub(g.mul(a, c), g.mul(b, s)), g.add(g.mul(a, s), g.mul(b, c))


def _fft(g: _Graph, xs: list[tuple[int, int]], sign: int) -> list[tuple[int, int]]:
    """Radix-2 decimation in time: out[k] = sum_j xs[j] · exp(sign · 2πi jk / n)."""
    n = len(xs)
    if n == 1:
        return xs
    even, odd = _fft(g, xs[0::2], sign), _fft(g, xs[1::2], sign)
    out: list = [None] * n
    for k in range(n // 2):
        t = _cmul(g, odd[k], _root(k, n, sign))
        out[k] = (g.add(even[k][0], t[0]), g.add(even[k][1], t[1]))
        out[k + n // 2] = (g.sub(even[k][0], t[0]), g.sub(even[k][1], t[1]))
    return out


def _forward_graph(rows: int) -> tuple[_Graph, list[int]]:
    """Bins k = 0 .. N1/2 (re, im interleaved) of the N1-point DFT (exp(-2πi jk/N1)) of
    x[0 .. rows-1], real, zero past rows."""
    g = _Graph()
    xs = [(g.input(f"x[{j}]"), 0) if j < rows else (0, 0) for j in range(N1)]
    bins = _fft(g, xs, -1)[: N1 // 2 + 1]
    return g, [part for z in bins for part in z]


def _inverse_graph(rows: int) -> tuple[_Graph, list[int]]:
    """y[j] = Re sum_{k <= N1/2} (rr[k] + i ri[k]) exp(+2πi jk/N1), j < rows."""
    g = _Graph()
    xs = [(g.input(f"rr[{k}]"), g.input(f"ri[{k}]")) if k <= N1 // 2 else (0, 0)
          for k in range(N1)]
    return g, [z[0] for z in _fft(g, xs, 1)[:rows]]


SPLIT_P = 8


def _split_graph(sign: int) -> tuple[_Graph, list[int]]:
    """out[k] = sum_p (xr[p] + i xi[p]) exp(sign · 2πi pk / P), all P bins (re, im
    interleaved)."""
    g = _Graph()
    xs = [(g.input(f"xr[{p}]"), g.input(f"xi[{p}]")) for p in range(SPLIT_P)]
    return g, [part for z in _fft(g, xs, sign) for part in z]


def _needed(g: _Graph, outs: list[int]) -> list[int]:
    """Nodes the outputs depend on, in an order that defines each before its use."""
    seen: set[int] = set()
    order: list[int] = []
    stack = [(o, False) for o in reversed(outs)]
    while stack:
        i, done = stack.pop()
        if done:
            order.append(i)
            continue
        if i in seen or i == 0:
            continue
        seen.add(i)
        stack.append((i, True))
        op = g.nodes[i]
        if op[0] in ("add", "sub"):
            stack += [(op[2], False), (op[1], False)]
        elif op[0] in ("mul", "neg"):
            stack.append((op[1], False))
    return order


def _c_text(g: _Graph, outs: list[int], name: str, params: str, targets: list[str]) -> str:
    def ref(i: int) -> str:
        op = g.nodes[i]
        return "0.0f" if i == 0 else op[1] if op[0] == "in" else f"t{i}"

    lines = [f"__device__ __forceinline__ void {name}({params}) {{"]
    for i in _needed(g, outs):
        op = g.nodes[i]
        if op[0] == "in":
            continue
        if op[0] == "add":
            expr = f"{ref(op[1])} + {ref(op[2])}"
        elif op[0] == "sub":
            expr = f"{ref(op[1])} - {ref(op[2])}"
        elif op[0] == "neg":
            expr = f"-{ref(op[1])}"
        else:
            expr = f"{ref(op[1])} * {op[2]:.9e}f"
        lines.append(f"    const float t{i} = {expr};")
    lines += [f"    {t} = {ref(o)};" for t, o in zip(targets, outs)]
    return "\n".join(lines + ["}"]) + "\n"


def forward(rows: int) -> str:
    """C: ``cols_fft_fwd(const float* x, float* re, float* im)``, the forward column DFT."""
    g, outs = _forward_graph(rows)
    targets = [f"{part}[{k}]" for k in range(N1 // 2 + 1) for part in ("re", "im")]
    return _c_text(g, outs, "cols_fft_fwd", "const float* x, float* re, float* im", targets)


def inverse(rows: int) -> str:
    """C: ``cols_fft_inv(const float* rr, const float* ri, float* y)``, the inverse column DFT's
    real outputs."""
    g, outs = _inverse_graph(rows)
    return _c_text(g, outs, "cols_fft_inv", "const float* rr, const float* ri, float* y",
                   [f"y[{j}]" for j in range(rows)])


def split(sign: int) -> str:
    """C: ``split_fft_fwd`` (sign -1) or ``split_fft_inv`` (sign +1), ``(const float* xr,
    const float* xi, float* yr, float* yi)``: the P-point complex DFT, no scaling."""
    g, outs = _split_graph(sign)
    name = "split_fft_fwd" if sign < 0 else "split_fft_inv"
    targets = [f"{part}[{k}]" for k in range(SPLIT_P) for part in ("yr", "yi")]
    return _c_text(g, outs, name, "const float* xr, const float* xi, float* yr, float* yi",
                   targets)


def _evaluate(g: _Graph, outs: list[int], inputs: dict[str, float]) -> list[float]:
    val: dict[int, float] = {0: 0.0}
    for i in _needed(g, outs):
        op = g.nodes[i]
        if op[0] == "in":
            val[i] = inputs[op[1]]
        elif op[0] == "add":
            val[i] = val[op[1]] + val[op[2]]
        elif op[0] == "sub":
            val[i] = val[op[1]] - val[op[2]]
        elif op[0] == "neg":
            val[i] = -val[op[1]]
        else:
            val[i] = val[op[1]] * op[2]
    return [val[o] for o in outs]


def evaluate_forward(x: list[float]) -> list[complex]:
    """The traced forward program run in Python floats: bins 0 .. N1/2 of x (len = rows)."""
    g, outs = _forward_graph(len(x))
    v = _evaluate(g, outs, {f"x[{j}]": float(t) for j, t in enumerate(x)})
    return [complex(v[2 * k], v[2 * k + 1]) for k in range(N1 // 2 + 1)]


def evaluate_inverse(spec: list[complex], rows: int) -> list[float]:
    """The traced inverse program in Python floats: spec = N1/2 + 1 bins → rows reals."""
    g, outs = _inverse_graph(rows)
    inputs = {f"rr[{k}]": z.real for k, z in enumerate(spec)}
    inputs |= {f"ri[{k}]": z.imag for k, z in enumerate(spec)}
    return _evaluate(g, outs, inputs)


def evaluate_split(x: list[complex], sign: int) -> list[complex]:
    """The traced split DFT in Python floats: P complex values → P bins."""
    g, outs = _split_graph(sign)
    inputs = {f"xr[{p}]": z.real for p, z in enumerate(x)}
    inputs |= {f"xi[{p}]": z.imag for p, z in enumerate(x)}
    v = _evaluate(g, outs, inputs)
    return [complex(v[2 * k], v[2 * k + 1]) for k in range(SPLIT_P)]


def flops(direction: str, rows: int = 0) -> dict[str, int]:
    """Operations in the emitted program, by kind (a negation usually folds into its user);
    direction "forward", "inverse" (with rows) or "split"."""
    if direction == "split":
        g, outs = _split_graph(-1)
    else:
        g, outs = (_forward_graph if direction == "forward" else _inverse_graph)(rows)
    counts: dict[str, int] = {}
    for i in _needed(g, outs):
        kind = g.nodes[i][0]
        if kind != "in":
            counts[kind] = counts.get(kind, 0) + 1
    return counts
