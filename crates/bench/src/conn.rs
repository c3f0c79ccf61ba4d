//! A raw MQTT connection for the load generator: the codec over a tokio `TcpStream`, with
//! a read buffer and a write buffer the scenarios fill in batches.

use bytes::{Buf, BytesMut};
use halyard_codec::{
    ConnAck, Connect, ConnectProperties, DecodeOptions, MqttString, Packet, PacketId,
    ProtocolVersion, QoS, ReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, decode,
};
use std::io::{Error, ErrorKind, Result};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn invalid(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidData, what.to_string())
}

/// One connection to the broker under test.
pub(crate) struct MqttConn {
    pub(crate) stream: TcpStream,
    pub(crate) rx: BytesMut,
    pub(crate) tx: BytesMut,
    pub(crate) version: ProtocolVersion,
}

impl MqttConn {
    /// Opens a TCP connection (from `local` if given), sends CONNECT and waits for a
    /// successful CONNACK.
    pub(crate) async fn connect(
        addr: SocketAddr,
        local: Option<std::net::IpAddr>,
        client_id: &str,
        version: ProtocolVersion,
        keep_alive_secs: u16,
    ) -> Result<MqttConn> {
        let stream = match local {
            None => TcpStream::connect(addr).await?,
            Some(ip) => {
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(addr).await?
            }
        };
        stream.set_nodelay(true)?;
        let mut c = MqttConn {
            stream,
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            version,
        };
        let mut properties = ConnectProperties::default();
        if version.is_v5() {
            // Let the broker send as much as it likes: the generator measures the broker.
            properties.receive_maximum = std::num::NonZeroU16::new(u16::MAX);
        }
        c.queue(&Packet::from(Connect {
            protocol: version,
            clean_start: true,
            keep_alive_secs,
            properties,
            client_id: MqttString::new(client_id).map_err(invalid)?,
            will: None,
            username: None,
            password: None,
        }))?;
        c.flush().await?;
        match c.recv().await? {
            Packet::ConnAck(ConnAck { reason_code, .. }) if reason_code == ReasonCode::SUCCESS => {
                Ok(c)
            }
            Packet::ConnAck(a) => Err(invalid(format!("CONNACK {:?}", a.reason_code))),
            other => Err(invalid(format!(
                "expected CONNACK, got {:?}",
                other.packet_type()
            ))),
        }
    }

    /// Subscribes to one filter and waits for its SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        self.queue(&Packet::from(Subscribe {
            packet_id: PacketId::new(1).ok_or_else(|| invalid("packet id"))?,
            properties: SubscribeProperties::default(),
            filters: vec![(
                TopicFilter::new(filter).map_err(invalid)?,
                SubscriptionOptions::with_qos(qos),
            )],
        }))?;
        self.flush().await?;
        match self.recv().await? {
            Packet::SubAck(a) if a.reason_codes.iter().all(|c| !c.is_error()) => Ok(()),
            other => Err(invalid(format!("SUBSCRIBE refused: {other:?}"))),
        }
    }

    /// Encodes a packet into the write buffer.
    pub(crate) fn queue(&mut self, p: &Packet) -> Result<()> {
        p.encode(self.version, &mut self.tx).map_err(invalid)
    }

    /// Writes the whole write buffer.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.tx).await?;
        self.tx.clear();
        Ok(())
    }

    /// Writes what the socket takes now; `Ok(())` also when it would block.
    pub(crate) fn try_flush(&mut self) -> Result<()> {
        while !self.tx.is_empty() {
            match self.stream.try_write(&self.tx) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.tx.advance(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the socket has now into the read buffer; returns false at end of stream.
    pub(crate) fn try_fill(&mut self) -> Result<bool> {
        if self.rx.capacity() - self.rx.len() < 16 * 1024 {
            self.rx.reserve(64 * 1024);
        }
        match self.stream.try_read_buf(&mut self.rx) {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The next complete packet in the read buffer, if any.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>> {
        decode(&mut self.rx, &DecodeOptions::new(self.version)).map_err(invalid)
    }

    /// Waits for the next packet.
    pub(crate) async fn recv(&mut self) -> Result<Packet> {
        loop {
            if let Some(p) = self.next_packet()? {
                return Ok(p);
            }
            self.rx.reserve(4096);
            if self.stream.read_buf(&mut self.rx).await? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
    }
}
