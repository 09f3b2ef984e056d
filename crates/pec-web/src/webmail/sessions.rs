//! Web sessions, in memory: a random 256-bit id per login, ended by logout, after two idle
//! hours, twelve hours after the login, or when the mailbox's password changes (a reset
//! after a lockout ends them, product.md §4). A restart ends every session (users log in
//! again; nothing else is lost).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle time after which a session ends.
pub const IDLE: Duration = Duration::from_secs(2 * 3600);
/// Lifetime of a session whatever its use.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Time allowed to type the second factor's code.
pub const SECOND_FACTOR_WAIT: Duration = Duration::from_secs(300);

/// One session.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The mailbox.
    pub address: String,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// Waiting for the TOTP code: not logged in yet.
    pub pending_second_factor: bool,
    /// [`password_mark`] of the password the session logged in with.
    pub password: String,
    created: Instant,
    last: Instant,
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct WebSessions {
    map: Mutex<HashMap<String, WebSession>>,
}

/// A mark of a mailbox's stored password hash: a session whose mark differs from the
/// mailbox's current one logged in with a password since changed, and ends.
pub fn password_mark(password_hash: &str) -> String {
    hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, password_hash.as_bytes()).as_ref(),
    )
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    hex::encode(b)
}

impl WebSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WebSession>> {
        // A poisoned map only means a panic elsewhere mid-insert; the map is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `address`, logged in with the password marked `password`
    /// ([`password_mark`]); returns its id.
    pub fn create(&self, address: &str, pending_second_factor: bool, password: &str) -> String {
        let now = Instant::now();
        let id = random_hex();
        let mut m = self.lock();
        if m.len() > 50_000 {
            m.retain(|_, s| alive(s, now));
        }
        m.insert(
            id.clone(),
            WebSession {
                address: address.to_string(),
                csrf: random_hex(),
                pending_second_factor,
                password: password.to_string(),
                created: now,
                last: now,
            },
        );
        id
    }

    /// The live session `id`, its idle time restarted.
    pub fn get(&self, id: &str) -> Option<WebSession> {
        let now = Instant::now();
        let mut m = self.lock();
        let s = m.get_mut(id)?;
        if !alive(s, now) {
            m.remove(id);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    /// Ends the wait for the second factor: the old id ends and a new one is returned
    /// (a new id at each privilege change, against session fixation).
    pub fn promote(&self, id: &str) -> Option<String> {
        let s = self.lock().remove(id)?;
        Some(self.create(&s.address, false, &s.password))
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn alive(s: &WebSession, now: Instant) -> bool {
    let idle = if s.pending_second_factor {
        SECOND_FACTOR_WAIT
    } else {
        IDLE
    };
    now.duration_since(s.last) < idle && now.duration_since(s.created) < LIFETIME
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sessions_open_promote_and_end() {
        let s = WebSessions::default();
        let id = s.create("mario@a.test", true, &password_mark("h"));
        assert_eq!(id.len(), 64);
        let got = s.get(&id).unwrap();
        assert!(got.pending_second_factor);
        let full = s.promote(&id).unwrap();
        assert_ne!(full, id);
        assert!(s.get(&id).is_none(), "the waiting id is gone");
        let got = s.get(&full).unwrap();
        assert!(!got.pending_second_factor);
        assert_ne!(got.csrf, full);
        s.remove(&full);
        assert!(s.get(&full).is_none());
        assert!(s.is_empty());
    }
}
