//! Accounts and passwords: argon2id PHC strings, hashed and checked off the async threads.

use crate::{Gestore, GestoreError};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use pec_store::Store;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The mailbox address the user logged in as.
    pub address: String,
}

/// Hashes a password (argon2id, default parameters, random salt).
pub async fn hash_password(password: &str) -> Result<String, GestoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::fill(&mut salt);
        PasswordHasher::<PasswordHash>::hash_password_with_salt(
            &Argon2::default(),
            password.as_bytes(),
            &salt,
        )
        .map(|h| h.to_string())
        .map_err(|e| GestoreError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| GestoreError::Internal(e.to_string()))?
}

/// The outcome of a login through an access protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Logged in.
    Accepted(Account),
    /// Unknown user, wrong password or disabled mailbox (never said which).
    Refused,
    /// Too many failures lately from this address or for this account; try again after
    /// this many seconds.
    Throttled(u64),
}

impl<S: Store> Gestore<S> {
    /// A login from `ip`, counted by the failed-login throttle ([`crate::throttle`]).
    pub async fn login(
        &self,
        ip: std::net::IpAddr,
        user: &str,
        password: &str,
    ) -> Result<Login, GestoreError> {
        let now = std::time::Instant::now();
        if let Some(wait) = self.throttle.blocked(ip, user, now) {
            return Ok(Login::Throttled(wait.as_secs().max(1)));
        }
        Ok(match self.authenticate(user, password).await? {
            Some(a) => Login::Accepted(a),
            None => {
                self.throttle.failed(ip, user, now);
                Login::Refused
            }
        })
    }

    /// Checks a login; `None` for an unknown user, a wrong password, a disabled mailbox or the
    /// service mailbox (which has no password).
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<Account>, GestoreError> {
        let m = self.store.mailbox(user.trim()).await?;
        // A locked mailbox has an empty hash too (product.md §4: password invalidated).
        let usable = m
            .as_ref()
            .filter(|m| !(m.disabled || m.service || m.locked || m.password_hash.is_empty()));
        // A refused account costs the same hash as a real one, so the time of the answer
        // does not tell which addresses exist.
        let hash = match usable {
            Some(m) => m.password_hash.clone(),
            None => dummy_hash().await?,
        };
        let ok = verify(hash, password.to_string()).await? && usable.is_some();
        let Some(m) = usable.filter(|_| ok) else {
            return Ok(None);
        };
        crate::sessions::logged_in(&m.address);
        Ok(Some(Account {
            address: m.address.clone(),
        }))
    }
}

/// Password checks running at once: each argon2id check holds 19 MiB and a core for a
/// while, so a flood of guesses waits here instead of exhausting memory.
static CHECKS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(4));

/// Whether `password` matches the PHC string `hash`, checked off the async threads.
async fn verify(hash: String, password: String) -> Result<bool, GestoreError> {
    let _turn = CHECKS
        .acquire()
        .await
        .map_err(|e| GestoreError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(|e| GestoreError::Internal(e.to_string()))
}

/// A hash of a random password, made once, for the accounts that cannot log in.
async fn dummy_hash() -> Result<String, GestoreError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let mut secret = [0u8; 16];
            rand::fill(&mut secret);
            hash_password(&hex::encode(secret)).await
        })
        .await
        .cloned()
}
