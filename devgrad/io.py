"""Files: atomic writes (a crash never leaves a half-written file), pickle-free save/load
(``.npz``, or ``.safetensors`` through the optional safetensors package), and PNG bytes of an
opaque image."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from devgrad.backend import default_device
from devgrad.backend import device as resolve_device
from devgrad.core import Tensor
from devgrad.version import extra_hint


def atomic_write(path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        exc.filename = str(path)  # the temp file's name would mean nothing to the user
        raise
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: a normal file honours the user's umask
        _write_durably(fd, payload)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None and exc.strerror is not None:
            # A full disk says "No space left on device": say where. (An OSError made from one
            # message has no strerror; a file name would replace that message in its str().)
            exc.filename = str(path)
        raise
    _fsync_dir(path.parent)
    return path


def _write_durably(fd: int, payload: bytes) -> None:
    """Write ``payload`` to the open file ``fd``, on disk (fsync) before it returns; closes ``fd``."""
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def _umask() -> int:
    """The process's current umask. Linux shows it in /proc without changing it; elsewhere it is
    read the only portable way, by setting it and putting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


PNG_LEVEL = 3  # zlib level of png_rgb (docs/performance.md: time against size)


def png_rgb(pixels: np.ndarray, dpi: float | None = None, level: int = PNG_LEVEL) -> bytes:
    """An opaque picture's pixels, (height, width, 3 or 4) uint8 (a 4th channel, alpha, is
    dropped), as RGB PNG bytes, with ``dpi`` recorded when given. Every row is stored unfiltered
    (PNG filter 0): the flat colours and text of a plot compress as well that way as with
    per-row adaptive filters, which take longer than zlib itself."""
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint8:
        raise ValueError(f"png_rgb takes (height, width, 3 or 4) uint8 pixels, not {pixels.shape} {pixels.dtype}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"a PNG has at least one pixel, not {height}x{width}")
    rows = np.empty((height, 1 + 3 * width), np.uint8)
    rows[:, 0] = 0  # each row's filter type: none
    rgb = rows[:, 1:].reshape(height, width, 3)
    for channel in range(3):  # a channel at a time: NumPy copies 3-byte pieces 10 times slower
        rgb[:, :, channel] = pixels[:, :, channel]
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]  # 8 bits, RGB
    if dpi is not None:
        per_metre = int(dpi / 0.0254 + 0.5)
        chunks.append((b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    chunks += [(b"IDAT", zlib.compress(rows.data, level)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(struct.pack(">I", len(data)) + kind + data
                                            + struct.pack(">I", zlib.crc32(kind + data)) for kind, data in chunks)


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- dg.save / dg.load ---------------------------------------------------------------------

_LAYOUT_KEY = "__devgrad_layout__"


class UnsafeFileError(ValueError):
    """A file that would need pickle (arbitrary code) to load: refused."""


def _encode(value, arrays: dict, path: str):
    """JSON skeleton of ``value``; arrays go into ``arrays`` under dotted keys."""
    if isinstance(value, Tensor):
        return _stored(value.device.to_host(value.data), arrays, path)
    if hasattr(value, "__cuda_array_interface__") or isinstance(value, np.ndarray):
        host = value if isinstance(value, np.ndarray) else value.get()
        if host.dtype.kind == "O":
            raise TypeError(f"save: '{path}' is an object array, which would need pickle")
        return _stored(host, arrays, path)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str | int) or isinstance(k, bool):
                raise TypeError(f"save: keys must be str or int, '{path}' has a {type(k).__name__} key")
            items.append([k, _encode(v, arrays, f"{path}.{k}" if path else str(k))])
        return {"__dict__": items}
    if isinstance(value, list | tuple):
        encoded = [_encode(v, arrays, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
        return {"__tuple__": encoded} if isinstance(value, tuple) else encoded
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"save: cannot store '{path}' of type {type(value).__name__} without pickle; "
                    "use tensors, arrays, numbers, strings, lists and dicts")


def _stored(array, arrays: dict, path: str) -> dict:
    """``array`` into ``arrays`` under its dotted key, made unique where two entries spell the same
    one (``{"a.b": x, "a": {"b": y}}``, ``{3: x, "3": y}``): the layout names each array's own key."""
    key, n = path, 1
    while key in arrays:
        n += 1
        key = f"{path}~{n}"
    arrays[key] = array
    return {"__array__": key}


def _decode(node, arrays, wrap):
    if isinstance(node, dict):
        if "__array__" in node:
            return wrap(arrays[node["__array__"]])
        if "__dict__" in node:
            return {k: _decode(v, arrays, wrap) for k, v in node["__dict__"]}
        if "__tuple__" in node:
            return tuple(_decode(v, arrays, wrap) for v in node["__tuple__"])
    if isinstance(node, list):
        return [_decode(v, arrays, wrap) for v in node]
    return node


def save(state, path) -> Path:
    """Save tensors, arrays and plain values (nested dicts/lists) to a ``.npz`` file, atomically.

    Arrays are stored under dotted keys (``model.net.0.weight``), readable by plain
    ``numpy.load``; the nesting is kept as a JSON string, so no pickle is ever involved.
    A ``.safetensors`` path writes a flat name -> tensor mapping (a ``state_dict``) in that
    format instead (the ``safetensors`` extra).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return _save_safetensors(state, path)
    if path.suffix != ".npz":
        raise ValueError(f"save: use a .npz or .safetensors file name, got {path}")
    arrays: dict = {}
    layout = _encode(state, arrays, "")
    if _LAYOUT_KEY in arrays:
        raise ValueError(f"save: the key {_LAYOUT_KEY} is reserved")
    buffer = io.BytesIO()
    arrays[_LAYOUT_KEY] = np.array(json.dumps(layout))
    np.savez(buffer, **arrays)
    return atomic_write(path, buffer.getvalue())


def load(path, device=None):
    """Load what ``save`` wrote; arrays come back as Tensors on ``device`` (default device if None).

    Files holding pickled objects are refused (they can run arbitrary code). A plain
    ``.npz`` without devgrad's layout loads as a nested dict split on the dots of its keys; a
    ``.safetensors`` file as a flat dict of name -> Tensor (the ``safetensors`` extra). A file
    that is cut short or damaged is a ValueError naming it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no such file: {path}")
    dev = resolve_device(device) if device is not None else default_device()

    def wrap(array):
        return Tensor._make(dev.put(array), dev)

    if path.suffix == ".safetensors":
        return {name: wrap(array) for name, array in _load_safetensors(path).items()}
    with open(path, "rb") as fh:
        if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip's first entry, or an empty zip
            raise ValueError(f"load: {path} is not a readable .npz file (not a zip archive)")
    try:
        # np.load given a path leaks its file handle when the archive is damaged: hand it ours
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise UnsafeFileError(f"load: refusing {path}: it contains pickled Python objects, which can run "
                                  "arbitrary code when loaded; devgrad files never do") from None
        raise ValueError(f"load: {path} is not a readable .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # A file cut short (a full disk, a copy interrupted) or damaged: the archive or a member fails to read.
        raise ValueError(f"load: {path} is truncated or corrupted, not a readable .npz file "
                         f"({type(exc).__name__}: {exc})") from None

    if _LAYOUT_KEY in arrays:
        layout = json.loads(str(arrays.pop(_LAYOUT_KEY)))
        return _decode(layout, arrays, wrap)
    return _nested(arrays, wrap, path)


def _nested(arrays: dict, wrap, path: Path) -> dict:
    """A plain .npz's arrays as a dict nested on the dots of their keys; keys that cannot nest (an
    array 'a' beside 'a.b') are an error, never one array silently dropped."""
    nested: dict = {}
    for key, array in arrays.items():
        node = nested
        *parents, leaf = key.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                _cannot_nest(path, ".".join(parents[:depth + 1]), key)
        if leaf in node:
            _cannot_nest(path, key, next(k for k in arrays if k.startswith(key + ".")))
        node[leaf] = wrap(array)
    return nested


def _cannot_nest(path: Path, array_key: str, other: str):
    raise ValueError(f"load: {path} holds an array '{array_key}' and an array '{other}' under it, which cannot "
                     "both be nested on the dots of their keys; read it with numpy.load (a flat mapping)")


# -- safetensors (the optional ``safetensors`` extra) ----------------------------------------

SAFETENSORS_HINT = extra_hint("safetensors", "safetensors")


def _safetensors_numpy():
    try:
        import safetensors.numpy as st  # noqa: PLC0415 - optional dependency (the safetensors extra)
    except ImportError:
        raise ImportError(f".safetensors files need the safetensors package: {SAFETENSORS_HINT}") from None
    return st


def _save_safetensors(state, path: Path) -> Path:
    """A flat name -> tensor/array mapping as a .safetensors file, atomically (contiguous host copies)."""
    if not isinstance(state, dict) or not state:
        raise TypeError("save: a .safetensors file holds a non-empty mapping of names to tensors (a "
                        "module's state_dict()); use .npz for other state")
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise TypeError(f"save: .safetensors names must be strings, got {name!r}")
        if isinstance(value, Tensor):
            value = value.device.to_host(value.data)
        elif hasattr(value, "__cuda_array_interface__"):
            value = value.get()
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise TypeError(f"save: '{name}' is a {type(value).__name__}; a .safetensors file holds only numeric "
                            "tensors (flat, as module.state_dict() gives them); use .npz for nested state")
        arrays[name] = np.array(value, order="C", copy=None)  # C order; a 0-d array stays 0-d (not ascontiguousarray)
    return atomic_write(path, _safetensors_numpy().save(arrays))


def _load_safetensors(path: Path) -> dict:
    """The arrays of a .safetensors file, by name; a damaged file is a ValueError naming it."""
    st = _safetensors_numpy()
    payload = path.read_bytes()  # a folder or a lost permission is said as such, not as a damaged file
    try:
        return st.load(payload)
    except Exception as exc:  # the Rust reader raises its own SafetensorError (not a ValueError subclass)
        raise ValueError(f"load: {path} is truncated or corrupted, not a readable .safetensors file "
                         f"({type(exc).__name__}: {exc})") from None
