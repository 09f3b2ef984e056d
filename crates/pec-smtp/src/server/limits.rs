//! Connection and rate limits of the SMTP listeners: total connections, connections per client
//! address, and messages per client address per minute. Each refusal has its own code and text.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Limits to enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one address.
    pub max_connections_per_ip: usize,
    /// MAIL commands from one address per minute.
    pub messages_per_minute_per_ip: u32,
}

#[derive(Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    rate: HashMap<IpAddr, (i64, u32)>,
}

/// Shared limiter.
#[derive(Clone)]
pub struct Limiter {
    limits: Limits,
    state: Arc<Mutex<State>>,
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server is full.
    TooManyConnections,
    /// This address has too many open.
    TooManyFromYou,
}

/// Releases a connection slot when dropped.
pub struct Slot {
    ip: IpAddr,
    state: Arc<Mutex<State>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            state: Arc::default(),
        }
    }

    /// Takes a connection slot for `ip`.
    pub fn connect(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.total >= self.limits.max_connections {
            return Err(Refusal::TooManyConnections);
        }
        let n = s.per_ip.entry(ip).or_default();
        if *n >= self.limits.max_connections_per_ip {
            return Err(Refusal::TooManyFromYou);
        }
        *n += 1;
        s.total += 1;
        Ok(Slot {
            ip,
            state: self.state.clone(),
        })
    }

    /// Counts one message from `ip`; false when over the per-minute rate.
    pub fn allow_message(&self, ip: IpAddr) -> bool {
        let minute = chrono::Utc::now().timestamp() / 60;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.rate.len() > 100_000 {
            s.rate.retain(|_, (m, _)| *m == minute);
        }
        let e = s.rate.entry(ip).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        e.1 += 1;
        e.1 <= self.limits.messages_per_minute_per_ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_rates_are_enforced() {
        let l = Limiter::new(Limits {
            max_connections: 2,
            max_connections_per_ip: 1,
            messages_per_minute_per_ip: 2,
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = l.connect(a).unwrap();
        assert_eq!(l.connect(a).err(), Some(Refusal::TooManyFromYou));
        let _s2 = l.connect(b).unwrap();
        assert_eq!(l.connect(c).err(), Some(Refusal::TooManyConnections));
        drop(s1);
        assert!(l.connect(a).is_ok());
        assert!(l.allow_message(c) && l.allow_message(c));
        assert!(!l.allow_message(c));
    }
}
