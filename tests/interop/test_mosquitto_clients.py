"""mosquitto_pub / mosquitto_sub (Debian's mosquitto-clients) against Halyard."""
import subprocess
import pytest

VERSIONS = ["mqttv311", "mqttv5"]


def sub_proc(broker, version, *args):
    return subprocess.Popen(
        # Line-buffered, so its debug lines (-d) arrive as they happen.
        ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", version, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pub(broker, version, *args):
    subprocess.run(
        ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", version, *args],
        check=True,
        timeout=10,
    )


def wait_subscribed(sub):
    """Reads mosquitto_sub's debug output (-d) until its SUBACK arrived."""
    for line in sub.stdout:
        if "received SUBACK" in line:
            return
    raise AssertionError("mosquitto_sub never got its SUBACK: " + sub.stderr.read())


def messages(out):
    """The message lines of mosquitto_sub -d output."""
    return [l for l in out.splitlines() if not l.startswith(("Client ", "Subscribed "))]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_pub_sub_each_qos(broker, version, qos):
    sub = sub_proc(broker, version, "-d", "-t", "mc/+", "-q", "2", "-C", "3", "-v", "-W", "10")
    wait_subscribed(sub)
    for i in range(3):
        pub(broker, version, "-t", "mc/t", "-m", f"hello{i}", "-q", qos)
    out, err = sub.communicate(timeout=15)
    assert sub.returncode == 0, err
    assert messages(out) == [f"mc/t hello{i}" for i in range(3)]


@pytest.mark.parametrize("version", VERSIONS)
def test_retained(broker, version):
    pub(broker, version, "-t", "mc/r", "-m", "kept", "-r", "-q", "1")
    out = subprocess.run(
        ["mosquitto_sub", "-p", str(broker.port), "-V", version, "-t", "mc/#", "-C", "1", "-v", "-W", "5"],
        capture_output=True, text=True, timeout=10,
    )
    assert out.stdout.strip() == "mc/r kept"
    # --retained-only style check: -R drops retained, so nothing arrives.
    out = subprocess.run(
        ["mosquitto_sub", "-p", str(broker.port), "-V", version, "-t", "mc/#", "-C", "1", "-R", "-W", "1"],
        capture_output=True, text=True, timeout=10,
    )
    assert out.stdout == ""


@pytest.mark.parametrize("version", VERSIONS)
def test_will_of_killed_subscriber(broker, version):
    watcher = sub_proc(broker, version, "-d", "-t", "mc/will", "-C", "1", "-W", "10")
    wait_subscribed(watcher)
    dying = sub_proc(broker, version, "-d", "-t", "mc/nothing", "--will-topic", "mc/will",
                     "--will-payload", "bye", "--will-qos", "1")
    wait_subscribed(dying)
    dying.kill()
    dying.wait()
    out, err = watcher.communicate(timeout=15)
    assert messages(out) == ["bye"], err


@pytest.mark.parametrize("version", VERSIONS)
def test_persistent_session(broker, version):
    extra = ["-x", "300"] if version == "mqttv5" else []
    # Subscribe with a persistent session, then leave.
    # -E: disconnect as soon as the subscription is acknowledged.
    first = sub_proc(broker, version, "-E", "-t", "mc/p", "-q", "1", "-c", "-i", "mc-persist", *extra)
    _, err = first.communicate(timeout=10)
    assert first.returncode == 0, err
    for i in range(3):
        pub(broker, version, "-t", "mc/p", "-m", f"q{i}", "-q", "1")
    back = sub_proc(broker, version, "-t", "mc/p", "-q", "1", "-c", "-i", "mc-persist", "-C", "3", "-W", "5", *extra)
    out, err = back.communicate(timeout=10)
    assert out.splitlines() == ["q0", "q1", "q2"], err


@pytest.mark.parametrize("version", VERSIONS)
def test_password_file_written_by_mosquitto_passwd(configured_broker, tmp_path, version):
    """A password file made by the real mosquitto_passwd ($7$ PBKDF2-SHA512), read
    unchanged: mosquitto_pub -u/-P gets in with the right password, and is refused with the
    wrong one (bad user name or password, 3.1.1 return code 4 / 5.0 reason 0x86) and without
    any (not authorized, code 5 / 0x87)."""
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "alice", "s3cret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "bob", "other"], check=True)
    b = configured_broker(f'[auth]\npassword_file = "{passwd}"\n')
    base = ["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-V", version, "-t", "t", "-m", "x"]
    ok = subprocess.run(base + ["-u", "alice", "-P", "s3cret"], capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(base + ["-u", "alice", "-P", "nope"], capture_output=True, text=True, timeout=10)
    assert wrong.returncode != 0
    assert "bad user name or password" in wrong.stderr.lower(), wrong.stderr
    anon = subprocess.run(base, capture_output=True, text=True, timeout=10)
    assert anon.returncode != 0
    assert "not authori" in anon.stderr.lower(), anon.stderr


def test_sighup_reloads_the_password_file(configured_broker, tmp_path):
    """SIGHUP reads the password file again: after mosquitto_passwd changes alice's password
    and the broker gets SIGHUP, mosquitto_pub gets in with the new password and not with the
    old one; a mosquitto_sub connected before the reload stays connected and still receives."""
    import signal
    import time
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "alice", "old"], check=True)
    b = configured_broker(f'[auth]\npassword_file = "{passwd}"\n')
    sub = sub_proc(b, "mqttv311", "-d", "-u", "alice", "-P", "old", "-t", "r", "-C", "1")
    wait_subscribed(sub)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "alice", "new"], check=True)
    b.proc.send_signal(signal.SIGHUP)
    base = ["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-t", "r", "-m", "after-reload"]
    deadline = time.monotonic() + 5
    while True:
        old = subprocess.run(base + ["-u", "alice", "-P", "old"], capture_output=True, text=True, timeout=10)
        if old.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert old.returncode != 0, "the old password still works after SIGHUP"
    new = subprocess.run(base + ["-u", "alice", "-P", "new"], capture_output=True, text=True, timeout=10)
    assert new.returncode == 0, new.stderr
    out, _ = sub.communicate(timeout=10)
    assert "after-reload" in messages(out)
