"""The NumPy functions devgrad differentiates (docs/numpy.md): each is ``dg.<name>``, and a Tensor
method where NumPy's ndarray has one. One list per group of the page."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg

TRIGONOMETRIC = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
                 "arctanh", "sinc", "deg2rad", "rad2deg", "degrees", "radians", "hypot"]
EXPONENTIAL = ["exp2", "expm1", "log1p", "log2", "log10", "logaddexp", "logaddexp2"]
ROUNDING = ["sign", "floor", "ceil", "round", "rint", "trunc", "mod", "remainder", "fmod", "fmax", "fmin", "nan_to_num",
            "absolute", "fabs", "square", "reciprocal", "negative", "true_divide", "cbrt"]
LAYOUT = ["repeat", "tile", "roll", "rot90", "flip", "flipud", "fliplr", "moveaxis", "rollaxis", "ravel", "append",
          "pad", "split", "array_split", "hsplit", "vsplit", "hstack", "vstack", "column_stack", "dstack", "atleast_1d",
          "atleast_2d", "atleast_3d", "take", "take_along_axis", "where", "nonzero", "select", "array", "stack",
          "linspace"]

REDUCTIONS = ["prod", "cumsum", "cumprod", "diff", "sort", "argsort", "amax", "amin", "nansum", "nanmean", "average",
              "median"]
PRODUCTS = ["outer", "inner", "tensordot", "einsum", "kron", "cross", "vdot", "dot"]
MATRIX = ["trace", "diag", "diagonal", "diagflat", "tril", "triu", "eye", "identity", "tri"]

GROUPS = {"trigonometric": TRIGONOMETRIC, "exponential": EXPONENTIAL, "rounding": ROUNDING, "layout": LAYOUT,
          "reductions": REDUCTIONS, "products": PRODUCTS, "matrix": MATRIX}
NAMES = [name for group in GROUPS.values() for name in group]


@pytest.mark.parametrize("name", NAMES)
def test_each_name_is_a_devgrad_function(name):
    assert callable(getattr(dg, name, None)), f"dg.{name} is missing"
    assert name in dg.__all__
    assert hasattr(np, name), f"{name} is not a NumPy function: this list names NumPy's"


@pytest.mark.parametrize("name", [n for n in NAMES if hasattr(np.ndarray, n)])
def test_ndarray_methods_are_tensor_methods(name):
    assert callable(getattr(dg.Tensor, name, None)), f"Tensor.{name} is missing (ndarray has it)"


def test_each_group_is_listed_once():
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize("name", ["topk"])
def test_pytorch_names_of_the_list(name):
    """PyTorch's names the list asks for where NumPy has none: a function and a Tensor method."""
    assert callable(getattr(dg, name, None)) and name in dg.__all__
    assert callable(getattr(dg.Tensor, name, None))


LINALG = ["inv", "pinv", "solve", "det", "slogdet", "cholesky", "eigh", "svd", "qr", "norm", "matrix_power", "lstsq"]


@pytest.mark.parametrize("name", LINALG)
def test_each_linalg_name_is_in_dg_linalg(name):
    assert callable(getattr(dg.linalg, name, None)), f"dg.linalg.{name} is missing"
    assert name in dg.linalg.__all__
    assert hasattr(np.linalg, name), f"{name} is not a numpy.linalg function: this list names NumPy's"
