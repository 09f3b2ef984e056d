//! An ICAP client (RFC 3507): the message goes out as the body of an HTTP response in a
//! RESPMOD request, with a preview when the service offers one and `Allow: 204`, so a clean
//! message costs one short answer. The verdict is read from `X-Infection-Found`,
//! `X-Violations-Found` or `X-Virus-ID`: the headers c-icap, Kaspersky Scan Engine, Sophos and
//! similar servers return. One connection per request.

use crate::net::{Endpoint, Io, within};
use crate::{FilterError, Verdict};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest ICAP header block read.
const MAX_HEAD: usize = 64 * 1024;

/// One ICAP service.
#[derive(Debug)]
pub struct Icap {
    /// `icap://host[:port]/service`, as configured.
    pub url: String,
    endpoint: Endpoint,
    host: String,
    /// Longest wait for one request, connection included.
    pub timeout: Duration,
    /// The engine's name in verdicts and errors.
    pub name: String,
    /// Preview size the service announced in OPTIONS (`None` before asking, `Some(None)` for
    /// none).
    preview: Mutex<Option<Option<usize>>>,
}

/// An ICAP answer: status code and header fields (continuation lines kept apart).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<String>)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&[String]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

impl Icap {
    /// A client for `icap://host[:port]/service` (port 1344 by default).
    pub fn new(url: &str, timeout: Duration) -> Result<Icap, FilterError> {
        let bad = |reason: &str| FilterError::Address {
            address: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("icap://")
            .ok_or_else(|| bad("expected icap://host[:port]/service"))?;
        let (authority, service) = rest
            .split_once('/')
            .ok_or_else(|| bad("the URL names no service"))?;
        if authority.is_empty() || service.is_empty() {
            return Err(bad("expected icap://host[:port]/service"));
        }
        let address = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:1344")
        };
        Ok(Icap {
            url: url.to_string(),
            endpoint: Endpoint::parse(&address).map_err(|_| bad("bad host or port"))?,
            host: authority.to_string(),
            timeout,
            name: "icap".into(),
            preview: Mutex::new(None),
        })
    }

    /// OPTIONS: the preview size the service wants (RFC 3507 §4.10.2).
    pub async fn options(&self) -> Result<Option<usize>, FilterError> {
        within(&self.name, self.timeout, async {
            let mut s = self.endpoint.connect(&self.name, self.timeout).await?;
            let req = format!(
                "OPTIONS {} ICAP/1.0\r\nHost: {}\r\nEncapsulated: null-body=0\r\n\r\n",
                self.url, self.host
            );
            self.send(&mut s, req.as_bytes()).await?;
            let a = self.answer(&mut s).await?;
            if a.status != 200 {
                return Err(FilterError::engine(
                    &self.name,
                    format!("OPTIONS answered {}", a.status),
                ));
            }
            Ok(a.header("Preview")
                .and_then(|v| v.first())
                .and_then(|v| v.trim().parse().ok()))
        })
        .await
    }

    async fn preview(&self) -> Result<Option<usize>, FilterError> {
        if let Some(p) = *self.preview.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(p);
        }
        let p = self.options().await?;
        *self.preview.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        Ok(p)
    }

    /// Scans `data` with RESPMOD.
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, FilterError> {
        let preview = self.preview().await?;
        within(&self.name, self.timeout, async {
            let mut s = self.endpoint.connect(&self.name, self.timeout).await?;
            let http = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: {}\r\n\r\n",
                data.len()
            );
            let mut head = format!(
                "RESPMOD {} ICAP/1.0\r\nHost: {}\r\nAllow: 204\r\n",
                self.url, self.host
            );
            if let Some(p) = preview {
                head.push_str(&format!("Preview: {}\r\n", p.min(data.len())));
            }
            head.push_str(&format!(
                "Encapsulated: res-hdr=0, res-body={}\r\n\r\n",
                http.len()
            ));
            let mut out = head.into_bytes();
            out.extend_from_slice(http.as_bytes());
            let answer = match preview {
                Some(p) if p < data.len() => {
                    chunk(&mut out, &data[..p]);
                    out.extend_from_slice(b"0\r\n\r\n");
                    self.send(&mut s, &out).await?;
                    let a = self.answer(&mut s).await?;
                    if a.status == 100 {
                        let mut rest = Vec::with_capacity(data.len() - p + 32);
                        chunk(&mut rest, &data[p..]);
                        rest.extend_from_slice(b"0\r\n\r\n");
                        self.send(&mut s, &rest).await?;
                        self.answer(&mut s).await?
                    } else {
                        a
                    }
                }
                Some(_) => {
                    // The whole message fits in the preview: say so (RFC 3507 §4.5).
                    chunk(&mut out, data);
                    out.extend_from_slice(b"0; ieof\r\n\r\n");
                    self.send(&mut s, &out).await?;
                    self.answer(&mut s).await?
                }
                None => {
                    chunk(&mut out, data);
                    out.extend_from_slice(b"0\r\n\r\n");
                    self.send(&mut s, &out).await?;
                    self.answer(&mut s).await?
                }
            };
            verdict(&self.name, &answer)
        })
        .await
    }

    async fn send(&self, s: &mut Box<dyn Io>, bytes: &[u8]) -> Result<(), FilterError> {
        s.write_all(bytes)
            .await
            .map_err(|e| FilterError::unavailable(&self.name, e))?;
        s.flush()
            .await
            .map_err(|e| FilterError::unavailable(&self.name, e))
    }

    /// Reads one ICAP header block.
    async fn answer(&self, s: &mut Box<dyn Io>) -> Result<Answer, FilterError> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        // Byte by byte: what follows the head (an encapsulated body) is not needed.
        while !buf.ends_with(b"\r\n\r\n") {
            let n = s
                .read(&mut byte)
                .await
                .map_err(|e| FilterError::unavailable(&self.name, e))?;
            if n == 0 {
                return Err(FilterError::unavailable(
                    &self.name,
                    "connection closed before the answer",
                ));
            }
            buf.push(byte[0]);
            if buf.len() > MAX_HEAD {
                return Err(FilterError::engine(&self.name, "answer header too long"));
            }
        }
        parse_answer(&self.name, &String::from_utf8_lossy(&buf))
    }
}

/// Appends `data` as one HTTP chunk.
fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn parse_answer(engine: &str, text: &str) -> Result<Answer, FilterError> {
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("ICAP/1.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            FilterError::engine(engine, format!("not an ICAP answer: {status_line:?}"))
        })?;
    let mut headers: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(line.trim().to_string());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), vec![v.trim().to_string()]));
        }
    }
    Ok(Answer { status, headers })
}

/// 204: unmodified, clean. 200 with an infection header: infected. Anything else from the
/// 4xx/5xx range is the service's error.
fn verdict(engine: &str, a: &Answer) -> Result<Verdict, FilterError> {
    let infected = |threat: String| Verdict::Infected {
        engine: engine.to_string(),
        threat,
    };
    match a.status {
        204 => Ok(Verdict::Clean),
        200 => {
            // X-Infection-Found: Type=0; Resolution=2; Threat=Name;
            if let Some(v) = a.header("X-Infection-Found") {
                let joined = v.join(" ");
                let threat = joined
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("Threat="))
                    .unwrap_or("unnamed threat");
                return Ok(infected(threat.trim().to_string()));
            }
            // X-Violations-Found: count, then per violation: file, threat, id, disposition.
            if let Some(v) = a.header("X-Violations-Found") {
                let threat = v.get(2).cloned().unwrap_or_else(|| "unnamed threat".into());
                return Ok(infected(threat));
            }
            if let Some(v) = a.header("X-Virus-ID") {
                return Ok(infected(v.join(" ")));
            }
            // Modified content without a threat header: the service changed nothing it
            // names as malicious (some services always answer 200).
            tracing::warn!("{engine}: 200 without an infection header; taken as clean");
            Ok(Verdict::Clean)
        }
        other => Err(FilterError::engine(engine, format!("ICAP status {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let i = Icap::new("icap://127.0.0.1/avscan", Duration::from_secs(5)).unwrap();
        assert_eq!(i.endpoint, Endpoint::Tcp("127.0.0.1:1344".into()));
        assert!(Icap::new("http://x/y", Duration::from_secs(5)).is_err());
        assert!(Icap::new("icap://x:1344", Duration::from_secs(5)).is_err());
    }

    #[test]
    fn answers_give_verdicts() {
        let a = parse_answer(
            "icap",
            "ICAP/1.0 200 OK\r\nServer: C-ICAP/0.5.10\r\nX-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature.UNOFFICIAL;\r\nX-Violations-Found: 1\r\n\tmessage\r\n\tEicar-Test-Signature.UNOFFICIAL\r\n\t0\r\n\t0\r\nEncapsulated: res-hdr=0, res-body=100\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            verdict("icap", &a).unwrap(),
            Verdict::Infected {
                engine: "icap".into(),
                threat: "Eicar-Test-Signature.UNOFFICIAL".into()
            }
        );
        let v = parse_answer(
            "icap",
            "ICAP/1.0 200 OK\r\nX-Violations-Found: 1\r\n\tf\r\n\tTrojan.X\r\n\t0\r\n\t0\r\n\r\n",
        )
        .unwrap();
        assert!(
            matches!(verdict("icap", &v).unwrap(), Verdict::Infected { threat, .. } if threat == "Trojan.X")
        );
        let clean = parse_answer("icap", "ICAP/1.0 204 Unmodified\r\n\r\n").unwrap();
        assert_eq!(verdict("icap", &clean).unwrap(), Verdict::Clean);
        let err = parse_answer("icap", "ICAP/1.0 500 Server Error\r\n\r\n").unwrap();
        assert!(verdict("icap", &err).is_err());
        assert!(parse_answer("icap", "HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn chunks_are_hex_sized() {
        let mut out = Vec::new();
        chunk(&mut out, &[b'a'; 26]);
        assert_eq!(out, b"1a\r\naaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
}
