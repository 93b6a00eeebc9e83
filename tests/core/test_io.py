"""dg.save / dg.load: .npz without pickle, atomic, across devices."""

from __future__ import annotations

import io

import numpy as np
import pytest

import devgrad as dg
from devgrad.io import UnsafeFileError, png_rgb


def test_round_trip_nested_state(tmp_path, device):
    model = dg.nn.MLP([3, 4, 2], generator=0, device=device)
    state = {"model": model.state_dict(), "epoch": 7, "name": "run", "history": [0.5, 0.25],
             "rng": {"seed": 3, "pair": (1, 2)}, "none": None, 4: "int key"}
    path = dg.save(state, tmp_path / "ckpt.npz")
    loaded = dg.load(path, device=device)
    assert loaded["epoch"] == 7 and loaded["name"] == "run" and loaded["history"] == [0.5, 0.25]
    assert loaded["rng"] == {"seed": 3, "pair": (1, 2)} and loaded["none"] is None and loaded[4] == "int key"
    for name, value in model.state_dict().items():
        assert loaded["model"][name].device is device
        np.testing.assert_array_equal(loaded["model"][name].numpy(), value.numpy())
    # Plain NumPy can read it too, with dotted keys.
    with np.load(path, allow_pickle=False) as raw:
        assert "model.net.0.weight" in raw.files


def test_saved_on_one_device_loads_on_cpu(tmp_path, device):
    model = dg.nn.Linear(2, 2, device=device)
    dg.save(model.state_dict(), tmp_path / "m.npz")
    cpu_model = dg.nn.Linear(2, 2)
    cpu_model.load_state_dict(dg.load(tmp_path / "m.npz", device="cpu"))
    np.testing.assert_array_equal(cpu_model.weight.numpy(), model.weight.numpy())


def test_pickled_files_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UnsafeFileError, match="pickled Python objects"):
        dg.load(path)


def test_plain_npz_loads_as_nested_dict(tmp_path):
    np.savez(tmp_path / "plain.npz", **{"a.b": np.ones(2), "c": np.zeros(1)})
    loaded = dg.load(tmp_path / "plain.npz")
    assert loaded["a"]["b"].numpy().tolist() == [1.0, 1.0] and loaded["c"].shape == (1,)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    dg.save({"x": dg.ones(3)}, tmp_path / "a.npz")
    before = (tmp_path / "a.npz").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        dg.save({"x": dg.zeros(3)}, tmp_path / "a.npz")
    assert (tmp_path / "a.npz").read_bytes() == before, "a failed save must not damage the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\.npz"):
        dg.save({}, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="without pickle"):
        dg.save({"f": object()}, tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        dg.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        dg.load(tmp_path / "junk.npz")


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_cut_short_or_damaged_npz_is_a_value_error_naming_the_file(tmp_path, damage):
    path = dg.save({"w": dg.randn(64, 64, generator=0)}, tmp_path / "w.npz")
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # bytes inside the array's data: the archive's checksum no longer matches
        data[200:216] = bytes(16)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"w\.npz is truncated or corrupted"):
        dg.load(path)


def test_png_rgb_decodes_to_the_same_pixels_with_its_dpi():
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    for pixels in (rgba, np.ascontiguousarray(rgba[:, :, :3]), rgba[1:6, 2:4]):  # alpha dropped; a cropped view
        with image.open(io.BytesIO(png_rgb(pixels, dpi=110))) as decoded:
            assert decoded.mode == "RGB" and decoded.info["dpi"] == pytest.approx((110, 110), abs=0.01)
            np.testing.assert_array_equal(np.asarray(decoded), pixels[:, :, :3])
    with image.open(io.BytesIO(png_rgb(rgba))) as decoded:
        assert "dpi" not in decoded.info


def test_png_rgb_refuses_what_is_no_rgb_picture():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32),
                np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError, match="png_rgb|at least one pixel"):
            png_rgb(bad)


def test_entries_that_spell_the_same_dotted_key_all_come_back(tmp_path):
    one, two = dg.tensor([1.0]), dg.tensor([2.0])
    for state in ({"a.b": one, "a": {"b": two}}, {3: one, "3": two}, {"x": [one], "x.0": two}):
        dg.save(state, tmp_path / "s.npz")
        back = dg.load(tmp_path / "s.npz")
        assert repr(back) == repr(state)


def test_a_plain_npz_whose_keys_cannot_nest_is_an_error_not_a_lost_array(tmp_path):
    for order in (("a.b", "a"), ("a", "a.b")):
        np.savez(tmp_path / "plain.npz", **{key: np.full(1, float(i)) for i, key in enumerate(order)})
        with pytest.raises(ValueError, match=r"an array 'a' and an array 'a\.b' under it.*numpy\.load"):
            dg.load(tmp_path / "plain.npz")


def test_safetensors_keeps_a_zero_dimensional_tensor_zero_dimensional(tmp_path):
    pytest.importorskip("safetensors")
    bn = dg.nn.BatchNorm1d(3)
    dg.save(bn.state_dict(), tmp_path / "bn.safetensors")
    back = dg.load(tmp_path / "bn.safetensors")
    assert {k: v.shape for k, v in back.items()} == {k: v.shape for k, v in bn.state_dict().items()}
    bn.load_state_dict(back)
