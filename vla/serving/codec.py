"""Wire format: a msgpack envelope with numpy arrays as dtype/shape/raw bytes. Never pickle.

Envelope: {"v": PROTOCOL_VERSION, "kind": str, "id": int, "payload": map}, and on a request
optionally "deadline_ms": how long the request may wait in the server before its work starts;
past that the server answers with error "expired" instead of computing it. The deadline is
relative (counted from the server's receipt) because the robot and the GPU server may be two
machines whose clocks are not synchronized; the transit time it leaves out is well under a
millisecond on loopback or a LAN. Replies have kind "reply" with a payload, or kind "error"
with {"code", "message"}. Arrays travel as
{"__ndarray__": true, "dtype": "<f4", "shape": [..], "data": bytes}; only plain numeric
dtypes are accepted, so nothing on the wire can make the receiver run code.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
REQUEST_KINDS = ("metadata", "infer", "reset", "health")
ALLOWED_DTYPES = {"|u1", "|i1", "<u2", "<i2", "<i4", "<i8", "<f2", "<f4", "<f8", "|b1"}


class ProtocolError(ValueError):
    """A message that does not follow the protocol; `code` names the kind of fault."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _encode_value(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj).reshape(obj.shape)  # ascontiguousarray makes a 0-d array 1-d
        dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dtype.str not in ALLOWED_DTYPES:
            raise ProtocolError("bad_dtype", f"arrays of dtype {obj.dtype} cannot be sent; use a numeric dtype")
        return {"__ndarray__": True, "dtype": dtype.str, "shape": list(arr.shape), "data": arr.astype(dtype).tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _decode_value(obj: dict) -> Any:
    if obj.get("__ndarray__") is not True:
        return obj
    dtype, shape, data = obj.get("dtype"), obj.get("shape"), obj.get("data")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:  # (a list is unhashable: test the type first)
        raise ProtocolError("bad_dtype", f"array dtype {dtype!r} is not allowed; allowed: {sorted(ALLOWED_DTYPES)}")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):  # bools are not ints here
        raise ProtocolError("bad_array", f"array shape {shape!r} is not a list of non-negative integers")
    if not isinstance(data, bytes):
        raise ProtocolError("bad_array", "array data must be bytes")
    expected = math.prod(shape) * np.dtype(dtype).itemsize  # Python integers: a huge shape cannot wrap to 0
    if len(data) != expected:
        raise ProtocolError("bad_array",
                            f"array of shape {shape} and dtype {dtype} needs {expected} bytes, got {len(data)}")
    try:  # an empty array can still name a shape numpy cannot hold (a 2**63 dimension, 65 dimensions)
        flat = np.frombuffer(data, dtype=dtype).reshape(shape)
    except ValueError as exc:
        raise ProtocolError("bad_array", f"array shape {shape} cannot be built: {exc}") from None
    return flat.copy()  # writable, owned by the receiver


def pack(kind: str, request_id: int, payload: dict | None = None, deadline_ms: float | None = None) -> bytes:
    envelope = {"v": PROTOCOL_VERSION, "kind": kind, "id": request_id, "payload": payload or {}}
    if deadline_ms is not None:
        envelope["deadline_ms"] = float(deadline_ms)
    return msgpack.packb(envelope, default=_encode_value, use_bin_type=True)


def error(request_id: Any, code: str, message: str) -> bytes:
    rid = request_id if isinstance(request_id, int) else -1
    return pack("error", rid, {"code": code, "message": message})


def unpack(message: bytes, max_bytes: int) -> dict[str, Any]:
    """Decode and validate an envelope; raises ProtocolError with a code on any fault."""
    if len(message) > max_bytes:
        raise ProtocolError("too_large", f"message of {len(message)} bytes exceeds the limit of {max_bytes}")
    try:
        envelope = msgpack.unpackb(message, object_hook=_decode_value, raw=False, strict_map_key=True)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises many types on garbage
        raise ProtocolError("malformed", f"not a msgpack envelope: {type(exc).__name__}") from None
    if not isinstance(envelope, dict):
        raise ProtocolError("malformed", "the envelope must be a map")
    if envelope.get("v") != PROTOCOL_VERSION:
        raise ProtocolError("version", f"protocol version {envelope.get('v')!r}; this peer speaks {PROTOCOL_VERSION}")
    if not isinstance(envelope.get("id"), int):
        raise ProtocolError("malformed", "the envelope needs an integer 'id'")
    if not isinstance(envelope.get("kind"), str):
        raise ProtocolError("malformed", "the envelope needs a string 'kind'")
    if not isinstance(envelope.get("payload", {}), dict):
        raise ProtocolError("malformed", "'payload' must be a map")
    deadline = envelope.get("deadline_ms")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not deadline > 0):
        raise ProtocolError("malformed", f"'deadline_ms' must be a positive number of milliseconds, got {deadline!r}")
    return envelope
