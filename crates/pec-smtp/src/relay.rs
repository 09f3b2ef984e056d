//! The relay client (pec.md §1.3 PA step 8, §8.2): delivers one queue entry to the next hop,
//! found by static route or by MX lookup (RFC 5321 §5.1; resolver address configurable), with
//! STARTTLS required toward PEC domains and opportunistic elsewhere. Every recipient gets its
//! own outcome from its RCPT answer and the final DATA answer.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use pec_gestore::{Delivery, RcptOutcome, Transport, TransportError};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

/// Relay settings.
#[derive(Clone)]
pub struct RelayConfig {
    /// Our name in EHLO.
    pub helo: String,
    /// Static routes: domain → `host:port` (checked before DNS).
    pub routes: HashMap<String, String>,
    /// DNS server for MX lookups (`ip:port`); the system resolver when absent.
    pub resolver: Option<SocketAddr>,
    /// Port of MX hosts found in DNS.
    pub mx_port: u16,
    /// TLS client configuration.
    pub tls: Arc<ClientConfig>,
    /// Timeout of each network step.
    pub timeout: Duration,
}

/// The relay client.
pub struct Relay {
    cfg: RelayConfig,
    resolver: OnceCell<Result<TokioResolver, String>>,
}

fn temp(text: impl Into<String>) -> TransportError {
    TransportError {
        temporary: true,
        text: text.into(),
    }
}

/// A server reply: code and text lines.
#[derive(Debug)]
struct Response {
    code: u16,
    text: String,
}

impl Response {
    fn class(&self) -> u16 {
        self.code / 100
    }
    fn describe(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

async fn read_response<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<Response, TransportError> {
    let mut text = Vec::new();
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(|e| temp(format!("read failed: {e}")))?;
        if n == 0 {
            return Err(temp("connection closed by the server"));
        }
        let line = line.trim_end();
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| temp(format!("malformed reply: {line}")))?;
        text.push(line.get(4..).unwrap_or("").to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Response {
                code,
                text: text.join(" "),
            });
        }
    }
}

/// Dot-stuffing (RFC 5321 §4.5.2) and the terminating dot.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut bol = true;
    for &b in message {
        if bol && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        bol = b == b'\n';
    }
    if !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Relay {
    /// A relay client.
    pub fn new(cfg: RelayConfig) -> Relay {
        Relay {
            cfg,
            resolver: OnceCell::new(),
        }
    }

    async fn resolver(&self) -> Result<&TokioResolver, TransportError> {
        let r = self
            .resolver
            .get_or_init(|| async {
                match self.cfg.resolver {
                    Some(addr) => {
                        let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                        for c in &mut ns.connections {
                            c.port = addr.port();
                        }
                        TokioResolver::builder_with_config(
                            ResolverConfig::from_name_servers(vec![ns]),
                            TokioRuntimeProvider::default(),
                        )
                        .build()
                        .map_err(|e| e.to_string())
                    }
                    None => TokioResolver::builder_tokio()
                        .and_then(|b| b.build())
                        .map_err(|e| e.to_string()),
                }
            })
            .await;
        r.as_ref()
            .map_err(|e| temp(format!("no DNS resolver: {e}")))
    }

    /// The hosts to try for `domain`, best first: (host name for TLS, address).
    async fn targets(&self, domain: &str) -> Result<Vec<(String, String)>, TransportError> {
        if let Some(hp) = self
            .cfg
            .routes
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, hp)| hp.clone())
        {
            let host = hp
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&hp)
                .to_string();
            return Ok(vec![(host, hp)]);
        }
        let resolver = self.resolver().await?;
        let mut mx: Vec<(u16, String)> = match resolver.mx_lookup(format!("{domain}.")).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(m) => Some((
                        m.preference,
                        m.exchange.to_ascii().trim_end_matches('.').to_string(),
                    )),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => return Err(temp(format!("MX lookup for {domain} failed: {e}"))),
        };
        if mx.is_empty() {
            // RFC 5321 §5.1: no MX, the domain itself is the host.
            mx.push((0, domain.to_string()));
        }
        mx.sort();
        let mut out = Vec::new();
        for (_, host) in mx {
            match resolver.lookup_ip(format!("{host}.")).await {
                Ok(ips) => {
                    for ip in ips.iter() {
                        out.push((
                            host.clone(),
                            SocketAddr::new(ip, self.cfg.mx_port).to_string(),
                        ));
                    }
                }
                Err(e) => tracing::debug!("{host}: no address ({e})"),
            }
        }
        if out.is_empty() {
            return Err(temp(format!("no mail server address found for {domain}")));
        }
        Ok(out)
    }

    async fn attempt(
        &self,
        host: &str,
        addr: &str,
        d: &Delivery<'_>,
    ) -> Result<Vec<RcptOutcome>, TransportError> {
        let t = self.cfg.timeout;
        let tcp = tokio::time::timeout(t, TcpStream::connect(addr))
            .await
            .map_err(|_| temp(format!("{addr}: connection timed out")))?
            .map_err(|e| temp(format!("{addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut io: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(tcp));
        macro_rules! step {
            ($cmd:expr) => {{
                if let Some(c) = $cmd {
                    let c: String = c;
                    tokio::time::timeout(t, io.get_mut().write_all(c.as_bytes()))
                        .await
                        .map_err(|_| temp(format!("{addr}: write timed out")))?
                        .map_err(|e| temp(format!("{addr}: {e}")))?;
                }
                tokio::time::timeout(t * 4, read_response(&mut io))
                    .await
                    .map_err(|_| temp(format!("{addr}: no answer")))??
            }};
        }
        let greeting = step!(None::<String>);
        if greeting.class() != 2 {
            return Err(TransportError {
                temporary: greeting.class() == 4,
                text: format!("{addr}: greeting {}", greeting.describe()),
            });
        }
        let mut ehlo = step!(Some(format!("EHLO {}\r\n", self.cfg.helo)));
        if ehlo.class() != 2 {
            return Err(temp(format!("{addr}: EHLO refused: {}", ehlo.describe())));
        }
        let offers_tls = ehlo
            .text
            .split_whitespace()
            .any(|w| w.eq_ignore_ascii_case("STARTTLS"));
        if offers_tls {
            let r = step!(Some("STARTTLS\r\n".to_string()));
            if r.class() == 2 {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| temp(format!("{host}: not a valid TLS name ({e})")))?;
                let plain = io.into_inner();
                let tls = tokio_rustls::TlsConnector::from(self.cfg.tls.clone())
                    .connect(name, plain)
                    .await
                    .map_err(|e| temp(format!("{addr}: TLS handshake failed: {e}")))?;
                io = BufReader::new(Box::new(tls));
                ehlo = step!(Some(format!("EHLO {}\r\n", self.cfg.helo)));
                if ehlo.class() != 2 {
                    return Err(temp(format!(
                        "{addr}: EHLO after TLS refused: {}",
                        ehlo.describe()
                    )));
                }
            } else if d.require_tls {
                return Err(temp(format!("{addr}: STARTTLS refused ({})", r.describe())));
            }
        } else if d.require_tls {
            // pec.md §8.2: between gestori the channel must be encrypted.
            return Err(temp(format!(
                "{addr}: STARTTLS not offered; TLS is required toward the PEC domain {}",
                d.domain
            )));
        }
        let mail = step!(Some(format!(
            "MAIL FROM:<{}> SIZE={}\r\n",
            d.mail_from,
            d.message.len()
        )));
        if mail.class() != 2 {
            return Err(TransportError {
                temporary: mail.class() == 4,
                text: format!("{addr}: MAIL refused: {}", mail.describe()),
            });
        }
        let mut outcomes = Vec::with_capacity(d.rcpt_to.len());
        for r in d.rcpt_to {
            let resp = step!(Some(format!("RCPT TO:<{r}>\r\n")));
            outcomes.push(match resp.class() {
                2 => RcptOutcome::Accepted,
                4 => RcptOutcome::Temporary(resp.describe()),
                _ => RcptOutcome::Permanent(resp.describe()),
            });
        }
        if outcomes.contains(&RcptOutcome::Accepted) {
            let go = step!(Some("DATA\r\n".to_string()));
            if go.code != 354 {
                return Err(TransportError {
                    temporary: go.class() != 5,
                    text: format!("{addr}: DATA refused: {}", go.describe()),
                });
            }
            let body = stuffed(d.message);
            tokio::time::timeout(t * 10, io.get_mut().write_all(&body))
                .await
                .map_err(|_| temp(format!("{addr}: sending the message timed out")))?
                .map_err(|e| temp(format!("{addr}: {e}")))?;
            // The final answer may take long: the next hop commits before answering.
            let done = tokio::time::timeout(t * 10, read_response(&mut io))
                .await
                .map_err(|_| temp(format!("{addr}: no answer after the message")))??;
            for o in outcomes.iter_mut() {
                if *o == RcptOutcome::Accepted {
                    *o = match done.class() {
                        2 => RcptOutcome::Accepted,
                        4 => RcptOutcome::Temporary(done.describe()),
                        _ => RcptOutcome::Permanent(done.describe()),
                    };
                }
            }
        }
        let _ = io.get_mut().write_all(b"QUIT\r\n").await;
        Ok(outcomes)
    }
}

impl Transport for Relay {
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> pec_gestore::DeliverFuture<'a> {
        Box::pin(async move {
            let targets = self.targets(d.domain).await?;
            let mut last = temp(format!("no mail server for {}", d.domain));
            for (host, addr) in targets {
                match self.attempt(&host, &addr, &d).await {
                    Ok(o) => return Ok(o),
                    // A permanent refusal from a reachable server is final.
                    Err(e) if !e.temporary => return Err(e),
                    Err(e) => {
                        tracing::info!("relay to {addr} for {} failed: {}", d.domain, e.text);
                        last = e;
                    }
                }
            }
            Err(last)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_stuffed() {
        assert_eq!(stuffed(b".a\r\nb\r\n..c\r\n"), b"..a\r\nb\r\n...c\r\n.\r\n");
        assert_eq!(stuffed(b"x"), b"x\r\n.\r\n");
    }

    #[tokio::test]
    async fn multi_line_replies_are_joined() {
        let mut r = BufReader::new(&b"250-mx.b.test\r\n250-STARTTLS\r\n250 SIZE 10\r\n"[..]);
        let resp = read_response(&mut r).await.unwrap();
        assert_eq!(resp.code, 250);
        assert!(resp.text.contains("STARTTLS"));
    }
}
