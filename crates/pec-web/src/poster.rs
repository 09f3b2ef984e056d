//! The HTTP/1.1 client the webhook worker posts with ([`pec_gestore::Poster`]): `http://`
//! and `https://` URLs (TLS with rustls, server certificates checked against the roots the
//! gestore is configured with), one request per connection, the status line read back.

use pec_gestore::{PostFuture, Poster};
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed `http(s)://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// TLS or not.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Parses a webhook URL, with a sentence when it is not one.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("the URL must start with http:// or https://".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || authority.is_empty() {
        return Err("the URL must name a host, without user information".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
        None if tls => 443,
        None => 80,
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("the URL path has spaces or control characters".into());
    }
    Ok(Target {
        tls,
        host,
        port,
        path: path.to_string(),
    })
}

/// Posts over HTTP/1.1.
pub struct HttpPoster {
    tls: Arc<rustls::ClientConfig>,
}

impl HttpPoster {
    /// A poster checking server certificates with `tls`.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> HttpPoster {
        HttpPoster { tls }
    }

    async fn exchange<T: AsyncRead + AsyncWrite + Unpin>(
        mut io: T,
        request: &[u8],
    ) -> Result<u16, String> {
        io.write_all(request).await.map_err(|e| e.to_string())?;
        io.flush().await.map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
            let n = io.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .filter(|_| line.starts_with("HTTP/1."))
            .ok_or_else(|| "the answer is not HTTP".to_string())?;
        Ok(status)
    }

    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<u16, String> {
        let t = parse_url(url)?;
        let host_header = if t.host.contains(':') {
            format!("[{}]:{}", t.host, t.port)
        } else {
            format!("{}:{}", t.host, t.port)
        };
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: pec-webhooks\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            t.path,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut request = req.into_bytes();
        request.extend_from_slice(body);
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect((t.host.as_str(), t.port)),
        )
        .await
        .map_err(|_| "connection timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
        if t.tls {
            let name = ServerName::try_from(t.host.clone()).map_err(|e| e.to_string())?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            Self::exchange(tls, &request).await
        } else {
            Self::exchange(tcp, &request).await
        }
    }
}

impl Poster for HttpPoster {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(String, String)],
        body: &'a [u8],
    ) -> PostFuture<'a> {
        Box::pin(self.send(url, headers, body))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_parsed_or_refused_with_a_sentence() {
        assert_eq!(
            parse_url("https://erp.example.it/hooks/pec?x=1").unwrap(),
            Target {
                tls: true,
                host: "erp.example.it".into(),
                port: 443,
                path: "/hooks/pec?x=1".into()
            }
        );
        let t = parse_url("http://[::1]:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8080, "/")
        );
        assert!(parse_url("ftp://x").unwrap_err().contains("http://"));
        assert!(parse_url("http://u:p@host/").is_err());
        assert!(parse_url("http://host:99999/").is_err());
        assert!(parse_url("http://host/a b").is_err());
    }
}
