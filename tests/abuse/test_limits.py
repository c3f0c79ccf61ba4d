"""Per-session, per-broker and per-source limits, each set low in a --config TOML file and
driven past its edge by a raw client."""
import socket
import time

import paho.mqtt.client as paho
import pytest

import mqtt_raw
from abuse_support import bystander, closes, outcome
from mqtt_raw import (CONNACK, DISCONNECT, P_SERVER_KEEP_ALIVE, P_SESSION_EXPIRY, PUBACK,
                      PUBLISH, V5, V311, RawClient)

PROTOS = {"3.1.1": V311, "5.0": V5}


def persistent(v):
    """CONNECT keyword arguments for a session that outlives the connection."""
    if v == V5:
        return dict(clean=False, properties=[(P_SESSION_EXPIRY, 300)])
    return dict(clean=False)


@pytest.mark.parametrize("proto", PROTOS)
def test_max_subscriptions_per_session(start_broker, proto):
    """[mqtt] max_subscriptions_per_session [1000]: 1000 distinct filters are granted, the
    1001st gets SUBACK 0x97 Quota exceeded (5.0) / 0x80 Failure (3.1.1); re-subscribing an
    existing filter is still granted."""
    v = PROTOS[proto]
    b = start_broker()
    with bystander(b):
        c = RawClient(b.port, v)
        assert c.connect("many-subs").code == 0
        for batch in range(10):
            filters = [(f"s/{batch * 100 + i}/+", 1) for i in range(100)]
            ack = c.subscribe(filters)
            assert ack is not None and ack.suback_codes == [1] * 100, (batch, ack)
        ack = c.subscribe([("s/1000/+", 1)])
        assert ack is not None, "no SUBACK for the 1001st filter"
        assert ack.suback_codes == [0x97 if v == V5 else 0x80]
        assert c.subscribe([("s/0/+", 1)]).suback_codes == [1]
        c.disconnect()
    b.assert_alive(v)


@pytest.mark.parametrize("proto", PROTOS)
def test_max_sessions(start_broker, proto):
    """[mqtt] max_sessions (set to 5): with five sessions, a sixth new client id gets CONNACK
    0x97 Quota exceeded (5.0) / 0x03 Server unavailable (3.1.1); an existing session can
    reconnect (session present), also while all five are offline."""
    v = PROTOS[proto]
    b = start_broker({"mqtt": {"max_sessions": 5}})
    clients = []
    for i in range(5):
        c = RawClient(b.port, v)
        ack = c.connect(f"sess-{i}", **persistent(v))
        assert ack is not None and ack.code == 0, (i, ack)
        clients.append(c)
    extra = RawClient(b.port, v)
    ack = extra.connect("sess-new", **persistent(v))
    assert ack is not None and ack.type == CONNACK and ack.code == (0x97 if v == V5 else 0x03), ack
    extra.close()
    clients[0].disconnect()
    time.sleep(0.2)
    back = RawClient(b.port, v)
    ack = back.connect("sess-0", **persistent(v))
    assert ack is not None and ack.code == 0 and ack.session_present, ack
    back.disconnect()
    for c in clients[1:]:
        c.disconnect()
    time.sleep(0.3)
    extra = RawClient(b.port, v)
    ack = extra.connect("sess-new-2", clean=True)
    assert ack is not None and ack.code == (0x97 if v == V5 else 0x03), (
        f"offline sessions must still count: {ack!r}")
    extra.close()
    again = RawClient(b.port, v)
    ack = again.connect("sess-3", **persistent(v))
    assert ack is not None and ack.code == 0 and ack.session_present, ack
    again.disconnect()
    assert b.proc.poll() is None


def test_max_retained_messages(start_broker):
    """[mqtt] max_retained_messages (set to 10): ten retained topics are accepted, the 11th new
    retained topic at QoS 1 (5.0) gets PUBACK 0x97 and is not stored; replacing an existing
    retained topic still works."""
    b = start_broker({"mqtt": {"max_retained_messages": 10}})
    c = RawClient(b.port, V5)
    assert c.connect("retainer").code == 0
    for i in range(10):
        r = c.publish(f"rt/{i}", f"v{i}", qos=1, retain=True)
        assert r is not None and r.type == PUBACK and r.code < 0x80, (i, r)
    r = c.publish("rt/10", "v10", qos=1, retain=True)
    assert r is not None and r.type == PUBACK and r.code == 0x97, r
    r = c.publish("rt/3", "new", qos=1, retain=True)
    assert r is not None and r.type == PUBACK and r.code < 0x80, r
    s = RawClient(b.port, V5)
    assert s.connect("retained-reader").code == 0
    assert s.subscribe("rt/#").suback_codes == [1]
    got = {}
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len(got) < 11:
        p = s.read_type(PUBLISH, max(0.0, deadline - time.monotonic()))
        if p is None or p.type != PUBLISH:
            break
        topic, payload, qos, retain, pid, _ = p.publish_fields()
        got[topic] = payload
        if qos:
            s.send(mqtt_raw.puback(pid, proto=V5))
    assert "rt/10" not in got
    assert len(got) == 10 and got["rt/3"] == b"new", got
    c.disconnect()
    s.disconnect()
    b.assert_alive(V5)


def test_max_retained_bytes(start_broker):
    """[mqtt] max_retained_bytes (set to 65536): 1 KB retained messages on new topics are
    accepted until about 64 KB are held, then refused with PUBACK 0x97 (5.0); replacing a
    held topic still works."""
    b = start_broker({"mqtt": {"max_retained_bytes": 65536}})
    c = RawClient(b.port, V5)
    assert c.connect("retain-bytes").code == 0
    accepted = 0
    first_refusal = None
    for i in range(200):
        r = c.publish(f"rb/{i}", b"x" * 1024, qos=1, retain=True)
        assert r is not None and r.type == PUBACK, (i, r)
        if r.code >= 0x80:
            assert r.code == 0x97, r
            first_refusal = first_refusal if first_refusal is not None else i
        elif first_refusal is None:
            accepted += 1
    assert first_refusal is not None, "200 KB of retained messages accepted under a 64 KB cap"
    assert 32 <= accepted <= 64, accepted
    r = c.publish("rb/0", b"y" * 512, qos=1, retain=True)
    assert r is not None and r.code < 0x80, r
    c.disconnect()
    b.assert_alive(V5)


def test_max_connections(start_broker):
    """[limits] max_connections (set to 5): a sixth connection is closed without CONNACK; the
    first five keep working (PINGREQ, publish/subscribe between them); after one leaves, a new
    connection is accepted."""
    b = start_broker({"limits": {"max_connections": 5}})
    five = []
    for i in range(5):
        c = RawClient(b.port, V311)
        assert c.connect(f"conn-{i}").code == 0
        five.append(c)
    sixth = RawClient(b.port, V311)
    sixth.try_send(mqtt_raw.connect("conn-6"))
    kind, p = outcome(sixth, 3)
    assert kind == "closed", f"sixth connection got {kind} {p!r}"
    sixth.close()
    for c in five:
        assert c.ping() is not None
    assert five[0].subscribe("conn/t").suback_codes == [1]
    assert five[1].publish("conn/t", b"hello", qos=1).type == PUBACK
    p = five[0].read_type(PUBLISH, 3)
    assert p is not None and p.publish_fields()[1] == b"hello"
    five[4].disconnect()
    deadline = time.monotonic() + 3
    ok = False
    while not ok and time.monotonic() < deadline:
        c = RawClient(b.port, V311)
        try:
            ack = c.connect("conn-late", timeout=1)
            ok = ack is not None and ack.code == 0
        except OSError:
            pass
        c.close()
        time.sleep(0.1)
    assert ok, "a connection slot freed by a leaving client was not reused"
    for c in five[:4]:
        c.disconnect()


def test_listener_max_connections(start_broker):
    """[[listener]] max_connections (set to 3 on the listener; [limits] max_connections stays
    [100000]): a fourth connection to that listener is closed without CONNACK; the first three
    keep working."""
    b = start_broker({"listener": [{"bind": "127.0.0.1:0", "max_connections": 3}]})
    three = []
    for i in range(3):
        c = RawClient(b.port, V311)
        assert c.connect(f"lconn-{i}").code == 0
        three.append(c)
    fourth = RawClient(b.port, V311)
    fourth.try_send(mqtt_raw.connect("lconn-4"))
    kind, p = outcome(fourth, 3)
    assert kind == "closed", f"fourth connection got {kind} {p!r}"
    fourth.close()
    for c in three:
        assert c.ping() is not None
        c.disconnect()


def test_max_connection_rate_per_ip(start_broker):
    """[limits] max_connection_rate_per_ip (set to 20): a burst of 200 connects from
    127.0.0.1 in well under a second sees most closed at once (no CONNACK); a second later new
    connects work again, and a bystander connected before the burst is unaffected."""
    b = start_broker({"limits": {"max_connection_rate_per_ip": 20}})
    time.sleep(1.1)  # the start-up probe counted against this second
    with bystander(b):
        time.sleep(1.1)
        t0 = time.monotonic()
        socks = [RawClient(b.port, V311, wait_connected=False) for _ in range(200)]
        burst = time.monotonic() - t0  # 200 handshakes started
        for i, c in enumerate(socks):
            c.try_send(mqtt_raw.connect(f"burst-{i}"), timeout=1)
        accepted = closed = silent = 0
        deadline = time.monotonic() + 1.5
        for c in socks:
            kind, p = outcome(c, max(0.05, deadline - time.monotonic()))
            if kind == "packet" and p.type == CONNACK and p.code == 0:
                accepted += 1
            elif kind == "closed" or (kind == "packet" and p.type == CONNACK):
                closed += 1
            else:
                silent += 1
        for c in socks:
            c.close()
        assert burst < 1.0, f"the burst took {burst:.2f} s, too slow to test a per-second rate"
        assert accepted <= 60 and closed >= 100, (accepted, closed, silent)
        time.sleep(1.2)
        for i in range(5):
            c = RawClient(b.port, V311)
            ack = c.connect(f"after-{i}")
            assert ack is not None and ack.code == 0, (i, ack)
            c.disconnect()


@pytest.mark.parametrize("proto", PROTOS)
def test_flapping_client_id(start_broker, proto):
    """[mqtt] flapping_max_connects / flapping_window_secs (set to 5 in 60): one client id
    connecting 10 times in a row is accepted 5 times, then gets CONNACK 0x9F Connection rate
    exceeded (5.0) / 0x03 Server unavailable (3.1.1); another client id is unaffected."""
    v = PROTOS[proto]
    b = start_broker({"mqtt": {"flapping_max_connects": 5, "flapping_window_secs": 60}})
    with bystander(b):
        codes = []
        for _ in range(10):
            c = RawClient(b.port, v)
            kind, ack = ("packet", c.connect("flapper", timeout=3))
            codes.append(ack.code if ack is not None else "closed")
            c.disconnect()
        refused = 0x9F if v == V5 else 0x03
        assert codes == [0] * 5 + [refused] * 5, codes
        c = RawClient(b.port, v)
        ack = c.connect("steady")
        assert ack is not None and ack.code == 0, ack
        c.disconnect()


def test_persistent_session_expiry_311(start_broker):
    """[mqtt] persistent_session_expiry_secs (set to 2): a 3.1.1 clean-session-false session
    survives a quick reconnect (session present = 1) but is gone 3.5 s after the client left
    (session present = 0)."""
    b = start_broker({"mqtt": {"persistent_session_expiry_secs": 2}})
    c = RawClient(b.port, V311)
    assert c.connect("expiring", clean=False).code == 0
    assert c.subscribe("exp/t").suback_codes == [1]
    c.disconnect()
    time.sleep(0.3)
    c = RawClient(b.port, V311)
    ack = c.connect("expiring", clean=False)
    assert ack.code == 0 and ack.session_present, ack
    c.disconnect()
    time.sleep(3.5)
    c = RawClient(b.port, V311)
    ack = c.connect("expiring", clean=False)
    assert ack.code == 0 and not ack.session_present, "3.1.1 session outlived its 2 s expiry"
    c.disconnect()


def test_server_keep_alive_default(broker):
    """[mqtt] max_keep_alive_secs [7200]: a 5.0 client asking for keep-alive 0 (or more than
    7200) is told Server Keep Alive (property 0x13) = 7200 in CONNACK (MQTT-3.2.2-21)."""
    for asked in (0, 65535):
        c = RawClient(broker.port, V5)
        ack = c.connect(f"ka-{asked}", keepalive=asked)
        assert ack is not None and ack.code == 0, ack
        assert ack.properties.get(P_SERVER_KEEP_ALIVE) == 7200, (asked, ack.properties)
        c.disconnect()


def test_server_keep_alive_enforced(start_broker):
    """[mqtt] max_keep_alive_secs (set to 2): a 5.0 client asking for keep-alive 0 gets Server
    Keep Alive 2 and, silent, is disconnected (DISCONNECT 0x8D Keep Alive timeout, or closed)
    within about 1.5 x 2 s (MQTT-3.1.2-22)."""
    b = start_broker({"mqtt": {"max_keep_alive_secs": 2}})
    c = RawClient(b.port, V5)
    ack = c.connect("silent", keepalive=0)
    t0 = time.monotonic()
    assert ack is not None and ack.code == 0, ack
    assert ack.properties.get(P_SERVER_KEEP_ALIVE) == 2, ack.properties
    kind, p = outcome(c, 5)
    elapsed = time.monotonic() - t0
    if kind == "packet":
        assert p.type == DISCONNECT and p.code == 0x8D, p
        assert closes(c, 1)
    else:
        assert kind == "closed", f"still connected {elapsed:.1f} s after a 2 s keep-alive"
    assert 1.5 <= elapsed <= 4.0, elapsed
    c.close()
    b.assert_alive(V5)


def test_slow_consumer_disconnected(start_broker):
    """[mqtt] slow_consumer_timeout_secs (set to 2) and publisher_wait_ms [100]: a subscriber
    that never reads does not hold up the publisher (each QoS 1 PUBACK within ~100 ms) nor a
    bystander, and is disconnected about 2 s after its queue fills (its will is then
    published, MQTT-3.1.2-8)."""
    b = start_broker({"mqtt": {"slow_consumer_timeout_secs": 2, "max_queued_messages": 50}})
    will_at = []
    watcher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="will-watcher")
    subscribed = []
    watcher.on_subscribe = lambda *a: subscribed.append(1)
    watcher.on_message = lambda c, u, m: will_at.append(time.monotonic())
    watcher.connect(b.host, b.port, 30)
    watcher.loop_start()
    try:
        watcher.subscribe("slow/will", 1)
        deadline = time.monotonic() + 5
        while not subscribed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert subscribed
        slow = RawClient(b.port, V5, rcvbuf=4096)
        assert slow.connect("slowpoke", will=dict(topic="slow/will", payload=b"gone", qos=1)).code == 0
        assert slow.subscribe("busy/t").suback_codes == [1]
        pub = RawClient(b.port, V311)
        assert pub.connect("busy-pub").code == 0
        latencies = []
        with bystander(b):
            t0 = time.monotonic()
            payload = b"p" * 8192
            while time.monotonic() - t0 < 7 and not (will_at and time.monotonic() > will_at[0] + 0.5):
                s = time.monotonic()
                r = pub.publish("busy/t", payload, qos=1)
                latencies.append(time.monotonic() - s)
                assert r is not None and r.type == PUBACK, r
                time.sleep(0.01)
        worst = max(latencies)
        assert worst < 0.3, f"publisher blocked {worst * 1000:.0f} ms on a slow consumer"
        assert will_at, "the slow consumer was not disconnected within 7 s (no will)"
        assert will_at[0] - t0 < 6, will_at[0] - t0
        assert closes(slow, 3), "slow consumer's connection still open"
        slow.close()
        pub.disconnect()
    finally:
        watcher.disconnect()
        watcher.loop_stop()
    b.assert_alive()
