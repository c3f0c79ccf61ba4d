"""Fixtures for interoperability tests: a real `halyard serve` on a free loopback port.

The tests use clients nobody here wrote (paho-mqtt from PyPI, mosquitto_pub/mosquitto_sub
from Debian's mosquitto-clients) against the real binary. HALYARD_BIN names the binary;
scripts/test sets it.
"""
import os
import socket
import subprocess
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, port: int, proc: subprocess.Popen):
        self.host = "127.0.0.1"
        self.port = port
        self.proc = proc


@pytest.fixture
def broker():
    binary = os.environ.get("HALYARD_BIN", "target/debug/halyard")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--bind", f"127.0.0.1:{port}", "--log", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("halyard did not start")
            time.sleep(0.05)
    yield Broker(port, proc)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, f"halyard exited with {proc.returncode} on SIGTERM"
