"""The serving codec on its own: numpy + msgpack, no server, no torch (fast; `make mutation` runs it).

What crosses the wire must come back bit for bit, and anything malformed must become a ProtocolError
with the right code, never another exception and never an object the receiver did not ask for.
"""

import msgpack
import numpy as np
import pytest

from vla.serving.codec import ALLOWED_DTYPES, PROTOCOL_VERSION, ProtocolError, error, pack, unpack

MAX = 1 << 20


def envelope(**fields) -> bytes:
    """A raw msgpack map, for envelopes `pack` would never write."""
    return msgpack.packb({"v": PROTOCOL_VERSION, "kind": "infer", "id": 1, "payload": {}, **fields},
                         use_bin_type=True)


def raw_array(**fields) -> dict:
    return {"__ndarray__": True, "dtype": "<f4", "shape": [2], "data": b"\x00" * 8, **fields}


def refused(message: bytes, code: str, words: str, max_bytes: int = MAX) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        unpack(message, max_bytes)
    assert info.value.code == code and str(info.value).startswith(words), info.value
    return info.value


# --- round trips ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
def test_every_allowed_dtype_round_trips_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4)) * 50).astype(dtype)
    out = unpack(pack("infer", 3, {"x": a}), MAX)["payload"]["x"]
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 4) and np.array_equal(out, a)


def test_the_wire_form_of_an_array_is_little_endian_dtype_shape_and_raw_bytes():
    a = np.arange(6, dtype=">i4").reshape(2, 3)  # big-endian: sent as little-endian, values kept
    wire = msgpack.unpackb(pack("infer", 1, {"x": a}), raw=False)["payload"]["x"]
    assert wire == {"__ndarray__": True, "dtype": "<i4", "shape": [2, 3],
                    "data": np.arange(6, dtype="<i4").tobytes()}
    out = unpack(pack("infer", 1, {"x": a}), MAX)["payload"]["x"]
    assert out.dtype == np.dtype("<i4") and np.array_equal(out, a)


def test_views_and_empty_arrays_round_trip():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    payload = {"strided": base[::2, ::3], "transposed": base.T, "empty": np.zeros((0, 3), np.uint8),
               "flag": np.array([True, False])}
    out = unpack(pack("infer", 1, payload), MAX)["payload"]
    for key, a in payload.items():
        assert out[key].shape == a.shape and out[key].dtype == a.dtype and np.array_equal(out[key], a), key


def test_a_zero_dim_array_keeps_its_shape():
    out = unpack(pack("infer", 1, {"x": np.array(2.5)}), MAX)["payload"]["x"]
    assert out.shape == () and out == 2.5


def test_a_received_array_is_writable_and_owned_by_the_receiver():
    out = unpack(pack("infer", 1, {"x": np.ones(4, np.float32)}), MAX)["payload"]["x"]
    assert out.flags.writeable and out.flags.owndata
    out[0] = 7.0  # the robot side may edit what it got


def test_numpy_scalars_travel_as_plain_numbers_and_maps_as_maps():
    out = unpack(pack("infer", 1, {"f": np.float32(1.5), "i": np.int64(-3), "nested": {"k": [1, "a"]},
                                   "tagged": {"__ndarray__": False, "dtype": "<f4"}}), MAX)["payload"]
    assert out["f"] == 1.5 and type(out["f"]) is float
    assert out["i"] == -3 and type(out["i"]) is int
    assert out["nested"] == {"k": [1, "a"]}
    assert out["tagged"] == {"__ndarray__": False, "dtype": "<f4"}  # a map, not an array


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([object(), 1], dtype=object),
                                 np.zeros(2, np.complex64), np.zeros(2, np.uint32)])
def test_arrays_of_other_dtypes_are_never_sent(bad):
    with pytest.raises(ProtocolError, match=f"dtype {bad.dtype} cannot be sent; use a numeric dtype") as info:
        pack("infer", 1, {"x": bad})
    assert info.value.code == "bad_dtype"


def test_objects_that_are_not_arrays_are_not_encoded():
    with pytest.raises(TypeError, match="cannot encode set"):
        pack("infer", 1, {"x": {1, 2}})


# --- envelopes --------------------------------------------------------------------------------------------
def test_pack_writes_the_envelope_and_unpack_returns_it():
    env = unpack(pack("infer", 42, {"a": 1}, deadline_ms=250), MAX)
    assert env == {"v": PROTOCOL_VERSION, "kind": "infer", "id": 42, "payload": {"a": 1}, "deadline_ms": 250.0}
    assert type(env["deadline_ms"]) is float
    assert unpack(pack("health", 7), MAX) == {"v": PROTOCOL_VERSION, "kind": "health", "id": 7, "payload": {}}
    no_payload = msgpack.packb({"v": PROTOCOL_VERSION, "kind": "health", "id": 1})
    assert unpack(no_payload, MAX) == {"v": PROTOCOL_VERSION, "kind": "health", "id": 1}  # payload is optional


def test_error_replies_carry_code_message_and_an_integer_id():
    env = unpack(error(9, "expired", "too late"), MAX)
    assert env == {"v": PROTOCOL_VERSION, "kind": "error", "id": 9,
                   "payload": {"code": "expired", "message": "too late"}}
    assert unpack(error("nine", "malformed", "?"), MAX)["id"] == -1
    assert unpack(error(None, "malformed", "?"), MAX)["id"] == -1


def test_the_size_limit_is_inclusive():
    msg = pack("health", 1)
    assert unpack(msg, len(msg))["kind"] == "health"
    refused(msg, "too_large", f"message of {len(msg)} bytes exceeds the limit of {len(msg) - 1}", len(msg) - 1)


@pytest.mark.parametrize("deadline", [0.5, 3, 1e9])
def test_a_positive_deadline_is_accepted(deadline):
    assert unpack(envelope(deadline_ms=deadline), MAX)["deadline_ms"] == deadline


@pytest.mark.parametrize("deadline", [0, 0.0, -1, -0.5, float("nan"), True, False, "5", [5]])
def test_a_deadline_that_is_not_a_positive_number_is_malformed(deadline):
    refused(envelope(deadline_ms=deadline), "malformed",
            f"'deadline_ms' must be a positive number of milliseconds, got {deadline!r}")


# --- malformed frames: each fault has its code ---------------------------------------------------------------
@pytest.mark.parametrize("message, code, words", [
    (b"\xc1", "malformed", "not a msgpack envelope: FormatError"),
    (b"", "malformed", "not a msgpack envelope: ValueError"),
    (pack("infer", 1, {"x": np.zeros(3)})[:-5], "malformed", "not a msgpack envelope: ValueError"),
    (msgpack.packb([1, 2, 3]), "malformed", "the envelope must be a map"),
    (msgpack.packb({1: 2}), "malformed", "not a msgpack envelope: ValueError"),  # integer keys: strict_map_key
    (envelope(v=PROTOCOL_VERSION + 1), "version", f"protocol version {PROTOCOL_VERSION + 1}; this peer speaks "
     f"{PROTOCOL_VERSION}"),
    (msgpack.packb({"kind": "infer", "id": 1}), "version", "protocol version None"),
    (envelope(id="1"), "malformed", "the envelope needs an integer 'id'"),
    (envelope(id=None), "malformed", "the envelope needs an integer 'id'"),
    (envelope(kind=3), "malformed", "the envelope needs a string 'kind'"),
    (envelope(kind=b"infer"), "malformed", "the envelope needs a string 'kind'"),
    (envelope(payload=[1]), "malformed", "'payload' must be a map"),
    (envelope(payload=None), "malformed", "'payload' must be a map"),
])
def test_a_malformed_envelope_is_refused_with_its_code(message, code, words):
    refused(message, code, words)


@pytest.mark.parametrize("fields, code, words", [
    ({"dtype": "|O"}, "bad_dtype", "array dtype '|O' is not allowed; allowed: ['<f2', '<f4'"),
    ({"dtype": ">f4"}, "bad_dtype", "array dtype '>f4' is not allowed"),
    ({"dtype": None}, "bad_dtype", "array dtype None is not allowed"),
    ({"shape": [-1]}, "bad_array", "array shape [-1] is not a list of non-negative integers"),
    ({"shape": [2.0]}, "bad_array", "array shape [2.0] is not a list of non-negative integers"),
    ({"shape": 2}, "bad_array", "array shape 2 is not a list of non-negative integers"),
    ({"shape": None}, "bad_array", "array shape None is not a list of non-negative integers"),
    ({"data": "\x00" * 8}, "bad_array", "array data must be bytes"),
    ({"data": b"abcd"}, "bad_array", "array of shape [2] and dtype <f4 needs 8 bytes, got 4"),
    ({"data": b"\x00" * 12}, "bad_array", "array of shape [2] and dtype <f4 needs 8 bytes, got 12"),
    ({"shape": [10**6, 10**6]}, "bad_array",
     "array of shape [1000000, 1000000] and dtype <f4 needs 4000000000000 bytes, got 8"),
    ({"shape": [], "data": b"\x00" * 8}, "bad_array", "array of shape [] and dtype <f4 needs 4 bytes, got 8"),
    # No bytes needed, yet no array numpy can build (found by hypothesis).
    ({"shape": [0, 2**63], "data": b""}, "bad_array", "array shape [0, 9223372036854775808] cannot be built: "),
    ({"shape": [0] * 65, "data": b""}, "bad_array", f"array shape {[0] * 65} cannot be built: maximum supported"),
])
def test_a_malformed_array_is_refused_with_its_code(fields, code, words):
    refused(envelope(payload={"x": raw_array(**fields)}), code, words)


def test_an_empty_array_needs_no_bytes():
    out = unpack(envelope(payload={"x": raw_array(shape=[0, 5], data=b"")}), MAX)["payload"]["x"]
    assert out.shape == (0, 5) and out.dtype == np.float32
