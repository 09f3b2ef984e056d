//! Mail client autoconfiguration on the gestore's HTTPS listener: the Thunderbird
//! autoconfig document (`/.well-known/autoconfig/mail/config-v1.1.xml`, also at
//! `/mail/config-v1.1.xml`) and Outlook's POX autodiscover
//! (`/autodiscover/autodiscover.xml`). Both name only TLS endpoints: IMAPS, POP3S and
//! submission over TLS, with the full address as the user name.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where clients connect.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The mail domain.
    pub domain: String,
    /// The provider's name.
    pub name: String,
    /// The host clients connect to (the TLS certificate names it).
    pub host: String,
    /// IMAPS port.
    pub imaps: u16,
    /// POP3S port.
    pub pop3s: u16,
    /// Submission over TLS port.
    pub submissions: u16,
}

/// Escapes text for XML content.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The Thunderbird autoconfig document (clientConfig 1.1).
pub fn thunderbird(e: &Endpoints) -> String {
    let (d, n, h) = (xml(&e.domain), xml(&e.name), xml(&e.host));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{d}">
    <domain>{d}</domain>
    <displayName>{n} (PEC)</displayName>
    <displayShortName>PEC</displayShortName>
    <incomingServer type="imap">
      <hostname>{h}</hostname>
      <port>{imaps}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>{h}</hostname>
      <port>{pop3s}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{h}</hostname>
      <port>{subs}</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#,
        imaps = e.imaps,
        pop3s = e.pop3s,
        subs = e.submissions
    )
}

/// The address in an autodiscover request (`<EMailAddress>`), if any.
fn requested_address(body: &str) -> Option<&str> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = body[start..].find("</EMailAddress>")? + start;
    Some(body[start..end].trim())
}

/// The Outlook autodiscover response for `address`.
pub fn outlook(e: &Endpoints, address: &str) -> String {
    let (h, a) = (xml(&e.host), xml(address));
    let protocol = |kind: &str, port: u16| {
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{h}</Server>\n        <Port>{port}</Port>\n        <LoginName>{a}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n{}{}    </Account>\n  </Response>\n</Autodiscover>\n",
        protocol("IMAP", e.imaps),
        protocol("SMTP", e.submissions)
    )
}

fn xml_response(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The routes.
pub fn router(e: Endpoints) -> Router {
    let e = Arc::new(e);
    let tb = {
        let e = e.clone();
        move || {
            let e = e.clone();
            async move { xml_response(thunderbird(&e)) }
        }
    };
    let ol = {
        let e = e.clone();
        move |body: String| {
            let e = e.clone();
            async move {
                match requested_address(&body) {
                    Some(a) if a.contains('@') => xml_response(outlook(&e, a)),
                    _ => (
                        StatusCode::BAD_REQUEST,
                        "the autodiscover request names no <EMailAddress>\n",
                    )
                        .into_response(),
                }
            }
        }
    };
    Router::new()
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(tb.clone()),
        )
        .route("/mail/config-v1.1.xml", get(tb))
        .route(
            "/autodiscover/autodiscover.xml",
            axum::routing::post(ol.clone()),
        )
        .route("/Autodiscover/Autodiscover.xml", axum::routing::post(ol))
}

/// A TLS listener for `axum::serve`: handshakes run in their own tasks (10 s limit), so a
/// slow client never holds up the others.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`.
    pub fn new(listener: TcpListener, tls: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("HTTPS accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("HTTPS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("HTTPS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            domain: "a.test".into(),
            name: "Gestore <A>".into(),
            host: "mx.a.test".into(),
            imaps: 993,
            pop3s: 995,
            submissions: 465,
        }
    }

    #[test]
    fn documents_name_tls_endpoints_and_escape_text() {
        let t = thunderbird(&endpoints());
        assert!(t.contains("<port>993</port>") && t.contains("<socketType>SSL</socketType>"));
        assert!(t.contains("Gestore &lt;A&gt;"));
        let o = outlook(&endpoints(), "m@a.test");
        assert!(o.contains("<Type>IMAP</Type>") && o.contains("<Port>465</Port>"));
        assert_eq!(
            requested_address("<Request><EMailAddress> m@a.test </EMailAddress></Request>"),
            Some("m@a.test")
        );
    }
}
