"""CURVE key pairs for a policy server and its clients (`vla keys`): what binding beyond loopback needs."""

from __future__ import annotations

from pathlib import Path

import zmq.auth

NAMES = ("server", "client")


def create_curve_keys(out: str | Path, overwrite: bool = False) -> Path:
    """Write server.key(_secret) and client.key(_secret) into `out`; the secrets readable by their owner only."""
    out = Path(out)
    existing = [out / f"{name}.key_secret" for name in NAMES if (out / f"{name}.key_secret").exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace the keys")
    out.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        zmq.auth.create_certificates(str(out), name)
        (out / f"{name}.key_secret").chmod(0o600)
    return out
