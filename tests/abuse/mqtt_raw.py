"""A small hand-written MQTT 3.1.1 / 5.0 encoder and a raw socket client.

It exists so the abuse tests can send what paho-mqtt refuses to produce: thousands of topic
levels, hundreds of thousands of user properties, packets that lie about their length, half
packets, and clients that never read. Everything here is synchronous and bounded by timeouts.
"""
import socket
import struct
import time

V311 = 4
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

# MQTT 5 property identifiers (section 2.2.2.2) and their wire types.
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_SERVER_REFERENCE = 0x1C
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_AVAILABLE = 0x28
P_SUBSCRIPTION_ID_AVAILABLE = 0x29
P_SHARED_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROP_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT, 0x11: _U32,
    0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE, 0x18: _U32, 0x19: _BYTE,
    0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16, 0x22: _U16, 0x23: _U16, 0x24: _BYTE,
    0x25: _BYTE, 0x26: _PAIR, 0x27: _U32, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}


# ---------------------------------------------------------------------------------------
# encoding

def varint(n: int) -> bytes:
    assert 0 <= n <= 268_435_455
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def u16(n: int) -> bytes:
    return struct.pack(">H", n)


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def mstr(s) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    assert len(b) <= 65535, len(b)
    return u16(len(b)) + b


def props(items=()) -> bytes:
    """Encode a property list [(id, value), ...]; user properties as (0x26, (k, v))."""
    body = bytearray()
    for pid, value in items:
        t = PROP_TYPES[pid]
        body += varint(pid)
        if t == _BYTE:
            body.append(value)
        elif t == _U16:
            body += u16(value)
        elif t == _U32:
            body += u32(value)
        elif t == _VARINT:
            body += varint(value)
        elif t in (_STR, _BIN):
            body += mstr(value)
        else:
            body += mstr(value[0]) + mstr(value[1])
    return varint(len(body)) + bytes(body)


def user_props(n: int, key="k", value="v"):
    return [(P_USER_PROPERTY, (key, value))] * n


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect(client_id="", proto=V311, clean=True, keepalive=60, will=None, properties=(),
            username=None, password=None) -> bytes:
    """CONNECT. will = dict(topic, payload, qos=0, retain=False, properties=()) or None."""
    flags = 0x02 if clean else 0
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = mstr("MQTT") + bytes([proto, flags]) + u16(keepalive)
    if proto == V5:
        body += props(properties)
    body += mstr(client_id)
    if will is not None:
        if proto == V5:
            body += props(will.get("properties", ()))
        body += mstr(will["topic"]) + mstr(will["payload"])
    if username is not None:
        body += mstr(username)
    if password is not None:
        body += mstr(password)
    return packet(CONNECT, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, pid=1, proto=V311, properties=(),
            dup=False) -> bytes:
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = mstr(topic)
    if qos:
        body += u16(pid)
    if proto == V5:
        body += props(properties)
    body += payload.encode() if isinstance(payload, str) else bytes(payload)
    return packet(PUBLISH, flags, body)


def subscribe(pid, filters, proto=V311, properties=()) -> bytes:
    """filters: [(filter, options_byte)]; for 3.1.1 the options byte is the QoS."""
    body = u16(pid)
    if proto == V5:
        body += props(properties)
    for f, opts in filters:
        body += mstr(f) + bytes([opts])
    return packet(SUBSCRIBE, 2, body)


def puback(pid, reason=0, proto=V311) -> bytes:
    if proto == V5 and reason:
        return packet(PUBACK, 0, u16(pid) + bytes([reason]))
    return packet(PUBACK, 0, u16(pid))


def pingreq() -> bytes:
    return b"\xc0\x00"


def disconnect(reason=0, proto=V311) -> bytes:
    if proto == V5 and reason:
        return packet(DISCONNECT, 0, bytes([reason, 0]))
    return b"\xe0\x00"


# ---------------------------------------------------------------------------------------
# decoding

def parse_props(buf: bytes, i: int):
    """Return (dict of property id -> value or list for user properties, next index)."""
    n, i = read_varint(buf, i)
    end = i + n
    out = {}
    while i < end:
        pid, i = read_varint(buf, i)
        t = PROP_TYPES.get(pid)
        if t == _BYTE:
            v, i = buf[i], i + 1
        elif t == _U16:
            v, i = struct.unpack_from(">H", buf, i)[0], i + 2
        elif t == _U32:
            v, i = struct.unpack_from(">I", buf, i)[0], i + 4
        elif t == _VARINT:
            v, i = read_varint(buf, i)
        elif t in (_STR, _BIN):
            ln = struct.unpack_from(">H", buf, i)[0]
            v, i = bytes(buf[i + 2:i + 2 + ln]), i + 2 + ln
        elif t == _PAIR:
            kl = struct.unpack_from(">H", buf, i)[0]
            k = bytes(buf[i + 2:i + 2 + kl])
            i += 2 + kl
            vl = struct.unpack_from(">H", buf, i)[0]
            v = (k, bytes(buf[i + 2:i + 2 + vl]))
            i += 2 + vl
            out.setdefault(pid, []).append(v)
            continue
        else:
            raise ValueError(f"unknown property 0x{pid:02x}")
        out[pid] = v
    return out, end


def read_varint(buf, i):
    mult, value = 1, 0
    for _ in range(4):
        b = buf[i]
        i += 1
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, i
        mult *= 128
    raise ValueError("malformed variable byte integer")


class Packet:
    def __init__(self, ptype, flags, body, proto):
        self.type, self.flags, self.body, self.proto = ptype, flags, bytes(body), proto

    # CONNACK
    @property
    def session_present(self):
        return bool(self.body[0] & 1)

    @property
    def code(self):
        """CONNACK return/reason code; PUBACK/DISCONNECT reason code (0 when absent)."""
        if self.type == CONNACK:
            return self.body[1]
        if self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            return self.body[2] if len(self.body) > 2 else 0
        if self.type == DISCONNECT:
            return self.body[0] if self.body else 0
        raise ValueError(f"no code for packet type {self.type}")

    @property
    def properties(self):
        if self.proto != V5:
            return {}
        if self.type == CONNACK:
            return parse_props(self.body, 2)[0] if len(self.body) > 2 else {}
        if self.type == DISCONNECT:
            return parse_props(self.body, 1)[0] if len(self.body) > 1 else {}
        if self.type == PUBACK:
            return parse_props(self.body, 3)[0] if len(self.body) > 3 else {}
        raise ValueError("properties not parsed for this type")

    @property
    def pid(self):
        return struct.unpack_from(">H", self.body, 0)[0]

    # SUBACK
    @property
    def suback_codes(self):
        i = 2
        if self.proto == V5:
            _, i = parse_props(self.body, 2)
        return list(self.body[i:])

    # PUBLISH
    def publish_fields(self):
        """(topic, payload, qos, retain, pid or None, props)"""
        tl = struct.unpack_from(">H", self.body, 0)[0]
        topic = self.body[2:2 + tl].decode()
        i = 2 + tl
        qos = (self.flags >> 1) & 3
        pid = None
        if qos:
            pid = struct.unpack_from(">H", self.body, i)[0]
            i += 2
        pr = {}
        if self.proto == V5:
            pr, i = parse_props(self.body, i)
        return topic, self.body[i:], qos, bool(self.flags & 1), pid, pr

    def __repr__(self):
        return f"<Packet type={self.type} flags={self.flags} len={len(self.body)} head={self.body[:8]!r}>"


class RawClient:
    """One TCP connection speaking hand-encoded MQTT."""

    def __init__(self, port, proto=V311, rcvbuf=None, timeout=5.0, wait_connected=True):
        """wait_connected=False only starts the TCP handshake (non-blocking connect); the
        first send or read then waits for it."""
        self.proto = proto
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if wait_connected:
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", port))
        else:
            self.sock.setblocking(False)
            self.sock.connect_ex(("127.0.0.1", port))
        self.buf = bytearray()
        self.eof = False
        self.next_pid = 1

    def pid(self):
        p = self.next_pid
        self.next_pid = p % 65535 + 1
        return p

    def send(self, data: bytes, timeout=5.0):
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def try_send(self, data: bytes, timeout=5.0) -> bool:
        """sendall that reports (instead of raising) a connection the broker has closed."""
        try:
            self.send(data, timeout)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            return False

    def _fill(self, deadline) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _try_parse(self):
        if len(self.buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            i += 1
            if not b & 0x80:
                break
            mult *= 128
            if i > 4:
                raise ValueError("broker sent a malformed remaining length")
        if len(self.buf) < i + length:
            return None
        first = self.buf[0]
        body = self.buf[i:i + length]
        del self.buf[:i + length]
        return Packet(first >> 4, first & 0x0F, body, self.proto)

    def read(self, timeout=5.0):
        """The next packet, or None on EOF or timeout (self.eof tells which)."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._try_parse()
            if p is not None:
                return p
            if self.eof or not self._fill(deadline):
                return None

    def read_type(self, ptype, timeout=5.0, auto_ack=True):
        """The next packet of type ptype, acknowledging QoS 1 PUBLISHes met on the way."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.read(max(0.0, deadline - time.monotonic()))
            if p is None or p.type == ptype:
                return p
            if auto_ack and p.type == PUBLISH and (p.flags >> 1) & 3 == 1:
                self.send(puback(p.publish_fields()[4], proto=self.proto))
            if p.type == DISCONNECT:
                return p

    def read_until_eof(self, timeout=5.0, max_bytes=64 << 20):
        """Read everything until EOF; returns (packets, eof_seen). ConnectionResetError propagates."""
        deadline = time.monotonic() + timeout
        packets = []
        total = 0
        while time.monotonic() < deadline and total < max_bytes:
            p = self.read(max(0.0, deadline - time.monotonic()))
            if p is None:
                break
            total += len(p.body)
            packets.append(p)
        return packets, self.eof

    def connect(self, client_id="", clean=True, keepalive=60, will=None, properties=(),
                timeout=5.0, **kw):
        self.send(connect(client_id, self.proto, clean, keepalive, will, properties, **kw))
        return self.read(timeout)

    def subscribe(self, filters, timeout=5.0, properties=()):
        if isinstance(filters, str):
            filters = [(filters, 1)]
        pid = self.pid()
        self.send(subscribe(pid, filters, self.proto, properties))
        return self.read_type(SUBACK, timeout)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=(), timeout=5.0):
        """Publish; for QoS 1 wait for and return the PUBACK (or DISCONNECT / None)."""
        pid = self.pid() if qos else 1
        self.send(publish(topic, payload, qos, retain, pid, self.proto, properties), timeout)
        if qos == 1:
            return self.read_type(PUBACK, timeout)
        return None

    def ping(self, timeout=5.0):
        self.send(pingreq())
        return self.read_type(PINGRESP, timeout)

    def disconnect(self):
        try:
            self.send(disconnect(proto=self.proto), timeout=1.0)
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
