//! IMAP listeners: implicit TLS (IMAPS, RFC 8314) or plain with STARTTLS (RFC 3501 §6.2.1),
//! caps on open connections in all and per client address, a time limit on the TLS
//! handshake, and the upgrade from a plain session to a TLS one.

use crate::session::{End, SessionConfig, run};
use pec_gestore::Gestore;
use pec_store::Store;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// One IMAP service.
#[derive(Clone)]
pub struct Service {
    /// Our host name.
    pub hostname: String,
    /// TLS from the first byte (IMAPS) rather than STARTTLS.
    pub implicit_tls: bool,
    /// The server TLS configuration.
    pub tls: TlsAcceptor,
    /// Open connections allowed; more get `* BYE` and are closed.
    pub max_connections: usize,
    /// Open connections allowed from one client address (an IPv6 /64 counting as one).
    pub max_connections_per_ip: usize,
    /// Folder indexes shared by the sessions (one for all of a server's listeners).
    pub index: Arc<crate::index_cache::IndexCache>,
}

/// Accepts connections on `listener` for ever.
pub async fn serve<S: Store>(g: Arc<Gestore<S>>, listener: TcpListener, service: Service) {
    let slots = Arc::new(Semaphore::new(service.max_connections));
    let per_address = pec_gestore::peers::PerAddress::new(service.max_connections_per_ip);
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("IMAP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"* BYE [UNAVAILABLE] too many connections; try again later\r\n")
                    .await;
            });
            continue;
        };
        let Some(address_slot) = per_address.enter(peer.ip()) else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"* BYE [UNAVAILABLE] too many connections from your address; try again later\r\n")
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
                starttls: !service.implicit_tls,
                peer: peer.ip(),
                index: service.index.clone(),
            };
            // A lock of the mailbox logged in here ends the session (product.md §4).
            let conn = g.sessions.open();
            let result = conn
                .run(async {
                    if service.implicit_tls {
                        match pec_gestore::peers::handshake(service.tls.accept(stream)).await {
                            Ok(s) => run(s, &cfg, &g, true).await.map(|_| ()),
                            Err(e) => Err(e),
                        }
                    } else {
                        match run(stream, &cfg, &g, true).await {
                            Ok(End::StartTls(plain)) => {
                                match pec_gestore::peers::handshake(service.tls.accept(plain)).await
                                {
                                    Ok(s) => {
                                        cfg.tls = true;
                                        cfg.starttls = false;
                                        run(s, &cfg, &g, false).await.map(|_| ())
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
                tracing::info!("IMAP session with {peer} ended: its mailbox was locked");
                Ok(())
            });
            if let Err(e) = result {
                tracing::debug!("IMAP session with {peer} ended: {e}");
            }
            drop((slot, address_slot));
        });
    }
}
