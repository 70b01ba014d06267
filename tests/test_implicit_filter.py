"""The fused implicit filter (hyenadna.ops.implicit_filter) against its float64 torch twin.

Without a GPU the Triton kernels run in Triton's interpreter (conftest sets TRITON_INTERPRET=1),
in exact float32; on CUDA they compile, with TF32 dots by default. Weights are synthetic random
values at the scale the model initialises them; positions come from the model's own
PositionalEmbedding.
"""

import pytest
import torch

from hyenadna.config import ModelConfig
from hyenadna.model import HyenaFilter, HyenaOperator, PositionalEmbedding
from hyenadna.ops import implicit_filter as imf

needs_triton = pytest.mark.skipif(imf.triton is None, reason="triton not installed")
NAMES = ["w1", "b1", "w2", "b2", "w3", "b3", "freq", "w4"]


def _inputs(emb, feat, width, seqlen, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = PositionalEmbedding(emb, seqlen + 7)  # l_max > L: the model slices rows :L
    z, t = pos.z[0, :seqlen].double(), pos.t[0, :seqlen, 0].double()

    def rand(*shape, scale=0.3):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()

    params = [rand(feat, emb), rand(feat), rand(feat, feat), rand(feat), rand(feat, feat),
              rand(feat), (1 + rand(1, feat, scale=0.1)).detach().requires_grad_(),
              rand(width, feat)]
    deltas = torch.linspace(-15.4, -3.1, width, dtype=torch.float64)  # the model's window rates
    return z, t, params, deltas


def _rel(a, b):
    return ((a.double() - b).abs().max() / b.abs().max()).item()


@needs_triton
@pytest.mark.parametrize("emb,feat,width,seqlen,modulate,shift", [
    (5, 64, 96, 200, True, 0.0),  # D not a power of two, L not a multiple of any tile
    (5, 64, 256, 130, True, 0.05),  # the released D = 256, a shifted window
    (7, 32, 128, 33, False, 0.0),  # no window, one partial tile
    (3, 16, 16, 64, True, 0.0),  # the smallest dot shapes
])
def test_fused_matches_float64_twin(emb, feat, width, seqlen, modulate, shift, device):
    z, t, params, deltas = _inputs(emb, feat, width, seqlen)
    ref = imf.implicit_filter_ref(z, t, *params, deltas, shift, modulate)
    dk = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, params, dk)
    for precision in imf.PRECISIONS if device.type == "cuda" else ("ieee",):
        p32 = [p.detach().float().to(device).requires_grad_() for p in params]
        k = imf._fused(z.float().to(device), t.float().to(device), *p32,
                       deltas.float().to(device), shift, modulate, precision)
        grads = torch.autograd.grad(k, p32, dk.float().to(device))
        # float32 FMA / three TF32 passes: rounding only; TF32 (10-bit mantissa inputs) through
        # three sine layers
        tol = {"ieee": 2e-5, "tf32x3": 1e-4, "tf32": 2e-2}[precision]
        assert k.dtype == torch.float32 and k.shape == (width, seqlen)
        assert _rel(k.cpu(), ref) < tol, precision
        for name, got, want in zip(NAMES, grads, ref_grads):
            assert got.shape == want.shape and got.dtype == torch.float32, name
            assert _rel(got.cpu(), want) < tol, (precision, name)


@needs_triton
@pytest.mark.parametrize("share", [1.0, 0.5, 0.01])
def test_backward_on_a_share_of_the_sms(share, device, monkeypatch):
    # BWD_SM_SHARE: 4, 2 or (at least) 1 programs over 22 tiles, the same sums (as on the
    # model's side stream, where the share applies)
    monkeypatch.setattr(imf, "BWD_SM_SHARE", share)
    monkeypatch.setattr(imf, "_beside_prefix", lambda z: True)
    monkeypatch.setattr(imf, "BWD_PROGRAMS_PER_SM", 1)
    monkeypatch.setattr(imf, "_sm_count", lambda dev: 4)
    _check_long_backward(device, "ieee", 2e-5)


def _check_long_backward(device, precision: str, tol: float):
    """The fused filter's parameter gradients at L = 700 (22 tiles of 32, 44 of 16) within tol
    of float64."""
    z, t, params, deltas = _inputs(5, 32, 64, 700)
    ref = imf.implicit_filter_ref(z, t, *params, deltas, 0.0)
    ref_grads = torch.autograd.grad(ref.sum(), params)
    p32 = [p.detach().float().to(device).requires_grad_() for p in params]
    k = imf._fused(z.float().to(device), t.float().to(device), *p32, deltas.float().to(device),
                   0.0, True, precision)
    for name, got, want in zip(NAMES, torch.autograd.grad(k.sum(), p32), ref_grads):
        assert _rel(got.cpu(), want) < tol, (precision, name)


@needs_triton
@pytest.mark.parametrize("hoist", [False, True])
@pytest.mark.parametrize("short_max_len", [0, 8192])  # tiles of 32 (long L) or of 16 (short L)
@pytest.mark.parametrize("stages", [1, 3])  # the loop over tiles plain or software-pipelined
def test_backward_over_many_tiles_per_program(hoist, short_max_len, stages, device, monkeypatch):
    # more tiles than programs: each program strides over several and sums them in registers
    monkeypatch.setattr(imf, "BWD_HOIST_WEIGHTS", hoist)
    monkeypatch.setattr(imf, "BWD_STAGES", stages)
    monkeypatch.setattr(imf, "BWD_PROGRAMS_PER_SM", 1)
    monkeypatch.setattr(imf, "SHORT_MAX_LEN", short_max_len)
    monkeypatch.setattr(imf, "_sm_count", lambda dev: 3)  # over 3 programs
    # the weights are hoisted (and the loop pipelined) for TF32 dots only; the interpreter's
    # dots are float32 whatever the precision, a GPU's TF32 ones round inputs to 10 bits
    precision = "tf32" if hoist else "ieee"
    _check_long_backward(device, precision,
                         2e-2 if precision == "tf32" and device.type == "cuda" else 2e-5)


def test_unsupported_shapes_take_the_torch_twin():
    z, t, params, deltas = _inputs(5, 48, 16, 40)  # F = 48: not a power of two
    assert not imf.fused_supported(z.float(), params[-1])
    out = imf.implicit_filter(z, t, *params, deltas, 0.0)
    torch.testing.assert_close(out, imf.implicit_filter_ref(z, t, *params, deltas, 0.0),
                               rtol=0, atol=0)
    assert not imf.fused_supported(z.float(), torch.zeros(512, 64))  # D above MAX_WIDTH


@needs_triton
def test_bad_precision_is_refused(monkeypatch):
    monkeypatch.setattr(imf, "use_triton", lambda x: True)
    z, t, params, deltas = _inputs(5, 16, 16, 20)
    with pytest.raises(ValueError, match="precision"):
        imf.implicit_filter(z.float(), t.float(), *params, deltas, 0.0, precision="fp8")


@needs_triton
def test_model_filter_on_the_fused_op_equals_the_plain_filter(device, monkeypatch):
    # HyenaFilter.filter_t takes the fused op where Triton runs; forced on here for the CPU
    # (interpreted). Same taps and parameter gradients as the official-layout plain filter.
    monkeypatch.setattr(imf, "use_triton", lambda x: x.dtype == torch.float32)
    torch.manual_seed(0)
    filt = HyenaFilter(ModelConfig(d_model=32, l_max=300, shift=0.02)).to(device)
    assert filt.fused()
    fused, plain = filt.filter_t(257), filt.filter(257)[0].t()
    tol = 1e-5 if device.type == "cpu" else 1e-3  # float32 here: three TF32 passes on CUDA
    assert _rel(fused.detach().cpu(), plain.detach().cpu().double()) < tol
    weight = torch.randn(fused.shape, generator=torch.Generator().manual_seed(2)).to(device)
    grads = [torch.autograd.grad((h * weight).sum(), list(filt.parameters()), allow_unused=True)
             for h in (fused, plain)]
    for (name, _), a, b in zip(filt.named_parameters(), *grads):
        if name == "bias":  # the skip term D is the conv's, not the filter's
            assert a is None and b is None
            continue
        assert _rel(a.cpu(), b.cpu().double()) < tol, name


@needs_triton
def test_operator_fast_path_with_the_fused_filter(monkeypatch):
    # The whole fast-path operator with the fused filter (interpreted on the CPU) against the
    # plain operator, float32: output and every parameter gradient; no filter checkpoint.
    monkeypatch.setattr(imf, "use_triton", lambda x: x.dtype == torch.float32)
    monkeypatch.setattr("hyenadna.model.FILTER_CHECKPOINT_MIN_LEN", 1)
    torch.manual_seed(0)
    op = HyenaOperator(ModelConfig(d_model=16, l_max=128))
    u = torch.randn(2, 100, 16, requires_grad=True)
    outs = []
    for mode in ("fast", "ref"):
        monkeypatch.setenv("HYENADNA_OPS", mode)
        y = op(u)
        outs.append([y, *torch.autograd.grad((y * y).sum(), [u, *op.parameters()])])
    names = ["y", "du", *(n for n, _ in op.named_parameters())]
    for name, a, b in zip(names, *outs):
        assert _rel(a, b.double()) < 1e-4, name


def test_precision_policy():
    # TF32 only for training under autocast; near-float32 (three TF32 passes) for float32 and
    # for inference, where the filter is computed once per length and cached
    assert imf.pick_precision("cpu", training=True) == "tf32x3"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert imf.pick_precision("cpu", training=True) == "tf32"
        assert imf.pick_precision("cpu", training=False) == "tf32x3"


@needs_triton
def test_zero_taps_give_zero_gradients(device):
    z, t, params, deltas = _inputs(5, 16, 16, 0)
    p32 = [p.detach().float().to(device).requires_grad_() for p in params]
    k = imf._fused(z.float().to(device), t.float().to(device), *p32, deltas.float().to(device),
                   0.0, True, "ieee")
    assert k.shape == (16, 0)
    for g in torch.autograd.grad(k.sum(), p32):
        assert torch.equal(g, torch.zeros_like(g))
