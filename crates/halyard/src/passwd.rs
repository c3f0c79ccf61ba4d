//! `halyard passwd`: manages a password file the way `mosquitto_passwd` does, with its
//! flags: `-c` create (or overwrite), `-b` take the password from the command line, `-D`
//! delete a user, `-U` hash a file of plaintext `user:password` lines in place. New entries
//! are Argon2id unless `--hash pbkdf2` asks for Mosquitto's `$7$` (for a file Mosquitto must
//! also read). Other users' lines are kept as they are.

use anyhow::{Context, bail};
use halyard_server::passwords::{PasswordFile, hash_argon2id, hash_pbkdf2};
use std::path::{Path, PathBuf};

/// Arguments of `halyard passwd`.
#[derive(Debug, clap::Args)]
pub(crate) struct PasswdArgs {
    /// Create a new file (overwriting an existing one).
    #[arg(short = 'c', conflicts_with_all = ["delete", "upgrade"])]
    create: bool,
    /// Batch mode: the password is the last argument (it may then show in process lists).
    #[arg(short = 'b')]
    batch: bool,
    /// Delete the user.
    #[arg(short = 'D', conflicts_with_all = ["batch", "upgrade"])]
    delete: bool,
    /// Hash every plaintext `user:password` line of the file in place.
    #[arg(short = 'U', conflicts_with = "batch")]
    upgrade: bool,
    /// Hash for new entries: argon2id (default) or pbkdf2 (Mosquitto's `$7$`).
    #[arg(long = "hash", default_value = "argon2id")]
    hash: Hash,
    /// The password file.
    file: PathBuf,
    /// The user name.
    user: Option<String>,
    /// The password (with -b).
    password: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Hash {
    Argon2id,
    Pbkdf2,
}

/// Runs `halyard passwd`.
pub(crate) fn run(args: PasswdArgs) -> anyhow::Result<()> {
    if args.upgrade {
        return upgrade(&args.file, args.hash);
    }
    let Some(user) = args.user.as_deref() else {
        bail!("a user name is needed: halyard passwd [-c] [-b] FILE USER [PASSWORD]");
    };
    if user.is_empty() || user.contains(':') {
        bail!("a user name must not be empty or contain ':'");
    }
    let mut lines = if args.create {
        Vec::new()
    } else {
        read_lines(&args.file)?
    };
    let is_user = |l: &String| l.split_once(':').is_some_and(|(u, _)| u == user);
    if args.delete {
        let before = lines.len();
        lines.retain(|l| !is_user(l));
        if lines.len() == before {
            bail!("user {user} is not in {}", args.file.display());
        }
        return write_lines(&args.file, &lines);
    }
    let password = match (args.batch, args.password) {
        (true, Some(p)) => p,
        (true, None) => bail!("-b needs the password as the last argument"),
        (false, Some(_)) => bail!("a password on the command line needs -b"),
        (false, None) => prompt_password()?,
    };
    let entry = format!("{user}:{}", hash(password.as_bytes(), args.hash)?);
    match lines.iter_mut().find(|l| is_user(l)) {
        Some(line) => *line = entry,
        None => lines.push(entry),
    }
    write_lines(&args.file, &lines)
}

fn hash(password: &[u8], kind: Hash) -> anyhow::Result<String> {
    let hashed = match kind {
        Hash::Argon2id => hash_argon2id(password),
        Hash::Pbkdf2 => hash_pbkdf2(password),
    };
    hashed.map_err(|e| anyhow::anyhow!(e))
}

fn prompt_password() -> anyhow::Result<String> {
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let again =
        rpassword::prompt_password("Reenter password: ").context("cannot read the password")?;
    if first != again {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Hashes every line whose password is in plaintext (as `mosquitto_passwd -U`); lines that
/// hold a hash already are kept.
fn upgrade(path: &Path, kind: Hash) -> anyhow::Result<()> {
    let mut lines = read_lines(path)?;
    for line in &mut lines {
        let Some((user, secret)) = line.split_once(':') else {
            continue;
        };
        if PasswordFile::parse(line).is_ok() || line.starts_with('#') {
            continue;
        }
        *line = format!("{user}:{}", hash(secret.as_bytes(), kind)?);
    }
    write_lines(path, &lines)
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Writes the file whole, readable by its owner only (it holds hashes).
fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    // A new file of our own beside it (never an existing one, nor a link to one), then
    // renamed over it.
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let name = format!(
        ".{}.{}.{:016x}.tmp",
        path.file_name()
            .map_or("passwd".into(), |n| n.to_string_lossy()),
        std::process::id(),
        u64::from_le_bytes(salt)
    );
    let tmp = path.with_file_name(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
