"""Garbage, lies about packet length, half packets, idle sockets, and how the broker closes
connections it refuses."""
import random
import socket
import time

import pytest

import mqtt_raw
from abuse_support import bystander, closes, outcome, settled_rss_kb
from mqtt_raw import CONNACK, DISCONNECT, V5, V311, RawClient

DEEP = "a/" * 31999 + "a"
GARBAGE = bytes(random.Random(7).randrange(256) for _ in range(32 * 1024))


def _deep_will():
    return mqtt_raw.connect("graceful-1", V5, will=dict(topic=DEEP, payload=b"w", retain=True)), \
        None, CONNACK, 0x90


def _bad_version():
    body = mqtt_raw.mstr("MQTT") + bytes([9, 2]) + mqtt_raw.u16(60) + mqtt_raw.mstr("graceful-2")
    return mqtt_raw.packet(mqtt_raw.CONNECT, 0, body), None, CONNACK, None


def _oversized_publish():
    # a PUBLISH whose fixed header claims the largest remaining length there is
    return mqtt_raw.connect("graceful-3", V5), b"\x30\xff\xff\xff\x7f", DISCONNECT, 0x95


def _second_connect():
    # MQTT-3.1.0-2: a second CONNECT is a Protocol Error
    return mqtt_raw.connect("graceful-4", V5), mqtt_raw.connect("graceful-4", V5), DISCONNECT, 0x82


def _topic_alias_zero():
    # MQTT-3.3.2-8: Topic Alias 0 is not permitted (0x94 Topic Alias invalid)
    return mqtt_raw.connect("graceful-5", V5), mqtt_raw.publish(
        "g/t", b"x", qos=0, proto=V5, properties=[(mqtt_raw.P_TOPIC_ALIAS, 0)]), DISCONNECT, 0x94


CASES = {
    "connack-0x90-deep-will": _deep_will,
    "connack-unsupported-version": _bad_version,
    "disconnect-0x95-packet-too-large": _oversized_publish,
    "disconnect-0x82-second-connect": _second_connect,
    "disconnect-0x94-topic-alias-zero": _topic_alias_zero,
}


@pytest.mark.parametrize("case", CASES)
def test_graceful_close_after_refusal(broker, case):
    """MQTT-3.2.2-7 / MQTT-4.13.2-1 (the broker sends CONNACK / DISCONNECT with a reason code
    before closing): the client reads that packet and then EOF, never a connection reset,
    even though it sent 32 KB of garbage right after the offending packet."""
    first, offending, ptype, code = CASES[case]()
    c = RawClient(broker.port, V5)
    data = first + (offending or b"") + GARBAGE
    if offending is not None:
        c.send(first)
        ack = c.read(5)
        assert ack is not None and ack.type == CONNACK and ack.code == 0, ack
        data = offending + GARBAGE
    c.try_send(data)
    time.sleep(0.3)  # let any RST arrive before reading
    try:
        packets, eof = c.read_until_eof(5)
    except ConnectionResetError:
        pytest.fail("connection reset instead of a graceful close")
    types = [(p.type, p.body[:2]) for p in packets]
    assert packets and packets[-1].type == ptype, f"expected packet type {ptype}, got {types}"
    last = packets[-1]
    if code is not None:
        assert last.code == code, last
    else:
        assert last.code >= 0x80 or (ptype == CONNACK and last.code != 0), last
    assert eof, "no EOF after the refusal"
    c.close()
    broker.assert_alive()


def test_random_garbage(broker):
    """MQTT-4.8.0-1 (malformed packets close the connection): 50 connections of random bytes
    and 50 valid CONNECTs followed by random bytes: the broker survives and the bystander
    keeps going."""
    rng = random.Random(1234)
    with bystander(broker):
        before = settled_rss_kb(broker.pid)
        socks = []
        for i in range(100):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
            c = RawClient(broker.port, rng.choice([V311, V5]))
            if i % 2:
                junk = mqtt_raw.connect(f"junk-{i}", c.proto) + junk
            c.try_send(junk, timeout=1)
            socks.append(c)
        time.sleep(1.0)
        for c in socks:
            c.close()
        after = settled_rss_kb(broker.pid)
    assert (after - before) / 1024 < 20, f"RSS grew {(after - before) / 1024:.1f} MB"
    broker.assert_alive()


def test_connect_claiming_max_remaining_length(broker):
    """max_packet_size [1 MiB] is enforced from the fixed header: 20 CONNECTs claiming remaining
    length 268,435,455 are closed promptly and cost no memory (< 20 MB RSS growth), and a
    5-byte remaining length (malformed, MQTT-1.5.5) is closed too."""
    with bystander(broker):
        before = settled_rss_kb(broker.pid)
        socks = []
        for i in range(20):
            c = RawClient(broker.port, V311)
            c.try_send(b"\x10\xff\xff\xff\x7f" + b"\x00\x04MQTT\x04\x02\x00\x3c" + b"z" * 4096)
            socks.append(c)
        bad = RawClient(broker.port, V311)
        bad.try_send(b"\x10\xff\xff\xff\xff\x01")
        socks.append(bad)
        for i, c in enumerate(socks):
            assert closes(c, 3), f"connection {i} still open"
            c.close()
        after = settled_rss_kb(broker.pid)
    assert (after - before) / 1024 < 20, f"RSS grew {(after - before) / 1024:.1f} MB"
    broker.assert_alive()


def test_half_connect_then_silence(start_broker):
    """[limits] connect_timeout_secs (set to 1): a connection that sends half a CONNECT, and one
    that sends nothing, are closed about 1 s later (within 2.5 s)."""
    b = start_broker({"limits": {"connect_timeout_secs": 1}})
    half = RawClient(b.port, V311)
    whole = mqtt_raw.connect("half", V311)
    half.send(whole[: len(whole) // 2])
    mute = RawClient(b.port, V311)
    t0 = time.monotonic()
    assert closes(half, 2.5), "half CONNECT still open after 2.5 s"
    assert closes(mute, max(0.1, 2.5 - (time.monotonic() - t0))), "silent socket still open"
    half.close()
    mute.close()
    b.assert_alive()


def test_thousand_idle_sockets(start_broker):
    """[limits] connect_timeout_secs (set to 4) and max_connections [100000]: 1000 sockets that
    send nothing cost < 20 MB of RSS, the broker keeps serving a bystander meanwhile, and it
    closes them all after the connect timeout."""
    b = start_broker({"limits": {"connect_timeout_secs": 4}})
    with bystander(b):
        before = settled_rss_kb(b.pid)
        # One handshake at a time: a burst would overflow the listen backlog, and a
        # SYN-cookie handshake the broker never accepted looks open forever to the client.
        socks = [RawClient(b.port, V311, timeout=3) for _ in range(1000)]
        opened = time.monotonic()
        after = settled_rss_kb(b.pid, 1.0)
        b.assert_alive()
        still_open = 0
        deadline = opened + 6.5
        for c in socks:
            if not closes(c, max(0.01, deadline - time.monotonic())):
                still_open += 1
            c.close()
    grew = (after - before) / 1024
    print(f"RSS {before} -> {after} KiB ({grew:+.1f} MB)")
    assert grew < 20, f"RSS grew {grew:.1f} MB for 1000 idle sockets"
    assert still_open == 0, f"{still_open} idle sockets still open 6.5 s after connecting"
    b.assert_alive()
