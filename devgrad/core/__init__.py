"""The core: Tensor, Function (one op = forward on arrays + backward on Tensors) and the walk.

Everything about the graph lives in this package, one job per module:

- ``grad_mode``: whether ops record the graph (``no_grad``, ``enable_grad``), per thread;
- ``dtypes``: the default float and dtype names;
- ``_tensor``: ``Tensor`` (an array on a device plus the node that produced it) and ``tensor()``;
- ``function``: ``Function``, one op and its graph node (``Function.apply`` records it);
- ``backward``: the iterative walk (``Tensor.backward``, ``grad``);
- NumPy's floating-point error state for the ops and the walk is ``devgrad.backend.fp_errors``.

Tensor's operators and op methods are the functions of ``devgrad.ops``, registered by that
layer at import (``register_tensor_methods``), so the core imports nothing above backend.
"""

from __future__ import annotations

from devgrad.core.backward import grad, run_backward
from devgrad.core.dtypes import DEFAULT_FLOAT, as_dtype
from devgrad.backend.fp_errors import quiet
from devgrad.core.function import Function
from devgrad.core.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from devgrad.core._tensor import Tensor, register_tensor_methods, tensor

__all__ = [
    "DEFAULT_FLOAT", "Function", "Tensor", "as_dtype", "enable_grad", "grad", "inference_mode", "is_grad_enabled",
    "no_grad", "quiet",
    "register_tensor_methods", "run_backward", "set_grad_enabled", "tensor",
]
