//! Password files in Mosquitto's format, read unchanged, and the hashes `halyard passwd`
//! writes.
//!
//! One `user:hash` per line. Hashes understood:
//! - `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512, what `mosquitto_passwd` writes today
//!   (base64 salt and 64-byte hash);
//! - `$6$SALT$HASH`: SHA-512 of the password then the salt, older Mosquitto files;
//! - `$argon2id$...`: a PHC string, what `halyard passwd` writes by default.
//!
//! Verifying is slow by design (PBKDF2 and Argon2 are meant to be): callers run
//! [`PasswordFile::verify`] off the connection tasks (see `auth`). Comparisons are constant
//! time, and an unknown user costs a hash too, so timing tells nothing about who exists.
//! This module reads no file itself.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha512};
use std::collections::HashMap;

/// Iterations `$7$` hashes are written with (Mosquitto's own default).
const PBKDF2_ITERATIONS: u32 = 101;
/// The most iterations a `$7$` line may ask for: a file must not make a check take minutes.
const PBKDF2_MAX_ITERATIONS: u32 = 1_000_000;

#[derive(Debug, Clone)]
enum Hash {
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Argon2(String),
}

/// A parsed password file.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, Hash>,
    /// A hash of the file's own kind and cost, checked for unknown users so that they take
    /// as long as known ones.
    decoy: Option<Hash>,
}

/// Why a password file was refused: the line (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordFileError {
    /// The line, counting from 1.
    pub line: usize,
    /// What is wrong (never the hash itself).
    pub reason: String,
}

impl std::fmt::Display for PasswordFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for PasswordFileError {}

impl PasswordFile {
    /// Parses the text of a password file. Blank lines and lines starting with `#` are
    /// skipped, as Mosquitto does.
    pub fn parse(text: &str) -> Result<PasswordFile, PasswordFileError> {
        let mut users = HashMap::new();
        let mut decoy = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| PasswordFileError {
                line: i + 1,
                reason: reason.to_owned(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| err("expected `user:hash`"))?;
            if user.is_empty() {
                return Err(err("empty user name"));
            }
            let hash = parse_hash(hash).map_err(|r| err(&r))?;
            decoy.get_or_insert_with(|| hash.clone());
            users.insert(user.to_owned(), hash);
        }
        Ok(PasswordFile { users, decoy })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. Slow on purpose; run it off the connection tasks.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => verify_hash(hash, password),
            None => {
                // As long as a real check, so that timing does not tell who exists: the
                // file's own first hash, whose password this is not taken to be.
                if let Some(decoy) = &self.decoy {
                    let _ = verify_hash(decoy, password);
                }
                false
            }
        }
    }
}

fn parse_hash(s: &str) -> Result<Hash, String> {
    let b64 = |part: &str| {
        B64.decode(part)
            .map_err(|_| "a hash part is not base64".to_owned())
    };
    if s.starts_with("$argon2") {
        argon2::PasswordHash::new(s).map_err(|e| format!("invalid argon2 hash: {e}"))?;
        return Ok(Hash::Argon2(s.to_owned()));
    }
    let parts: Vec<&str> = s.split('$').collect();
    match parts.as_slice() {
        ["", "7", iterations, salt, hash] => {
            let iterations: u32 = iterations
                .parse()
                .map_err(|_| "invalid iteration count".to_owned())?;
            if iterations == 0 || iterations > PBKDF2_MAX_ITERATIONS {
                return Err(format!(
                    "iteration count must be 1 to {PBKDF2_MAX_ITERATIONS}"
                ));
            }
            Ok(Hash::Pbkdf2Sha512 {
                iterations,
                salt: b64(salt)?,
                hash: b64(hash)?,
            })
        }
        ["", "6", salt, hash] => Ok(Hash::Sha512 {
            salt: b64(salt)?,
            hash: b64(hash)?,
        }),
        _ => Err("unknown hash format (expected $7$, $6$ or $argon2id$)".into()),
    }
}

fn verify_hash(hash: &Hash, password: &[u8]) -> bool {
    match hash {
        Hash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        } => constant_time_eq(&pbkdf2_sha512(password, salt, *iterations), hash),
        Hash::Sha512 { salt, hash } => {
            let mut h = Sha512::new();
            h.update(password);
            h.update(salt);
            constant_time_eq(&h.finalize(), hash)
        }
        Hash::Argon2(phc) => Argon2::default()
            .verify_password(password, phc.as_str())
            .is_ok(),
    }
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

/// Compares in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new Argon2id hash of `password` (PHC string), with a random salt.
pub fn hash_argon2id(password: &[u8]) -> Result<String, String> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// A new `$7$` hash of `password` (PBKDF2-SHA512, what Mosquitto also reads).
pub fn hash_pbkdf2(password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
    let hash = pbkdf2_sha512(password, &salt, PBKDF2_ITERATIONS);
    Ok(format!(
        "$7${PBKDF2_ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by the real `mosquitto_passwd -c -b pw alice secret` (Mosquitto 2).
    const MOSQUITTO_7: &str = "alice:$7$101$QfBRxX+azzrvoikh$obdu4NeSZL3VqAF12xbzADbZFINaI+fQ4lU3DeIZpDnV1bRAdTIgzi5ThjYrwOcy6RYVoOxd1H02GBM/QZY96Q==\n";

    #[test]
    fn reads_a_file_written_by_mosquitto_passwd() {
        let f = PasswordFile::parse(MOSQUITTO_7).unwrap();
        assert!(f.verify("alice", b"secret"));
        assert!(!f.verify("alice", b"Secret"));
        assert!(!f.verify("bob", b"secret"));
    }

    #[test]
    fn sha512_argon2id_and_pbkdf2_round_trip() {
        let salt = b"0123456789ab";
        let mut h = Sha512::new();
        h.update(b"pw6");
        h.update(salt);
        let line6 = format!("old:$6${}${}", B64.encode(salt), B64.encode(h.finalize()));
        let line7 = format!("new7:{}", hash_pbkdf2(b"pw7").unwrap());
        let line_a = format!("newa:{}", hash_argon2id(b"pwa").unwrap());
        let text = format!("# comment\n\n{line6}\n{line7}\n{line_a}\n");
        let f = PasswordFile::parse(&text).unwrap();
        assert_eq!(f.len(), 3);
        assert!(f.verify("old", b"pw6") && !f.verify("old", b"pw7"));
        assert!(f.verify("new7", b"pw7") && !f.verify("new7", b"pw6"));
        assert!(f.verify("newa", b"pwa") && !f.verify("newa", b"pw7"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (text, line) in [
            ("alice\n", 1),
            ("a:$7$101$QfBR$obdu\n:$7$1$AA==$AA==\n", 2),
            ("a:$5$x$y\n", 1),
            ("a:$7$0$AA==$AA==\n", 1),
            ("a:$7$101$not base64!$AA==\n", 1),
            ("a:$argon2id$nonsense\n", 1),
        ] {
            let e = PasswordFile::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }
}
