"""Fixtures for the abuse tests: a real `halyard serve` on a free loopback port, optionally with
a TOML configuration, plus helpers to watch it while it is attacked.

HALYARD_BIN names the binary (default target/debug/halyard under the repository root).
Nothing here builds it. Each test is bounded by a watchdog (--timeout SECONDS, default 30;
the option is only added when no plugin already provides it).
"""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from abuse_support import Broker, free_port, write_toml  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "halyard"


def pytest_addoption(parser):
    try:
        parser.addoption("--timeout", type=float, default=None,
                         help="abuse tests: per-test watchdog in seconds (default 30)")
    except ValueError:  # pytest-timeout is installed and owns --timeout
        pass


class WatchdogTimeout(Exception):
    """Not a TimeoutError: socket code here catches those (socket.timeout is one)."""


@pytest.fixture(autouse=True)
def watchdog(request):
    """Fail a test that runs longer than --timeout (default 30 s) instead of hanging."""
    secs = request.config.getoption("timeout", None) or 30

    def fire(signum, frame):
        raise WatchdogTimeout(f"abuse test watchdog: still running after {secs} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, secs)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _wait_for_binary(binary: pathlib.Path):
    # The binary is rebuilt from time to time; give a rebuild a moment to finish.
    for _ in range(30):
        if binary.exists() and os.access(binary, os.X_OK):
            return
        time.sleep(1)
    pytest.fail(f"halyard binary {binary} is missing")


@pytest.fixture
def start_broker(tmp_path):
    """start_broker(config=None) -> Broker. config is the dict given to write_toml; with a
    "listener" list, its first listener is bound to the free port instead of using --bind."""
    started = []
    binary = pathlib.Path(os.environ.get("HALYARD_BIN", DEFAULT_BIN))

    def start(config=None):
        _wait_for_binary(binary)
        port = free_port()
        args = [str(binary), "serve", "--log", "warn"]
        if config and "listener" in config:
            # the listener comes from the file (--bind would replace it): bind the free port
            config = dict(config, listener=[dict(config["listener"][0], bind=f"127.0.0.1:{port}")]
                          + list(config["listener"][1:]))
        else:
            args += ["--bind", f"127.0.0.1:{port}"]
        if config:
            cfg = tmp_path / f"halyard-{len(started)}.toml"
            write_toml(cfg, config)
            args += ["--config", str(cfg)]
        log_path = tmp_path / f"halyard-{len(started)}.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        broker = Broker(port, proc, log_path)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(
                        f"halyard did not start (exit {proc.returncode}): {broker.log_tail()}")
                time.sleep(0.05)
        started.append(broker)
        return broker

    yield start

    crashed = []
    for b in started:
        if b.proc.poll() is not None:
            if b.proc.returncode not in (0, -9):
                crashed.append(f"exit {b.proc.returncode}: {b.log_tail(600)}")
            continue
        b.proc.terminate()
        try:
            b.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            b.proc.kill()
            b.proc.wait()
    # A broker that died by itself during a test is a failure even if the test missed it.
    assert not crashed, f"broker died during the test: {crashed}"


@pytest.fixture
def broker(start_broker):
    return start_broker()


