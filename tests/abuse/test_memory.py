"""Attacks on the broker's memory. Each measures the broker's VmRSS before and after the
attack (after it settles) and bounds the growth, while a bystander keeps doing QoS 1 round
trips."""
import time

import pytest

import mqtt_raw
from abuse_support import MB, bystander, outcome, rss_kb, settled_rss_kb
from mqtt_raw import (DISCONNECT, P_TOPIC_ALIAS, PUBACK, PUBLISH, V5, V311, RawClient,
                      user_props)


def growth_mb(before_kb, after_kb):
    return (after_kb - before_kb) / 1024


def test_offline_sessions_share_one_payload(start_broker):
    """Offline persistent sessions share one copy of a message: 100 offline 3.1.1 sessions
    (clean session 0, subscribed QoS 1 to big/t) and one 2 MB QoS 1 PUBLISH (max_packet_size
    raised to 4 MiB): RSS grows by < 40 MB, not 100 x 2 MB; a session that comes back gets
    the whole message."""
    b = start_broker({"mqtt": {"max_packet_size": 4 * MB}})
    for i in range(100):
        c = RawClient(b.port, V311)
        assert c.connect(f"off-{i}", clean=False).code == 0
        assert c.subscribe("big/t").suback_codes == [1]
        c.disconnect()
    payload = bytes(range(256)) * (2 * MB // 256)
    with bystander(b):
        before = settled_rss_kb(b.pid)
        pub = RawClient(b.port, V311)
        assert pub.connect("big-pub").code == 0
        r = pub.publish("big/t", payload, qos=1, timeout=10)
        assert r is not None and r.type == PUBACK, r
        pub.disconnect()
        after = settled_rss_kb(b.pid)
    grew = growth_mb(before, after)
    print(f"RSS {before} -> {after} KiB ({grew:+.1f} MB)")
    assert grew < 40, f"RSS grew {grew:.1f} MB for one 2 MB message to 100 offline sessions"
    back = RawClient(b.port, V311)
    ack = back.connect("off-7", clean=False)
    assert ack.code == 0 and ack.session_present
    p = back.read_type(PUBLISH, 10)
    assert p is not None and p.type == PUBLISH, p
    topic, got, qos, _, pid, _ = p.publish_fields()
    assert (topic, qos, len(got)) == ("big/t", 1, len(payload)) and got == payload
    back.send(mqtt_raw.puback(pid))
    back.disconnect()
    b.assert_alive()


def test_retained_flood_to_client_that_never_reads(start_broker):
    """Retained deliveries go through the session's queue limits max_queued_messages [1000]
    and max_queued_bytes [16 MiB] (MQTT-3.3.1-6 sends retained messages on SUBSCRIBE): 2,000
    retained 1 KB messages, then 300 SUBSCRIBEs of r/# from a client that never reads:
    RSS grows by < 40 MB (unbounded it would be 300 x 2 MB)."""
    b = start_broker()
    pub = RawClient(b.port, V311)
    assert pub.connect("retain-pub").code == 0
    body = b"r" * 1024
    for batch in range(20):
        for i in range(100):
            pub.send(mqtt_raw.publish(f"r/{batch * 100 + i}", body, qos=1, retain=True,
                                      pid=i + 1))
        for i in range(100):
            r = pub.read_type(PUBACK, 5)
            assert r is not None and r.type == PUBACK, (batch, i, r)
    pub.disconnect()
    with bystander(b):
        before = settled_rss_kb(b.pid)
        greedy = RawClient(b.port, V311, rcvbuf=4096)
        assert greedy.connect("greedy").code == 0
        sent = 0
        deadline = time.monotonic() + 6
        for i in range(300):
            if time.monotonic() > deadline:
                break
            if not greedy.try_send(mqtt_raw.subscribe(i + 1, [("r/#", 1)]), timeout=1):
                break
            sent += 1
        time.sleep(1.0)
        after = settled_rss_kb(b.pid)
    greedy.close()
    grew = growth_mb(before, after)
    print(f"RSS {before} -> {after} KiB ({grew:+.1f} MB), {sent} SUBSCRIBEs sent")
    assert grew < 40, f"RSS grew {grew:.1f} MB after {sent} SUBSCRIBEs of r/# from a non-reader"
    b.assert_alive()


def test_user_properties_over_limit(start_broker):
    """[mqtt] max_user_properties [128]: a 5.0 QoS 1 PUBLISH with 129 user properties, and one
    with 100,000 (700 KB), are refused (PUBACK 0x83 Implementation specific error, or
    DISCONNECT) and never reach a subscriber; one with exactly 128 is delivered."""
    b = start_broker()
    sub = RawClient(b.port, V5)
    assert sub.connect("up-sub").code == 0
    assert sub.subscribe("up/t").suback_codes == [1]
    with bystander(b):
        for n, label in ((129, b"too-many"), (100_000, b"flood")):
            pub = RawClient(b.port, V5)
            assert pub.connect(f"up-pub-{n}").code == 0
            pub.send(mqtt_raw.publish("up/t", label, qos=1, pid=5, proto=V5,
                                      properties=user_props(n)))
            kind, p = outcome(pub, 5)
            assert kind == "packet" and (
                (p.type == PUBACK and p.code == 0x83) or (p.type == DISCONNECT and p.code >= 0x80)
            ), f"{n} user properties: {kind} {p!r}"
            pub.close()
        pub = RawClient(b.port, V5)
        assert pub.connect("up-pub-ok").code == 0
        r = pub.publish("up/t", b"ok", qos=1, properties=user_props(128))
        assert r is not None and r.type == PUBACK and r.code < 0x80, r
        pub.disconnect()
        got = []
        while True:
            kind, p = outcome(sub, 1.0)
            if kind != "packet":
                break
            if p.type == PUBLISH:
                f = p.publish_fields()
                got.append((f[1], len(f[5].get(mqtt_raw.P_USER_PROPERTY, []))))
                sub.send(mqtt_raw.puback(f[4], proto=V5))
        assert got == [(b"ok", 128)], got
    sub.disconnect()
    b.assert_alive(V5)


@pytest.mark.parametrize("per_conn", [50, 150], ids=["20x50", "20x150"])
def test_user_properties_memory_proportional(start_broker, per_conn):
    """max_user_properties [128] kept to, retained messages full of user properties cost memory
    in proportion to their wire size: 20 connections x 50 retained QoS 1 messages with 128
    one-byte user properties each, on distinct topics: RSS growth < 3 x wire bytes + 3 MB.
    The 20x150 case is the same bound at three times the volume, where the slack no longer
    hides a per-message overhead (kept messages pack their user properties: measured
    +4.4 MB for 2.6 MB on the wire; +31.9 MB before they were packed)."""
    b = start_broker()
    props = user_props(128)
    with bystander(b):
        before = settled_rss_kb(b.pid)
        wire = 0
        conns = []
        for c_i in range(20):
            c = RawClient(b.port, V5)
            assert c.connect(f"upm-{c_i}").code == 0
            conns.append(c)
        for c_i, c in enumerate(conns):
            data = b"".join(mqtt_raw.publish(f"upm/{c_i}/{m}", b"p", qos=1, retain=True,
                                             pid=m + 1, proto=V5, properties=props)
                            for m in range(per_conn))
            wire += len(data)
            c.send(data)
        for c in conns:
            for m in range(per_conn):
                r = c.read_type(PUBACK, 5)
                assert r is not None and r.type == PUBACK and r.code < 0x80, r
            c.disconnect()
        after = settled_rss_kb(b.pid)
    grew = (after - before) * 1024
    print(f"RSS {before} -> {after} KiB ({grew / MB:+.1f} MB), wire {wire / MB:.2f} MB")
    assert grew < 3 * wire + 3 * MB, f"RSS grew {grew / MB:.1f} MB for {wire / MB:.2f} MB on the wire"
    b.assert_alive()


def test_topic_alias_bytes(start_broker):
    """[mqtt] topic_alias_maximum [64] and max_topic_alias_bytes [65536]: 20 MQTT 5
    connections each try to define 64 topic aliases for 60 KB topic names; each is stopped
    once its alias table passes 64 KiB (DISCONNECT 0x97 Quota exceeded, or closed), and RSS
    grows by < 20 MB (unbounded: 20 x 64 x 60 KB = 77 MB)."""
    b = start_broker()
    stopped = {}
    with bystander(b):
        before = settled_rss_kb(b.pid)
        for c_i in range(20):
            c = RawClient(b.port, V5)
            assert c.connect(f"alias-{c_i}").code == 0
            for a in range(1, 65):
                topic = f"ta/{c_i}/{a}/" + "x" * 60000
                r = c.try_send(mqtt_raw.publish(topic, b"", qos=1, pid=a, proto=V5,
                                                properties=[(P_TOPIC_ALIAS, a)]), timeout=3)
                kind, p = outcome(c, 3) if r else ("closed", None)
                if kind == "packet" and p.type == PUBACK:
                    continue
                stopped[c_i] = (a, kind, p.code if p is not None and p.type == DISCONNECT else None)
                break
            c.close()
        after = settled_rss_kb(b.pid)
    grew = growth_mb(before, after)
    print(f"RSS {before} -> {after} KiB ({grew:+.1f} MB), stopped at {stopped}")
    problems = []
    if len(stopped) != 20:
        problems.append(f"{20 - len(stopped)} of 20 connections held 64 x 60 KB aliases")
    bad = {k: v for k, v in stopped.items() if v[1] == "packet" and v[2] != 0x97}
    if bad:
        problems.append(f"stopped with the wrong reason: {bad}")
    if grew >= 20:
        problems.append(f"RSS grew {grew:.1f} MB")
    assert not problems, problems
    b.assert_alive(V5)


def test_memory_limit_bytes(start_broker):
    """[mqtt] memory_limit_bytes (set to 8 MiB), counted over the bytes of messages held:
    offline QoS 1 sessions (max_queued_bytes raised to 64 MiB) are filled with 1 MB messages;
    once over the ceiling a 5.0 publisher gets PUBACK 0x97 Quota exceeded, RSS stays bounded
    (< 40 MB growth), and after the sessions are cleaned (one drained, the rest reconnected
    with clean session) publishing works again, bystander included. (While over the ceiling
    every QoS 1 message is refused, the bystander's too, so it only runs afterwards.)"""
    b = start_broker({"mqtt": {"memory_limit_bytes": 8 * MB, "max_queued_bytes": 64 * MB,
                               "max_packet_size": 2 * MB}})
    for i in range(4):
        c = RawClient(b.port, V311)
        assert c.connect(f"mem-{i}", clean=False).code == 0
        assert c.subscribe("mem/t").suback_codes == [1]
        c.disconnect()
    payload = b"m" * MB
    # No bystander while over the ceiling: its own QoS 1 messages are refused too then.
    before = settled_rss_kb(b.pid)
    pub = RawClient(b.port, V5)
    assert pub.connect("mem-pub").code == 0
    codes = []
    for i in range(30):
        r = pub.publish("mem/t", payload, qos=1, timeout=10)
        # Refused either in PUBACK (the message was read, then refused) or, when buffering
        # the 1 MB packet itself would pass the ceiling, by DISCONNECT: both 0x97.
        assert r is not None and r.type in (PUBACK, DISCONNECT), (i, r)
        codes.append(r.code)
        if r.code >= 0x80:
            break
    after = settled_rss_kb(b.pid)
    assert codes[-1] == 0x97, f"no PUBACK 0x97 after {len(codes)} x 1 MB held: {codes}"
    assert len(codes) <= 12, f"first refusal only at message {len(codes)}"
    grew = growth_mb(before, after)
    print(f"RSS {before} -> {after} KiB ({grew:+.1f} MB), PUBACK codes {codes}")
    assert grew < 40, f"RSS grew {grew:.1f} MB under an 8 MiB memory limit"
    # drain one session, throw the others away
    d = RawClient(b.port, V311)
    assert d.connect("mem-0", clean=False).session_present
    drained = 0
    while True:
        p = d.read_type(PUBLISH, 1.5)
        if p is None or p.type != PUBLISH:
            break
        drained += 1
        d.send(mqtt_raw.puback(p.publish_fields()[4]))
    d.disconnect()
    assert drained >= 1
    for i in range(4):
        c = RawClient(b.port, V311)
        assert c.connect(f"mem-{i}", clean=True).code == 0
        c.disconnect()
    time.sleep(0.3)
    pub = RawClient(b.port, V5)
    assert pub.connect("mem-pub").code == 0
    with bystander(b):
        r = pub.publish("mem/t", payload, qos=1, timeout=10)
        assert r is not None and r.type == PUBACK and r.code < 0x80, r
    pub.disconnect()
    b.assert_alive(V5)
