"""Hostile topics: wills, PUBLISH topic names and SUBSCRIBE filters with absurd depth or length.

Limits: [mqtt] max_topic_levels [128] and max_topic_length [65535], applied to will topics,
PUBLISH topic names and SUBSCRIBE filters. A 32,000-level retained will used to overflow the
broker's stack.
"""
import time

import pytest

import mqtt_raw

from abuse_support import bystander, outcome
from mqtt_raw import CONNACK, DISCONNECT, PUBACK, PUBLISH, SUBACK, V5, V311, RawClient

PROTOS = {"3.1.1": V311, "5.0": V5}
DEEP = "a/" * 31999 + "a"             # 32,000 levels, 63,999 bytes: under max_topic_length
DEEP_FILTER = "a/" * 31999 + "#"


def no_publish_arrives(client, secs=1.0):
    """Read for secs, acking; return the PUBLISH topics seen (truncated)."""
    seen = []
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        kind, p = outcome(client, max(0.0, deadline - time.monotonic()))
        if kind != "packet":
            return seen
        if p.type == PUBLISH:
            topic = p.publish_fields()[0]
            seen.append(topic[:40] + ("..." if len(topic) > 40 else ""))
            if p.publish_fields()[2] == 1:
                client.try_send(mqtt_raw.puback(p.publish_fields()[4], proto=client.proto))
    return seen


@pytest.mark.parametrize("proto", PROTOS)
def test_will_topic_with_32000_levels(start_broker, proto):
    """MQTT-3.1.3-11 (the Will Topic is a topic name, validated like one) with max_topic_levels
    [128]: a retained will whose topic has 32,000 levels is refused at CONNECT (5.0: CONNACK
    0x90 Topic Name invalid; 3.1.1: a non-zero CONNACK or a closed connection), then the same
    with an empty will payload, then a `#` subscriber: the broker survives and a bystander
    keeps its QoS 1 round trips."""
    v = PROTOS[proto]
    b = start_broker()
    with bystander(b):
        for n, payload in enumerate((b"x" * 100, b"")):
            c = RawClient(b.port, v)
            c.send(mqtt_raw.connect(
                f"deep-will-{n}", v, clean=True, keepalive=60,
                will=dict(topic=DEEP, payload=payload, qos=1, retain=True)))
            kind, ack = outcome(c, 5)
            if v == V5:
                assert kind == "packet" and ack.type == CONNACK and ack.code == 0x90, (kind, ack)
            else:
                assert kind == "closed" or (ack.type == CONNACK and ack.code != 0), (kind, ack)
            c.close()  # no DISCONNECT: a will that had been accepted would now be published
            b.assert_alive()
        sub = RawClient(b.port, v)
        assert sub.connect("hash-sub").code == 0
        suback = sub.subscribe("#")
        assert suback is not None and suback.type == SUBACK and suback.suback_codes == [1]
        seen = no_publish_arrives(sub, 1.0)
        assert not [t for t in seen if t.startswith("a/a/a")], f"a deep will was published: {seen}"
        sub.disconnect()
    b.assert_alive()


@pytest.mark.parametrize("proto", PROTOS)
def test_publish_topic_with_32000_levels(start_broker, proto):
    """max_topic_levels [128] on PUBLISH topic names: a retained QoS 1 PUBLISH to a 32,000-level
    topic is refused (5.0: PUBACK >= 0x80 or DISCONNECT 0x90 or close; 3.1.1: not delivered),
    never reaches a `#` subscriber, and the broker survives."""
    v = PROTOS[proto]
    b = start_broker()
    with bystander(b):
        sub = RawClient(b.port, v)
        assert sub.connect("deep-pub-sub").code == 0
        assert sub.subscribe("#").suback_codes == [1]
        pub = RawClient(b.port, v)
        assert pub.connect("deep-pub").code == 0
        pub.send(mqtt_raw.publish(DEEP, b"x", qos=1, retain=True, pid=7, proto=v))
        kind, p = outcome(pub, 5)
        if v == V5:
            assert kind == "closed" or (p.type == PUBACK and p.code >= 0x80) or (
                p.type == DISCONNECT and p.code == 0x90), (kind, p)
        seen = no_publish_arrives(sub, 1.0)
        assert not [t for t in seen if t.startswith("a/a/a")], f"deep topic delivered: {seen}"
        pub.close()
        sub.disconnect()
        late = RawClient(b.port, v)
        assert late.connect("deep-pub-late").code == 0
        assert late.subscribe("#").suback_codes == [1]
        seen = no_publish_arrives(late, 1.0)
        assert not [t for t in seen if t.startswith("a/a/a")], f"deep topic was retained: {seen}"
        late.disconnect()
    b.assert_alive()


@pytest.mark.parametrize("proto", PROTOS)
def test_subscribe_filter_with_32000_levels(start_broker, proto):
    """max_topic_levels [128] on SUBSCRIBE filters: a 32,000-level filter gets a failure
    (5.0: SUBACK 0x8F Topic Filter invalid; 3.1.1: SUBACK 0x80), or the connection is
    closed; the broker survives and still routes."""
    v = PROTOS[proto]
    b = start_broker()
    with bystander(b):
        c = RawClient(b.port, v)
        assert c.connect("deep-sub").code == 0
        c.send(mqtt_raw.subscribe(3, [(DEEP_FILTER, 1), (DEEP, 1)], proto=v))
        kind, p = outcome(c, 5)
        if kind == "packet":
            assert p.type in (SUBACK, DISCONNECT), p
            if p.type == SUBACK:
                assert p.suback_codes == ([0x8F, 0x8F] if v == V5 else [0x80, 0x80]), p.suback_codes
        else:
            assert kind == "closed", kind
        c.close()
    b.assert_alive(v)


@pytest.mark.parametrize("proto", PROTOS)
def test_topic_levels_boundary(start_broker, proto):
    """max_topic_levels [128]: 128 levels are accepted in a PUBLISH topic and a SUBSCRIBE
    filter; 129 are refused (5.0: SUBACK 0x8F, PUBACK 0x90 or DISCONNECT 0x90; 3.1.1:
    SUBACK 0x80, not delivered)."""
    v = PROTOS[proto]
    ok_topic = "/".join(["l"] * 128)
    bad_topic = "/".join(["l"] * 129)
    b = start_broker()
    c = RawClient(b.port, v)
    assert c.connect("levels").code == 0
    assert c.subscribe([(ok_topic, 1)]).suback_codes == [1]
    assert c.subscribe([(bad_topic, 1)]).suback_codes == [0x8F if v == V5 else 0x80]
    assert c.subscribe([("l/#", 1)]).suback_codes == [1]
    r = c.publish(ok_topic, b"fine", qos=1)
    assert r is not None and r.type == PUBACK and r.code < 0x80, r
    c.send(mqtt_raw.publish(bad_topic, b"bad", qos=1, pid=99, proto=v))
    got, refused = [], None
    for _ in range(10):
        kind, p = outcome(c, 1.0)
        if kind != "packet":
            refused = refused or kind
            break
        if p.type == PUBLISH:
            f = p.publish_fields()
            got.append(f[1])
            c.try_send(mqtt_raw.puback(f[4], proto=v))
        elif p.type == PUBACK and p.pid == 99:
            refused = p.code
        elif p.type == DISCONNECT:
            refused = p.code
            break
    assert b"fine" in got and b"bad" not in got, got
    if v == V5:
        assert refused in (0x90, "closed"), refused
    c.close()
    b.assert_alive(v)


def test_topic_length_limit(start_broker):
    """max_topic_length (set to 100): a 101-byte will topic gets CONNACK 0x90, a 101-byte
    filter SUBACK 0x8F, a 101-byte PUBLISH topic PUBACK 0x90 / DISCONNECT 0x90 (5.0);
    100 bytes are fine."""
    b = start_broker({"mqtt": {"max_topic_length": 100}})
    ok, bad = "t/" + "x" * 98, "t/" + "x" * 99
    c = RawClient(b.port, V5)
    ack = c.connect("len-will", will=dict(topic=bad, payload=b"w", qos=0))
    assert ack is not None and ack.type == CONNACK and ack.code == 0x90, ack
    c.close()
    c = RawClient(b.port, V5)
    assert c.connect("len").code == 0
    assert c.subscribe([(ok, 1), (bad, 1)]).suback_codes == [1, 0x8F]
    r = c.publish(bad, b"x", qos=1)
    assert r is None or (r.type == PUBACK and r.code == 0x90) or (
        r.type == DISCONNECT and r.code == 0x90), r
    c.close()
    b.assert_alive(V5)
