//! An rspamd client: `POST /checkv2` on the normal worker (rspamd's HTTP protocol), with
//! the SMTP envelope in request headers, one connection per message.

use crate::FilterError;
use crate::net::{Endpoint, within};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest answer read.
const MAX_ANSWER: usize = 1 << 20;

/// What rspamd said about a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamVerdict {
    /// rspamd's action: `no action`, `greylist`, `add header`, `rewrite subject`,
    /// `soft reject` or `reject`.
    pub action: String,
    /// The score, and the score at which rspamd rejects.
    pub score: f64,
    /// The `reject` threshold.
    pub required_score: f64,
    /// The symbols that matched, by name.
    pub symbols: Vec<String>,
}

impl SpamVerdict {
    /// Spam: rspamd would reject it, mark it or rewrite its subject. (`greylist` and
    /// `soft reject` are delays, not verdicts.)
    pub fn is_spam(&self) -> bool {
        matches!(
            self.action.as_str(),
            "reject" | "add header" | "rewrite subject"
        )
    }
}

/// The SMTP envelope of a message, as rspamd reads it from request headers.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// The client's address.
    pub ip: Option<String>,
    /// HELO/EHLO name.
    pub helo: Option<String>,
    /// MAIL FROM.
    pub from: Option<String>,
    /// RCPT TO.
    pub rcpt: Vec<String>,
    /// The authenticated user, for mail submitted by a mailbox.
    pub user: Option<String>,
}

/// One rspamd normal worker.
#[derive(Debug, Clone)]
pub struct Rspamd {
    /// `http://host:port`, as configured.
    pub url: String,
    endpoint: Endpoint,
    host: String,
    /// Longest wait for one check, connection included.
    pub timeout: Duration,
    /// The engine's name in errors.
    pub name: String,
}

impl Rspamd {
    /// A client for `http://host:port` (rspamd's normal worker listens on 11333).
    pub fn new(url: &str, timeout: Duration) -> Result<Rspamd, FilterError> {
        let authority = url
            .strip_prefix("http://")
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| FilterError::Address {
                address: url.to_string(),
                reason: "expected http://host:port".into(),
            })?;
        Ok(Rspamd {
            url: url.to_string(),
            endpoint: Endpoint::parse(authority)?,
            host: authority.to_string(),
            timeout,
            name: "rspamd".into(),
        })
    }

    /// Checks one message.
    pub async fn check(&self, message: &[u8], env: &Envelope) -> Result<SpamVerdict, FilterError> {
        within(&self.name, self.timeout, async {
            let mut s = self.endpoint.connect(&self.name, self.timeout).await?;
            let mut head = format!(
                "POST /checkv2 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
                self.host,
                message.len()
            );
            let mut field = |name: &str, value: &str| {
                // Header values must not carry line breaks.
                if !value.contains(['\r', '\n']) {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
            };
            if let Some(v) = &env.ip {
                field("IP", v);
            }
            if let Some(v) = &env.helo {
                field("Helo", v);
            }
            if let Some(v) = &env.from {
                field("From", v);
            }
            for r in &env.rcpt {
                field("Rcpt", r);
            }
            if let Some(v) = &env.user {
                field("User", v);
            }
            head.push_str("\r\n");
            let io = |e: std::io::Error| FilterError::unavailable(&self.name, e);
            s.write_all(head.as_bytes()).await.map_err(io)?;
            s.write_all(message).await.map_err(io)?;
            s.flush().await.map_err(io)?;
            let mut answer = Vec::new();
            (&mut s)
                .take(MAX_ANSWER as u64 + 1)
                .read_to_end(&mut answer)
                .await
                .map_err(io)?;
            if answer.len() > MAX_ANSWER {
                return Err(FilterError::engine(&self.name, "answer too long"));
            }
            parse_answer(&self.name, &answer)
        })
        .await
    }

    /// `GET /ping`: whether rspamd answers.
    pub async fn ping(&self) -> Result<(), FilterError> {
        within(&self.name, self.timeout, async {
            let mut s = self.endpoint.connect(&self.name, self.timeout).await?;
            let io = |e: std::io::Error| FilterError::unavailable(&self.name, e);
            s.write_all(
                format!(
                    "GET /ping HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.host
                )
                .as_bytes(),
            )
            .await
            .map_err(io)?;
            let mut answer = Vec::new();
            (&mut s)
                .take(4096)
                .read_to_end(&mut answer)
                .await
                .map_err(io)?;
            if answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200") {
                Ok(())
            } else {
                Err(FilterError::engine(
                    &self.name,
                    String::from_utf8_lossy(&answer)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ))
            }
        })
        .await
    }
}

/// An HTTP/1.1 answer (Content-Length, chunked or up to the end) with a JSON body.
fn parse_answer(engine: &str, raw: &[u8]) -> Result<SpamVerdict, FilterError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| FilterError::engine(engine, "no HTTP header in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let status = head.lines().next().unwrap_or("");
    if !(status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200")) {
        return Err(FilterError::engine(engine, status.to_string()));
    }
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| FilterError::engine(engine, "bad chunked body"))?;
    }
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| FilterError::engine(engine, format!("answer is not JSON: {e}")))?;
    let action = json["action"]
        .as_str()
        .ok_or_else(|| FilterError::engine(engine, format!("no action in {json}")))?
        .to_string();
    let mut symbols: Vec<String> = json["symbols"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    symbols.sort();
    Ok(SpamVerdict {
        action,
        score: json["score"].as_f64().unwrap_or(0.0),
        required_score: json["required_score"].as_f64().unwrap_or(0.0),
        symbols,
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        let raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 99\r\n\r\n{\"is_skipped\":false,\"score\":15.0,\"required_score\":15.0,\"action\":\"reject\",\"symbols\":{\"GTUBE\":{}}}";
        let v = parse_answer("rspamd", raw).unwrap();
        assert!(v.is_spam());
        assert_eq!(v.symbols, ["GTUBE"]);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n19\r\n{\"action\":\"no action\",\"sc\r\n9\r\nore\":0.1}\r\n0\r\n\r\n";
        let v = parse_answer("rspamd", chunked).unwrap();
        assert!(!v.is_spam());
        assert!((v.score - 0.1).abs() < 1e-9);
        assert!(parse_answer("rspamd", b"HTTP/1.1 500 Internal\r\n\r\n").is_err());
        assert!(parse_answer("rspamd", b"HTTP/1.1 200 OK\r\n\r\nnot json").is_err());
    }

    #[test]
    fn urls_parse() {
        assert!(Rspamd::new("http://127.0.0.1:11333", Duration::from_secs(5)).is_ok());
        assert!(Rspamd::new("http://127.0.0.1:11333/", Duration::from_secs(5)).is_ok());
        assert!(Rspamd::new("https://127.0.0.1:11333", Duration::from_secs(5)).is_err());
        assert!(Rspamd::new("http://127.0.0.1:11333/checkv2", Duration::from_secs(5)).is_err());
    }
}
