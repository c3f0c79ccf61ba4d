//! Authentication from the configuration: a Mosquitto password file, anonymous access
//! (`[auth] password_file`, `allow_anonymous`) and client certificates whose identity is the
//! user name (`[listener.tls] identity_as_username`).
//!
//! The quick answer ([`Authenticator::authenticate`], on the connection's task) settles
//! anonymous clients; a client with a user name gets [`AuthDecision::Verify`], and its
//! password is hashed by [`Authenticator::verify`] on the blocking pool
//! (`connection::start_verify`). The password file can be replaced while running (reload).

use crate::passwords::PasswordFile;
use halyard_codec::ReasonCode;
use halyard_core::{AuthDecision, Authenticator, ConnectInfo, VerifyRequest};
use std::sync::{Arc, RwLock};

/// Checks CONNECT's user name and password against a password file.
#[derive(Debug)]
pub struct PasswordAuthenticator {
    passwords: RwLock<Option<Arc<PasswordFile>>>,
    allow_anonymous: bool,
}

impl PasswordAuthenticator {
    /// With `passwords` (none: no user name is accepted) and whether clients without a user
    /// name may connect.
    pub fn new(passwords: Option<PasswordFile>, allow_anonymous: bool) -> PasswordAuthenticator {
        PasswordAuthenticator {
            passwords: RwLock::new(passwords.map(Arc::new)),
            allow_anonymous,
        }
    }

    /// Replaces the password file (at reload): checks from now on use the new one.
    pub fn set_passwords(&self, passwords: Option<PasswordFile>) {
        *self.passwords.write().unwrap_or_else(|e| e.into_inner()) = passwords.map(Arc::new);
    }

    fn passwords(&self) -> Option<Arc<PasswordFile>> {
        self.passwords
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Authenticator for PasswordAuthenticator {
    fn authenticate(&self, info: &ConnectInfo<'_>) -> AuthDecision {
        if info.certificate.is_some_and(|c| c.as_username) {
            // The user name is the verified certificate's identity: the certificate is
            // the credential (the password file is not asked, as in Mosquitto).
            return AuthDecision::Allow;
        }
        match info.username {
            // No credentials where they are required: 0x87 / 3.1.1 return code 5.
            None if !self.allow_anonymous => AuthDecision::Deny(ReasonCode::NOT_AUTHORIZED),
            None => AuthDecision::Allow,
            Some(_) => AuthDecision::Verify,
        }
    }

    fn verify(&self, request: &VerifyRequest) -> AuthDecision {
        // Bad user name or password: 0x86 / 3.1.1 return code 4.
        let bad = AuthDecision::Deny(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        let (Some(user), Some(password)) = (&request.username, &request.password) else {
            return bad;
        };
        match self.passwords() {
            Some(file) if file.verify(user.as_str(), password) => AuthDecision::Allow,
            _ => bad,
        }
    }
}
