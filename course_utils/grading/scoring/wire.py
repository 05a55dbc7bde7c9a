"""The narrow channel between the trusted scorer and the student's answer process.

Messages are length-prefixed frames on a pipe. What the *answer process* sends is decoded by
:func:`decode` into plain data only: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``,
``bytes``, lists, tuples, sets, frozensets, dicts, tensors (dtype, shape, bytes, ``requires_grad``; CPU or meta),
NumPy arrays and scalars of numeric or bool dtype, ``torch.dtype``/``torch.device``/``torch.Size``,
and :class:`Ref` markers (a reference to an object the other side holds). Nothing is unpickled and
nothing runs: a student who writes to the pipe can only send data, which the checks then judge.

What the *trusted side* sends may also carry :class:`Pickled` values (modules, generators), which
only the answer process unpickles (``allow_pickle=True``): that direction needs no protection.

Frame: 8-byte big-endian length, then a JSON header of the same form as the value with every tensor
or array payload replaced by ``{"$blob": i}``, then the blobs. Sizes are capped (:data:`MAX_FRAME`).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

MAX_FRAME = 1 << 30  # 1 GiB: a frame larger than this is refused, not read
_LENGTH = struct.Struct(">Q")

_TORCH_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
    )
}
_NUMPY_KINDS = set("biufc")  # bool, signed, unsigned, float, complex: never object or void


class WireError(Exception):
    """A frame that is not a well-formed message (truncated, too large, unknown form)."""


@dataclass(frozen=True)
class Ref:
    """An object held by the other side, named by ``kind`` ("arg", "handle", "callback") and ``key``."""

    kind: str
    key: Any


@dataclass(frozen=True)
class Pickled:
    """A value the trusted side ships by pickle (only the answer process unpickles it)."""

    data: bytes


def encode(value: Any) -> bytes:
    """One frame holding ``value`` (see the module docstring for what may be in it)."""
    blobs: list[bytes] = []
    header = json.dumps(_to_json(value, blobs), allow_nan=False).encode()
    parts = [_LENGTH.pack(len(header)), header]
    for blob in blobs:
        parts += [_LENGTH.pack(len(blob)), blob]
    body = b"".join(parts)
    return _LENGTH.pack(len(body)) + body


def decode(body: bytes, *, allow_pickle: bool = False) -> Any:
    """The value of one frame's body (without its length prefix)."""
    view = memoryview(body)
    (size,) = _LENGTH.unpack_from(view, 0)
    offset = _LENGTH.size + size
    try:
        header = json.loads(bytes(view[_LENGTH.size : offset]))
    except ValueError as error:
        raise WireError(f"the header is not JSON: {error}") from None
    blobs = []
    while offset < len(view):
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + size > len(view):
            raise WireError("a blob runs past the end of the frame")
        blobs.append(bytes(view[offset : offset + size]))
        offset += size
    return _from_json(header, blobs, allow_pickle)


def write_frame(fd: int, value: Any) -> None:
    """Encode ``value`` and write the whole frame to ``fd``."""
    data = memoryview(encode(value))
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_frame(fd: int, *, allow_pickle: bool = False) -> Any:
    """Read one frame from ``fd`` and decode it; ``EOFError`` when the other side has closed."""
    (size,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    if size > MAX_FRAME:
        raise WireError(f"a frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    return decode(_read_exactly(fd, size), allow_pickle=allow_pickle)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------------


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"$float": repr(value)}  # nan, inf, -inf: JSON has no literal for them


def _to_json(value: Any, blobs: list[bytes]) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) < 2**53 else {"$int": str(value)}
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, complex):
        return {"$complex": [_float(value.real), _float(value.imag)]}
    if isinstance(value, bytes):
        blobs.append(value)
        return {"$bytes": len(blobs) - 1}
    if isinstance(value, Ref):
        return {"$ref": [value.kind, _to_json(value.key, blobs)]}
    if isinstance(value, Pickled):
        blobs.append(value.data)
        return {"$pickle": len(blobs) - 1}
    if isinstance(value, torch.Tensor):
        return _tensor_to_json(value, blobs)
    if isinstance(value, np.ndarray):
        return _array_to_json(value, blobs, scalar=False)
    if isinstance(value, np.generic):
        return _array_to_json(np.asarray(value), blobs, scalar=True)
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"$device": str(value)}
    if isinstance(value, torch.Size):
        return {"$size": list(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_to_json(v, blobs) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, blobs) for v in value]
    if isinstance(value, (set, frozenset)):
        kind = "$frozenset" if isinstance(value, frozenset) else "$set"
        return {kind: [_to_json(v, blobs) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[_to_json(k, blobs), _to_json(v, blobs)] for k, v in value.items()]}
    raise TypeError(f"cannot send a {type(value).__name__} over the scoring channel")


def _tensor_to_json(tensor: torch.Tensor, blobs: list[bytes]) -> Any:
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in _TORCH_DTYPES:
        raise TypeError(f"cannot send a tensor of dtype {tensor.dtype}")
    if tensor.is_sparse or tensor.layout != torch.strided:
        tensor = tensor.to_dense()
    head = {
        "dtype": dtype,
        "shape": list(tensor.shape),
        "requires_grad": bool(tensor.requires_grad),
        "device": tensor.device.type if tensor.device.type == "meta" else "cpu",
    }
    if tensor.device.type != "meta":
        data = tensor.detach().to("cpu")
        order = _dense_order(data)
        if order is not None and order != list(range(data.ndim)):
            head["order"] = order  # e.g. channels-last: sent in memory order, rebuilt the same way
            data = data.permute(order)
        elif order is None:
            head["gapped"] = True  # a slice with gaps: rebuilt non-contiguous too
        data = data.contiguous()
        head["shape"] = list(data.shape)
        buffer = io.BytesIO()
        # Raw bytes through NumPy where it can hold the dtype; bfloat16 as its int16 bit pattern.
        raw = data.view(torch.int16) if data.dtype == torch.bfloat16 else data
        buffer.write(raw.numpy().tobytes())
        blobs.append(buffer.getvalue())
        head["blob"] = len(blobs) - 1
    return {"$tensor": head}


def _dense_order(tensor: torch.Tensor) -> list[int] | None:
    """The dimension order, outermost first, in which a tensor's memory is dense; None when its
    elements have gaps or overlap (a strided slice, an expanded tensor)."""
    if tensor.is_contiguous() or tensor.numel() <= 1:
        return list(range(tensor.ndim))
    order = sorted(range(tensor.ndim), key=lambda d: (-tensor.stride(d), d))
    expected = 1
    for dim in reversed(order):
        if tensor.shape[dim] != 1 and tensor.stride(dim) != expected:
            return None
        expected *= tensor.shape[dim]
    return order


def _array_to_json(array: np.ndarray, blobs: list[bytes], *, scalar: bool) -> Any:
    if array.dtype.kind not in _NUMPY_KINDS:
        raise TypeError(f"cannot send a NumPy array of dtype {array.dtype}")
    blobs.append(np.ascontiguousarray(array).tobytes())
    head = {"dtype": array.dtype.str, "shape": list(array.shape), "blob": len(blobs) - 1}
    return {"$scalar" if scalar else "$array": head}


def _from_json(value: Any, blobs: list[bytes], allow_pickle: bool) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_from_json(v, blobs, allow_pickle) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        raise WireError(f"unknown form {type(value).__name__} in a message")
    ((tag, body),) = value.items()
    try:
        return _DECODERS[tag](body, blobs, allow_pickle)
    except KeyError:
        raise WireError(f"unknown tag {tag!r} in a message") from None
    except (IndexError, TypeError, ValueError) as error:
        raise WireError(f"malformed {tag}: {error}") from None


def _blob(blobs: list[bytes], index: Any) -> bytes:
    if not isinstance(index, int) or not 0 <= index < len(blobs):
        raise WireError(f"no blob {index!r} in the frame")
    return blobs[index]


def _decode_tensor(head: dict, blobs: list[bytes], _: bool) -> torch.Tensor:
    dtype = _TORCH_DTYPES[head["dtype"]]
    shape = [int(s) for s in head["shape"]]
    if any(s < 0 for s in shape):
        raise WireError(f"negative size in shape {shape}")
    if head.get("device") == "meta":
        tensor = torch.empty(shape, dtype=dtype, device="meta")
    else:
        raw_dtype = torch.int16 if dtype == torch.bfloat16 else dtype
        numpy_dtype = torch.empty((), dtype=raw_dtype).numpy().dtype
        data = _blob(blobs, head["blob"])
        count = math.prod(shape)
        if len(data) != count * numpy_dtype.itemsize:
            raise WireError(f"{len(data)} bytes do not hold a {dtype} tensor of shape {shape}")
        array = np.frombuffer(data, dtype=numpy_dtype).reshape(shape).copy()
        tensor = torch.from_numpy(array)
        if dtype == torch.bfloat16:
            tensor = tensor.view(torch.bfloat16)
    order = head.get("order")
    if isinstance(order, list) and sorted(order) == list(range(tensor.ndim)):
        tensor = tensor.permute([order.index(d) for d in range(tensor.ndim)])
    elif head.get("gapped") and tensor.ndim and tensor.device.type != "meta":
        spaced = tensor.new_zeros((*tensor.shape[:-1], 2 * tensor.shape[-1]))
        spaced[..., ::2] = tensor
        tensor = spaced[..., ::2]
    if head.get("requires_grad") and (dtype.is_floating_point or dtype.is_complex):
        tensor.requires_grad_(True)
    return tensor


def _decode_array(head: dict, blobs: list[bytes], _: bool, *, scalar: bool = False) -> Any:
    dtype = np.dtype(head["dtype"])
    if dtype.kind not in _NUMPY_KINDS:
        raise WireError(f"refused NumPy dtype {dtype}")
    shape = tuple(int(s) for s in head["shape"])
    data = _blob(blobs, head["blob"])
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise WireError(f"{len(data)} bytes do not hold an array {dtype} of shape {shape}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    return array[()] if scalar else array


def _decode_float(text: str, *_: Any) -> float:
    if text not in ("nan", "inf", "-inf"):
        raise WireError(f"not a special float: {text!r}")
    return float(text)


def _decode_pickle(index: int, blobs: list[bytes], allow_pickle: bool) -> Any:
    if not allow_pickle:
        raise WireError("a pickled value from the answer process is refused")
    import pickle

    return pickle.loads(_blob(blobs, index))


_DECODERS = {
    "$float": _decode_float,
    "$int": lambda body, *_: int(str(body)),
    "$complex": lambda body, b, p: complex(_from_json(body[0], b, p), _from_json(body[1], b, p)),
    "$bytes": lambda body, blobs, _: _blob(blobs, body),
    "$ref": lambda body, b, p: Ref(str(body[0]), _from_json(body[1], b, p)),
    "$pickle": _decode_pickle,
    "$tensor": _decode_tensor,
    "$array": _decode_array,
    "$scalar": lambda body, b, p: _decode_array(body, b, p, scalar=True),
    "$dtype": lambda body, *_: _TORCH_DTYPES[body],
    "$device": lambda body, *_: torch.device(str(body)),
    "$size": lambda body, *_: torch.Size(int(s) for s in body),
    "$tuple": lambda body, b, p: tuple(_from_json(v, b, p) for v in body),
    "$set": lambda body, b, p: {_hashable(_from_json(v, b, p)) for v in body},
    "$frozenset": lambda body, b, p: frozenset(_hashable(_from_json(v, b, p)) for v in body),
    "$dict": lambda body, b, p: {
        _hashable(_from_json(k, b, p)): _from_json(v, b, p) for k, v in body
    },
}


def _hashable(key: Any) -> Any:
    hash(key)  # a list or dict as a key raises TypeError: a malformed message
    return key
