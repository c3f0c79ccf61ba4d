//! Authentication with a password file (`[auth] password_file`, `allow_anonymous`) over the
//! wire, for 3.1.1 and 5.0: the CONNACK codes of section 3.2.2.2 / table 3.1, and slow hashes
//! that stall nobody.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use bytes::Bytes;
use halyard_codec::{MqttString, ProtocolVersion, QoS, ReasonCode};
use halyard_server::passwords::{hash_argon2id, hash_pbkdf2};
use harness::*;
use std::path::PathBuf;
use std::time::Instant;

const VERSIONS: [ProtocolVersion; 2] = [V3_1_1, V5];

fn password_file(name: &str, lines: &[(&str, String)]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("halyard-pw-{}-{name}", std::process::id()));
    let text: String = lines.iter().map(|(u, h)| format!("{u}:{h}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The CONNACK code for `rc` at `v` (3.1.1 has six return codes).
fn code(v: ProtocolVersion, rc: ReasonCode) -> ReasonCode {
    if v.is_v5() {
        rc
    } else {
        ReasonCode::from_v3_connack(rc.to_v3_connack()).unwrap()
    }
}

fn connack(
    broker: &TestBroker,
    v: ProtocolVersion,
    user: Option<&str>,
    pw: Option<&str>,
) -> ReasonCode {
    let mut p = broker.peer(v);
    let mut c = connect(v, &format!("c-{user:?}-{pw:?}"));
    c.username = user.map(|u| MqttString::new(u).unwrap());
    c.password = pw.map(|p| Bytes::copy_from_slice(p.as_bytes()));
    p.send(c);
    p.recv_connack().reason_code
}

/// Right password: accepted. Wrong password or unknown user: 0x86 Bad user name or
/// password (3.1.1: return code 4). No credentials where they are required: 0x87 Not
/// authorized (3.1.1: return code 5).
#[test]
fn connack_codes_follow_the_credentials() {
    let path = password_file("codes", &[("alice", hash_pbkdf2(b"secret").unwrap())]);
    let broker = TestBroker::start_with(|c| c.auth.password_file = Some(path));
    for v in VERSIONS {
        assert_eq!(
            connack(&broker, v, Some("alice"), Some("secret")),
            ReasonCode::SUCCESS
        );
        let bad = code(v, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        assert_eq!(connack(&broker, v, Some("alice"), Some("Secret")), bad);
        assert_eq!(connack(&broker, v, Some("mallory"), Some("secret")), bad);
        assert_eq!(connack(&broker, v, Some("alice"), None), bad);
        let none = code(v, ReasonCode::NOT_AUTHORIZED);
        assert_eq!(connack(&broker, v, None, None), none);
    }
}

/// With `allow_anonymous = true` beside a password file, clients without a user name get
/// in; clients with one must still give its password.
#[test]
fn anonymous_clients_may_be_allowed_beside_a_password_file() {
    let path = password_file("anon", &[("alice", hash_pbkdf2(b"secret").unwrap())]);
    let broker = TestBroker::start_with(|c| {
        c.auth.password_file = Some(path);
        c.auth.allow_anonymous = Some(true);
    });
    for v in VERSIONS {
        assert_eq!(connack(&broker, v, None, None), ReasonCode::SUCCESS);
        assert_eq!(
            connack(&broker, v, Some("alice"), Some("nope")),
            code(v, ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
    }
}

/// A slow hash runs off the connection tasks: while an Argon2id check is under way, other
/// clients connect and exchange messages without waiting for it, and the checked client is
/// accepted when it completes.
#[test]
fn a_slow_password_check_stalls_nobody_else() {
    let path = password_file("slow", &[("slow", hash_argon2id(b"pw").unwrap())]);
    let broker = TestBroker::start_with(|c| {
        c.auth.password_file = Some(path);
        c.auth.allow_anonymous = Some(true);
    });
    let mut slow = broker.peer(V5);
    let mut c = connect(V5, "slow");
    c.username = Some(MqttString::new("slow").unwrap());
    c.password = Some(Bytes::from_static(b"pw"));
    let started = Instant::now();
    slow.send(c);
    // Meanwhile: an anonymous client does a QoS 1 round trip.
    let mut quick = broker.client(V5, "quick");
    quick.subscribe("q", QoS::AtLeastOnce);
    assert_eq!(
        send_publish(&mut quick, publish("q", b"x", QoS::AtLeastOnce, 1)),
        ReasonCode::SUCCESS
    );
    collect(&mut quick, 1);
    let quick_done = started.elapsed();
    assert_eq!(slow.recv_connack().reason_code, ReasonCode::SUCCESS);
    let slow_done = started.elapsed();
    assert!(
        quick_done < slow_done,
        "the quick client ({quick_done:?}) waited for the slow check ({slow_done:?})"
    );
    slow.send(halyard_codec::Packet::PingReq);
    assert_eq!(slow.recv(), halyard_codec::Packet::PingResp);
}

/// A password file with an error stops the start, naming the file and the line (and not
/// the hash).
#[test]
fn an_invalid_password_file_stops_the_start_with_its_line() {
    let path = password_file(
        "invalid",
        &[
            ("alice", "$7$101$AA==$AA==".into()),
            ("bob", "plain".into()),
        ],
    );
    let err = TestBroker::start_error(|c| c.auth.password_file = Some(path.clone()));
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
}

/// Safe defaults (as Mosquitto 2): a listener beyond loopback with nothing to authenticate
/// clients refuses to start, and says why; `allow_anonymous = true` or a password file lets
/// it start. Loopback needs nothing.
#[test]
fn a_listener_beyond_loopback_needs_authentication_or_an_explicit_choice() {
    let mut config = halyard_server::Config::default();
    config.listener[0].bind = "0.0.0.0:0".parse().unwrap();
    let err = config.validate().unwrap_err();
    assert!(
        err.contains("password_file") && err.contains("allow_anonymous"),
        "{err}"
    );
    config.auth.allow_anonymous = Some(true);
    assert!(config.validate().is_ok());
    config.auth.allow_anonymous = None;
    config.auth.password_file = Some("passwd".into());
    assert!(config.validate().is_ok());
    assert!(halyard_server::Config::default().validate().is_ok());
}

/// Reload (SIGHUP): the password and ACL files are read again; connected clients stay
/// connected and their next decisions use the new rules; new connections use the new
/// passwords; an invalid new file keeps the old one in force and says which line is wrong.
#[test]
fn reload_reads_the_files_again_and_keeps_the_old_on_error() {
    let pw = password_file("reload-pw", &[("alice", hash_pbkdf2(b"one").unwrap())]);
    let acl = std::env::temp_dir().join(format!("halyard-pw-{}-reload-acl", std::process::id()));
    std::fs::write(&acl, "user alice\ntopic readwrite a/#\n").unwrap();
    let (pw_path, acl_path) = (pw.clone(), acl.clone());
    let broker = TestBroker::start_with(|c| {
        c.auth.password_file = Some(pw_path);
        c.auth.acl_file = Some(acl_path);
    });
    let mut alice = broker.peer(V5);
    let mut c = connect(V5, "alice-conn");
    c.username = Some(MqttString::new("alice").unwrap());
    c.password = Some(Bytes::from_static(b"one"));
    alice.send(c);
    assert_eq!(alice.recv_connack().reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        send_publish(&mut alice, publish("a/x", b"1", QoS::AtLeastOnce, 1)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );

    std::fs::write(&pw, format!("alice:{}\n", hash_pbkdf2(b"two").unwrap())).unwrap();
    std::fs::write(&acl, "user alice\ntopic readwrite b/#\n").unwrap();
    assert_eq!(broker.reload(), Vec::<String>::new());
    // Still connected; the new rules decide.
    assert_eq!(
        send_publish(&mut alice, publish("a/x", b"2", QoS::AtLeastOnce, 2)),
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        send_publish(&mut alice, publish("b/x", b"3", QoS::AtLeastOnce, 3)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    assert_eq!(
        connack(&broker, V5, Some("alice"), Some("one")),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    assert_eq!(
        connack(&broker, V5, Some("alice"), Some("two")),
        ReasonCode::SUCCESS
    );

    // Invalid files: the old ones stay, and the errors name the file and the line.
    std::fs::write(&pw, "alice:two\n").unwrap();
    std::fs::write(&acl, "user alice\ntopic bogus b/#/x\n").unwrap();
    let errors = broker.reload();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("line 1") || e.contains("line 2")),
        "{errors:?}"
    );
    assert_eq!(
        connack(&broker, V5, Some("alice"), Some("two")),
        ReasonCode::SUCCESS
    );
    assert_eq!(
        send_publish(&mut alice, publish("b/x", b"4", QoS::AtLeastOnce, 4)),
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
}

/// The failed-authentication brake: a client guessing alice's password from one address
/// waits longer for each check after the third failure (its own wait), while a legitimate
/// client of another user name from the same address connects at once.
#[test]
fn a_password_guessing_flood_slows_only_the_guesser() {
    let path = password_file(
        "guess",
        &[
            ("alice", hash_pbkdf2(b"right").unwrap()),
            ("bob", hash_pbkdf2(b"bobs").unwrap()),
        ],
    );
    let broker = TestBroker::start_with(|c| c.auth.password_file = Some(path));
    for _ in 0..5 {
        assert_eq!(
            connack(&broker, V5, Some("alice"), Some("guess")),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD
        );
    }
    // Five failures: the next check of alice from here waits 1 s first.
    let started = Instant::now();
    assert_eq!(
        connack(&broker, V5, Some("alice"), Some("guess")),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    let guess = started.elapsed();
    assert!(guess >= std::time::Duration::from_millis(1000), "{guess:?}");
    let started = Instant::now();
    assert_eq!(
        connack(&broker, V5, Some("bob"), Some("bobs")),
        ReasonCode::SUCCESS
    );
    let legit = started.elapsed();
    assert!(legit < guess, "bob waited {legit:?}, the guesser {guess:?}");
    assert!(
        broker
            .broker()
            .stats()
            .limit_hits(halyard_core::Limit::AuthFailures)
            >= 6
    );
}
