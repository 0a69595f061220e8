"""What authentication and the msgpack codec add per request, in process (no HTTP).

Measures, side by side in one run: Authenticator.identify for each way a caller can present itself, and
decoding + encoding a typical agent status_report in JSON and msgpack. Ratios are against the no-auth
(open mode, no header) path and against JSON. Run: ``python bench/auth_codec_cost.py [--n 20000]``.
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable

import trio

from workerhub.api import codec
from workerhub.api.auth import Authenticator
from workerhub.clock import Clock
from workerhub.config import Settings

REPORT = {
    "worker": "host-01:gpu0",
    "timestamp": 1_700_000_000_000,
    "task": "4f1c2e9a7b8d4c3e9f0a1b2c3d4e5f6a",
    "tags": ["cpu-only"],
    "is_daemon": True,
    "machine_stats": {
        "cpu_usage": [12.345],
        "memory_used": 10240.5,
        "memory_free": 20480.25,
        "disk_free_home": 55.5,
        "network_rx": 0.5,
        "network_tx": 1.5,
        "gpu_usage": [10.0, 20.0, 30.0, 40.0],
        "gpu_memory_used": [1000.0, 2000.0, 3000.0, 4000.0],
    },
}


def _time(fn: Callable[[], object], n: int) -> float:
    """Median of 5 runs of n calls, in µs per call."""
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return sorted(runs)[2]


async def _main(n: int) -> None:
    clock = Clock()
    clock.start()
    secret = "bench-secret-" + "x" * 32
    open_auth = Authenticator(Settings(token_secret=secret), clock)
    basic = "Basic " + base64.b64encode(b"key:secret").decode()
    cred_auth = Authenticator(Settings(auth=("key:secret:acme:alice",), token_secret=secret), clock)
    token = cred_auth.issue_token(cred_auth.identify(basic, "auth.login"))
    call = "workers.status_report"
    cred_settings = Settings(auth=("key:secret:acme:alice",), token_secret=secret)

    def fresh() -> Authenticator:  # no verified-token cache yet
        return Authenticator(cred_settings, clock)

    rows = [
        ("open mode, no header", lambda: open_auth.identify(None, call)),
        ("credentials, Bearer, first use (PyJWT)", lambda: fresh().identify("Bearer " + token, call)),
        ("credentials, Bearer, verified before", lambda: cred_auth.identify("Bearer " + token, call)),
        ("credentials, Basic key:secret", lambda: cred_auth.identify(basic, call)),
        ("issue a token (auth.login)", lambda: cred_auth.issue_token(open_auth.identify(None, call))),
    ]
    print(f"{'auth path':40} {'µs/call':>9} {'vs no auth':>11}")
    base = None
    for name, fn in rows:
        us = _time(fn, n)
        base = base or us
        print(f"{name:40} {us:9.2f} {us / base:10.1f}x")

    js = codec.encode_body(REPORT, codec.JSON)
    mp = codec.encode_body(REPORT, codec.MSGPACK)
    limit = 4 * 1024 * 1024
    print()
    print(f"{'codec (status_report, decode+encode)':40} {'bytes':>6} {'µs/call':>9} {'vs JSON':>8}")
    j = _time(lambda: codec.encode_body(codec.decode_body(js, codec.JSON, limit), codec.JSON), n)
    m = _time(lambda: codec.encode_body(codec.decode_body(mp, codec.MSGPACK, limit), codec.MSGPACK), n)
    print(f"{'JSON (orjson)':40} {len(js):6} {j:9.2f} {1.0:7.2f}x")
    print(f"{'msgpack (with limits)':40} {len(mp):6} {m:9.2f} {m / j:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000, help="calls per timing run")
    trio.run(_main, parser.parse_args().n)


if __name__ == "__main__":
    main()
