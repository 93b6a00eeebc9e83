"""Random tensors: seeded, and the same numbers on every device."""

from __future__ import annotations

import numpy as np

import devgrad as dg


def test_randn_is_seeded_and_identical_across_devices(device):
    a = dg.randn(3, 4, generator=5, device=device)
    b = dg.randn((3, 4), generator=np.random.default_rng(5), device="cpu")
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    dg.manual_seed(1)
    c = dg.randn(5, device=device)
    dg.manual_seed(1)
    d = dg.randn(5, device=device)
    np.testing.assert_array_equal(c.numpy(), d.numpy())
    assert c.dtype == np.float32
    u = dg.rand(1000, generator=0, device=device).numpy()
    assert 0 <= u.min() and u.max() < 1
