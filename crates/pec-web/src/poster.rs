//! The HTTP client of the gestore's workers: the webhook worker posts with it
//! ([`pec_gestore::Poster`], HTTP/1.1, the status line read back) and the CRL refresher
//! fetches with it ([`pec_gestore::Fetcher`], HTTP/1.0 GET so the body is never chunked,
//! redirects followed). `http://` and `https://` URLs (TLS with rustls, server certificates
//! checked against the roots the gestore is configured with), one request per connection.

use pec_gestore::{FetchFuture, Fetcher, PostFuture, Poster};
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
    // A fragment is the client's, never sent (RFC 9110 §4.2.4).
    let path = path.split('#').next().unwrap_or("/");
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

/// The largest body a GET reads (CRLs of accredited CAs are far smaller).
const MAX_BODY: usize = 64 << 20;
/// Redirects a GET follows.
const MAX_REDIRECTS: usize = 3;

/// A whole HTTP answer, as far as a GET needs it.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Location` header.
    pub location: Option<String>,
    /// The body (up to `Content-Length` when there is one).
    pub body: Vec<u8>,
}

/// Reads an HTTP/1.x answer, complete because the server closed the connection after it.
pub fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete header")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or("the answer is not HTTP")?;
    let mut location = None;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("location") {
            location = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(format!("unsupported Transfer-Encoding {value}"));
        }
    }
    let mut body = raw[end + 4..].to_vec();
    if let Some(n) = length {
        if body.len() < n {
            return Err(format!(
                "the body was cut short: {} of {n} bytes",
                body.len()
            ));
        }
        body.truncate(n);
    }
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// Posts and fetches over HTTP.
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

    /// Opens a connection to `t`, through TLS for an `https://` URL.
    async fn connect(&self, t: &Target) -> Result<Connection, String> {
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
            Ok(Connection::Tls(Box::new(tls)))
        } else {
            Ok(Connection::Plain(tcp))
        }
    }

    /// Sends `request` and reads everything until the server closes, up to [`MAX_BODY`] and
    /// a header. A TLS peer that closes without close_notify ends the answer too: the
    /// length check of [`parse_answer`] still catches a cut body.
    async fn request<T: AsyncRead + AsyncWrite + Unpin>(
        mut io: T,
        request: &[u8],
    ) -> Result<Vec<u8>, String> {
        io.write_all(request).await.map_err(|e| e.to_string())?;
        io.flush().await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match io.read(&mut buf).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => 0,
                Err(e) => return Err(e.to_string()),
            };
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            if out.len() > MAX_BODY + 65_536 {
                return Err(format!("the answer is larger than {} MiB", MAX_BODY >> 20));
            }
        }
    }

    /// GETs `url`, following redirects, and returns the body of a `200`.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let t = parse_url(&url)?;
            let request = format!(
                "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: pec-crl\r\n\
                 Accept: application/pkix-crl, */*\r\n\r\n",
                t.path,
                host_header(&t)
            );
            let raw = match self.connect(&t).await? {
                Connection::Plain(io) => Self::request(io, request.as_bytes()).await?,
                Connection::Tls(io) => Self::request(io, request.as_bytes()).await?,
            };
            let answer = parse_answer(&raw)?;
            match (answer.status, answer.location) {
                (200, _) => return Ok(answer.body),
                (301 | 302 | 303 | 307 | 308, Some(to)) => url = redirect(&t, &to)?,
                (status, _) => return Err(format!("HTTP status {status}")),
            }
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<u16, String> {
        let t = parse_url(url)?;
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pec-webhooks\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            t.path,
            host_header(&t),
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut request = req.into_bytes();
        request.extend_from_slice(body);
        match self.connect(&t).await? {
            Connection::Plain(io) => Self::exchange(io, &request).await,
            Connection::Tls(io) => Self::exchange(io, &request).await,
        }
    }
}

/// An open connection.
enum Connection {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// The URL a `Location` answer from `t` points to: absolute, scheme-relative (`//host/x`)
/// or absolute-path (`/x`) forms (RFC 9110 §10.2.2); other relative forms are refused.
fn redirect(t: &Target, location: &str) -> Result<String, String> {
    let scheme = if t.tls { "https" } else { "http" };
    if location.starts_with("http://") || location.starts_with("https://") {
        Ok(location.to_string())
    } else if let Some(rest) = location.strip_prefix("//") {
        Ok(format!("{scheme}://{rest}"))
    } else if location.starts_with('/') {
        Ok(format!("{scheme}://{}{location}", host_header(t)))
    } else {
        Err(format!("unsupported redirect to {location:?}"))
    }
}

/// The `Host` header of `t`.
fn host_header(t: &Target) -> String {
    if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    }
}

impl Fetcher for HttpPoster {
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(self.fetch(url))
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
    fn answers_are_read_with_their_length_and_redirects() {
        let a = parse_answer(
            b"HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: 3\r\n\r\nabcdef",
        )
        .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"abc"[..]));
        let a = parse_answer(b"HTTP/1.1 302 Found\r\nLocation: /new.crl\r\n\r\n").unwrap();
        assert_eq!((a.status, a.location.as_deref()), (302, Some("/new.crl")));
        let a = parse_answer(b"HTTP/1.0 200 OK\r\n\r\nto the end").unwrap();
        assert_eq!(a.body, b"to the end");
        assert!(
            parse_answer(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nabc")
                .unwrap_err()
                .contains("cut short")
        );
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc").is_err()
        );
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.0 200 OK\r\n").is_err());
        let t = parse_url("http://crl.test:8080/a/b.crl").unwrap();
        assert_eq!(
            redirect(&t, "/c.crl").unwrap(),
            "http://crl.test:8080/c.crl"
        );
        assert_eq!(
            redirect(&t, "//mirror.test/c.crl").unwrap(),
            "http://mirror.test/c.crl"
        );
        assert_eq!(
            redirect(&t, "https://x.test/c").unwrap(),
            "https://x.test/c"
        );
        assert!(redirect(&t, "c.crl").is_err());
        assert_eq!(parse_url("http://h/x.crl#frag").unwrap().path, "/x.crl");
    }

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
