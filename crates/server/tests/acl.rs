//! Access control over the wire, with a Mosquitto ACL file (`[auth] acl_file`): PUBLISH,
//! SUBSCRIBE, every delivery, retained messages at subscribe time and wills, for 3.1.1 and
//! 5.0. (User names are taken from CONNECT as given: password files are not wired yet.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;

use bytes::Bytes;
use halyard_codec::{
    MqttString, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions, Will, WillProperties,
};
use halyard_server::{Config, SubscribeDenied};
use harness::*;
use std::path::PathBuf;
use std::time::Duration;

const VERSIONS: [ProtocolVersion; 2] = [V3_1_1, V5];

const ACL: &str = "\
# anonymous clients
topic read public/#
topic write inbox/#

user alice
topic readwrite alice/#
topic read public/#
topic deny alice/secret

pattern readwrite devices/%c/#
";

/// Writes `text` to a file of its own for this test.
fn acl_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("halyard-acl-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn broker_with_acl(name: &str, f: impl FnOnce(&mut Config)) -> TestBroker {
    let path = acl_file(name, ACL);
    TestBroker::start_with(|c| {
        c.auth.acl_file = Some(path);
        f(c);
    })
}

/// A client connecting as `username` (no password: none is checked yet).
fn user_client(broker: &TestBroker, v: ProtocolVersion, id: &str, username: &str) -> Peer {
    let mut p = broker.peer(v);
    let mut c = connect(v, id);
    c.username = Some(MqttString::new(username).unwrap());
    p.send(c);
    assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
    p
}

/// PUBLISH to a topic the client may not write: 5.0 gets PUBACK 0x87 Not authorized, 3.1.1
/// an ordinary PUBACK (it has no codes), and the message reaches nobody.
#[test]
fn publish_without_write_access_is_refused_and_goes_nowhere() {
    let broker = broker_with_acl("publish", |_| {});
    let mut reader = user_client(&broker, V5, "reader", "alice");
    reader.subscribe("public/#", QoS::AtLeastOnce);
    for v in VERSIONS {
        let mut anon = broker.client(v, &format!("anon-{v:?}"));
        let rc = send_publish(&mut anon, publish("public/x", b"no", QoS::AtLeastOnce, 1));
        let expected = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::SUCCESS
        };
        assert_eq!(rc, expected);
        assert_eq!(
            send_publish(&mut anon, publish("inbox/x", b"ok", QoS::AtLeastOnce, 2)),
            if v.is_v5() {
                ReasonCode::NO_MATCHING_SUBSCRIBERS
            } else {
                ReasonCode::SUCCESS
            }
        );
    }
    reader.expect_silence(Duration::from_millis(200));
}

/// A subscriber to `#` receives only the topics it may read: deliveries are checked one by
/// one, `$SYS` included (a rule must name it) [MQTT-4.7.2-1].
#[test]
fn a_wildcard_subscriber_receives_only_what_it_may_read() {
    let broker = broker_with_acl("wildcard", |_| {});
    for v in VERSIONS {
        let mut alice = user_client(&broker, v, "alice-sub", "alice");
        alice.subscribe("#", QoS::AtLeastOnce);
        let mut writer = user_client(&broker, V5, "alice-pub", "alice");
        for t in ["alice/a", "alice/secret", "bob/x", "alice/b"] {
            send_publish(&mut writer, publish(t, t.as_bytes(), QoS::AtLeastOnce, 1));
        }
        let got = collect(&mut alice, 2);
        let topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(topics, ["alice/a", "alice/b"]);
        alice.expect_silence(Duration::from_millis(200));
        alice.disconnect();
        writer.disconnect();
    }
}

/// SUBSCRIBE to a filter with nothing readable: 5.0 SUBACK 0x87, 3.1.1 0x80 [MQTT-3.9.3-2];
/// with `subscribe_denied_reason = "unspecified"`, 5.0 gets 0x80.
#[test]
fn subscribe_without_read_access_is_refused_in_suback() {
    for (setting, v5_code) in [
        (SubscribeDenied::NotAuthorized, ReasonCode::NOT_AUTHORIZED),
        (SubscribeDenied::Unspecified, ReasonCode::UNSPECIFIED_ERROR),
    ] {
        let broker = broker_with_acl(&format!("subscribe-{setting:?}"), |c| {
            c.auth.subscribe_denied_reason = setting;
        });
        for v in VERSIONS {
            let mut alice = user_client(&broker, v, "alice", "alice");
            for (filter, allowed) in [("bob/#", false), ("alice/secret", false), ("+/a", true)] {
                alice.send(subscribe(
                    1,
                    filter,
                    SubscriptionOptions::with_qos(QoS::AtMostOnce),
                ));
                let code = alice.recv_suback().reason_codes[0];
                let expected = match (allowed, v.is_v5()) {
                    (true, _) => ReasonCode::SUCCESS,
                    (false, true) => v5_code,
                    (false, false) => ReasonCode::UNSPECIFIED_ERROR,
                };
                assert_eq!(code, expected, "{filter} at {v:?}");
            }
            alice.disconnect();
        }
    }
}

/// Retained messages sent at subscribe time pass the read rule too.
#[test]
fn retained_messages_at_subscribe_are_filtered_by_the_read_rule() {
    let broker = broker_with_acl("retained", |_| {});
    let mut writer = user_client(&broker, V5, "alice-pub", "alice");
    for t in ["alice/r1", "alice/secret", "alice/r2"] {
        let mut m = publish(t, t.as_bytes(), QoS::AtLeastOnce, 1);
        m.retain = true;
        send_publish(&mut writer, m);
    }
    let mut alice = user_client(&broker, V5, "alice-sub", "alice");
    alice.subscribe("alice/#", QoS::AtLeastOnce);
    let mut topics: Vec<String> = collect(&mut alice, 2)
        .iter()
        .map(|p| p.topic.to_string())
        .collect();
    topics.sort();
    assert_eq!(topics, ["alice/r1", "alice/r2"]);
    alice.expect_silence(Duration::from_millis(200));
}

/// A will is published only if its client may write its topic, checked when it is
/// published; `%c` patterns give each client its own branch and nobody else's.
#[test]
fn wills_and_client_id_patterns_follow_the_rules() {
    let broker = broker_with_acl("will", |_| {});
    let mut watcher = user_client(&broker, V5, "watcher", "alice");
    watcher.subscribe("alice/#", QoS::AtMostOnce);
    let mut d1 = broker.client(V5, "d1");
    d1.subscribe("devices/d1/#", QoS::AtMostOnce);
    // d2 may not read d1's branch, nor write it.
    let mut d2 = broker.client(V5, "d2");
    d2.send(subscribe(
        1,
        "devices/d1/#",
        SubscriptionOptions::with_qos(QoS::AtMostOnce),
    ));
    assert_eq!(d2.recv_suback().reason_codes[0], ReasonCode::NOT_AUTHORIZED);
    assert_eq!(
        send_publish(
            &mut d2,
            publish("devices/d1/cmd", b"x", QoS::AtLeastOnce, 1)
        ),
        ReasonCode::NOT_AUTHORIZED
    );
    // An anonymous client's will to alice/ is not published; alice's own is.
    for (id, user, payload) in [
        ("anon-will", None, "no"),
        ("alice-will", Some("alice"), "yes"),
    ] {
        let mut p = broker.peer(V5);
        let mut c = connect(V5, id);
        c.username = user.map(|u| MqttString::new(u).unwrap());
        c.will = Some(Will {
            topic: topic("alice/will"),
            payload: Bytes::from(payload),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: WillProperties::default(),
        });
        p.send(c);
        assert_eq!(p.recv_connack().reason_code, ReasonCode::SUCCESS);
        p.drop_connection();
    }
    let got = watcher.recv_publish();
    assert_eq!(got.payload, Bytes::from_static(b"yes"));
    watcher.expect_silence(Duration::from_millis(200));
    d1.expect_silence(Duration::from_millis(100));
}

/// An ACL file with an error stops the start, naming the file and the line.
#[test]
fn an_invalid_acl_file_stops_the_start_with_its_line() {
    let path = acl_file("invalid", "topic read a\nuser\n");
    let err = TestBroker::start_error(|c| c.auth.acl_file = Some(path.clone()));
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
}

/// Another user does not resume a session: its queued messages passed its owner's read
/// rules, not the newcomer's. The newcomer gets a new session (session present 0) and none
/// of them.
#[test]
fn another_user_does_not_resume_a_users_session() {
    let broker = broker_with_acl("resume", |_| {});
    let persistent = |user: &str| {
        let mut p = broker.peer(V3_1_1);
        let mut c = connect(V3_1_1, "shared-id");
        c.clean_start = false;
        c.username = Some(MqttString::new(user).unwrap());
        p.send(c);
        let ack = p.recv_connack();
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
        (p, ack.session_present)
    };
    let (mut alice, _) = persistent("alice");
    alice.subscribe("alice/#", QoS::AtLeastOnce);
    alice.disconnect();
    let mut writer = user_client(&broker, V5, "alice-pub", "alice");
    send_publish(
        &mut writer,
        publish("alice/mail", b"private", QoS::AtLeastOnce, 1),
    );
    let (mut mallory, present) = persistent("mallory");
    assert!(!present, "mallory must not get alice's session");
    mallory.expect_silence(Duration::from_millis(300));
}

/// A shared group's copy goes to a member that may read the topic: a member without read
/// access is passed over, not handed the message (which it would drop).
#[test]
fn shared_group_members_that_may_not_read_are_passed_over() {
    let broker = broker_with_acl("shared", |_| {});
    let mut anon = broker.client(V5, "anon-member");
    anon.subscribe("$share/g/#", QoS::AtLeastOnce);
    let mut alice = user_client(&broker, V5, "alice-member", "alice");
    alice.subscribe("$share/g/#", QoS::AtLeastOnce);
    let mut writer = user_client(&broker, V5, "alice-pub", "alice");
    for i in 1..=6u16 {
        send_publish(&mut writer, publish("alice/x", b"m", QoS::AtLeastOnce, i));
    }
    assert_eq!(collect(&mut alice, 6).len(), 6);
    anon.expect_silence(Duration::from_millis(200));
}
