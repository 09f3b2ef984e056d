//! POP3 listeners: implicit TLS (POP3S, RFC 8314) or plain with STLS, caps on open
//! connections in all and per client address, a time limit on the TLS handshake, and the
//! upgrade from a plain session to a TLS one.

use crate::session::{End, SessionConfig, run};
use pec_gestore::Gestore;
use pec_store::Store;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// One POP3 service.
#[derive(Clone)]
pub struct Service {
    /// Our host name.
    pub hostname: String,
    /// TLS from the first byte (POP3S) rather than STLS.
    pub implicit_tls: bool,
    /// The server TLS configuration.
    pub tls: TlsAcceptor,
    /// Open connections allowed; more get `-ERR [SYS/TEMP]` and are closed.
    pub max_connections: usize,
    /// Open connections allowed from one client address (an IPv6 /64 counting as one).
    pub max_connections_per_ip: usize,
}

/// Accepts connections on `listener` for ever.
pub async fn serve<S: Store>(g: Arc<Gestore<S>>, listener: TcpListener, service: Service) {
    let slots = Arc::new(Semaphore::new(service.max_connections));
    let per_address = pec_gestore::peers::PerAddress::new(service.max_connections_per_ip);
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("POP3 accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR [SYS/TEMP] too many connections; try again later\r\n")
                    .await;
            });
            continue;
        };
        let Some(address_slot) = per_address.enter(peer.ip()) else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR [SYS/TEMP] too many connections from your address; try again later\r\n")
                    .await;
            });
            continue;
        };
        let g = g.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let mut cfg = SessionConfig {
                hostname: service.hostname.clone(),
                tls: service.implicit_tls,
                stls: !service.implicit_tls,
                peer: peer.ip(),
                greeting: true,
            };
            // A lock of the mailbox logged in here ends the session (product.md §4).
            let conn = g.sessions.open();
            let result = conn
                .run(async {
                    if service.implicit_tls {
                        match pec_gestore::peers::handshake(service.tls.accept(stream)).await {
                            Ok(s) => run(s, &cfg, &g).await.map(|_| ()),
                            Err(e) => Err(e),
                        }
                    } else {
                        match run(stream, &cfg, &g).await {
                            Ok(End::StartTls(plain)) => {
                                match pec_gestore::peers::handshake(service.tls.accept(plain)).await
                                {
                                    Ok(s) => {
                                        cfg.tls = true;
                                        cfg.stls = false;
                                        cfg.greeting = false;
                                        run(s, &cfg, &g).await.map(|_| ())
                                    }
                                    Err(e) => Err(e),
                                }
                            }
                            Ok(End::Closed) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                })
                .await;
            let result = result.unwrap_or_else(|| {
                tracing::info!("POP3 session with {peer} ended: its mailbox was locked");
                Ok(())
            });
            if let Err(e) = result {
                tracing::debug!("POP3 session with {peer} ended: {e}");
            }
            drop((slot, address_slot));
        });
    }
}
