//! Connection and rate limits of the SMTP listeners: total connections, connections per client
//! address, and messages per client address per minute. Each refusal has its own code and text.
//! An IPv6 client counts by its /64 network, what one site usually gets: otherwise a client
//! with a /64 to itself would have 2^64 addresses to spread over. The bytes of messages being
//! received share one memory budget, so that many large messages at once cannot exhaust it.

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// Bytes of messages being received at once, over all sessions (reserved by the MiB).
    pub message_memory_bytes: u64,
}

const MIB: u64 = 1 << 20;

/// The memory one message being received holds in the budget ([`Limiter::reserve`]); given
/// back when dropped.
#[derive(Debug, Default)]
pub struct Room {
    permit: Option<OwnedSemaphorePermit>,
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
    memory: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
}

/// TLS handshakes that carry a refusal on 465, at most at once ([`Limiter::refusal_turn`]).
const REFUSAL_HANDSHAKES: usize = 8;

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
        let mib = (limits.message_memory_bytes / MIB).clamp(1, Semaphore::MAX_PERMITS as u64);
        Limiter {
            limits,
            state: Arc::default(),
            memory: Arc::new(Semaphore::new(mib as usize)),
            refusals: Arc::new(Semaphore::new(REFUSAL_HANDSHAKES)),
        }
    }

    /// A turn to tell a refused client why over TLS; `None` when enough are under way
    /// (the connection is then closed without a word).
    pub fn refusal_turn(&self) -> Option<OwnedSemaphorePermit> {
        self.refusals.clone().try_acquire_owned().ok()
    }

    /// Grows `room` to hold `bytes`; false when the budget has no room left for it.
    pub fn reserve(&self, room: &mut Room, bytes: u64) -> bool {
        let need = bytes.div_ceil(MIB);
        let held = room.permit.as_ref().map_or(0, |p| p.num_permits() as u64);
        if need <= held {
            return true;
        }
        let Ok(more) = u32::try_from(need - held) else {
            return false;
        };
        match self.memory.clone().try_acquire_many_owned(more) {
            Ok(p) => {
                match &mut room.permit {
                    Some(h) => h.merge(p),
                    None => room.permit = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Takes a connection slot for `ip`.
    pub fn connect(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = pec_gestore::throttle::network(ip);
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
        let ip = pec_gestore::throttle::network(ip);
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
            message_memory_bytes: MIB,
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

    #[test]
    fn an_ipv6_client_counts_by_its_slash_64() {
        let l = Limiter::new(Limits {
            max_connections: 10,
            max_connections_per_ip: 1,
            messages_per_minute_per_ip: 1,
            message_memory_bytes: MIB,
        });
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _s = l.connect(one).unwrap();
        assert_eq!(l.connect(same_net).err(), Some(Refusal::TooManyFromYou));
        assert!(l.connect(other_net).is_ok());
        assert!(l.allow_message(one));
        assert!(!l.allow_message(same_net));
        // An IPv4 client seen through an IPv4-mapped address is the IPv4 client.
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _v = l.connect(v4).unwrap();
        assert_eq!(l.connect(mapped).err(), Some(Refusal::TooManyFromYou));
    }
}
