"""Special functions on CUDA devices (CuPy's), registered by ``devgrad.ops.activation_torch`` and
imported when a GPU first runs one."""

from __future__ import annotations


def erf(x):
    """The error function of a CuPy array (``cupyx.scipy.special.erf``)."""
    from cupyx.scipy.special import erf as cupy_erf  # noqa: PLC0415 - CuPy is optional; imported on a GPU only

    return cupy_erf(x)
