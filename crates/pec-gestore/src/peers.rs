//! Open connections per client address for the mailbox access listeners (IMAP, POP3): one
//! address, or one IPv6 /64, may hold only so many, so that it cannot take every slot of a
//! listener from everyone else (the SMTP server counts the same way in its own limits).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Connections open per client address, up to a maximum each.
#[derive(Debug)]
pub struct PerAddress {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted for its address; dropping it gives the place back.
#[derive(Debug)]
pub struct AddressSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerAddress {
    /// At most `max` connections per address (at least one).
    pub fn new(max: usize) -> PerAddress {
        PerAddress {
            max: max.max(1),
            open: Arc::default(),
        }
    }

    /// A place for a connection from `ip`, or `None` when its address holds the maximum.
    pub fn enter(&self, ip: IpAddr) -> Option<AddressSlot> {
        let ip = crate::throttle::network(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// How long a TLS handshake on an access listener may take.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A TLS handshake (`accept`) within [`HANDSHAKE_TIMEOUT`]: a client that opens a connection
/// and sends nothing holds its slot no longer.
pub async fn handshake<T>(
    accept: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share() {
        let p = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let one = p.enter(a).unwrap();
        let _two = p.enter(a).unwrap();
        assert!(p.enter(a).is_none());
        assert!(p.enter("192.0.2.2".parse().unwrap()).is_some());
        // The same /64 counts as one address.
        let b1: IpAddr = "2001:db8::1".parse().unwrap();
        let b2: IpAddr = "2001:db8::2".parse().unwrap();
        let (_x, _y) = (p.enter(b1).unwrap(), p.enter(b2).unwrap());
        assert!(p.enter("2001:db8::3".parse().unwrap()).is_none());
        drop(one);
        assert!(
            p.enter(a).is_some(),
            "a closed connection gives its place back"
        );
    }
}
