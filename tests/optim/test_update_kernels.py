"""The CPU's in-place optimizer updates give, bit for bit, what the plain NumPy formulas give.

The reference below writes each update the straightforward way (fresh arrays for every
temporary, in PyTorch's order of operations); the optimizers' kernels go through scratch
buffers instead, and must not change a single bit of the weights or the state after several
steps, in float32 and float64, with a Python learning rate and with a capturable one (0-d).
"""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad import optim
from devgrad.optim import _kernels

STEPS = 4


def _weak(value, like):
    return value.astype(like.dtype) if isinstance(value, np.ndarray | np.generic) and value.dtype != like.dtype \
        else value


def _ref_sgd(p, g, st, o):
    lr, momentum = o.get("lr", 0.01), o.get("momentum", 0.0)
    if o.get("maximize"):
        g = -g
    if o.get("weight_decay"):
        g = g + o["weight_decay"] * p
    if momentum:
        if "buf" not in st:
            st["buf"] = g.copy()
        else:
            st["buf"] = st["buf"] * momentum + g * (1.0 - o.get("dampening", 0.0))
        g = g + momentum * st["buf"] if o.get("nesterov") else st["buf"]
    p -= g * _weak(lr, p)


def _ref_adam(p, g, st, o, decoupled):
    lr, (b1, b2), eps, wd = o.get("lr", 1e-3), o.get("betas", (0.9, 0.999)), o.get("eps", 1e-8), o.get(
        "weight_decay", 0.01 if decoupled else 0.0)
    st["step"] = st.get("step", 0) + 1
    if o.get("maximize"):
        g = -g
    if wd and decoupled:
        p *= _weak(1.0 - lr * wd, p)
    elif wd:
        g = g + wd * p
    m = st["m"] = st.get("m", np.zeros_like(p)) * b1 + g * (1.0 - b1)
    v = st["v"] = st.get("v", np.zeros_like(p)) * b2 + (g * g) * (1.0 - b2)
    if o.get("amsgrad"):
        v = st["vmax"] = np.maximum(st.get("vmax", np.zeros_like(p)), v)
    # βᵗ is NumPy's power of the count as a float64, capturable or not (the C library's pow may differ
    # from it by an ulp); √(1 − β₂ᵗ) a float64 NumPy scalar: the division runs in float64, rounded to
    # p's dtype; the rate lr/(1 − β₁ᵗ) is rounded to p's dtype first
    denom = (np.sqrt(v) / np.sqrt(1.0 - np.power(b2, np.float64(st["step"])))).astype(p.dtype) + eps
    p -= (m / denom) * _weak(lr / (1.0 - np.power(b1, np.float64(st["step"]))), p)


def _ref_rmsprop(p, g, st, o):
    lr, alpha, eps, momentum = o.get("lr", 0.01), o.get("alpha", 0.99), o.get("eps", 1e-8), o.get("momentum", 0.0)
    if o.get("maximize"):
        g = -g
    if o.get("weight_decay"):
        g = g + o["weight_decay"] * p
    sq = st["sq"] = st.get("sq", np.zeros_like(p)) * alpha + (1.0 - alpha) * (g * g)
    if o.get("centered"):
        ga = st["ga"] = st.get("ga", np.zeros_like(p)) * alpha + (1.0 - alpha) * g
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        buf = st["buf"] = st.get("buf", np.zeros_like(p)) * momentum + g / avg
        p -= _weak(lr, p) * buf
    else:
        p -= _weak(lr, p) * (g / avg)


def _ref_adagrad(p, g, st, o):
    lr, decay, eps = o.get("lr", 0.01), o.get("lr_decay", 0.0), o.get("eps", 1e-10)
    st["step"] = st.get("step", 0) + 1
    if o.get("maximize"):
        g = -g
    if o.get("weight_decay"):
        g = g + o["weight_decay"] * p
    total = st["sum"] = st.get("sum", np.zeros_like(p)) + g * g
    p -= _weak(lr / (1.0 + (st["step"] - 1) * decay), p) * (g / (np.sqrt(total) + eps))


REFERENCES = {"SGD": _ref_sgd, "Adam": lambda p, g, st, o: _ref_adam(p, g, st, o, False),
              "AdamW": lambda p, g, st, o: _ref_adam(p, g, st, o, True), "RMSprop": _ref_rmsprop,
              "Adagrad": _ref_adagrad}

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.99), "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-6}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.9, "maximize": True}),
    ("RMSprop", {"lr": 0.01, "centered": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "maximize": True}),
]


@pytest.mark.parametrize("capturable", [False, True], ids=["number-lr", "device-lr"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_in_place_updates_match_the_plain_formulas_bit_for_bit(name, options, dtype, capturable):
    rng = np.random.default_rng(3)
    shapes = [(5, 3), (3,), (1,)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(STEPS)]
    params = [dg.tensor(a.copy(), requires_grad=True) for a in start]
    opt = getattr(optim, name)(params, capturable=capturable, **options)
    expected, states = [a.copy() for a in start], [{} for _ in shapes]
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = dg.tensor(g.copy())
        opt.step()
        for p, g, st in zip(expected, step_grads, states):
            REFERENCES[name](p, g, st, options)
    for p, e in zip(params, expected):
        assert p.data.dtype == e.dtype and p.data.tobytes() == e.tobytes()
    for p, g in zip(params, grads[-1]):
        assert p.grad.data.tobytes() == g.tobytes()  # the update left the gradient alone


@pytest.mark.parametrize("maximize,weight_decay", [(True, 0.0), (False, 0.1), (True, 0.1)])
def test_kernels_given_one_scratch_buffer_make_the_second_they_need(maximize, weight_decay):
    rng = np.random.default_rng(4)
    p, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ours, ref = p.copy(), p.copy()
    buf, st = g.copy(), {"buf": g.copy()}
    _kernels.sgd_update(ours, g, buf, np.empty_like(p), 0.1, 0.9, 0.0, weight_decay, True, maximize, False)
    _ref_sgd(ref, g, st, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": weight_decay,
                          "maximize": maximize})
    assert ours.tobytes() == ref.tobytes() and buf.tobytes() == st["buf"].tobytes()
    ours, ref, st = p.copy(), p.copy(), {}
    _kernels.rmsprop_update_many([(ours, g, np.zeros_like(p), None, None)], 0.01, 0.99, 1e-8, weight_decay, 0.0,
                                 False, maximize)
    _ref_rmsprop(ref, g, st, {"weight_decay": weight_decay, "maximize": maximize})
    assert ours.tobytes() == ref.tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_plain_sgd_takes_a_python_rate_as_the_dtypes_0d_array_with_the_same_bits(dtype):
    """Plain SGD hands its ufuncs a Python rate as a 0-d array of the parameter's dtype (made once per
    dtype, not converted by NumPy per parameter): the same products as the Python float gives; a
    recording's traced arrays (an ndarray subclass) keep the float, which a captured plan refreshes."""
    rng = np.random.default_rng(3)
    p, g = rng.standard_normal(257).astype(dtype), rng.standard_normal(257).astype(dtype)
    for lr in (0.1, 1 / 3, 0.0123456789, 7.0):
        rate = _kernels._rate(lr, p)
        assert type(rate) is np.ndarray and rate.shape == () and rate.dtype == dtype
        np.testing.assert_array_equal((g * rate).view(np.uint8), (g * lr).view(np.uint8))
        items = [(q, g.copy(), None, np.empty_like(q), False) for q in (p.copy(), p[::-1].copy())]
        _kernels.sgd_update_many(items, lr, 0.0, 0.0, 0.0, False, False)
        for (q, _, _, _, _), start in zip(items, (p, p[::-1])):
            np.testing.assert_array_equal(q.view(np.uint8), (start - g * lr).view(np.uint8))
    traced = p.view(type("Traced", (np.ndarray,), {}))
    assert _kernels._rate(0.1, traced) == 0.1 and type(_kernels._rate(0.1, traced)) is float


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("capturable", [False, True], ids=["number-lr", "device-lr"])
def test_plain_sgd_of_a_large_parameter_goes_piece_by_piece_with_the_whole_updates_bits(dtype, capturable):
    """A parameter larger than a piece (256 KiB) is updated a piece at a time through the head of
    its scratch; inf, NaN and -0.0 in the gradient, a last piece shorter than the others: the bits
    of p - g·lr over the whole array. A parameter laid out otherwise takes the whole update."""
    rng = np.random.default_rng(5)
    n = 3 * (_kernels._PIECE_BYTES // np.dtype(dtype).itemsize) + 77
    p, g = rng.standard_normal((n // 7, 7)).astype(dtype), rng.standard_normal((n // 7, 7)).astype(dtype)
    g.flat[::1001], g.flat[1::1001], g.flat[2::1001] = np.inf, np.nan, -0.0
    params = [dg.tensor(a.copy(), requires_grad=True) for a in (p, p.T.copy().T)]  # C-ordered, F-ordered
    opt = optim.SGD(params, lr=0.0123, capturable=capturable)
    expected, lr = [p.copy(), p.copy()], np.full((), 0.0123) if capturable else 0.0123  # a device rate: 0-d float64
    for _ in range(2):
        for q in params:
            q.grad = dg.tensor(g.copy())
        opt.step()
        for e in expected:
            _ref_sgd(e, g, {}, {"lr": lr})
    for q, e in zip(params, expected):
        assert q.data.tobytes() == e.tobytes() and q.grad.data.tobytes() == g.tobytes()
