"""Fast ops (fftconv_fast, gated_fftconv, hyena_mixer, gelu_mlp) against their slow twins.

References run in float64 on the CPU over the same (possibly bf16-rounded) inputs; errors are
measured as ‖fast − ref‖ / ‖ref‖ per tensor: float32 FFTs land near 1e-6, bf16 I/O near 3e-3.
"""

import pytest
import torch

from hyenadna import HyenaDNA, ModelConfig
from hyenadna.ops import (
    OPS_ENV,
    conv_fft_size,
    dense,
    fftconv,
    fftconv_fast,
    fftconv_ref,
    gated_fftconv,
    gated_fftconv_ref,
    gelu_mlp,
    gelu_mlp_ref,
    hyena_mixer,
    hyena_mixer_ref,
    long_conv,
    use_fast_ops,
)
from hyenadna.ops.layout import short_conv_t_torch

LENGTHS = [1, 2, 7, 64, 1000, 1026, 3001, 4096]
REL_TOL = {torch.float32: 1e-4, torch.bfloat16: 1e-2}


def _conv64(u, k, D=None):
    # Direct convolution up to ~1k taps; beyond that float64 fftconv, which test_fftconv holds
    # to the direct one at 1e-10 (the O(L²) conv1d backward takes seconds at L = 4096).
    return fftconv_ref(u, k, D) if k.shape[-1] <= 1100 else fftconv(u, k, D)


def _gated64(v, pre, post, k, D=None):
    w = v if pre is None else v * pre
    return _conv64(w, k, D) * (1 if post is None else post)


def _rel_err(fast: torch.Tensor, ref: torch.Tensor) -> float:
    fast, ref = fast.detach().double().cpu(), ref.detach().double().cpu()
    assert torch.isfinite(fast).all()
    return ((fast - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def _conv_inputs(seqlen, dtype, device, batch=2, channels=4, taps=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    taps = taps or seqlen
    v, pre, post = (torch.randn(batch, channels, seqlen, generator=g) for _ in range(3))
    # decaying filter like the implicit filter's window keeps output magnitudes O(1)
    k = torch.randn(channels, taps, generator=g) * torch.exp(-torch.arange(taps) / 50.0)
    skip = torch.randn(channels, generator=g)
    return [t.to(device, dtype).requires_grad_() for t in (v, pre, post, k, skip)]


def _grads(y, inputs, seed=1):
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed))
    leaves = [t for t in inputs if t is not None and t.requires_grad]
    return torch.autograd.grad(y, leaves, dy.to(y.device, y.dtype))


def _check_against_ref(fast_fn, ref_fn, inputs, tol):
    y = fast_fn(*inputs)
    ref_inputs = [None if t is None else t.detach().double().cpu().requires_grad_(t.requires_grad)
                  for t in inputs]
    y64 = ref_fn(*ref_inputs)
    assert y.dtype == inputs[0].dtype and y.shape == y64.shape
    assert _rel_err(y, y64) < tol
    for fast, ref in zip(_grads(y, inputs), _grads(y64, ref_inputs)):
        assert fast.dtype in (inputs[0].dtype, torch.float32) and fast.shape == ref.shape
        assert _rel_err(fast, ref) < tol


@pytest.mark.parametrize("seqlen", LENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fftconv_fast_matches_ref_forward_and_grads(seqlen, dtype, device):
    u, _, _, k, skip = _conv_inputs(seqlen, dtype, device)
    _check_against_ref(fftconv_fast, _conv64, [u, k, skip], REL_TOL[dtype])


@pytest.mark.parametrize("seqlen", [1, 7, 64, 1000, 3001, 4096])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("policy", ["pow2", "smooth"])
def test_gated_fftconv_matches_ref_forward_and_grads(seqlen, dtype, policy, device):
    inputs = _conv_inputs(seqlen, dtype, device)
    # k stays float32 as in the model (the filter is float32 even under autocast)
    inputs[3] = inputs[3].detach().float().requires_grad_()

    def fast(*a):
        return gated_fftconv(*a, fft_policy=policy)

    _check_against_ref(fast, _gated64, inputs, REL_TOL[dtype])


@pytest.mark.parametrize("gates", ["both", "pre", "post", "none"])
@pytest.mark.parametrize("taps,skip,chunk", [(300, True, 1 << 26), (17, True, 700),
                                             (300, False, 1), (1, True, 1 << 26)])
def test_gated_fftconv_float64_is_exact_to_rounding(gates, taps, skip, chunk):
    # chunk=1 and 700 force one or a few channels per FFT chunk: the loop must tile exactly.
    v, pre, post, k, s = _conv_inputs(300, torch.float64, "cpu", batch=3, channels=5, taps=taps)
    pre = pre if gates in ("both", "pre") else None
    post = post if gates in ("both", "post") else None
    inputs = [v, pre, post, k, s if skip else None]
    y = gated_fftconv(*inputs, chunk_elems=chunk)
    y_ref = gated_fftconv_ref(*inputs)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    for fast, ref in zip(_grads(y, inputs), _grads(y_ref, inputs)):
        torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)


def test_gated_fftconv_frozen_filter_and_no_skip():
    v, pre, post, k, _ = _conv_inputs(200, torch.float64, "cpu")
    k = k.detach()
    y = gated_fftconv(v, pre, post, k, None)
    torch.testing.assert_close(y, gated_fftconv_ref(v, pre, post, k, None), rtol=1e-10,
                               atol=1e-10)
    y.sum().backward()
    assert v.grad is not None and k.grad is None


@pytest.mark.parametrize("t", [0, 10, 499])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_gated_fftconv_is_causal(t, dtype, tol):
    v, pre, post, k, s = (x.detach() for x in _conv_inputs(500, dtype, "cpu"))
    v2 = v.clone()
    v2[..., t + 1:] = torch.randn_like(v2[..., t + 1:])
    y, y2 = gated_fftconv(v, pre, post, k, s), gated_fftconv(v2, pre, post, k, s)
    torch.testing.assert_close(y[..., : t + 1], y2[..., : t + 1], rtol=tol, atol=tol)
    if t + 1 < 500:
        assert not torch.allclose(y[..., t + 1:], y2[..., t + 1:])


@pytest.mark.parametrize("seqlen,taps", [(1, 1), (64, 64), (1000, 1000), (300, 17),
                                         (1_000_002, 1_000_002), (1 << 20, 1 << 20)])
def test_conv_fft_size_policies_are_large_enough(seqlen, taps):
    need = seqlen + taps - 1
    pow2, smooth = conv_fft_size(seqlen, taps, "pow2"), conv_fft_size(seqlen, taps, "smooth")
    assert pow2 >= need and pow2 & (pow2 - 1) == 0 and pow2 < 2 * need + 1
    assert need <= smooth <= pow2


def test_conv_fft_size_raises_on_unknown_policy():
    with pytest.raises(ValueError, match="fft policy"):
        conv_fft_size(10, 10, "prime")


def test_gated_fftconv_raises_on_bad_filter_shape():
    v = torch.randn(1, 4, 10)
    with pytest.raises(ValueError, match="k must be"):
        gated_fftconv(v, None, None, torch.randn(4, 11))


def _mixer_inputs(seqlen, dtype, device, batch=2, width=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, seqlen, width, generator=g)
    in_w = torch.randn(3 * width, width, generator=g) / width**0.5
    in_b, sc_b = torch.randn(3 * width, generator=g), torch.randn(3 * width, generator=g)
    sc_w = torch.randn(3 * width, 1, 3, generator=g)
    k = torch.randn(width, seqlen, generator=g) * torch.exp(-torch.arange(seqlen) / 50.0)
    skip = torch.randn(width, generator=g)
    params = [t.to(device, torch.float32) for t in (in_w, in_b, sc_w, sc_b, k, skip)]
    return [x.to(device, dtype)] + params  # params stay float32, as under autocast


def _mixer_plain(x, in_w, in_b, sc_w, sc_b, k, skip):
    """The model's plain path (autograd through fftconv) in x's dtype, as under autocast."""
    proj = torch.nn.functional.linear(x, in_w.to(x.dtype), in_b.to(x.dtype))
    x0, x1, v = short_conv_t_torch(proj, sc_w, sc_b).split(k.shape[0], dim=1)  # autograd
    return (x0 * fftconv(v * x1, k, skip)).transpose(1, 2)  # (B, L, D)


# CPU conv1d builds a kernel per shape and dtype (~1-2 s each on a busy CI core): few shapes.
@pytest.mark.parametrize("seqlen,dtype", [(1, torch.float32), (1000, torch.float32),
                                          (7, torch.bfloat16), (500, torch.bfloat16)])
def test_hyena_mixer_matches_ref_forward_and_grads(seqlen, dtype, device):
    inputs = [t.requires_grad_() for t in _mixer_inputs(seqlen, dtype, device)]
    ref_inputs = [t.detach().double().cpu().requires_grad_() for t in inputs]
    y, y_ref = hyena_mixer(*inputs), hyena_mixer_ref(*ref_inputs)
    outs = [(y, y_ref)] + list(zip(_grads(y, inputs), _grads(y_ref, ref_inputs)))
    if dtype == torch.float32:
        for fast, ref in outs:
            assert _rel_err(fast, ref) < REL_TOL[dtype]
        return
    # bf16: proj, the gates and the weights are rounded to 8 bits at every step (as on the plain
    # autocast path), so compare errors: the fast path must be no worse than the plain one.
    y_plain = _mixer_plain(*inputs)
    plain = [y_plain] + list(_grads(y_plain, inputs))
    for (fast, ref), p in zip(outs, plain):
        assert _rel_err(fast, ref) <= max(1.5 * _rel_err(p, ref), 1e-2)


def _keep_prefix_up_to(seqlen: int, monkeypatch) -> None:
    """The mixer keeps proj and u3 up to ``seqlen``; 0: never (the one-node mixer of long rows,
    as at 1M, where they are over KEEP_PREFIX_MAX_BYTES too)."""
    monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_LEN", seqlen)
    if seqlen == 0:
        monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES", 0)
        monkeypatch.setattr("hyenadna.ops.lean.KEEP_U3_MAX_BYTES", 0)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("keep", ["prefix", "u3", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_time_major_proj_matches_ref_and_channels_last(batch, keep, dtype, monkeypatch, device):
    # lean.TIME_MAJOR_PROJ: the GEMM writes proj (B, 3D, L) without its bias, the short conv
    # adds it, the backward's GEMMs read dproj transposed; every node layout (two nodes, one
    # keeping u3, one recomputing everything) against float64 and the channels-last mixer
    _keep_prefix_up_to(1 << 13 if keep == "prefix" else 0, monkeypatch)
    if keep == "u3":
        monkeypatch.setattr("hyenadna.ops.lean.KEEP_U3_MAX_BYTES", 1 << 30)
    inputs = [t.requires_grad_() for t in _mixer_inputs(300, dtype, device, batch=batch)]
    ref_inputs = [t.detach().double().cpu().requires_grad_() for t in inputs]
    y_ref = hyena_mixer_ref(*ref_inputs)
    want = [y_ref, *_grads(y_ref, ref_inputs)]
    results = {}
    for time_major in (False, True):
        monkeypatch.setattr("hyenadna.ops.lean.TIME_MAJOR_PROJ", time_major)
        y = hyena_mixer(*inputs)
        results[time_major] = [y, *_grads(y, inputs)]
    for name, tm, cl, ref in zip(["y", "x", "in_w", "in_b", "sc_w", "sc_b", "k", "skip"],
                                 results[True], results[False], want):
        err_tm, err_cl = _rel_err(tm, ref), _rel_err(cl, ref)
        if dtype == torch.float32:
            assert err_tm < REL_TOL[dtype], (name, err_tm)
            if device.type == "cpu":  # on CUDA the layouts run different GEMM kernels (bmm
                # against mm at B = 2), elementwise further apart than this on small values
                # (s18f), each within REL_TOL of float64
                torch.testing.assert_close(tm, cl, rtol=1e-4, atol=1e-5, msg=name)
        else:  # another bf16 rounding of proj (without its bias): per seed either layout may
            # come out ahead (over 8 seeds time-major's errors averaged a little lower, e.g.
            # skip 5.7e-3 against 7.3e-3); a missing or doubled bias would be O(1)
            assert err_tm <= max(2 * err_cl, 2e-2), (name, err_tm, err_cl)


def test_hyena_mixer_kept_prefix_gives_the_recomputed_gradients(monkeypatch):
    # short rows keep proj and the short conv's output; long ones recompute them: same numbers
    inputs = [t.requires_grad_() for t in _mixer_inputs(200, torch.float32, "cpu")]
    grads = []
    for keep in (1 << 13, 0):
        _keep_prefix_up_to(keep, monkeypatch)
        grads.append(_grads(hyena_mixer(*inputs), inputs))
    for kept, recomputed in zip(*grads):
        torch.testing.assert_close(kept, recomputed, rtol=0, atol=0)


def test_hyena_mixer_keeps_the_prefix_within_its_byte_budget(monkeypatch):
    # past KEEP_PREFIX_MAX_LEN the mixer keeps proj and u3 only while 6 * B * L * D values of
    # the compute dtype fit KEEP_PREFIX_MAX_BYTES; kept or recomputed, the same gradients
    monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_LEN", 0)
    inputs = [t.requires_grad_() for t in _mixer_inputs(200, torch.float32, "cpu")]
    need = 6 * 2 * 200 * 8 * 4  # B = 2, L = 200, D = 8, float32
    nodes, grads = [], []
    for budget in (need, need - 1):
        monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES", budget)
        y = hyena_mixer(*inputs)
        nodes.append(type(y.grad_fn).__name__)
        grads.append(_grads(y, inputs))
    assert "MixerConv" in nodes[0] and "HyenaMixer" in nodes[1], nodes
    for kept, recomputed in zip(*grads):
        torch.testing.assert_close(kept, recomputed, rtol=0, atol=0)


def test_one_node_mixer_keeps_u3_within_its_byte_budget(monkeypatch):
    # over KEEP_PREFIX_MAX_BYTES the mixer is one node; it keeps u3 (3 * B * L * D values)
    # while that fits KEEP_U3_MAX_BYTES and then recomputes only proj: the same gradients
    _keep_prefix_up_to(0, monkeypatch)
    inputs = [t.requires_grad_() for t in _mixer_inputs(200, torch.float32, "cpu")]
    need = 3 * 2 * 200 * 8 * 4  # B = 2, L = 200, D = 8, float32
    saved, grads = [], []
    for budget in (need - 1, need):
        monkeypatch.setattr("hyenadna.ops.lean.KEEP_U3_MAX_BYTES", budget)
        sizes = []

        def pack(t, sizes=sizes):
            sizes.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = hyena_mixer(*inputs)
        assert "HyenaMixer" in type(y.grad_fn).__name__
        saved.append(sum(sizes))
        grads.append(_grads(y, inputs))
    assert saved[1] - saved[0] == need, saved
    for kept, recomputed in zip(*grads):
        torch.testing.assert_close(kept, recomputed, rtol=0, atol=0)


def test_lean_mixer_env_keeps_neither_proj_nor_u3(monkeypatch):
    # HYENADNA_LEAN_MIXER=1: past KEEP_PREFIX_MAX_LEN the mixer keeps neither proj nor u3,
    # however large both byte budgets: one node saving exactly what the 0-budget mixer saves,
    # the same gradients
    monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_LEN", 0)
    monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_BYTES", 1 << 40)
    monkeypatch.setattr("hyenadna.ops.lean.KEEP_U3_MAX_BYTES", 1 << 40)
    inputs = [t.requires_grad_() for t in _mixer_inputs(200, torch.float32, "cpu")]
    saved, nodes, grads = [], [], []
    for lean in ("0", "1"):
        monkeypatch.setenv("HYENADNA_LEAN_MIXER", lean)
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(
                lambda t, sizes=sizes: sizes.append(t.numel() * t.element_size()) or t,
                lambda t: t):
            y = hyena_mixer(*inputs)
        saved.append(sum(sizes))
        nodes.append(type(y.grad_fn).__name__)
        grads.append(_grads(y, inputs))
    assert "MixerConv" in nodes[0] and "HyenaMixer" in nodes[1], nodes
    _keep_prefix_up_to(0, monkeypatch)  # the 0-budget mixer, env off
    monkeypatch.setenv("HYENADNA_LEAN_MIXER", "0")
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: sizes.append(t.numel() * t.element_size()) or t, lambda t: t):
        hyena_mixer(*inputs)
    assert saved[1] == sum(sizes) < saved[0], (saved, sum(sizes))
    for kept, lean in zip(*grads):
        torch.testing.assert_close(kept, lean, rtol=0, atol=0)


@pytest.mark.parametrize("keep", [1 << 13, 0])
def test_hyena_mixer_casts_to_the_compute_dtype_itself(keep, monkeypatch, device):
    # compute_dtype: the mixer casts x (float32) itself and returns dx in float32, the same
    # numbers as casting first and letting autograd widen the gradient (two nodes or one)
    _keep_prefix_up_to(keep, monkeypatch)
    inputs = [t.requires_grad_() for t in _mixer_inputs(300, torch.float32, device)]
    x = inputs[0]
    dy = torch.randn(2, 300, 8, generator=torch.Generator().manual_seed(1)).to(device)
    y = hyena_mixer(*inputs, compute_dtype=torch.bfloat16)
    assert y.dtype == torch.bfloat16
    got = [y, *torch.autograd.grad(y, inputs, dy.bfloat16())]
    y_ref = hyena_mixer(x.bfloat16(), *inputs[1:])
    want = [y_ref, *torch.autograd.grad(y_ref, inputs, dy.bfloat16())]
    assert got[1].dtype == torch.float32
    for a, b in zip(got, want):
        if device.type == "cpu":  # the same kernels in the same order
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        else:  # on CUDA dx comes out of the GEMM in float32, without a bf16 rounding
            assert _rel_err(a, b) < 1e-2


@pytest.mark.parametrize("keep", [1 << 13, 0])
def test_hyena_mixer_casts_x_inside_its_first_node(keep, monkeypatch):
    # x's cast to the compute dtype belongs to the mixer's first node, so that x's gradient
    # leaves that node's GEMM in float32 (on CUDA, cuBLAS writes it; no cast kernel after it,
    # 0.6 ms at 1 x 1M on an H100): no autograd ToCopy node between x and the mixer
    _keep_prefix_up_to(keep, monkeypatch)
    inputs = [t.requires_grad_() for t in _mixer_inputs(300, torch.float32, "cpu")]
    y = hyena_mixer(*inputs, compute_dtype=torch.bfloat16)
    node = y.grad_fn
    while "Mixer" not in type(node).__name__ or "Conv" in type(node).__name__:
        node = next(f for f, _ in node.next_functions if f is not None and "Mixer" in
                    type(f).__name__)  # through _MixerConv to _MixerPrefix (two nodes)
    first = node.next_functions[0][0]
    assert type(first).__name__ == "AccumulateGrad" and first.variable is inputs[0]


@pytest.mark.parametrize("time_major", [False, True])
def test_hyena_mixer_float64_is_exact_to_rounding(time_major, monkeypatch):
    # either proj layout (lean.TIME_MAJOR_PROJ); batch 2, where the time-major weight gradient
    # sums per-item GEMMs (once in float32: 7e-8 off)
    monkeypatch.setattr("hyenadna.ops.lean.TIME_MAJOR_PROJ", time_major)
    inputs = [t.double().requires_grad_() for t in _mixer_inputs(300, torch.float64, "cpu")]
    y = hyena_mixer(*inputs, chunk_elems=1000)
    y_ref = hyena_mixer_ref(*inputs)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    for fast, ref in zip(_grads(y, inputs), _grads(y_ref, inputs)):
        torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("keep", [1 << 13, 0])
def test_hyena_mixer_at_batch_one_hands_out_proj_a_time_major_view(keep, monkeypatch):
    # batch 1: y is a (1, L, D) view of a (1, D, L) tensor; dense (out_proj) takes it as a GEMM
    # operand and returns dx in the same layout, which the mixer's backward reads as it is.
    # Values and gradients as the reference's, in float64, one node or two.
    _keep_prefix_up_to(keep, monkeypatch)
    inputs = [t.double().requires_grad_()
              for t in _mixer_inputs(300, torch.float64, "cpu", batch=1)]
    g = torch.Generator().manual_seed(3)
    w, b = (torch.randn(8, 8, generator=g, dtype=torch.float64).requires_grad_(),
            torch.randn(8, generator=g, dtype=torch.float64).requires_grad_())
    y = hyena_mixer(*inputs, chunk_elems=1000)
    assert y.shape == (1, 300, 8) and y.stride(1) == 1  # time-major memory
    out = dense(y, w, b)
    y_ref = hyena_mixer_ref(*inputs)
    out_ref = torch.nn.functional.linear(y_ref, w, b)
    torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-10)
    dout = torch.randn(out.shape, generator=g, dtype=torch.float64)
    leaves = [*inputs, w, b]
    got = torch.autograd.grad(out, leaves, dout)
    want = torch.autograd.grad(out_ref, leaves, dout)
    for a, r in zip(got, want):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mixer_and_dense_give_each_row_alone_what_they_give_the_batch(dtype, device):
    # a row alone takes the batch-1 layout (time-major y, dx from the transposed GEMM), the
    # batch the (B, L, D) one: the same outputs and dx, and the rows' parameter gradients sum
    # to the batch's (on CUDA: the on-chip engine)
    inputs = _mixer_inputs(256, dtype, device)
    g = torch.Generator().manual_seed(6)
    w, b = (torch.randn(8, 8, generator=g) / 3).to(device), torch.randn(8, generator=g).to(device)
    dout = torch.randn(2, 256, 8, generator=g).to(device, dtype)

    def run(x, dy):
        leaves = [x.detach().requires_grad_(), *(t.detach().requires_grad_()
                                                  for t in (*inputs[1:], w, b))]
        out = dense(hyena_mixer(*leaves[:7], compute_dtype=dtype), *leaves[7:])
        return [out, *torch.autograd.grad(out, leaves, dy)]

    batch = run(inputs[0], dout)
    rows = [run(inputs[0][r: r + 1], dout[r: r + 1]) for r in range(2)]
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for r, alone in enumerate(rows):
        assert _rel_err(alone[0], batch[0][r: r + 1]) < tol  # the output
        assert _rel_err(alone[1], batch[1][r: r + 1]) < tol  # dx
    for i in range(2, len(batch)):  # in_w, in_b, sc_w, sc_b, k, skip, w, b
        assert _rel_err(rows[0][i] + rows[1][i], batch[i]) < tol


def test_dense_on_a_time_major_view_returns_dx_in_that_layout():
    g = torch.Generator().manual_seed(4)
    x_t = torch.randn(1, 16, 50, generator=g, dtype=torch.float64)  # (1, d, L) memory
    x = x_t.transpose(1, 2).requires_grad_()  # (1, L, d) view
    w = torch.randn(8, 16, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(8, generator=g, dtype=torch.float64).requires_grad_()
    y = dense(x, w, b)
    torch.testing.assert_close(y, torch.nn.functional.linear(x, w, b), rtol=1e-12, atol=1e-12)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    dx, dw, db = torch.autograd.grad(y, [x, w, b], dy)
    assert dx.shape == x.shape and dx.stride(1) == 1  # time-major, as x
    torch.testing.assert_close(dx, dy @ w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dw, dy[0].t() @ x[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(db, dy.sum((0, 1)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_gelu_mlp_matches_ref(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 50, 16, generator=g).to(dtype).requires_grad_()
    params = [torch.randn(64, 16, generator=g) / 4, torch.randn(64, generator=g),
              torch.randn(16, 64, generator=g) / 8, torch.randn(16, generator=g)]
    inputs = [x] + [p.requires_grad_() for p in params]  # weights float32, as under autocast
    y, y_ref = gelu_mlp(*inputs), gelu_mlp_ref(*inputs)
    # bf16: the same kernels in the same order as plain autograd, so the same bits
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=0, atol=0)
    torch.testing.assert_close(y, y_ref, **tol)
    for fast, ref in zip(_grads(y, inputs), _grads(y_ref, inputs)):
        assert fast.dtype == ref.dtype
        assert _rel_err(fast, ref) < (1e-12 if dtype == torch.float64 else 1e-2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_autocast_linear(dtype, bias, device):
    # the same matmuls as autocast's Linear; only the bias gradient is summed differently
    # (float32 column sums instead of a bf16 reduction)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 50, 16, generator=g).to(device, dtype).requires_grad_()
    w = torch.randn(8, 16, generator=g).to(device).requires_grad_()
    b = torch.randn(8, generator=g).to(device).requires_grad_() if bias else None
    y = dense(x, w, b)
    leaves = [x, w] + ([b] if bias else [])
    y_ref = torch.nn.functional.linear(x, w.to(dtype), None if b is None else b.to(dtype))
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    dy = torch.randn(y.shape, generator=g).to(device, dtype)
    got = torch.autograd.grad(y, leaves, dy)
    want = torch.autograd.grad(y_ref, leaves, dy)
    for a, r, leaf in zip(got, want, leaves):
        assert a.dtype == leaf.dtype and a.shape == leaf.shape
        assert _rel_err(a, r) < (1e-12 if dtype == torch.float64 else 1e-2)
    if bias:  # the bias gradient against float64
        torch.testing.assert_close(got[2].double(), dy.double().sum((0, 1)), rtol=1e-5,
                                   atol=1e-4)


def test_use_fast_ops_env_switch(monkeypatch, device):
    x = torch.zeros(1, device=device)
    monkeypatch.delenv(OPS_ENV, raising=False)
    assert use_fast_ops(x) == (device.type == "cuda")  # auto: fast on CUDA only
    monkeypatch.setenv(OPS_ENV, "ref")
    assert not use_fast_ops(x)
    monkeypatch.setenv(OPS_ENV, "fast")
    assert use_fast_ops(x)
    monkeypatch.setenv(OPS_ENV, "fastest")
    with pytest.raises(ValueError, match=OPS_ENV):
        use_fast_ops(x)


def test_long_conv_dispatch_matches_both_paths(monkeypatch):
    u, _, _, k, skip = (t.detach() for t in _conv_inputs(500, torch.float64, "cpu"))
    outs = []
    for mode in ("ref", "fast"):
        monkeypatch.setenv(OPS_ENV, mode)
        outs.append(long_conv(u, k, skip))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-10)


def _model_grads(model, ids):
    model.zero_grad()
    logits = model(ids)
    logits.float().logsumexp(-1).mean().backward()
    return logits.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("checkpointing,filter_ckpt_len,batch,keep", [
    (False, 1, 2, 1 << 13), (True, 1, 2, 1 << 13), (False, 1e9, 2, 1 << 13),
    (False, 1, 1, 1 << 13), (False, 1e9, 1, 0), (True, 1, 1, 0)])
def test_model_fast_path_matches_plain_path(monkeypatch, checkpointing, filter_ckpt_len, batch,
                                            keep):
    # Whole model in float64, train mode: fast path (lean mixer + gelu_mlp, filter net
    # recomputed or not; at batch 1 the mixer's output time-major into out_proj; keep 0: the
    # one-node mixer of L > 8k) and plain path give the same logits and every parameter's
    # gradient.
    monkeypatch.setattr("hyenadna.model.FILTER_CHECKPOINT_MIN_LEN", filter_ckpt_len)
    _keep_prefix_up_to(keep, monkeypatch)
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_layer=2, l_max=160, embed_dropout=0.0,
                      gradient_checkpointing=checkpointing)
    model = HyenaDNA(cfg).double().train()
    ids = torch.randint(7, 12, (batch, 160))
    results = []
    for mode in ("ref", "fast"):
        monkeypatch.setenv(OPS_ENV, mode)
        results.append(_model_grads(model, ids))
    (logits_ref, grads_ref), (logits_fast, grads_fast) = results
    torch.testing.assert_close(logits_fast, logits_ref, rtol=1e-9, atol=1e-9)
    for (name, _), g_fast, g_ref in zip(model.named_parameters(), grads_fast, grads_ref):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-7, atol=1e-9, msg=name)


def test_model_fast_path_bf16_autocast_close_to_fp32_plain(monkeypatch, device):
    torch.manual_seed(0)
    model = HyenaDNA(ModelConfig(d_model=32, n_layer=2, l_max=258, embed_dropout=0.0))
    model = model.to(device).train()
    ids = torch.randint(7, 12, (2, 256), device=device)
    monkeypatch.setenv(OPS_ENV, "ref")
    logits_ref, grads_ref = _model_grads(model, ids)
    monkeypatch.setenv(OPS_ENV, "fast")
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits, grads = _model_grads(model, ids)
    assert logits.dtype == torch.bfloat16
    assert _rel_err(logits, logits_ref) < 2e-2
    for g, g_ref in zip(grads, grads_ref):
        assert g.dtype == torch.float32 and _rel_err(g, g_ref) < 5e-2


def _saved_bytes_per_token(mode, n_layer, monkeypatch, seqlen=2048, d_model=32):
    """Bytes autograd keeps for the backward (unique storages), per token, bf16 autocast."""
    monkeypatch.setenv(OPS_ENV, mode)
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=d_model, n_layer=n_layer, l_max=seqlen, embed_dropout=0.0)
    model = HyenaDNA(cfg).train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    ids = torch.randint(7, 12, (1, seqlen))
    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with hooks, torch.autocast("cpu", dtype=torch.bfloat16):
        model(ids).float().logsumexp(-1).mean()
    return sum(storages.values()) / seqlen


def test_fast_path_keeps_few_activation_bytes_per_layer(monkeypatch):
    # Memory budget of the 1M-token step (benchmarks/NOTES_gpu.md): per layer and token the
    # fast path keeps the fp32 residual twice (LayerNorm inputs, 8·D), the mixer's x and z
    # (4·D), out_proj's and the MLP's bf16 inputs (4·D) and conj(K') (8·D at B = 1): 24·D
    # bytes, plus LayerNorm statistics. The plain path keeps ~100·D + the filter net's.
    # This is the leanest mixer (HYENADNA_LEAN_MIXER=1); by default the 1M step also keeps u3
    # (6·D bytes in bf16; test_one_node_mixer_keeps_u3_within_its_byte_budget).
    d = 32
    monkeypatch.setattr("hyenadna.model.FILTER_CHECKPOINT_MIN_LEN", 1)  # as at L >= 256k
    monkeypatch.setattr("hyenadna.ops.lean.KEEP_PREFIX_MAX_LEN", 0)  # as at L > 8k
    monkeypatch.setenv("HYENADNA_LEAN_MIXER", "1")
    per_layer = {mode: _saved_bytes_per_token(mode, 2, monkeypatch, d_model=d)
                 - _saved_bytes_per_token(mode, 1, monkeypatch, d_model=d)
                 for mode in ("fast", "ref")}
    assert per_layer["fast"] <= 25 * d, per_layer
    assert per_layer["ref"] >= 4 * per_layer["fast"], per_layer


def test_fast_ops_inference_path_matches_training_path():
    # Under no_grad the fast ops skip what only the backward needs (z, conj(K')); same output.
    v, pre, post, k, s = _conv_inputs(300, torch.float64, "cpu")
    mix = [t.double().requires_grad_() for t in _mixer_inputs(300, torch.float64, "cpu")]
    with_grad = gated_fftconv(v, pre, post, k, s), hyena_mixer(*mix)
    with torch.no_grad():
        without = gated_fftconv(v, pre, post, k, s), hyena_mixer(*mix)
    for a, b in zip(with_grad, without):
        assert b.grad_fn is None
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=0)


def test_model_fast_path_eval_matches_plain_path(monkeypatch):
    torch.manual_seed(0)
    model = HyenaDNA(ModelConfig(d_model=16, n_layer=2, l_max=300)).double().eval()
    ids = torch.randint(7, 12, (2, 300))
    logits = []
    for mode in ("ref", "fast"):
        monkeypatch.setenv(OPS_ENV, mode)
        with torch.no_grad():
            logits.append(model(ids))
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-9, atol=1e-9)
