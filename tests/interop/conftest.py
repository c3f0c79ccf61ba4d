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


def _start(extra_args):
    binary = os.environ.get("HALYARD_BIN", "target/debug/halyard")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--bind", f"127.0.0.1:{port}", "--log", "warn", *extra_args],
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
    return Broker(port, proc)


def _stop(b):
    b.proc.terminate()
    try:
        b.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        b.proc.kill()
        b.proc.wait()
    assert b.proc.returncode == 0, f"halyard exited with {b.proc.returncode} on SIGTERM"


@pytest.fixture
def broker():
    b = _start([])
    yield b
    _stop(b)


@pytest.fixture
def configured_broker(tmp_path):
    """Starts brokers with a configuration file: call it with the file's TOML text; files it
    names (an ACL file, say) are given as {name: text} and written beside it first."""
    started = []

    def start(toml_text, files=None):
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(text)
        config = tmp_path / "halyard.toml"
        config.write_text(toml_text.replace("$DIR", str(tmp_path)))
        b = _start(["--config", str(config)])
        started.append(b)
        return b

    yield start
    for b in started:
        _stop(b)
