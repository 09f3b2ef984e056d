//! Listeners: accept connections, apply the connection limits, run sessions, and upgrade to
//! TLS on STARTTLS (ports 25 and 587) or at once (port 465, RFC 8314).

use super::limits::{Limiter, Refusal};
use super::session::{End, Role, SessionConfig, run};
use pec_gestore::Gestore;
use pec_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// One listening service.
#[derive(Clone)]
pub struct Service {
    /// MX or submission.
    pub role: Role,
    /// TLS from the first byte (465).
    pub implicit_tls: bool,
    /// The acceptor for STARTTLS or implicit TLS.
    pub tls: Option<TlsAcceptor>,
    /// Session settings (peer and TLS flags are filled per connection).
    pub template: SessionConfig,
    /// Limits shared by the listeners.
    pub limiter: Limiter,
}

/// Accepts connections on `listener` forever.
pub async fn serve<St: Store>(g: Arc<Gestore<St>>, listener: TcpListener, svc: Service) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let g = g.clone();
        let svc = svc.clone();
        tokio::spawn(async move {
            // A lock of the mailbox logged in here ends the session (product.md §4).
            let conn = g.sessions.open();
            match conn.run(connection(g.clone(), stream, peer, svc)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => tracing::debug!(%peer, "session ended with an error: {e}"),
                None => tracing::info!(%peer, "session ended: its mailbox was locked"),
            }
        });
    }
}

async fn connection<St: Store>(
    g: Arc<Gestore<St>>,
    mut stream: TcpStream,
    peer: SocketAddr,
    svc: Service,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let _slot = match svc.limiter.connect(peer.ip()) {
        Ok(s) => s,
        Err(r) => {
            let text = match r {
                Refusal::TooManyConnections => {
                    "421 4.3.2 Troppe connessioni, riprovare più tardi / too many connections\r\n"
                }
                Refusal::TooManyFromYou => {
                    "421 4.7.0 Troppe connessioni dal tuo indirizzo / too many connections from your address\r\n"
                }
            };
            if !svc.implicit_tls {
                stream.write_all(text.as_bytes()).await?;
            } else if let (Some(acceptor), Some(_turn)) = (&svc.tls, svc.limiter.refusal_turn()) {
                // On 465 the refusal goes inside TLS, or the client sees a connection cut
                // without a reason: a short handshake window, and only a few such
                // handshakes at once (a flood past the limits is cut without one).
                let mut tls =
                    super::input::within(REFUSAL_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await?;
                tls.write_all(text.as_bytes()).await?;
                let _ = tls.shutdown().await;
            }
            return Ok(());
        }
    };
    let mut cfg = svc.template.clone();
    cfg.peer = peer.ip();
    if svc.implicit_tls {
        let Some(acceptor) = &svc.tls else {
            return Ok(());
        };
        let tls = handshake(acceptor, stream).await?;
        cfg.tls = true;
        cfg.starttls = false;
        run(&g, &cfg, &svc.limiter, tls, true).await?;
        return Ok(());
    }
    cfg.tls = false;
    cfg.starttls = svc.tls.is_some();
    match run(&g, &cfg, &svc.limiter, stream, true).await? {
        End::Closed => Ok(()),
        End::StartTls(plain) => {
            let Some(acceptor) = &svc.tls else {
                return Ok(());
            };
            let tls = handshake(acceptor, plain).await?;
            cfg.tls = true;
            // RFC 3207 §4.2: the client starts over with EHLO; no new greeting.
            run(&g, &cfg, &svc.limiter, tls, false).await?;
            Ok(())
        }
    }
}

/// How long a client may take over the TLS handshake before its connection slot is freed.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a client refused for the limits may take over the handshake that carries the
/// refusal on 465.
const REFUSAL_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server side of a TLS handshake, within [`HANDSHAKE_TIMEOUT`].
async fn handshake<S>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: S,
) -> std::io::Result<tokio_rustls::server::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    super::input::within(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
}
