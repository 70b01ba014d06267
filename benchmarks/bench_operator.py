"""Forward+backward time and peak memory vs sequence length: Hyena operator, long conv, attention.

Cells, at width 256 (issue 6), each checked against a float32 reference ON THE SAME DEVICE before
it is timed (relative error ‖out − ref‖/‖ref‖ of the output and every input gradient):

    conv_plain        fftconv(u, k, D), autograd through torch.fft (the reference path, (d))
    conv_fast         fftconv_fast, power-of-two FFT length (hyenadna.ops.fftconv_fast)
    conv_fast_smooth  same, 7-smooth FFT length (only where it differs from pow2)
    gated_plain       x0 · fftconv(v · x1, k, D): the operator's chain as the plain path runs it
    gated_fast        gated_fftconv: the same chain as one lean autograd node
    gated_compiled    torch.compile(gated_plain) (inductor fuses the pointwise work; few L only)
    op_plain/op_fast  the whole HyenaOperator (in_proj, short conv, filter, long conv, out_proj)
                      under bf16 autocast, HYENADNA_OPS=ref / fast
    op_fast_graphed   op_fast captured with torch.cuda.make_graphed_callables (short L only,
                      where ~150 kernel launches per fwd+bwd dominate): two graphs, with
                      autograd's host work between them
    op_fast_stepgraph the whole fwd+bwd step of op_fast (grads written to fixed .grad
                      tensors) captured as ONE CUDA graph, as a training loop graphs its step;
                      short L only
    attn_flash        causal scaled_dot_product_attention, flash backend, 4 heads of 64, bf16
                      (the issue's baseline: the attention kernel alone)
    attn_flash_stepgraph  attn_flash's fwd+bwd step captured the same way (the like-for-like
                      partner of op_fast_stepgraph: both lose their host launch latency)
    attn_layer        a whole attention layer for comparison with the whole operator: qkv
                      projection, attn_flash, output projection, from the same float32 (B, L, D)
                      input under bf16 autocast (reported beside, not instead of, attn_flash)

Times are medians of --reps CUDA-event-timed calls after --warmup calls (plus the check call).
Each call is timed alone (synchronised), so host launch latency counts: at batch 1 and L <= 8k
the host side of an ungraphed or two-graph step can outlast its GPU work.
Every cell that does not run says why (OOM, error, skipped: reason); nothing is extrapolated.
The long conv's bytes floor at each (B, L): every input read once and every output written once,
forward and backward, bf16 (B, D, L) tensors and the float32 (D, L) filter as the model has them:
    conv:  B·D·L·2·(u, y | dy, u, du = 5)  +  D·L·4·(k | k, dk = 3)
    gated: B·D·L·2·(v, x1, x0, y | dy, v, x1, x0, dv, dx1, dx0 = 11)  +  D·L·4·3
divided by the device-to-device copy bandwidth measured in the same run.

    PYTHONPATH=. python benchmarks/bench_operator.py --out benchmarks/results/operator   # GPU
    python benchmarks/bench_operator.py --quick --out /tmp/bench_operator                # CPU
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from hyenadna.config import ModelConfig
from hyenadna.model import HyenaOperator
from hyenadna.ops import OPS_ENV, conv_fft_size, fftconv, fftconv_fast, gated_fftconv

FULL_LENGTHS = [1 << p for p in range(10, 21)] + [1_000_002]
BIG = 1 << 19  # B > 1 cells at L >= BIG run only the fast variants, in the last phase
CONV = ["conv_plain", "conv_fast", "conv_fast_smooth"]
GATED = ["gated_plain", "gated_fast"]
OPERATOR = ["op_plain", "op_fast"]
GRAPHED = ["op_fast_graphed"]
ATTENTION = ["attn_flash", "attn_layer"]
STEP_GRAPHED = ["op_fast_stepgraph", "attn_flash_stepgraph"]
COMPILE_RESERVE_S = 45.0  # a compiled cell starts only with this much budget left
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ms(fn, device: torch.device, reps: int, warmup: int) -> list[float]:
    """Per-call times in ms: CUDA events around each call (host clock on CPU)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return times


def median_ms(fn, reps: int = 10, warmup: int = 2) -> float:
    """Median of ``time_ms`` on the GPU: the one number the benchmark scripts report per cell."""
    return statistics.median(time_ms(fn, torch.device("cuda"), reps, warmup))


def copy_bandwidth(device: torch.device) -> float:
    """Device-to-device copy, bytes read + written per second (1 GiB each way on CUDA)."""
    numel = (1 << 28) if device.type == "cuda" else (1 << 22)
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    ms = statistics.median(time_ms(lambda: dst.copy_(src), device, reps=20, warmup=3))
    return 2 * numel * 4 / (ms * 1e-3)


@contextlib.contextmanager
def env_set(name: str, value: str):
    """Temporarily set the environment variable ``name`` to ``value``."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def ops_mode(mode: str):
    """Temporarily set HYENADNA_OPS (the one switch between fast and plain paths)."""
    return env_set(OPS_ENV, mode)


def floor_bytes(kind: str, batch: int, seqlen: int, width: int) -> int:
    per_row = {"conv": 5, "gated": 11}[kind]
    return batch * width * seqlen * 2 * per_row + width * seqlen * 4 * 3


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# ------------------------------------------------------------------------------------------
# Cells: build(batch, L) → (step, check). step() runs forward+backward once; check() returns
# the worst relative error against a float32 reference on the same inputs.
# ------------------------------------------------------------------------------------------


def _conv_inputs(batch, seqlen, width, device, gated):
    g = torch.Generator(device=device).manual_seed(0)
    n_rows = 3 if gated else 1
    rows = [torch.randn(batch, width, seqlen, device=device, generator=g).bfloat16()
            .requires_grad_() for _ in range(n_rows)]
    decay = torch.exp(-torch.arange(seqlen, device=device) / (0.1 * seqlen + 1))
    k = (torch.randn(width, seqlen, device=device, generator=g) * decay).requires_grad_()
    skip = torch.randn(width, device=device, generator=g).requires_grad_()
    dy = torch.randn(batch, width, seqlen, device=device, generator=g).bfloat16()
    return rows, k, skip, dy


def _fwd_bwd(fn, leaves, dy):
    def step():
        for t in leaves:
            t.grad = None
        fn().backward(dy)
    return step


def _step_graph(step, leaves):
    """step (one fwd+bwd that sets the leaves' .grad) captured as one CUDA graph; returns replay.

    Warm-up runs on a side stream first, as capture requires (lazy cuBLAS/cuFFT/Triton set-up
    must not happen inside it). The .grad tensors the captured step allocates live in the
    graph's pool: every replay overwrites them in place, like a graphed training step.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    for t in leaves:
        t.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def _check_vs(fn, ref_fn, leaves, dy):
    """Worst rel. error of fn's output and leaf grads vs ref_fn on float32 copies."""
    out = fn()
    grads = torch.autograd.grad(out, leaves, dy)
    leaves32 = [t.detach().float().requires_grad_() for t in leaves]
    ref = ref_fn(*leaves32)
    ref_grads = torch.autograd.grad(ref, leaves32, dy.float())
    return _worst(["y", *(f"d{i}" for i in range(len(leaves)))],
                  [out, *grads], [ref, *ref_grads])


def _worst(names, outs, refs) -> tuple[float, str]:
    """(largest relative error, which tensor) over matching output/gradient lists."""
    return max((rel_err(a, b), name) for name, a, b in zip(names, outs, refs))


def build_conv(variant, batch, seqlen, width, device):
    (u,), k, skip, dy = _conv_inputs(batch, seqlen, width, device, gated=False)
    policy = "smooth" if variant.endswith("smooth") else "pow2"
    fn = {"conv_plain": lambda: fftconv(u, k, skip),
          "conv_fast": lambda: fftconv_fast(u, k, skip),
          "conv_fast_smooth": lambda: fftconv_fast(u, k, skip, fft_policy=policy)}[variant]
    check = lambda: _check_vs(fn, lambda a, b, c: fftconv(a, b, c), [u, k, skip], dy)
    return _fwd_bwd(fn, [u, k, skip], dy), check


def _gated_plain(v, x1, x0, k, skip):
    return x0 * fftconv(v * x1, k, skip)


def build_gated(variant, batch, seqlen, width, device):
    (v, x1, x0), k, skip, dy = _conv_inputs(batch, seqlen, width, device, gated=True)
    leaves = [v, x1, x0, k, skip]
    if variant == "gated_compiled":
        compiled = torch.compile(_gated_plain, dynamic=False)
        fn = lambda: compiled(*leaves)
    elif variant == "gated_fast":
        fn = lambda: gated_fftconv(v, x1, x0, k, skip)
    else:
        fn = lambda: _gated_plain(*leaves)
    check = lambda: _check_vs(fn, _gated_plain, leaves, dy)
    return _fwd_bwd(fn, leaves, dy), check


def build_operator(variant, batch, seqlen, width, device):
    torch.manual_seed(0)
    op = HyenaOperator(ModelConfig(d_model=width, l_max=seqlen)).to(device)
    u = torch.randn(batch, seqlen, width, device=device).requires_grad_()
    dy = torch.randn(batch, seqlen, width, device=device).bfloat16()
    leaves = [u, *op.parameters()]

    def run(mode, fn=op):
        # autocast's weight-cast cache must be off for CUDA-graph capture (and costs nothing here)
        with ops_mode(mode), torch.autocast(device.type, dtype=torch.bfloat16,
                                            cache_enabled=False):
            return fn(u)

    def against_reference(got):  # got: y, du, every weight grad of this variant
        names = ["y", "du", *(n for n, _ in op.named_parameters())]
        try:  # the plain operator in float32 (no autocast, no TF32)
            with ops_mode("ref"):
                ref = op(u)
        except torch.cuda.OutOfMemoryError:  # float32 too big here: the bf16 plain operator
            ref, names = run("ref"), [f"{n} (vs bf16 plain)" for n in names]
        # autograd.grad leaves .grad alone (a step graph's grads live there)
        want = [ref.detach(), *torch.autograd.grad(ref, leaves, dy.to(ref.dtype))]
        return _worst(names, got, want)

    if variant == "op_fast_graphed":  # the whole fwd+bwd replayed as two CUDA graphs
        # Graphing replaces a module's forward in place: graph a copy (same weights), so the
        # check's reference below still runs the original module.
        gop = copy.deepcopy(op)
        with ops_mode("fast"), torch.autocast(device.type, dtype=torch.bfloat16,
                                              cache_enabled=False):
            graphed = torch.cuda.make_graphed_callables(gop, (u,), num_warmup_iters=3)
        fn, fn_leaves = (lambda: run("fast", graphed)), [u, *gop.parameters()]
    elif variant == "op_fast_stepgraph":
        u_g = u.detach().clone().requires_grad_()  # own leaf: its .grad lives in the graph pool
        fn_leaves, last = [u_g, *op.parameters()], {}

        def graphed_step():
            with ops_mode("fast"), torch.autocast(device.type, dtype=torch.bfloat16,
                                                  cache_enabled=False):
                out = op(u_g)
            out.backward(dy)
            last["y"] = out.detach()
        step = _step_graph(graphed_step, fn_leaves)

        def check():  # one replay vs the float32 plain operator
            step()
            torch.cuda.synchronize()
            return against_reference([last["y"].clone(), *(t.grad.clone() for t in fn_leaves)])
        return step, check
    else:
        fn, fn_leaves = (lambda: run("fast" if variant == "op_fast" else "ref")), leaves
    step = _fwd_bwd(fn, fn_leaves, dy)

    def check():  # this variant vs the float32 plain operator
        out = fn()
        got = [out.detach().clone(), *torch.autograd.grad(out, fn_leaves, dy)]
        del out
        return against_reference(got)
    return step, check


def build_attention(variant, batch, seqlen, width, device):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    heads = width // 64
    if variant == "attn_layer":
        torch.manual_seed(0)
        qkv = torch.nn.Linear(width, 3 * width).to(device)
        proj = torch.nn.Linear(width, width).to(device)
        x = torch.randn(batch, seqlen, width, device=device).requires_grad_()
        dx = torch.randn(batch, seqlen, width, device=device).bfloat16()

        def layer():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast(
                    device.type, dtype=torch.bfloat16, cache_enabled=False):
                q, k, v = qkv(x).view(batch, seqlen, 3, heads, 64).permute(2, 0, 3, 1, 4)
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, L, 64)
                return proj(o.transpose(1, 2).reshape(batch, seqlen, width))
        # torch's own kernels and Linears: nothing to check
        return _fwd_bwd(layer, [x, *qkv.parameters(), *proj.parameters()], dx), lambda: None
    q, k, v = (torch.randn(batch, heads, seqlen, 64, device=device, dtype=torch.bfloat16)
               .requires_grad_() for _ in range(3))
    dy = torch.randn_like(q)

    def fn():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    step = _fwd_bwd(fn, [q, k, v], dy)
    if variant == "attn_flash_stepgraph":
        step = _step_graph(step, [q, k, v])
    return step, lambda: None  # torch's own kernel: nothing to check


BUILDERS = {**{v: build_conv for v in CONV}, **{v: build_gated for v in GATED},
            "gated_compiled": build_gated, **{v: build_operator for v in OPERATOR + GRAPHED},
            "op_fast_stepgraph": build_operator, "attn_flash": build_attention,
            "attn_layer": build_attention, "attn_flash_stepgraph": build_attention}


def _free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_cell(variant, batch, seqlen, args, device, check=True) -> dict:
    """Build, check, time one cell; never raises (the failure is recorded instead)."""
    rec = {"variant": variant, "batch": batch, "L": seqlen, "status": "ok"}
    _free(device)
    base = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    try:
        step, check_fn = BUILDERS[variant](variant, batch, seqlen, args.d_model, device)
        worst = check_fn() if check else None
        if worst is not None:
            rec["rel_err"], rec["worst_tensor"] = worst
            if not rec["rel_err"] <= args.max_err:  # NaN fails too
                if not rec["rel_err"] < 1:  # garbage: do not time it
                    rec["status"] = f"failed check: rel_err {rec['rel_err']:.2e}"
                    return rec
                rec["check_failed"] = True  # timed anyway, flagged "!" in the table
        t = time.perf_counter()
        step()
        sync(device)
        one = time.perf_counter() - t
        if one * (args.reps + args.warmup) > args.cell_limit_s:
            rec["status"] = f"skipped: {one:.2f} s per call > cell limit"
            return rec
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = time_ms(step, device, args.reps, args.warmup)
        rec["ms"] = statistics.median(times)
        rec["ms_spread"] = [min(times), max(times)]
        # a replay allocates nothing and its tensors sit in the graph's private pool: the
        # counters gave attention's step-graph cells ~0 GiB, so no peak is reported for them
        if device.type == "cuda" and variant not in STEP_GRAPHED:
            rec["peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
    except torch.cuda.OutOfMemoryError:
        rec["status"] = "OOM"
        # memory still held from earlier cells when this one started (0 unless something
        # leaked): tells a real OOM from one that a leak caused
        rec["held_before_gib"] = base / 2**30
    except Exception as err:  # noqa: BLE001 - one failing variant must not stop the run
        rec["status"] = f"error: {type(err).__name__}: {str(err).splitlines()[0][:160]}"
        traceback.print_exc(file=sys.stderr)
    finally:
        step = check_fn = None
        _free(device)
    return rec


def plan(args) -> list[tuple[int, int, str, bool]]:
    """(batch, L, variant, check) in priority order; the time budget cuts from the end."""
    cells = []
    lengths = args.lengths
    small_b, big_b = args.batches[0], args.batches[-1]
    kernels = CONV + GATED + OPERATOR

    def want(variant, seqlen, batch):
        if variant == "conv_fast_smooth":
            return conv_fft_size(seqlen, seqlen, "smooth") != conv_fft_size(seqlen, seqlen)
        if variant in ("op_fast_graphed", "op_fast_stepgraph"):
            return not args.quick and seqlen <= args.graph_max_len
        if variant == "attn_flash_stepgraph":
            return want("attn_flash", seqlen, batch) and seqlen <= args.graph_max_len
        if variant in ATTENTION:  # B=1 up to attn_max_len; B=8 up to a quarter of it
            return (not args.quick and seqlen <= args.attn_max_len
                    and batch * seqlen <= 2 * args.attn_max_len)
        return True

    for batch in dict.fromkeys([small_b, big_b]):  # phase 1: B=1 all; phase 2: big batch, L < BIG
        for seqlen in lengths:
            # B > 1 at long L only in phase 3 (fast variants), also when B > 1 is the only batch:
            # the plain ones do not fit there
            if batch > 1 and (seqlen >= BIG or seqlen & (seqlen - 1)):
                continue
            cells += [(batch, seqlen, v, True)
                      for v in kernels + GRAPHED + ATTENTION + STEP_GRAPHED
                      if want(v, seqlen, batch)]
    if not args.quick:  # phase 3: big batch, long L (checked at B=1); 4: compiled chain
        if big_b > 1:  # unchecked: the float32 references do not fit at B > 1 there (a run
            # with B = 1 checks the same code at the same L)
            cells += [(big_b, s, v, False) for s in lengths
                      if s >= BIG and not s & (s - 1)
                      for v in ("conv_fast", "gated_fast", "op_fast")]
        cells += [(small_b, s, "gated_compiled", True) for s in args.compile_lengths]
    if args.variants:
        cells = [c for c in cells if c[2] in args.variants]
    return cells


COLUMNS = CONV + GATED + ["gated_compiled"] + OPERATOR + GRAPHED + ATTENTION + STEP_GRAPHED


def _cell_text(rec: dict | None, key: str = "ms") -> str:
    if rec is None:
        return "–"
    if rec["status"] != "ok":
        return {"O": "OOM", "s": "skip", "e": "error", "f": "CHECK"}[rec["status"][0]]
    return f"{rec[key]:.3g}" + ("!" if rec.get("check_failed") else "")


def markdown(records: list[dict], meta: dict, args) -> str:
    """One time table and one memory table per batch size, plus the floor columns."""
    bw = meta["copy_bytes_per_s"]
    lines = [f"# Operator benchmark ({meta['device']}, torch {meta['torch']}, {meta['date']})",
             "", (f"d_model {args.d_model}, bf16; forward+backward, median of {args.reps} "
                  f"calls (ms). Copy bandwidth (read+write) {bw / 1e9:.0f} GB/s. `skip`/`OOM`/"
                  "`error`/`CHECK` cells did not run or failed the reference check; `!` = "
                  "timed, but its rel. error exceeded --max-err (see results.json)."), ""]
    by = {(r["batch"], r["L"], r["variant"]): r for r in records}
    for batch in sorted({r["batch"] for r in records}):
        rows = sorted({r["L"] for r in records if r["batch"] == batch})
        head = ["L", *COLUMNS, "attn / best op_fast", "attn layer / best op_fast",
                "attn / op, both step-graphed", "conv floor", "conv_fast ×floor",
                "gated floor", "gated_fast ×floor"]
        lines += [f"## batch {batch}: time (ms)", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for seqlen in rows:
            cells = [by.get((batch, seqlen, v)) for v in COLUMNS]
            ops = [by.get((batch, seqlen, v), {}).get("ms") for v in ("op_fast", *GRAPHED)]
            ops = [t for t in ops if t is not None]
            extra = []
            for variant in ATTENTION:
                attn = by.get((batch, seqlen, variant), {})
                extra.append(f"{attn['ms'] / min(ops):.1f}x" if "ms" in attn and ops else "–")
            op_g, attn_g = (by.get((batch, seqlen, v), {}).get("ms") for v in STEP_GRAPHED)
            extra.append(f"{attn_g / op_g:.2f}x" if op_g and attn_g else "–")
            for kind, variant in (("conv", "conv_fast"), ("gated", "gated_fast")):
                floor = floor_bytes(kind, batch, seqlen, args.d_model) / bw * 1e3
                rec = by.get((batch, seqlen, variant))
                extra += [f"{floor:.3g}", f"{rec['ms'] / floor:.1f}" if rec and "ms" in rec
                          else "–"]
            lines.append(f"| {seqlen:,} | " + " | ".join(map(_cell_text, cells)) + " | "
                         + " | ".join(extra) + " |")
        lines += ["", f"## batch {batch}: peak memory (GiB, inputs included)", "",
                  "| L | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
        for seqlen in rows:
            cells = [by.get((batch, seqlen, v)) for v in COLUMNS]
            lines.append(f"| {seqlen:,} | " + " | ".join(
                _cell_text(c, "peak_gib") if c is None or "peak_gib" in c or c["status"] != "ok"
                else "n/a" for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(records: list[dict], path: Path, width: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    batches = sorted({r["batch"] for r in records})
    for i, batch in enumerate(batches):
        for j, variant in enumerate(COLUMNS):
            pts = sorted((r["L"], r["ms"]) for r in records
                         if r["batch"] == batch and r["variant"] == variant and "ms" in r)
            if len(pts) > 1:
                ax.plot(*zip(*pts), marker="o", ms=3, color=f"C{j}",
                        linestyle="-" if i == 0 else "--",
                        label=f"{variant} B={batch}")
    ax.set(xscale="log", yscale="log", xlabel="sequence length L", ylabel="fwd+bwd time (ms)",
           title=f"Hyena operator vs flash attention, d_model {width}, bf16")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for results.json/.md/.png")
    p.add_argument("--quick", action="store_true", help="CPU smoke test: tiny L, no attention")
    p.add_argument("--from-json", type=Path, help="only re-render results.md/.png from this")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--lengths", type=int, nargs="+", default=None)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--reps", type=int, default=10, help="timed calls per cell (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls after the check call")
    p.add_argument("--attn-max-len", type=int, default=1 << 18, help="longest attention L")
    p.add_argument("--graph-max-len", type=int, default=1 << 16, help="longest graphed op L")
    p.add_argument("--compile-lengths", type=int, nargs="*", default=[1 << 16, 1 << 20])
    p.add_argument("--max-err", type=float, default=5e-2, help="largest rel. error accepted")
    p.add_argument("--variants", nargs="+", choices=COLUMNS, help="run only these columns")
    p.add_argument("--cell-limit-s", type=float, default=25.0, help="skip slower cells")
    p.add_argument("--budget-s", type=float, default=190.0, help="stop starting cells after")
    args = p.parse_args(argv)
    if args.lengths is None:
        args.lengths = [64, 256, 1000] if args.quick else FULL_LENGTHS
    if args.quick:  # CPU: first calls build oneDNN kernels, so no per-cell time limit either
        args.d_model, args.batches, args.reps, args.warmup = 32, [1, 2], 3, 1
        args.cell_limit_s = float("inf")
    return args


def write_reports(records: list[dict], meta: dict, args) -> None:
    """results.md (+ results.png when matplotlib is there); prints the table last."""
    table = markdown(records, meta, args)
    (args.out / "results.md").write_text(table)
    try:
        plot(records, args.out / "results.png", args.d_model)
    except ImportError:
        log("matplotlib missing: no PNG (re-plot later with --from-json results.json)")
    print(table)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:  # re-render the reports of an earlier run (e.g. fetched from the GPU)
        data = json.loads(args.from_json.read_text())
        args.d_model, args.reps = (int(data["meta"]["args"][k]) for k in ("d_model", "reps"))
        return write_reports(data["records"], data["meta"], args)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
            "args": {k: str(v) for k, v in vars(args).items()}}
    meta["copy_bytes_per_s"] = copy_bandwidth(device)
    log(f"{meta['device']}: copy {meta['copy_bytes_per_s'] / 1e9:.0f} GB/s (read+write)")
    records = []
    for batch, seqlen, variant, check in plan(args):
        left = args.budget_s - (time.perf_counter() - T0)
        if left < (COMPILE_RESERVE_S if variant == "gated_compiled" else 0):
            rec = {"variant": variant, "batch": batch, "L": seqlen,
                   "status": "skipped: time budget"}
        else:
            rec = run_cell(variant, batch, seqlen, args, device, check)
        records.append(rec)
        detail = (f"{rec['ms']:.3f} ms, {rec.get('peak_gib', float('nan')):.2f} GiB"
                  if "ms" in rec else rec["status"])
        if rec.get("held_before_gib"):
            detail += f" ({rec['held_before_gib']:.2f} GiB still held from earlier cells)"
        err = (f"err {rec['rel_err']:.1e} ({rec['worst_tensor']})" if "rel_err" in rec
               else "")
        log(f"B={batch} L={seqlen:>9,} {variant:<17} {detail}  {err}")
        (args.out / "results.json").write_text(json.dumps({"meta": meta, "records": records},
                                                          indent=1))
    write_reports(records, meta, args)


if __name__ == "__main__":
    main()
