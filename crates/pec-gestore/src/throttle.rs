//! Failed-login throttling shared by the access protocols (POP3, IMAP, and later the web):
//! after too many failures from one client address, or against one account, within a
//! window, further attempts are refused until the window ends, whatever the password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed from one client address per window.
pub const PER_ADDRESS: u32 = 20;
/// Failures allowed against one account per window.
pub const PER_ACCOUNT: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Account(String),
}

/// Counts failed logins per client address and per account.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    windows: Mutex<HashMap<Key, (Instant, u32)>>,
}

impl LoginThrottle {
    fn keys(ip: IpAddr, user: &str) -> [(Key, u32); 2] {
        [
            (Key::Address(ip), PER_ADDRESS),
            (Key::Account(user.trim().to_ascii_lowercase()), PER_ACCOUNT),
        ]
    }

    /// How long `ip` / `user` must still wait, if they are over a limit.
    pub fn blocked(&self, ip: IpAddr, user: &str, now: Instant) -> Option<Duration> {
        let w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(ip, user)
            .iter()
            .filter_map(|(k, max)| {
                let (start, n) = w.get(k)?;
                let left = WINDOW.checked_sub(now.duration_since(*start))?;
                (*n >= *max && !left.is_zero()).then_some(left)
            })
            .max()
    }

    /// Records a failure.
    pub fn failed(&self, ip: IpAddr, user: &str, now: Instant) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        for (k, _) in Self::keys(ip, user) {
            let e = w.entry(k).or_insert((now, 0));
            if now.duration_since(e.0) >= WINDOW {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_after_its_limit_and_released_after_the_window() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..PER_ACCOUNT {
            assert!(t.blocked(ip, "Anna@b.test", t0).is_none(), "attempt {i}");
            t.failed(ip, "anna@b.test", t0);
        }
        assert!(t.blocked(ip, "ANNA@b.test", t0).is_some());
        // Another account from another address is unaffected.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.blocked(other, "luca@b.test", t0).is_none());
        // The same account from anywhere is held.
        assert!(t.blocked(other, "anna@b.test", t0).is_some());
        assert!(t.blocked(ip, "anna@b.test", t0 + WINDOW).is_none());
    }

    #[test]
    fn an_address_is_held_across_accounts() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..PER_ADDRESS {
            t.failed(ip, &format!("u{i}@b.test"), t0);
        }
        assert!(t.blocked(ip, "new@b.test", t0).is_some());
    }
}
