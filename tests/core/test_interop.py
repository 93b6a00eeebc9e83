"""Sharing with other libraries: DLPack both ways with NumPy and PyTorch (zero-copy, so a write
through one side is seen by the other), and weights as safetensors that PyTorch loads."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import devgrad as dg

needs_safetensors = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                       reason="the safetensors extra (pip install safetensors)")


def test_numpy_sees_devgrad_memory_and_devgrad_sees_numpys():
    t = dg.tensor(np.arange(6.0).reshape(2, 3))
    shared = np.from_dlpack(t)
    assert shared.dtype == t.dtype and shared.shape == t.shape
    shared[0, 1] = 40.0
    assert t[0, 1].item() == 40.0
    assert np.shares_memory(np.asarray(t), t.data)
    a = np.zeros((3, 2), dtype=np.float32)
    back = dg.from_dlpack(a)
    back.data[2, 1] = 7.0
    assert a[2, 1] == 7.0 and back.dtype == np.float32 and back.device.name == "cpu" and not back.requires_grad
    assert t.__dlpack_device__() == (1, 0)


def test_dlpack_shares_memory_with_the_array_library_of_each_device(device):
    array = device.xp.arange(6.0).reshape(2, 3)
    t = dg.from_dlpack(array)
    assert t.device is device and t.dtype == np.float64 and t.shape == (2, 3)
    t += 1.0  # in place, through devgrad
    back = device.xp.from_dlpack(t)
    back[1, 2] = -1.0  # through the array library
    assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, -1.0]] and device.to_host(array).tolist() == t.tolist()
    kind, index = t.__dlpack_device__()
    assert (int(kind), int(index)) == ((1, 0) if device.is_host else (2, device.index))


def test_numpy_array_copies_and_asarray_shares_as_numpy_promises():
    t = dg.tensor([1.0, 2.0])
    np.array(t)[0] = 5.0  # np.array copies by default
    np.asarray(t, copy=True)[1] = 7.0
    assert t.tolist() == [1.0, 2.0]
    np.asarray(t, copy=False)[0] = 3.0
    np.asarray(t)[1] = 4.0
    assert t.tolist() == [3.0, 4.0]
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(t, dtype=np.float64, copy=False)


def test_non_contiguous_views_travel_with_their_strides_or_are_copied_when_asked():
    base = np.arange(24.0).reshape(4, 6)
    view = dg.from_dlpack(base[:, ::2])  # strided: shared as it is
    assert view.shape == (4, 3) and np.shares_memory(view.data, base)
    assert (np.from_dlpack(view) == base[:, ::2]).all()
    t = dg.tensor(base).T  # a transposed view of a devgrad tensor
    assert (np.from_dlpack(t) == base.T).all()
    copied = np.from_dlpack(t, copy=True)
    copied[0, 0] = -1.0
    assert t[0, 0].item() == 0.0


def test_a_tensor_that_requires_grad_refuses_and_detach_shares_memory():
    w = dg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"requires grad.*use t\.detach\(\)"):
        np.from_dlpack(w)
    detached = w.detach()
    np.from_dlpack(detached)[0] = 5.0
    assert w[0].item() == 5.0


def test_from_dlpack_refuses_what_is_not_a_producer_and_moves_on_request():
    with pytest.raises(TypeError, match="not a DLPack producer"):
        dg.from_dlpack([1.0, 2.0])
    t = dg.tensor([1.0, 2.0])
    assert dg.from_dlpack(t).data is t.data
    assert dg.from_dlpack(np.ones(2), device="cpu").device.name == "cpu"


@pytest.mark.oracle
def test_pytorch_shares_memory_both_ways(torch):
    t = dg.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    for shared in (torch.from_dlpack(t), torch.as_tensor(t)):
        assert shared.dtype == torch.float32 and tuple(shared.shape) == (2, 3)
        shared[1, 2] += 100.0
    assert t[1, 2].item() == 205.0  # both views wrote into devgrad's memory
    source = torch.arange(8, dtype=torch.float64).reshape(2, 4)
    view = dg.from_dlpack(source.T)  # a non-contiguous PyTorch view
    assert view.shape == (4, 2) and view.dtype == np.float64
    source[0, 3] = -3.0
    assert view[3, 0].item() == -3.0
    with pytest.raises(RuntimeError, match="requires grad"):
        torch.from_dlpack(dg.tensor([1.0], requires_grad=True))
    ints = dg.from_dlpack(torch.tensor([1, 2, 3]))
    assert ints.dtype == np.int64 and ints.tolist() == [1, 2, 3]



@pytest.mark.oracle
def test_a_pytorch_tensor_keeps_its_dtype_in_dg_tensor(torch):
    """dg.tensor copies another library's array with its dtype, as a NumPy array's: a float64
    PyTorch tensor is not rounded to float32 (lists and Python floats still give float32)."""
    exact = torch.tensor([1.0 + 1e-12, 2.0], dtype=torch.float64)
    copied = dg.tensor(exact)
    assert copied.dtype == np.float64 and copied.numpy()[0] == 1.0 + 1e-12
    assert dg.tensor(torch.tensor([1.5])).dtype == np.float32 and dg.tensor([1.5]).dtype == np.float32
    assert dg.tensor(exact, dtype="float32").dtype == np.float32


# -- safetensors -------------------------------------------------------------------------------

@needs_safetensors
def test_save_and_load_by_extension_round_trip_a_state_dict(tmp_path):
    mlp = dg.nn.MLP([3, 4, 2], generator=0)
    path = dg.save(mlp.state_dict(), tmp_path / "w.safetensors")
    loaded = dg.load(path)
    assert set(loaded) == set(mlp.state_dict())
    for name, value in mlp.state_dict().items():
        assert loaded[name].dtype == value.dtype and (loaded[name].numpy() == value.numpy()).all()
    from safetensors.numpy import load_file

    assert set(load_file(str(path))) == set(loaded)  # a plain safetensors file
    with pytest.raises(TypeError, match=r"holds only numeric tensors.*use \.npz"):
        dg.save({"model": mlp.state_dict()}, tmp_path / "nested.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.safetensors is truncated or corrupted"):
        dg.load(tmp_path / "cut.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(IsADirectoryError):  # a folder is not called a damaged file
        dg.load(tmp_path / "folder.safetensors")


@needs_safetensors
@pytest.mark.oracle
def test_pytorch_loads_a_devgrad_mlp_from_safetensors_with_the_same_outputs(torch, tmp_path):
    from safetensors.torch import load_file

    mlp = dg.nn.MLP([4, 8, 8, 3], activation="tanh", generator=1)
    dg.save(mlp.state_dict(), tmp_path / "mlp.safetensors")
    # the lines docs/use-a-trained-model.md shows: nn.Linear keeps PyTorch's (out, in) layout
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                              torch.nn.Linear(8, 3))
    state = load_file(tmp_path / "mlp.safetensors")
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items()})
    X = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(mlp(dg.tensor(X)).numpy(), expected, rtol=1e-5, atol=1e-6)


@needs_safetensors
def test_devgrad_export_writes_a_runs_weights_as_safetensors(tmp_path):
    from devgrad import cli
    from devgrad.experiment import load, run
    from tests.support.trained_runs import spec_for

    result = run(spec_for("binary", tmp_path), out=tmp_path / "runs", quiet=True)
    assert cli.main(["export", str(result.run_dir), "--format", "safetensors", "--quiet"]) == 0
    weights = dg.load(result.run_dir / "export" / "model.safetensors")
    model = load(result.run_dir, quiet=True).model
    assert {k: v.tolist() for k, v in weights.items()} == {k: v.tolist() for k, v in model.state_dict().items()}


def test_without_the_optional_packages_the_errors_name_the_extra(monkeypatch, tmp_path, capsys):
    from devgrad import cli
    from devgrad import onnx as dg_onnx
    from devgrad.experiment import run
    from tests.support.trained_runs import spec_for

    result = run(spec_for("binary", tmp_path), out=tmp_path / "runs", quiet=True)
    for name in ("onnx", "safetensors", "safetensors.numpy"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[test,onnx\]' \(or pip install onnx onnxruntime\)"):
        dg_onnx.export(dg.nn.MLP([2, 1]), tmp_path / "m.onnx", 2)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[test,safetensors\]' \(or pip install safetensors\)"):
        dg.save({"w": dg.ones(2)}, tmp_path / "w.safetensors")
    for fmt, extra in (("onnx", "'.[test,onnx]'"), ("safetensors", "'.[test,safetensors]'")):
        assert cli.main(["export", str(result.run_dir), "--format", fmt, "--quiet"]) == 2
        assert extra in capsys.readouterr().err
    assert not (result.run_dir / "export").exists() and not (tmp_path / "m.onnx").exists()


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")  # np.matrix on purpose
def test_dg_tensor_copies_from_views_of_memmaps_matrices_and_torch_tensors(torch, tmp_path):
    """dg.tensor copies: np.asarray of a memmap, an np.matrix or a PyTorch tensor is a new view of
    the caller's memory, which must not be kept."""
    source = torch.tensor([1.0, 2.0])
    t = dg.tensor(source)
    source[0] = 99.0
    assert t.tolist() == [1.0, 2.0]
    mapped = np.memmap(tmp_path / "m.dat", dtype=np.float32, mode="w+", shape=(3,))
    x = dg.tensor(mapped)
    x += 100.0
    p = dg.nn.Parameter(mapped)
    p.data += 1.0
    assert mapped.tolist() == [0.0, 0.0, 0.0] and x.tolist() == [100.0] * 3
    matrix = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    for made in (dg.tensor(matrix), dg.from_numpy(matrix), dg.as_tensor(matrix)):
        assert type(made.data) is np.ndarray and (made * made).tolist() == [[1.0, 4.0], [9.0, 16.0]]
    shared = dg.from_numpy(matrix)
    shared.data[0, 0] = 7.0  # from_numpy shares memory, as torch.from_numpy does
    assert matrix[0, 0] == 7.0


def test_numpy_gets_no_shared_memory_of_a_tensor_that_requires_grad():
    """A write through np.asarray(w) would escape backward's version checks: refused as in PyTorch;
    np.array(w) copies, and a detached tensor shares."""
    w = dg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"requires grad.*t\.numpy\(\).*np\.asarray\(t\.detach\(\)\)"):
        np.asarray(w)
    copied = np.array(w)
    copied[0] = 10.0
    assert w.tolist() == [1.0, 2.0]
    np.asarray(w.detach())[0] = 5.0
    assert w.tolist() == [5.0, 2.0]


def test_copies_of_tensors_follow_pytorch(torch):
    """deepcopy of a non-leaf is refused (its copied graph reaches no leaf); pickle gives a leaf
    that requires grad; a leaf's deepcopy keeps its grad and device."""
    import copy
    import pickle

    w = dg.tensor([1.0, 2.0], requires_grad=True)
    y = w * 2.0
    with pytest.raises(RuntimeError, match="only leaves can be deep-copied"):
        copy.deepcopy(y)
    with pytest.raises(RuntimeError):
        copy.deepcopy(torch.ones(2, requires_grad=True) * 2.0)
    back = pickle.loads(pickle.dumps(y))
    expected = pickle.loads(pickle.dumps(torch.ones(2, requires_grad=True) * 2.0))
    assert (back.requires_grad, back.grad_fn is None) == (expected.requires_grad, expected.grad_fn is None)
    assert back.tolist() == [2.0, 4.0]
    w.grad = dg.tensor([3.0, 4.0])
    twin = copy.deepcopy(w)
    assert twin.grad.tolist() == [3.0, 4.0] and twin.device is w.device and twin.requires_grad
    twin.data[0] = 0.0
    assert w.tolist() == [1.0, 2.0]
