import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import msgpack
import numpy as np
import pytest
import zmq

from tests.helpers import ServerThread, free_address, median_health_latency
from tests.vla.helpers import camera_obs, mini_model
from vla.policy import VLAPolicy
from vla.serving.client import PolicyClient, RemotePolicy, ServerError
from vla.serving.codec import PROTOCOL_VERSION, pack, unpack
from vla.serving.server import PolicyServer, is_loopback


@pytest.fixture(scope="module")
def policy():
    return VLAPolicy(mini_model(), name="mini")


def silent_address() -> str:
    """A loopback address nobody listens on (a fixed port such as 5 may have a listener on some machine)."""
    return free_address()


def _obs(size=64):
    return {"observation.images.top": np.full((size, size, 3), 100, np.uint8),
            "observation.images.wrist": np.full((size, size, 3), 50, np.uint8),
            "observation.state": np.zeros(6, np.float32), "task": "pick up the red cube"}


@contextmanager
def _serving(policy, **server_kw):
    """The PolicyServer of a ServerThread, for as long as the block runs."""
    with ServerThread(policy, **server_kw) as served:
        yield served.server


@pytest.fixture
def server(policy):
    with _serving(policy) as srv:
        yield srv


def test_metadata_health_reset_and_infer_match_in_process(server, policy):
    client = PolicyClient(server.address)
    meta = client.metadata()
    assert meta["cameras"] == ["top", "wrist"] and meta["action_dim"] == 6 and meta["name"] == "mini"
    assert meta["protocol_version"] == PROTOCOL_VERSION
    assert client.health()["status"] == "ok"
    client.reset()
    actions, timing = client.infer(_obs())
    assert np.array_equal(actions, policy.predict_chunk(_obs()))
    assert set(timing) == {"queue_ms", "inference_ms"} and timing["inference_ms"] > 0
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
    client = PolicyClient(silent_address(), timeout_s=0.2, retries=1, context=ctx)
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
    with _serving(policy, curve_keys=tmp_path / "keys") as srv:
        ok = PolicyClient(srv.address, server_key=tmp_path / "keys" / "server.key")
        assert ok.health()["status"] == "ok"
        plain = PolicyClient(srv.address, timeout_s=0.3, retries=0)  # no key: the handshake never completes
        with pytest.raises(TimeoutError):
            plain.health()


def test_vla_client_cli_exit_status(server):
    ok = subprocess.run([sys.executable, "-m", "vla.cli", "client", "health", "--connect", server.address],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and '"status": "ok"' in ok.stdout
    down = subprocess.run([sys.executable, "-m", "vla.cli", "client", "metadata", "--connect",
                           silent_address(), "--timeout", "0.3"], capture_output=True, text=True)
    assert down.returncode == 1 and "no answer" in down.stderr


# --- a slow server: fresh actions under load (issue 19) ---------------------------------------------------
class GatedPolicy:
    """An inference that provably runs for as long as the test wants: it blocks until `gate` is set."""

    metadata = {"name": "gated", "cameras": [], "state_dim": 2, "action_dim": 2, "chunk_size": 3, "fps": 10}

    def __init__(self):
        self.gate, self.running = threading.Event(), threading.Event()
        self.calls = 0

    def reset(self):
        pass

    def predict_chunk(self, obs):
        self.calls += 1
        self.running.set()
        assert self.gate.wait(30), "the test never opened the gate"
        state = np.asarray(obs["observation.state"], dtype=np.float32)
        return np.stack([state + k for k in range(3)])


def _state(x: float) -> dict:
    return {"observation.state": np.full(2, x, np.float32), "task": "wait"}


def _in_thread(fn, *args, **kw):
    """Run fn in a thread; returns (thread, outcome) where outcome gets "value" or "error"."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _until(condition, timeout=10.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_health_metadata_and_bad_input_are_answered_at_once_while_an_inference_runs():
    policy = GatedPolicy()
    with _serving(policy) as srv:
        robot = PolicyClient(srv.address, timeout_s=0.2)  # far shorter than the inference: it must wait, not resend
        thread, outcome = _in_thread(robot.infer, _state(1.0))
        assert policy.running.wait(10)  # the inference is running, blocked on the gate
        other = PolicyClient(srv.address, timeout_s=5)
        latency, health = median_health_latency(other)  # the gate stays closed meanwhile
        assert latency < 0.1, latency
        assert health["busy_s"] is not None and health["your_request"] is None and health["queued"] == 0
        assert other.metadata()["name"] == "gated"
        bad = other.send_raw(b"\x93not an envelope")
        assert bad["kind"] == "error" and bad["payload"]["code"] == "malformed"
        bad = other.send_raw(pack("infer", 5, {"observation": {}}, deadline_ms=-1))
        assert bad["payload"]["code"] == "malformed" and "'deadline_ms' must be a positive" in bad["payload"]["message"]
        requests = srv.stats["requests"]
        assert _until(lambda: srv.stats["requests"] >= requests + 2)  # the robot's client asked health, twice
        policy.gate.set()
        thread.join(10)
        np.testing.assert_array_equal(outcome["value"][0], np.stack([np.full(2, 1.0 + k) for k in range(3)]))
        assert policy.calls == 1 and srv.stats["computed"] == 1, "the request was computed once, never resent"
        assert other.infer(_state(2.0))[0].shape == (3, 2)  # and serving goes on


def test_a_request_past_its_deadline_is_answered_expired_and_not_computed():
    policy = GatedPolicy()
    with _serving(policy) as srv:
        a, b, c, observer = (PolicyClient(srv.address, timeout_s=5) for _ in range(4))
        first, first_out = _in_thread(a.infer, _state(1.0))
        assert policy.running.wait(10)
        late, late_out = _in_thread(b.infer, _state(2.0), deadline_s=0.05)
        assert _until(lambda: observer.health()["queued"] == 1)
        time.sleep(0.1)  # b's request is now older than its deadline, and the worker is still busy with a's
        patient, patient_out = _in_thread(c.infer, _state(3.0), deadline_s=30)
        assert _until(lambda: observer.health()["queued"] == 2)
        policy.gate.set()
        for thread in (first, late, patient):
            thread.join(10)
        assert isinstance(late_out.get("error"), ServerError) and late_out["error"].code == "expired"
        assert "past its deadline of 50 ms; not computed" in str(late_out["error"])
        assert first_out["value"][0][0, 0] == 1.0 and patient_out["value"][0][0, 0] == 3.0
        assert policy.calls == 2 and srv.stats["expired"] == 1 and srv.stats["computed"] == 2


def test_a_newer_request_from_the_same_client_supersedes_the_one_still_queued():
    policy = GatedPolicy()
    with _serving(policy) as srv:
        busy, _ = _in_thread(PolicyClient(srv.address, timeout_s=5).infer, _state(1.0))
        assert policy.running.wait(10)
        raw = zmq.Context.instance().socket(zmq.DEALER)  # a client that does not wait for its answer
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(srv.address)
        try:
            raw.send_multipart([b"", pack("infer", 1, {"observation": _state(2.0)})])
            raw.send_multipart([b"", pack("infer", 2, {"observation": _state(3.0)})])
            assert raw.poll(10_000)
            first = unpack(raw.recv_multipart()[-1], 2**20)
            assert first["id"] == 1 and first["payload"]["code"] == "superseded"
            policy.gate.set()
            assert raw.poll(10_000)
            second = unpack(raw.recv_multipart()[-1], 2**20)
            assert second["id"] == 2 and second["kind"] == "reply" and second["payload"]["actions"][0, 0] == 3.0
        finally:
            raw.close()
        busy.join(10)
        assert policy.calls == 2 and srv.stats["superseded"] == 1


def test_the_client_waits_while_the_server_holds_its_request_and_gives_up_when_it_does_not():
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)  # a stand-in server: it holds the request a while, then forgets it (a restart)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    client = PolicyClient(f"tcp://127.0.0.1:{port}", timeout_s=0.2)

    def next_request():
        assert router.poll(10_000)
        frames = router.recv_multipart()
        return frames[:-1], unpack(frames[-1], 2**20)

    try:
        thread, outcome = _in_thread(client.infer, _state(1.0))
        _, infer = next_request()  # answered with nothing, as during a slow inference
        for holds in (infer["id"], None):
            route, probe = next_request()
            assert probe["kind"] == "health", "the client asks about its request; it never sends it again"
            router.send_multipart([*route, pack("reply", probe["id"], {"status": "ok", "your_request": holds})])
        thread.join(10)
        assert isinstance(outcome.get("error"), TimeoutError) and "no longer holds request" in str(outcome["error"])
    finally:
        client.close()
        router.close()


def test_one_sparse_server_keeps_each_robots_caches_apart():
    """Two robots on one `vla serve --sparse`: each gets what a policy of its own would give. With one
    shared cache their alternating images would fire every patch and re-plan at every step."""
    from vla.sparsity.policy import SparseVLAPolicy, SparsityConfig

    model = mini_model()
    served = SparseVLAPolicy(model, SparsityConfig(trigger_threshold=0.3, max_open_loop=10, trigger_cameras=["top"]))
    alone = {"a": served.session(), "b": served.session()}  # each robot on a policy of its own
    views = {"a": camera_obs(model, 0)[0], "b": camera_obs(model, 1)[0]}
    with _serving(served) as srv:
        clients = {name: PolicyClient(srv.address, timeout_s=5) for name in views}
        for _ in range(4):
            for name, client in clients.items():
                got, _ = client.infer(views[name])
                np.testing.assert_array_equal(got, alone[name].predict_chunk(views[name]))
        assert len(srv.sessions) == 2
        for session in srv.sessions.values():  # a static scene per robot: one inference, then its queue
            assert [s["inference"] for s in session.step_stats] == [True, False, False, False]
