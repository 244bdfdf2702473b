"""A client outlives its server (issue 20: "reconnects" was checked only as a timeout): the server
goes away, each request fails with TimeoutError instead of hanging, and when a server binds the
address again the same client object is served again, with no stale reply taken for a new one."""

import numpy as np
import pytest

from tests.helpers import ServerThread
from tests.vla.helpers import camera_obs, mini_model
from vla.policy import VLAPolicy
from vla.serving.client import PolicyClient


def test_the_same_client_is_served_again_when_a_server_binds_its_address_again():
    model = mini_model()
    policy = VLAPolicy(model, name="mini")
    obs, _ = camera_obs(model, 0)
    first = ServerThread(policy)
    address = first.address
    client = PolicyClient(address, timeout_s=0.5, retries=0)
    try:
        assert client.health()["status"] == "ok"
        before, _ = client.infer(obs)
        first.close()  # the server dies
        with pytest.raises(TimeoutError):
            client.health()
        with pytest.raises(TimeoutError):
            client.infer(obs)  # left unanswered in the dead server's queue
        with ServerThread(policy, address):  # it comes back on the same address
            assert client.health()["status"] == "ok"
            assert client.metadata()["name"] == "mini"
            after, _ = client.infer(obs)
        np.testing.assert_array_equal(after, before)
    finally:
        client.close()
