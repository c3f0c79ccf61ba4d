//! `halyard serve` as a user runs it: the real binary, its configuration file, its log line
//! per listener, and a graceful stop on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// A test that fails while the broker runs leaves it to the test harness's process exit.
#![allow(clippy::zombie_processes)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn halyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_halyard"))
}

/// A number for naming temporary files.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn write_config(text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("halyard-cli-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("halyard.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

/// Starts `halyard serve` with `args` and waits for its "listening on" line; returns the
/// child and the address it logged (listeners bind port 0, so no two tests race for one).
fn serve(args: &[&str]) -> (Child, String) {
    let mut child = halyard()
        .arg("serve")
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let line = lines.next().expect("halyard exited early").unwrap();
        if let Some(at) = line.find("listening on ") {
            let addr = line[at + "listening on ".len()..].trim().to_string();
            // Keep draining stderr so the broker never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, addr);
        }
    }
    panic!("no 'listening on' line");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "halyard did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bind_flag_logs_the_listener_and_sigterm_stops_gracefully() {
    let (mut child, addr) = serve(&["--bind", "127.0.0.1:0"]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    // A 5.0 client is told the server is shutting down (0x8B) before the socket closes.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // CONNECT, 5.0, clean start, keep-alive 60, no properties, client id "c".
    s.write_all(&[
        0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'c',
    ])
    .unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).unwrap();
    assert_eq!(&connack[..2], &[0x20, connack[1]]);
    let mut rest = vec![0u8; usize::from(connack[1]) - 2];
    s.read_exact(&mut rest).unwrap();

    sigterm(&child);
    let mut tail = Vec::new();
    s.read_to_end(&mut tail).unwrap();
    assert_eq!(tail.first(), Some(&0xE0), "DISCONNECT first: {tail:x?}");
    assert_eq!(
        tail.get(2),
        Some(&0x8B),
        "reason 0x8B Server shutting down: {tail:x?}"
    );
    assert!(wait_exit(&mut child).success());
}

#[test]
fn config_file_listeners_are_used() {
    let path = write_config(
        "[[listener]]\nbind = \"127.0.0.1:0\"\n\n[[listener]]\nbind = \"[::1]:0\"\n\n[mqtt]\nreceive_maximum = 10\n",
    );
    let (mut child, addr) = serve(&["--config", path.to_str().unwrap()]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    TcpStream::connect(&addr).unwrap();
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
}

fn start_fails(config: &str) -> String {
    let path = write_config(config);
    let out = halyard()
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "must refuse: {config}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_keys_and_bad_values_are_refused_by_name() {
    let err = start_fails("[limits]\nmax_conections = 10\n");
    assert!(err.contains("max_conections"), "{err}");
    let err = start_fails("[mqtt]\nreceive_maximum = \"many\"\n");
    assert!(err.contains("receive_maximum"), "{err}");
    let err = start_fails("[mqtt]\nreceive_maximum = 0\n");
    assert!(err.contains("mqtt.receive_maximum"), "{err}");
    let err = start_fails("[[listener]]\nbind = \"nowhere\"\n");
    assert!(err.contains("bind"), "{err}");
    let err = start_fails("colour = \"blue\"\n");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn example_configuration_file_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../halyard.example.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let text = text.replace("127.0.0.1:1883", "127.0.0.1:0");
    let path = write_config(&text);
    let (mut child, addr) = serve(&["--config", path.to_str().unwrap()]);
    TcpStream::connect(&addr).unwrap();
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
}

/// The CI smoke run of the load generator: a second of QoS 1 point-to-point traffic against
/// a broker started here; nothing may be lost or duplicated.
#[test]
fn bench_smoke_run_loses_nothing() {
    let (mut child, addr) = serve(&["--bind", "127.0.0.1:0"]);
    let pid = child.id().to_string();
    for args in [
        &["p2p", "-n", "2", "-q", "1", "-d", "1", "--drain", "0.5"][..],
        &[
            "fan-in", "-n", "3", "-q", "2", "-d", "1", "--drain", "0.5", "--mqtt", "5",
        ][..],
        &["latency", "-d", "1", "--rate", "1000", "--drain", "0.5"][..],
        &[
            "fan-out",
            "-n",
            "2",
            "-q",
            "1",
            "-d",
            "1",
            "--drain",
            "0.5",
            "--stuck",
            "1",
            "--broker-pid",
            &pid,
        ][..],
    ] {
        let out = halyard()
            .arg("bench")
            .args(args)
            .args(["--target", &addr])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = stdout
            .lines()
            .nth(1)
            .expect("a JSON line after the human one");
        let field = |name: &str| -> u64 {
            let at = json.find(&format!("\"{name}\":")).expect(name) + name.len() + 3;
            json[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(field("published") > 0, "{json}");
        assert_eq!(field("received"), field("expected"), "{json}");
        assert_eq!((field("lost"), field("duplicates")), (0, 0), "{json}");
        if args.contains(&"--stuck") {
            // The stuck subscriber is not counted, its companions got everything, and the
            // broker's memory was read.
            assert_eq!(field("stuck"), 1, "{json}");
            assert_eq!(field("subscribers"), 2, "{json}");
            assert!(field("broker_rss_peak") > 0, "{json}");
        }
    }
    sigterm(&child);
    assert!(wait_exit(&mut child).success());
}

#[test]
fn bench_refuses_non_loopback_targets() {
    let out = halyard()
        .args(["bench", "fan-in", "--target", "192.0.2.1:1883"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

/// `halyard passwd` with mosquitto_passwd's flags: -c creates, -b takes the password from
/// the command line, a second user is added beside the first, -D deletes, -U hashes a
/// plaintext file in place; argon2id by default, `--hash pbkdf2` writes Mosquitto's `$7$`.
#[test]
fn passwd_manages_a_password_file_like_mosquitto_passwd() {
    use halyard_server::passwords::PasswordFile;
    let path = std::env::temp_dir().join(format!(
        "halyard-passwd-{}-{}",
        std::process::id(),
        unique()
    ));
    let file = path.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = halyard().arg("passwd").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["-c", "-b", file, "alice", "one"]);
    run(&["-b", "--hash", "pbkdf2", file, "bob", "two"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("alice:$argon2id$"), "{text}");
    assert!(text.contains("bob:$7$101$"), "{text}");
    let f = PasswordFile::parse(&text).unwrap();
    assert!(f.verify("alice", b"one") && f.verify("bob", b"two"));
    run(&["-b", file, "alice", "three"]);
    run(&["-D", file, "bob"]);
    let f = PasswordFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(f.len(), 1);
    assert!(f.verify("alice", b"three") && !f.verify("alice", b"one"));
    // -U: plaintext lines hashed in place, hashed ones kept.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("carol:plain\n");
    std::fs::write(&path, text).unwrap();
    run(&["-U", file]);
    let f = PasswordFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(f.verify("carol", b"plain") && f.verify("alice", b"three"));
    // Refusals: a password without -b, -D of a missing user.
    let out = halyard()
        .args(["passwd", file, "dave", "pw"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = halyard()
        .args(["passwd", "-D", file, "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::remove_file(&path).unwrap();
}
