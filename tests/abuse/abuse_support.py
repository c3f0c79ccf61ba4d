"""Helpers shared by the abuse tests: RSS measurement, TOML writing, the Broker handle and
the bystander (an innocent paho-mqtt client doing QoS 1 round trips during an attack)."""
import contextlib
import pathlib
import socket
import threading
import time
import uuid

import mqtt_raw

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    """Resident set size of a process in KiB (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settled_rss_kb(pid: int, settle=0.5) -> int:
    time.sleep(settle)
    return rss_kb(pid)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path: pathlib.Path, config: dict):
    """config: {"mqtt": {...}, "limits": {...}, "listener": [{...}]} -> TOML file."""
    lines = []
    for table, values in config.items():
        if isinstance(values, list):
            for item in values:
                lines.append(f"[[{table}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{table}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))


class Broker:
    def __init__(self, port, proc, log_path):
        self.host = "127.0.0.1"
        self.port = port
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path

    def rss_kb(self):
        return rss_kb(self.pid)

    def log_tail(self, n=2000):
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def assert_alive(self, proto=mqtt_raw.V311):
        """The process runs and a fresh client gets CONNACK 0 and a PINGRESP."""
        assert self.proc.poll() is None, (
            f"broker exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")
        c = mqtt_raw.RawClient(self.port, proto)
        try:
            ack = c.connect(f"alive-{uuid.uuid4().hex[:8]}")
            assert ack is not None and ack.type == mqtt_raw.CONNACK and ack.code == 0, (
                f"broker no longer accepts connections: {ack!r}")
            assert c.ping() is not None, "broker accepted a connection but did not answer PINGREQ"
        finally:
            c.disconnect()


# ---------------------------------------------------------------------------------------
# the bystander: an innocent paho-mqtt client that keeps doing QoS 1 round trips

class Bystander:
    """paho-mqtt client publishing QoS 1 to its own topic and waiting to receive each message."""

    ROUND_TRIP_LIMIT = 2.0

    def __init__(self, broker, protocol=None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        self.topic = f"bystander/{uuid.uuid4().hex}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"bystander-{uuid.uuid4().hex[:8]}",
                                  protocol=protocol or mqtt.MQTTv311)
        self.got = threading.Event()
        self.expect = None
        self.lock = threading.Lock()
        self.completions = []   # monotonic time each round trip finished
        self.longest = 0.0
        self.failures = []
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()

        def on_message(c, u, m):
            with self.lock:
                if m.payload == self.expect:
                    self.got.set()

        self.client.on_message = on_message
        self.client.on_connect = lambda c, u, f, rc, p: (not rc.is_failure) and self.connected.set()
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(5):
            self.client.loop_stop()
            raise AssertionError("bystander could not connect")
        self.client.subscribe(self.topic, 1)
        if not self.subscribed.wait(5):
            self.client.loop_stop()
            raise AssertionError("bystander could not subscribe")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        seq = 0
        while not self.stop.is_set():
            seq += 1
            payload = f"rt-{seq}".encode()
            with self.lock:
                self.expect = payload
                self.got.clear()
            t0 = time.monotonic()
            try:
                self.client.publish(self.topic, payload, qos=1)
            except Exception as e:  # noqa: BLE001
                self.failures.append(f"publish {seq} raised {e!r}")
            ok = self.got.wait(self.ROUND_TRIP_LIMIT)
            dt = time.monotonic() - t0
            if ok:
                self.completions.append(time.monotonic())
                self.longest = max(self.longest, dt)
            else:
                self.failures.append(f"round trip {seq} not back within {self.ROUND_TRIP_LIMIT} s")
                self.longest = max(self.longest, dt)
            self.stop.wait(0.05)

    def wait_rounds(self, n, timeout):
        deadline = time.monotonic() + timeout
        target = len(self.completions) + n
        while len(self.completions) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.completions) >= target

    def close(self):
        self.stop.set()
        self.thread.join(self.ROUND_TRIP_LIMIT + 1)
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def bystander(broker, protocol=None):
    """Runs a Bystander around an attack and checks it afterwards: it completed QoS 1 round
    trips during the attack (or, for an attack shorter than a round trip, right after it),
    none took longer than 2 s and none was lost."""
    b = Bystander(broker, protocol)
    try:
        assert b.wait_rounds(1, 5), "bystander made no round trip before the attack"
        start = time.monotonic()
        yield b
        end = time.monotonic()
        assert b.wait_rounds(1, 5), (
            f"bystander made no round trip after the attack; failures: {b.failures[:5]}")
        during = [t for t in b.completions if start <= t <= end]
        if end - start > 1.0:
            assert during, (
                f"bystander completed no round trip during the {end - start:.1f} s attack; "
                f"failures: {b.failures[:5]}")
        assert not b.failures, f"bystander: {b.failures[:5]}"
        assert b.longest <= Bystander.ROUND_TRIP_LIMIT, f"bystander round trip took {b.longest:.2f} s"
    finally:
        b.close()



def outcome(client, timeout=5.0):
    """What the broker does next on a raw connection: ("packet", p), ("closed", None) for EOF or
    reset, or ("silent", None) if nothing happens within timeout."""
    try:
        p = client.read(timeout)
    except (ConnectionResetError, BrokenPipeError):
        return "closed", None
    if p is not None:
        return "packet", p
    return ("closed", None) if client.eof else ("silent", None)


def closes(client, timeout=5.0, max_packets=10000):
    """True if the connection reaches EOF (or reset) within timeout, reading what comes first."""
    deadline = time.monotonic() + timeout
    for _ in range(max_packets):
        kind, _p = outcome(client, max(0.0, deadline - time.monotonic()))
        if kind == "closed":
            return True
        if kind == "silent":
            return False
    return False


MB = 1024 * 1024
