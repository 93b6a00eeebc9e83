"""PyTorch's idioms (tests/ops/test_torch_methods.py, tests/nn/test_torch_layers.py,
tests/nn/test_class_losses.py) differentiated through the CUDA backend's kernels and GEMM seam
on their host builds: the CPU's gradients. (Exact GELU's erf is CuPy's own on a GPU, so the
tanh form stands for it here.)"""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad.nn import functional as F
from tests.backend.test_cuda_path import cuda_path  # noqa: F401 - the fixture


def _torch_idiom_gradients() -> list:
    rng = np.random.default_rng(8)
    x = dg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    table = dg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    labels, soft = dg.tensor([0, 2, -100, 1]), dg.tensor(rng.dirichlet(np.ones(3), 4))
    bn = dg.nn.BatchNorm1d(3).double()
    h = bn(F.layer_norm(x, 3) + F.embedding(dg.tensor([1, 4, 4, 0]), table, padding_idx=0))
    parts = [x.gather(1, dg.tensor([[0, 2], [1, 1], [2, 0], [0, 0]])), x.index_select(0, dg.tensor([3, 3, 1])),
             x.masked_fill(x > 0.5, 0.0), x.norm(dim=1), x.tile(2, 1) * 0.5, x.reshape(2, 2, 3).bmm(
                 x.reshape(2, 3, 2)), F.gelu(h, approximate="tanh"), F.silu(h), F.elu(h), F.hardtanh(h), F.mish(h),
             F.softplus(h, beta=2.0, threshold=1.0),
             F.cross_entropy(h, labels, weight=dg.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1),
             F.cross_entropy(h, soft), F.binary_cross_entropy(h.sigmoid(), soft),
             F.binary_cross_entropy_with_logits(h, soft, pos_weight=dg.tensor([1.0, 3.0, 0.5]))]
    total = parts[0].sum()
    for part in parts[1:]:
        total = total + part.sum()
    return [g.numpy() for g in dg.grad(total, [x, table])] + [bn.running_mean.numpy(), bn.running_var.numpy()]


@pytest.mark.slow  # builds the host kernels it meets first
def test_pytorch_idioms_differentiate_through_the_cuda_path_as_on_the_cpu(cuda_path):  # noqa: F811
    want = _torch_idiom_gradients()
    got, _, _ = cuda_path(_torch_idiom_gradients)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13)
