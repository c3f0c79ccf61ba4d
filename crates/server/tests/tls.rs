//! TLS and mutual TLS listeners over real sockets: handshakes with rustls clients, client
//! certificates (trusted, untrusted, expired, missing, without a Common Name), the
//! certificate identity as user name under an ACL, the handshake deadline, parking of idle
//! TLS connections, large messages, and reload of certificates.
//!
//! Certificates are made at test time with rcgen.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use halyard_codec::*;
use halyard_server::{Config, TlsConfig};
use harness::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A certificate authority that signs server and client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn sign(&self, params: CertificateParams) -> Pem {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for localhost / 127.0.0.1 with `cn`.
    fn server(&self, cn: &str) -> Pem {
        let mut p =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p)
    }

    /// A client certificate with subject CN `cn` (none: no Common Name).
    fn client(&self, cn: Option<&str>) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        // rcgen's default subject has a Common Name of its own.
        p.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.distinguished_name
            .push(DnType::OrganizationName, "halyard tests");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p)
    }

    /// A client certificate that expired in 2001.
    fn expired_client(&self, cn: &str) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(2001, 1, 1);
        self.sign(p)
    }
}

/// A directory of PEM files for one broker.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!(
            "halyard-tls-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS listener's settings: server certificate from `ca`, client CAs `client_ca`.
fn tls_settings(
    files: &Files,
    server: &Pem,
    client_ca: Option<&Ca>,
    require: bool,
    as_username: bool,
) -> TlsConfig {
    TlsConfig {
        cert: files.write("server.pem", &server.cert),
        key: files.write("server.key", &server.key),
        ca: client_ca.map(|ca| files.write("ca.pem", &ca.pem())),
        require_client_cert: require,
        identity_as_username: as_username,
    }
}

fn start_tls(settings: TlsConfig, f: impl FnOnce(&mut Config)) -> TestBroker {
    TestBroker::start_with(|c| {
        c.listener[0].tls = Some(settings);
        f(c);
    })
}

fn client_config(
    trust: &Ca,
    identity: Option<&Pem>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trust.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap(),
            )
            .unwrap(),
    })
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Opens a TLS connection and completes the client's side of the handshake.
fn tls_connect(
    broker: &TestBroker,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream> {
    let mut tcp = TcpStream::connect(broker.addr())?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(WAIT))?;
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn tls_peer(broker: &TestBroker, config: Arc<rustls::ClientConfig>, v: ProtocolVersion) -> Peer {
    Peer::over(
        Box::new(tls_connect(broker, config).expect("TLS handshake")),
        v,
    )
}

fn tls_client(
    broker: &TestBroker,
    config: Arc<rustls::ClientConfig>,
    v: ProtocolVersion,
    id: &str,
) -> Peer {
    let mut p = tls_peer(broker, config, v);
    p.send(connect(v, id));
    assert_eq!(
        p.recv_connack().reason_code,
        ReasonCode::SUCCESS,
        "{id} connects"
    );
    p
}

/// A client the broker refuses in the handshake: either the handshake fails, or (TLS 1.3,
/// where the server checks the client's certificate after the client has finished) the
/// broker's alert ends the connection before any CONNACK.
fn assert_refused_in_handshake(broker: &TestBroker, config: Arc<rustls::ClientConfig>) {
    let Ok(mut s) = tls_connect(broker, config) else {
        return;
    };
    let mut buf = bytes::BytesMut::new();
    Packet::from(connect(V5, "refused"))
        .encode(V5, &mut buf)
        .expect("CONNECT encodes");
    let _ = s.write_all(&buf);
    let _ = s.flush();
    let mut got = [0u8; 64];
    match s.read(&mut got) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("the broker answered a refused client: {:?}", &got[..n]),
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[test]
fn publish_and_subscribe_over_tls_with_3_1_1_and_5() {
    let ca = Ca::new("server ca");
    let files = Files::new("pubsub");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), None, false, false),
        |_| {},
    );
    let cfg = client_config(&ca, None, BOTH);
    for v in [V3_1_1, V5] {
        let mut sub = tls_client(&broker, cfg.clone(), v, "sub");
        sub.subscribe("t/#", QoS::AtLeastOnce);
        let mut publ = tls_client(&broker, cfg.clone(), v, "pub");
        assert_eq!(
            send_publish(&mut publ, publish("t/1", b"hello", QoS::AtLeastOnce, 1)),
            ReasonCode::SUCCESS
        );
        let got = sub.recv_publish();
        assert_eq!(got.topic.as_str(), "t/1");
        assert_eq!(&got.payload[..], b"hello");
        sub.disconnect();
        publ.disconnect();
    }
}

#[test]
fn tls_1_2_and_tls_1_3_clients_both_connect() {
    let ca = Ca::new("server ca");
    let files = Files::new("versions");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), None, false, false),
        |_| {},
    );
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let s = tls_connect(&broker, client_config(&ca, None, &[version])).expect("handshake");
        assert_eq!(s.conn.protocol_version(), Some(version.version));
        let mut p = Peer::over(Box::new(s), V5);
        p.send(connect(V5, "v"));
        assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
    }
}

#[test]
fn a_plain_mqtt_client_on_a_tls_listener_gets_nothing_and_others_are_unaffected() {
    let ca = Ca::new("server ca");
    let files = Files::new("plain");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), None, false, false),
        |_| {},
    );
    let mut plain = broker.peer(V5);
    plain.send(connect(V5, "plain"));
    // Not a ClientHello: the handshake fails and the socket closes without an MQTT answer.
    let mut raw = [0u8; 256];
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x01x")
        .unwrap();
    let n = s.read(&mut raw).unwrap_or(0);
    assert!(
        n == 0 || raw[0] == 0x15,
        "a TLS alert or nothing, got {:?}",
        &raw[..n]
    );
    // A TLS client still connects.
    let mut ok = tls_client(&broker, client_config(&ca, None, BOTH), V5, "ok");
    ok.subscribe("x", QoS::AtMostOnce);
}

#[test]
fn mutual_tls_admits_only_trusted_unexpired_client_certificates() {
    let ca = Ca::new("client ca");
    let other = Ca::new("someone else's ca");
    let files = Files::new("mtls");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), Some(&ca), true, false),
        |_| {},
    );

    // A trusted certificate: connected.
    let alice = ca.client(Some("alice"));
    tls_client(&broker, client_config(&ca, Some(&alice), BOTH), V5, "alice").disconnect();
    // Over TLS 1.2 too.
    tls_client(
        &broker,
        client_config(&ca, Some(&alice), &[&rustls::version::TLS12]),
        V3_1_1,
        "alice12",
    )
    .disconnect();

    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        // No certificate.
        assert_refused_in_handshake(&broker, client_config(&ca, None, versions));
        // A certificate from a CA the listener does not trust.
        assert_refused_in_handshake(
            &broker,
            client_config(&ca, Some(&other.client(Some("mallory"))), versions),
        );
        // An expired certificate from the right CA.
        assert_refused_in_handshake(
            &broker,
            client_config(&ca, Some(&ca.expired_client("old")), versions),
        );
    }
    // The refusals harmed nobody.
    tls_client(
        &broker,
        client_config(&ca, Some(&alice), BOTH),
        V5,
        "alice-again",
    )
    .disconnect();
}

#[test]
fn the_certificates_common_name_is_the_user_name_under_the_acl() {
    let ca = Ca::new("client ca");
    let files = Files::new("identity");
    let acl = files.write(
        "acl",
        "user alice\ntopic readwrite alice/#\n\nuser bob\ntopic readwrite bob/#\n",
    );
    // A password file that knows neither: the certificate is the credential.
    let passwd = files.write("passwd", "carol:$6$c2FsdA==$bm90IGEgcmVhbCBoYXNo\n");
    let settings = tls_settings(&files, &ca.server("broker"), Some(&ca), true, true);
    let broker = start_tls(settings, |c| {
        c.auth.acl_file = Some(acl.clone());
        c.auth.password_file = Some(passwd.clone());
    });
    let alice = client_config(&ca, Some(&ca.client(Some("alice"))), BOTH);
    for v in [V3_1_1, V5] {
        // The user name and password in CONNECT are ignored: alice claims to be bob.
        let mut p = tls_peer(&broker, alice.clone(), v);
        let mut c = connect(v, "alice-client");
        c.username = Some(MqttString::new("bob").unwrap());
        c.password = Some(bytes::Bytes::from_static(b"wrong"));
        p.send(c);
        assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS, "{v:?}");
        // Her ACL, not bob's: alice/# is granted, bob/# is not.
        p.send(subscribe(
            1,
            "alice/#",
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        ));
        assert_eq!(p.recv_suback().reason_codes, vec![ReasonCode(1)]);
        p.send(subscribe(
            2,
            "bob/#",
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        ));
        let denied = p.recv_suback().reason_codes;
        let expected = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode(0x80)
        };
        assert_eq!(denied, vec![expected], "{v:?}");
        p.disconnect();
    }
    // A certificate without a Common Name has no identity: 0x86 / return code 4
    // (Mosquitto refuses it the same way).
    let nameless = client_config(&ca, Some(&ca.client(None)), BOTH);
    for v in [V3_1_1, V5] {
        let mut p = tls_peer(&broker, nameless.clone(), v);
        p.send(connect(v, "nameless"));
        let ack = p.recv_connack();
        let expected = ReasonCode::BAD_USER_NAME_OR_PASSWORD; // 3.1.1: return code 4
        assert_eq!(ack.reason_code, expected, "{v:?}");
    }
}

#[test]
fn identity_as_username_with_an_optional_certificate_refuses_clients_without_one() {
    let ca = Ca::new("client ca");
    let files = Files::new("optional");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), Some(&ca), false, true),
        |_| {},
    );
    for v in [V3_1_1, V5] {
        let mut p = tls_peer(&broker, client_config(&ca, None, BOTH), v);
        p.send(connect(v, "anon"));
        let expected = ReasonCode::BAD_USER_NAME_OR_PASSWORD; // 3.1.1: return code 4
        assert_eq!(p.recv_connack().reason_code, expected, "{v:?}");
    }
    // With a certificate: connected.
    tls_client(
        &broker,
        client_config(&ca, Some(&ca.client(Some("dev-1"))), BOTH),
        V5,
        "dev",
    )
    .disconnect();
}

#[test]
fn a_client_that_does_not_finish_its_handshake_is_closed_at_the_connect_timeout() {
    let ca = Ca::new("server ca");
    let files = Files::new("timeout");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), None, false, false),
        |c| {
            c.limits.connect_timeout_secs = 1;
        },
    );
    let mut silent = TcpStream::connect(broker.addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a word");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn an_idle_tls_connection_parks_and_wakes_for_a_delivery_and_large_messages_pass() {
    let ca = Ca::new("server ca");
    let files = Files::new("park");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), None, false, false),
        |c| {
            c.mqtt.max_packet_size = 4 * 1024 * 1024;
        },
    );
    let cfg = client_config(&ca, None, BOTH);
    let mut sub = tls_client(&broker, cfg.clone(), V5, "sub");
    sub.subscribe("big/#", QoS::AtLeastOnce);
    let mut publ = tls_client(&broker, cfg, V5, "pub");
    for round in 0..3u8 {
        // Idle for well beyond the park delay: both connections park.
        std::thread::sleep(Duration::from_millis(100));
        let payload = vec![round; 1024 * 1024 + usize::from(round)];
        assert_eq!(
            send_publish(
                &mut publ,
                publish("big/x", &payload, QoS::AtLeastOnce, u16::from(round) + 1)
            ),
            ReasonCode::SUCCESS
        );
        let got = sub.recv_publish();
        assert_eq!(got.payload.len(), payload.len());
        assert!(got.payload.iter().all(|&b| b == round));
        if let Some(id) = got.packet_id {
            sub.send(Packet::PubAck(Ack::new(id)));
        }
    }
}

#[test]
fn several_packets_in_one_tls_record_are_all_handled() {
    let ca = Ca::new("server ca");
    let files = Files::new("record");
    let broker = start_tls(
        tls_settings(&files, &ca.server("broker"), None, false, false),
        |_| {},
    );
    let mut s = tls_connect(&broker, client_config(&ca, None, BOTH)).unwrap();
    // CONNECT, SUBSCRIBE and a PUBLISH to itself in one write (one TLS record), then silence:
    // the broker must not park with them decrypted but unread.
    let mut buf = bytes::BytesMut::new();
    Packet::from(connect(V5, "burst"))
        .encode(V5, &mut buf)
        .unwrap();
    Packet::from(subscribe(
        1,
        "self",
        SubscriptionOptions::with_qos(QoS::AtMostOnce),
    ))
    .encode(V5, &mut buf)
    .unwrap();
    Packet::from(publish("self", b"me", QoS::AtMostOnce, 0))
        .encode(V5, &mut buf)
        .unwrap();
    s.write_all(&buf).unwrap();
    s.flush().unwrap();
    let mut p = Peer::over(Box::new(s), V5);
    assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
    assert_eq!(p.recv_suback().reason_codes, vec![ReasonCode(0)]);
    assert_eq!(&p.recv_publish().payload[..], b"me");
}

#[test]
fn reload_replaces_the_certificate_for_new_connections_and_keeps_the_old_on_errors() {
    let ca = Ca::new("server ca");
    let files = Files::new("reload");
    let broker = start_tls(
        tls_settings(&files, &ca.server("first"), None, false, false),
        |_| {},
    );
    let cfg = client_config(&ca, None, BOTH);
    let server_cn = |s: &TlsStream| -> String {
        let der = s.conn.peer_certificates().unwrap()[0].clone();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut before = tls_client(&broker, cfg.clone(), V5, "before");
    before.subscribe("r", QoS::AtMostOnce);
    assert_eq!(
        server_cn(&tls_connect(&broker, cfg.clone()).unwrap()),
        "first"
    );

    let second = ca.server("second");
    files.write("server.pem", &second.cert);
    files.write("server.key", &second.key);
    assert_eq!(broker.reload(), Vec::<String>::new());
    assert_eq!(
        server_cn(&tls_connect(&broker, cfg.clone()).unwrap()),
        "second"
    );

    // A broken key: the error names the file, and the certificate in force stays.
    let key = files.write(
        "server.key",
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    );
    let errors = broker.reload();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(&key.display().to_string()), "{errors:?}");
    assert_eq!(
        server_cn(&tls_connect(&broker, cfg.clone()).unwrap()),
        "second"
    );

    // The connection made before every reload still works.
    let mut publ = tls_client(&broker, cfg, V5, "after");
    publ.send(publish("r", b"still here", QoS::AtMostOnce, 0));
    assert_eq!(&before.recv_publish().payload[..], b"still here");
}

#[test]
fn bad_tls_settings_stop_the_broker_with_a_reason() {
    let ca = Ca::new("server ca");
    let files = Files::new("bad");
    let good = ca.server("broker");
    let missing = files.dir.join("nope.pem");
    let err = TestBroker::start_error(|c| {
        c.listener[0].tls = Some(TlsConfig {
            cert: missing.clone(),
            key: files.write("k.pem", &good.key),
            ca: None,
            require_client_cert: false,
            identity_as_username: false,
        })
    });
    assert!(err.contains(&missing.display().to_string()), "{err}");

    // A key that is not the certificate's.
    let other = ca.server("other");
    let err = TestBroker::start_error(|c| {
        c.listener[0].tls = Some(TlsConfig {
            cert: files.write("c.pem", &good.cert),
            key: files.write("other.key", &other.key),
            ca: None,
            require_client_cert: false,
            identity_as_username: false,
        })
    });
    assert!(err.contains("key"), "{err}");

    let err = TestBroker::start_error(|c| {
        c.listener[0].tls = Some(TlsConfig {
            cert: files.write("c.pem", &good.cert),
            key: files.write("k.pem", &good.key),
            ca: None,
            require_client_cert: true,
            identity_as_username: false,
        })
    });
    assert!(err.contains("need [listener.tls] ca"), "{err}");
}

#[test]
fn a_listener_beyond_loopback_may_rely_on_client_certificates_for_authentication() {
    let tls = |require: bool, as_username: bool| TlsConfig {
        cert: Path::new("s.pem").to_owned(),
        key: Path::new("s.key").to_owned(),
        ca: Some(Path::new("ca.pem").to_owned()),
        require_client_cert: require,
        identity_as_username: as_username,
    };
    let mut config = Config::default();
    config.listener[0].bind = "0.0.0.0:8883".parse().unwrap();
    config.listener[0].tls = Some(tls(true, true));
    assert_eq!(config.validate(), Ok(()));
    // A certificate that is optional, or whose identity is not the user name, authenticates
    // nobody by itself: a password file or allow_anonymous is needed.
    for (require, as_username) in [(false, true), (true, false)] {
        config.listener[0].tls = Some(tls(require, as_username));
        let err = config.validate().unwrap_err();
        assert!(err.contains("0.0.0.0:8883"), "{err}");
    }
}
