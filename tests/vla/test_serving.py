import subprocess
import sys
import threading

import msgpack
import numpy as np
import pytest
import zmq

from tests.vla.test_model import mini_model
from vla.policy import VLAPolicy
from vla.serving.client import PolicyClient, RemotePolicy, ServerError
from vla.serving.codec import PROTOCOL_VERSION, pack
from vla.serving.server import PolicyServer, is_loopback


@pytest.fixture(scope="module")
def policy():
    return VLAPolicy(mini_model(), name="mini")


def _obs(size=64):
    return {"observation.images.top": np.full((size, size, 3), 100, np.uint8),
            "observation.images.wrist": np.full((size, size, 3), 50, np.uint8),
            "observation.state": np.zeros(6, np.float32), "task": "pick up the red cube"}


@pytest.fixture
def server(policy, request):
    keys = getattr(request, "param", None)
    srv = PolicyServer(policy, "tcp://127.0.0.1:0", curve_keys=keys)
    stop = threading.Event()
    thread = threading.Thread(target=srv.serve, kwargs={"stop": stop.is_set, "poll_ms": 20}, daemon=True)
    thread.start()
    yield srv
    stop.set()
    thread.join(timeout=5)
    srv.close()


def test_metadata_health_reset_and_infer_match_in_process(server, policy):
    client = PolicyClient(server.address)
    meta = client.metadata()
    assert meta["cameras"] == ["top", "wrist"] and meta["action_dim"] == 6 and meta["name"] == "mini"
    assert meta["protocol_version"] == PROTOCOL_VERSION
    assert client.health()["status"] == "ok"
    client.reset()
    actions, timing = client.infer(_obs())
    assert np.array_equal(actions, policy.predict_chunk(_obs()))
    assert set(timing) == {"queue_ms", "preprocess_ms", "inference_ms"} and timing["inference_ms"] > 0
    remote = RemotePolicy(client)
    assert remote.predict_chunk(_obs()).shape == (policy.n_action_steps, 6)
    client.close()


def test_bad_observation_gets_an_error_reply_and_serving_goes_on(server):
    client = PolicyClient(server.address)
    with pytest.raises(ServerError, match="bad_request: ValueError: observation has cameras"):
        client.infer({k: v for k, v in _obs().items() if "wrist" not in k})
    assert client.infer(_obs())[0].shape[1] == 6


def test_fuzz_1000_malformed_frames_then_a_valid_request(server):
    client = PolicyClient(server.address, timeout_s=5)
    rng = np.random.default_rng(0)
    valid = pack("infer", 7, {"observation": _obs()})
    codes = set()
    for i in range(1000):
        kind = i % 8
        if kind == 0:
            msg = rng.bytes(int(rng.integers(0, 200)))
        elif kind == 1:
            msg = valid[: int(rng.integers(1, len(valid)))]
        elif kind == 2:
            msg = msgpack.packb({"v": PROTOCOL_VERSION + 1, "kind": "infer", "id": 1, "payload": {}})
        elif kind == 3:
            msg = msgpack.packb({"v": PROTOCOL_VERSION, "kind": "explode", "id": 1, "payload": {}})
        elif kind == 4:  # an object array in disguise
            msg = msgpack.packb({"v": PROTOCOL_VERSION, "kind": "infer", "id": 1, "payload": {"observation": {
                "x": {"__ndarray__": True, "dtype": "|O", "shape": [1], "data": b"\x00" * 8}}}})
        elif kind == 5:  # a shape that does not match the bytes
            msg = msgpack.packb({"v": PROTOCOL_VERSION, "kind": "infer", "id": 1, "payload": {"observation": {
                "x": {"__ndarray__": True, "dtype": "<f4", "shape": [10**6, 10**6], "data": b"abcd"}}}})
        elif kind == 6:
            msg = msgpack.packb([1, 2, 3])
        else:  # valid envelope, nonsense observation
            msg = pack("infer", i, {"observation": {"observation.state": np.zeros(3, np.float32)}})
        reply = client.send_raw(msg)
        assert reply["kind"] == "error", i
        codes.add(reply["payload"]["code"])
    assert codes >= {"malformed", "version", "unknown_kind", "bad_dtype", "bad_array", "bad_request"}
    assert client.infer(_obs())[0].shape[1] == 6
    assert server.stats["errors"] >= 1000


def test_oversized_message_is_refused_with_an_error(server):
    client = PolicyClient(server.address, timeout_s=5)
    big = {**_obs(), "observation.images.top": np.zeros((2600, 2600, 3), np.uint8)}  # ~20 MB
    with pytest.raises(ServerError, match="too_large"):
        client.infer(big)
    assert client.health()["status"] == "ok"


def test_client_times_out_and_reconnects():
    ctx = zmq.Context.instance()
    client = PolicyClient("tcp://127.0.0.1:5", timeout_s=0.2, retries=1, context=ctx)  # nobody listens
    with pytest.raises(TimeoutError, match=r"no answer .* \(2 tries\)"):
        client.health()
    client.close()


def test_non_loopback_bind_needs_curve_keys(policy):
    assert is_loopback("tcp://127.0.0.1:1") and is_loopback("ipc:///tmp/x") and is_loopback("tcp://[::1]:5")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://*:5555")
    with pytest.raises(ValueError, match="refusing to bind tcp://0.0.0.0:5555 without encryption.*vla keys"):
        PolicyServer(policy, "tcp://0.0.0.0:5555")


def test_curve_encrypted_server(policy, tmp_path):
    from vla.cli import main

    assert main(["keys", "--out", str(tmp_path / "keys")]) == 0
    srv = PolicyServer(policy, "tcp://127.0.0.1:0", curve_keys=tmp_path / "keys")
    stop = threading.Event()
    thread = threading.Thread(target=srv.serve, kwargs={"stop": stop.is_set, "poll_ms": 20}, daemon=True)
    thread.start()
    try:
        ok = PolicyClient(srv.address, server_key=tmp_path / "keys" / "server.key")
        assert ok.health()["status"] == "ok"
        plain = PolicyClient(srv.address, timeout_s=0.3, retries=0)  # no key: the handshake never completes
        with pytest.raises(TimeoutError):
            plain.health()
    finally:
        stop.set()
        thread.join(timeout=5)
        srv.close()


def test_vla_client_cli_exit_status(server):
    ok = subprocess.run([sys.executable, "-m", "vla.cli", "client", "health", "--connect", server.address],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and '"status": "ok"' in ok.stdout
    down = subprocess.run([sys.executable, "-m", "vla.cli", "client", "metadata", "--connect",
                           "tcp://127.0.0.1:6", "--timeout", "0.3"], capture_output=True, text=True)
    assert down.returncode == 1 and "no answer" in down.stderr
