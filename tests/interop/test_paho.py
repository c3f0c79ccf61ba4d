"""paho-mqtt (the Eclipse Python client) against Halyard, MQTT 3.1.1 and 5.0."""
import queue
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

PROTOCOLS = {"3.1.1": mqtt.MQTTv311, "5.0": mqtt.MQTTv5}
WAIT = 5


class Client:
    """A paho client whose received messages land in a queue."""

    def __init__(self, broker, protocol, client_id="", clean=True, will=None, session_expiry=None):
        self.protocol = protocol
        kwargs = {}
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs)
        self.messages = queue.Queue()
        self.connected = queue.Queue()
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_connect = lambda c, u, flags, rc, props: self.connected.put((flags, rc))
        if will:
            self.c.will_set(*will)
        connect_kwargs = {}
        if protocol == mqtt.MQTTv5:
            connect_kwargs["clean_start"] = clean
            if session_expiry is not None:
                p = Properties(PacketTypes.CONNECT)
                p.SessionExpiryInterval = session_expiry
                connect_kwargs["properties"] = p
        self.c.connect(broker.host, broker.port, keepalive=30, **connect_kwargs)
        self.c.loop_start()
        self.flags, rc = self.connected.get(timeout=WAIT)
        assert not rc.is_failure, rc

    def subscribe(self, topic, qos):
        got = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, codes, props: got.put(codes)
        self.c.subscribe(topic, qos)
        codes = got.get(timeout=WAIT)
        assert [int(c.value) if hasattr(c, "value") else int(c) for c in codes] == [qos]

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()

    def next(self):
        return self.messages.get(timeout=WAIT)

    def nothing(self, secs=0.5):
        with pytest.raises(queue.Empty):
            self.messages.get(timeout=secs)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_subscribe_each_qos(broker, proto, qos):
    sub = Client(broker, PROTOCOLS[proto])
    sub.subscribe("paho/+/data", 2)
    pub = Client(broker, PROTOCOLS[proto])
    for i in range(20):
        pub.publish("paho/x/data", f"m{i}", qos=qos)
    got = [sub.next() for _ in range(20)]
    assert [m.payload.decode() for m in got] == [f"m{i}" for i in range(20)]
    assert {m.qos for m in got} == {qos}
    sub.nothing()
    sub.close()
    pub.close()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_retained_message(broker, proto):
    pub = Client(broker, PROTOCOLS[proto])
    pub.publish("paho/retained", "kept", qos=1, retain=True)
    sub = Client(broker, PROTOCOLS[proto])
    sub.subscribe("paho/#", 1)
    m = sub.next()
    assert (m.topic, m.payload, m.retain) == ("paho/retained", b"kept", True)
    pub.publish("paho/retained", "", qos=1, retain=True)  # delete
    assert sub.next().payload == b""
    late = Client(broker, PROTOCOLS[proto])
    late.subscribe("paho/#", 1)
    late.nothing()
    for c in (pub, sub, late):
        c.close()


WILL_CLIENT = """
import sys, time, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, proto = int(sys.argv[1]), int(sys.argv[2])
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="will-client", protocol=proto)
c.will_set("paho/will", "gone", qos=1, retain=False)
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()
time.sleep(0.5)
print("connected", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_will_published_when_client_dies(broker, proto):
    sub = Client(broker, PROTOCOLS[proto])
    sub.subscribe("paho/will", 1)
    dying = subprocess.Popen(
        [sys.executable, "-c", WILL_CLIENT, str(broker.port), str(PROTOCOLS[proto])],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert dying.stdout.readline().strip() == "connected"
    dying.kill()
    dying.wait()
    m = sub.next()
    assert (m.topic, m.payload, m.qos) == ("paho/will", b"gone", 1)
    sub.close()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_will_not_published_after_disconnect(broker, proto):
    sub = Client(broker, PROTOCOLS[proto])
    sub.subscribe("paho/will2", 1)
    leaving = Client(broker, PROTOCOLS[proto], will=("paho/will2", "gone", 1, False))
    leaving.close()
    sub.nothing(1.0)
    sub.close()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_persistent_session_queues_while_offline(broker, proto):
    expiry = 300 if proto == "5.0" else None
    sub = Client(broker, PROTOCOLS[proto], client_id="paho-persist", clean=False, session_expiry=expiry)
    sub.subscribe("paho/offline", 1)
    sub.close()
    pub = Client(broker, PROTOCOLS[proto])
    for i in range(5):
        pub.publish("paho/offline", f"q{i}", qos=1)
    back = Client(broker, PROTOCOLS[proto], client_id="paho-persist", clean=False, session_expiry=expiry)
    assert back.flags.session_present
    assert [back.next().payload.decode() for _ in range(5)] == [f"q{i}" for i in range(5)]
    back.close()
    pub.close()


def test_v5_properties_forwarded(broker):
    sub = Client(broker, mqtt.MQTTv5)
    sub.subscribe("paho/props", 1)
    pub = Client(broker, mqtt.MQTTv5)
    p = Properties(PacketTypes.PUBLISH)
    p.UserProperty = [("k", "v")]
    p.ResponseTopic = "paho/reply"
    p.CorrelationData = b"\x01\x02"
    p.ContentType = "text/plain"
    info = pub.c.publish("paho/props", "x", qos=1, properties=p)
    info.wait_for_publish(timeout=WAIT)
    m = sub.next()
    assert m.properties.UserProperty == [("k", "v")]
    assert m.properties.ResponseTopic == "paho/reply"
    assert m.properties.CorrelationData == b"\x01\x02"
    assert m.properties.ContentType == "text/plain"
    sub.close()
    pub.close()


@pytest.mark.parametrize("version", PROTOCOLS)
def test_subscribe_failure_with_an_acl(configured_broker, version):
    """The Paho suite's test_subscribe_failure, with the configuration its README asks for: an
    ACL that denies test/nosubscribe, and subscribe_denied_reason = "unspecified". SUBACK
    carries 0x80 for it [MQTT-3.9.3-2], and other subscriptions are granted and served."""
    acl = "topic readwrite #\ntopic deny test/nosubscribe\n"
    b = configured_broker(
        '[auth]\nacl_file = "$DIR/acl"\nsubscribe_denied_reason = "unspecified"\n',
        {"acl": acl},
    )
    c = Client(b, PROTOCOLS[version])
    got = queue.Queue()
    c.c.on_subscribe = lambda cl, u, mid, codes, props: got.put(codes)
    c.c.subscribe("test/nosubscribe", 2)
    codes = got.get(timeout=WAIT)
    assert [int(x.value) if hasattr(x, "value") else int(x) for x in codes] == [0x80]
    c.subscribe("test/ok", 1)
    c.c.publish("test/ok", b"yes", qos=1).wait_for_publish(WAIT)
    assert c.messages.get(timeout=WAIT).topic == "test/ok"
    assert c.messages.empty()
