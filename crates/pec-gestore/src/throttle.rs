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

/// The address a client counts under, in every per-client limit (logins here, connections
/// in [`crate::peers`] and in the SMTP server): an IPv4 address (also when written as an
/// IPv4-mapped IPv6 address), or its IPv6 /64 network, what one site usually gets: otherwise
/// a client with a /64 to itself would have 2^64 addresses to spread over.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// Counts failed logins per client address and per account.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    windows: Mutex<HashMap<Key, (Instant, u32)>>,
}

impl LoginThrottle {
    fn keys(ip: IpAddr, user: Option<&str>) -> Vec<(Key, u32)> {
        let mut keys = vec![(Key::Address(network(ip)), PER_ADDRESS)];
        if let Some(user) = user {
            keys.push((Key::Account(user.trim().to_ascii_lowercase()), PER_ACCOUNT));
        }
        keys
    }

    /// How long `ip` / `user` must still wait, if they are over a limit.
    pub fn blocked(&self, ip: IpAddr, user: &str, now: Instant) -> Option<Duration> {
        self.blocked_keys(Self::keys(ip, Some(user)), now)
    }

    /// How long `ip` must still wait, counting only its own failures: for credentials that
    /// name no account (an API token), where a per-account count would let anyone lock
    /// everyone out.
    pub fn blocked_address(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        self.blocked_keys(Self::keys(ip, None), now)
    }

    /// Records a failure of credentials that name no account (see [`Self::blocked_address`]).
    pub fn failed_address(&self, ip: IpAddr, now: Instant) {
        self.record(Self::keys(ip, None), now);
    }

    fn blocked_keys(&self, keys: Vec<(Key, u32)>, now: Instant) -> Option<Duration> {
        let w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|(k, max)| {
                let (start, n) = w.get(k)?;
                let left = WINDOW.checked_sub(now.duration_since(*start))?;
                (*n >= *max && !left.is_zero()).then_some(left)
            })
            .max()
    }

    /// Records a failure.
    pub fn failed(&self, ip: IpAddr, user: &str, now: Instant) {
        self.record(Self::keys(ip, Some(user)), now);
    }

    fn record(&self, keys: Vec<(Key, u32)>, now: Instant) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        for (k, _) in keys {
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

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..PER_ADDRESS {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            t.failed(ip, &format!("u{i}@a.test"), now);
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(t.blocked(same_64, "new@a.test", now).is_some());
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.blocked(other_64, "new@a.test", now).is_none());
    }

    /// Bad API tokens count against the client address only: another client with a good
    /// token is not held back.
    #[test]
    fn address_only_failures_hold_back_only_that_address() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let bad: IpAddr = "192.0.2.50".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            t.failed_address(bad, now);
        }
        assert!(t.blocked_address(bad, now).is_some());
        assert!(
            t.blocked_address("192.0.2.51".parse().unwrap(), now)
                .is_none()
        );
    }
}
