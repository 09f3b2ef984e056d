//! Web sessions, in memory: a random 256-bit id per login, ended by logout, after two idle
//! hours, or twelve hours after the login. A restart ends every session (users log in
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
    created: Instant,
    last: Instant,
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct WebSessions {
    map: Mutex<HashMap<String, WebSession>>,
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

    /// Opens a session for `address`; returns its id.
    pub fn create(&self, address: &str, pending_second_factor: bool) -> String {
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
        Some(self.create(&s.address, false))
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
        let id = s.create("mario@a.test", true);
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
