"""column_sum (hyenadna.ops.reduce): the Triton kernel (interpreted on the CPU) against its torch
twin and float64. All data here is synthetic (seeded random matrices)."""

import pytest
import torch

from hyenadna.ops import reduce


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (100, 70), (4097, 130)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_column_sum_kernel_matches_float64(shape, dtype, device):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[0])).to(device, dtype)
    got = reduce.column_sum_triton(x)
    assert got.dtype == torch.float32 and got.shape == (shape[1],)
    want = x.double().sum(0)
    scale = shape[0] ** 0.5
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5 * scale)
    torch.testing.assert_close(reduce.column_sum(x).double(), want, rtol=1e-5,
                               atol=1e-5 * scale)


def test_column_sum_reads_any_strides(device):
    x = torch.randn(300, 40, generator=torch.Generator().manual_seed(0)).to(device)
    for view in (x[:, ::2], x.t().contiguous().t(), x[7:250]):
        torch.testing.assert_close(reduce.column_sum_triton(view), view.sum(0), rtol=1e-5,
                                   atol=1e-4)


def test_column_sum_rejects_other_ranks():
    with pytest.raises(ValueError, match="2-D"):
        reduce.column_sum(torch.zeros(2, 3, 4))
    assert reduce.column_sum(torch.zeros(0, 3)).tolist() == [0.0, 0.0, 0.0]
    assert reduce.column_sum(torch.ones(2, 2, dtype=torch.float64)).dtype == torch.float64
