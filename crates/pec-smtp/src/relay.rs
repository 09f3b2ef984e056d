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
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
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
    /// Local address to connect from (the gestore's listening address), if any.
    pub source: Option<IpAddr>,
}

/// The relay client.
pub struct Relay {
    cfg: RelayConfig,
    resolver: OnceCell<Result<TokioResolver, String>>,
    /// Idle connections by `host:port`, reused for the next transaction (RFC 5321 §3.3
    /// allows many transactions per session).
    pool: Mutex<HashMap<String, Vec<Conn>>>,
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
            pool: Mutex::default(),
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

    /// A connection to `addr` ready for MAIL FROM: greeting, EHLO, and STARTTLS when offered
    /// (pec.md §8.2: required toward PEC domains).
    /// TCP to `addr` (`host:port`), from the configured source address when there is one.
    async fn connect(&self, addr: &str) -> std::io::Result<TcpStream> {
        let Some(ip) = self.cfg.source else {
            return TcpStream::connect(addr).await;
        };
        let mut last = None;
        for target in tokio::net::lookup_host(addr).await? {
            if target.is_ipv4() != ip.is_ipv4() {
                continue;
            }
            let sock = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.bind(SocketAddr::new(ip, 0))?;
            match sock.connect(target).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| std::io::Error::other(format!("no address of the family of {ip}"))))
    }

    /// A connection to `addr` ready for MAIL FROM: greeting, EHLO, and STARTTLS when offered
    /// (pec.md §8.2: required toward PEC domains).
    async fn open(&self, host: &str, addr: &str, d: &Delivery<'_>) -> Result<Conn, TransportError> {
        let t = self.cfg.timeout;
        let tcp = tokio::time::timeout(t, self.connect(addr))
            .await
            .map_err(|_| temp(format!("{addr}: connection timed out")))?
            .map_err(|e| temp(format!("{addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut c = Conn {
            io: BufReader::new(Box::new(tcp)),
            addr: addr.to_string(),
            tls: false,
            idle_since: Instant::now(),
        };
        let greeting = c.step(None, t).await?;
        if greeting.class() != 2 {
            return Err(TransportError {
                temporary: greeting.class() == 4,
                text: format!("{addr}: greeting {}", greeting.describe()),
            });
        }
        let ehlo = c
            .step(Some(format!("EHLO {}\r\n", self.cfg.helo)), t)
            .await?;
        if ehlo.class() != 2 {
            return Err(temp(format!("{addr}: EHLO refused: {}", ehlo.describe())));
        }
        let offers_tls = ehlo
            .text
            .split_whitespace()
            .any(|w| w.eq_ignore_ascii_case("STARTTLS"));
        if offers_tls {
            let r = c.step(Some("STARTTLS\r\n".to_string()), t).await?;
            if r.class() == 2 {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| temp(format!("{host}: not a valid TLS name ({e})")))?;
                let plain = c.io.into_inner();
                let tls = tokio::time::timeout(
                    t,
                    tokio_rustls::TlsConnector::from(self.cfg.tls.clone()).connect(name, plain),
                )
                .await
                .map_err(|_| temp(format!("{addr}: TLS handshake timed out")))?
                .map_err(|e| temp(format!("{addr}: TLS handshake failed: {e}")))?;
                c.io = BufReader::new(Box::new(tls));
                c.tls = true;
                let ehlo = c
                    .step(Some(format!("EHLO {}\r\n", self.cfg.helo)), t)
                    .await?;
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
        Ok(c)
    }

    /// One mail transaction on an open connection. `Ok(true)` in the second place: the
    /// connection is back in its initial state and may carry another transaction.
    async fn transaction(
        &self,
        c: &mut Conn,
        d: &Delivery<'_>,
    ) -> Result<(Vec<RcptOutcome>, bool), Attempt> {
        let t = self.cfg.timeout;
        let addr = c.addr.clone();
        // A pooled connection the peer closed meanwhile fails here, before anything was
        // accepted: the caller retries on a fresh connection.
        let mail = c
            .step(
                Some(format!(
                    "MAIL FROM:<{}> SIZE={}\r\n",
                    d.mail_from,
                    d.message.len()
                )),
                t,
            )
            .await
            .map_err(Attempt::Stale)?;
        if mail.class() != 2 {
            let reusable = c.reset(t).await;
            return Err(Attempt::Failed(
                TransportError {
                    temporary: mail.class() == 4,
                    text: format!("{addr}: MAIL refused: {}", mail.describe()),
                },
                reusable,
            ));
        }
        let mut outcomes = Vec::with_capacity(d.rcpt_to.len());
        for r in d.rcpt_to {
            let resp = c
                .step(Some(format!("RCPT TO:<{r}>\r\n")), t)
                .await
                .map_err(|e| Attempt::Failed(e, false))?;
            outcomes.push(match resp.class() {
                2 => RcptOutcome::Accepted,
                4 => RcptOutcome::Temporary(resp.describe()),
                _ => RcptOutcome::Permanent(resp.describe()),
            });
        }
        if !outcomes.contains(&RcptOutcome::Accepted) {
            let reusable = c.reset(t).await;
            return Ok((outcomes, reusable));
        }
        let go = c
            .step(Some("DATA\r\n".to_string()), t)
            .await
            .map_err(|e| Attempt::Failed(e, false))?;
        if go.code != 354 {
            let reusable = c.reset(t).await;
            return Err(Attempt::Failed(
                TransportError {
                    temporary: go.class() != 5,
                    text: format!("{addr}: DATA refused: {}", go.describe()),
                },
                reusable,
            ));
        }
        let body = stuffed(d.message);
        tokio::time::timeout(t * 10, c.io.get_mut().write_all(&body))
            .await
            .map_err(|_| {
                Attempt::Failed(
                    temp(format!("{addr}: sending the message timed out")),
                    false,
                )
            })?
            .map_err(|e| Attempt::Failed(temp(format!("{addr}: {e}")), false))?;
        // The final answer may take long: the next hop commits before answering.
        let done = tokio::time::timeout(t * 10, read_response(&mut c.io))
            .await
            .map_err(|_| {
                Attempt::Failed(temp(format!("{addr}: no answer after the message")), false)
            })?
            .map_err(|e| Attempt::Failed(e, false))?;
        for o in outcomes.iter_mut() {
            if *o == RcptOutcome::Accepted {
                *o = match done.class() {
                    2 => RcptOutcome::Accepted,
                    4 => RcptOutcome::Temporary(done.describe()),
                    _ => RcptOutcome::Permanent(done.describe()),
                };
            }
        }
        // RFC 5321 §4.1.1.4: after the final answer the transaction state is cleared.
        Ok((outcomes, true))
    }

    /// An idle pooled connection to `addr` (encrypted when `tls` is required).
    fn take(&self, addr: &str, tls: bool) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let idle = pool.get_mut(addr)?;
        while let Some(c) = idle.pop() {
            if c.idle_since.elapsed() < POOL_IDLE && (c.tls || !tls) {
                return Some(c);
            }
        }
        None
    }

    /// Keeps `c` for the next transaction to the same address.
    fn put(&self, mut c: Conn) {
        c.idle_since = Instant::now();
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        for idle in pool.values_mut() {
            idle.retain(|c| c.idle_since.elapsed() < POOL_IDLE);
        }
        let idle = pool.entry(c.addr.clone()).or_default();
        if idle.len() < POOL_MAX {
            idle.push(c);
        }
    }

    /// One transaction on `c`, which is kept for the next one when it can carry it. The
    /// outer `Err`: `c` turned out closed before anything was sent.
    async fn run_on(
        &self,
        mut c: Conn,
        d: &Delivery<'_>,
    ) -> Result<Result<Vec<RcptOutcome>, TransportError>, TransportError> {
        let (out, reusable) = match self.transaction(&mut c, d).await {
            Ok((o, reusable)) => (Ok(o), reusable),
            Err(Attempt::Failed(e, reusable)) => (Err(e), reusable),
            Err(Attempt::Stale(e)) => return Err(e),
        };
        if reusable {
            self.put(c);
        }
        Ok(out)
    }

    /// One delivery to one host: a pooled connection first, a fresh one when there is none
    /// or the pooled one turns out closed.
    async fn attempt(
        &self,
        host: &str,
        addr: &str,
        d: &Delivery<'_>,
    ) -> Result<Vec<RcptOutcome>, TransportError> {
        if let Some(c) = self.take(addr, d.require_tls) {
            match self.run_on(c, d).await {
                Ok(out) => return out,
                Err(e) => tracing::debug!("pooled connection to {addr} unusable: {}", e.text),
            }
        }
        let c = self.open(host, addr, d).await?;
        self.run_on(c, d).await.unwrap_or_else(Err)
    }
}

/// How a transaction on a connection failed.
enum Attempt {
    /// The connection was dead before MAIL FROM was answered; nothing was sent.
    Stale(TransportError),
    /// The transaction failed; whether the connection can carry another one.
    Failed(TransportError, bool),
}

/// Idle connections older than this are closed instead of reused (servers keep an idle
/// client for at least 5 minutes, RFC 5321 §4.5.3.2.7).
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per address.
const POOL_MAX: usize = 16;

/// An open SMTP client connection.
struct Conn {
    io: BufReader<Box<dyn Stream>>,
    addr: String,
    tls: bool,
    idle_since: Instant,
}

impl Conn {
    /// Sends `cmd` (if any) and reads the reply, each within `t`.
    async fn step(&mut self, cmd: Option<String>, t: Duration) -> Result<Response, TransportError> {
        let addr = &self.addr;
        if let Some(c) = cmd {
            tokio::time::timeout(t, self.io.get_mut().write_all(c.as_bytes()))
                .await
                .map_err(|_| temp(format!("{addr}: write timed out")))?
                .map_err(|e| temp(format!("{addr}: {e}")))?;
        }
        tokio::time::timeout(t * 4, read_response(&mut self.io))
            .await
            .map_err(|_| temp(format!("{addr}: no answer")))?
    }

    /// RSET; whether the connection is usable afterwards.
    async fn reset(&mut self, t: Duration) -> bool {
        matches!(self.step(Some("RSET\r\n".into()), t).await, Ok(r) if r.class() == 2)
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

    /// A plain SMTP sink on loopback: accepts everything, counts connections, and closes a
    /// connection after `per_conn` messages (0: never).
    async fn sink(per_conn: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = conns.clone();
        tokio::spawn(async move {
            loop {
                let (s, _) = l.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut io = BufReader::new(s);
                    io.get_mut().write_all(b"220 sink\r\n").await.unwrap();
                    let mut done = 0;
                    let mut line = String::new();
                    while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                        let cmd = line.to_ascii_uppercase();
                        line.clear();
                        let answer: &[u8] = if cmd.starts_with("DATA") {
                            io.get_mut().write_all(b"354 go\r\n").await.unwrap();
                            while io.read_line(&mut line).await.unwrap() > 0 && line != ".\r\n" {
                                line.clear();
                            }
                            line.clear();
                            done += 1;
                            b"250 ok\r\n"
                        } else if cmd.starts_with("QUIT") {
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        io.get_mut().write_all(answer).await.unwrap();
                        if per_conn > 0 && done == per_conn {
                            return;
                        }
                    }
                });
            }
        });
        (addr, conns)
    }

    fn relay(addr: &str) -> Relay {
        Relay::new(RelayConfig {
            helo: "a.test".into(),
            routes: [("c.test".to_string(), addr.to_string())].into(),
            resolver: None,
            mx_port: 25,
            tls: crate::tls::client_config(false, &[]).unwrap(),
            timeout: Duration::from_secs(5),
            source: None,
        })
    }

    fn delivery(rcpt: &[String]) -> Delivery<'_> {
        Delivery {
            domain: "c.test",
            mail_from: "a@a.test",
            rcpt_to: rcpt,
            message: b"Subject: x\r\n\r\nx\r\n",
            require_tls: false,
        }
    }

    #[tokio::test]
    async fn one_connection_carries_many_transactions() {
        let (addr, conns) = sink(0).await;
        let r = relay(&addr);
        let rcpt = vec!["x@c.test".to_string()];
        for _ in 0..5 {
            let o = r.deliver(delivery(&rcpt)).await.unwrap();
            assert_eq!(o, vec![RcptOutcome::Accepted]);
        }
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_pooled_connection_closed_by_the_peer_is_replaced() {
        let (addr, conns) = sink(1).await;
        let r = relay(&addr);
        let rcpt = vec!["x@c.test".to_string()];
        for _ in 0..3 {
            let o = r.deliver(delivery(&rcpt)).await.unwrap();
            assert_eq!(o, vec![RcptOutcome::Accepted]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
