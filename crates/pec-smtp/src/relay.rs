//! The relay client (pec.md §1.3 PA step 8, §8.2): delivers one queue entry to the next hop,
//! found by static route or by MX lookup (RFC 5321 §5.1; resolver address configurable), with
//! STARTTLS required toward PEC domains and opportunistic elsewhere. Every recipient gets its
//! own outcome from its RCPT answer and the final DATA answer.

use hickory_resolver::TokioResolver;
use pec_gestore::{Delivery, RcptOutcome, Transport, TransportError};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
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
    /// TLS client configuration toward PEC domains (pec.md §8.2).
    pub tls: Arc<ClientConfig>,
    /// TLS client configuration elsewhere: opportunistic (RFC 7435), so it accepts any
    /// certificate, and a failed handshake is followed by a plain attempt.
    pub opportunistic_tls: Arc<ClientConfig>,
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
    /// The text of every line, joined by spaces.
    text: String,
    /// The text of each line.
    lines: Vec<String>,
}

impl Response {
    fn class(&self) -> u16 {
        self.code / 100
    }
    fn describe(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

/// The longest reply line read, CRLF included.
const MAX_REPLY_LINE: usize = 8192;
/// The longest reply read, every line of it.
const MAX_REPLY: usize = 64 * 1024;

/// One reply; `Ok(None)` when the connection was closed or reset before any byte of it.
async fn read_reply<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
) -> Result<Option<Response>, TransportError> {
    let mut text = Vec::new();
    let mut size = 0usize;
    loop {
        let mut raw = Vec::new();
        // A line or a reply past these bounds is a hostile or broken server, not a reply
        // (RFC 5321 §4.5.3.1.5: 512 octets a reply line).
        let n = match tokio::io::AsyncReadExt::take(&mut *r, MAX_REPLY_LINE as u64)
            .read_until(b'\n', &mut raw)
            .await
        {
            Ok(n) => n,
            Err(e)
                if text.is_empty()
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::BrokenPipe
                            // A TLS peer gone without close_notify.
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
            {
                0
            }
            Err(e) => return Err(temp(format!("read failed: {e}"))),
        };
        if n == 0 {
            if text.is_empty() {
                return Ok(None);
            }
            return Err(temp(
                "connection closed by the server in the middle of a reply",
            ));
        }
        size += n;
        if !raw.ends_with(b"\n") || size > MAX_REPLY {
            return Err(temp(format!(
                "the server's reply is longer than {} bytes a line or {MAX_REPLY} in all",
                MAX_REPLY_LINE
            )));
        }
        // Reply text is ASCII (RFC 5321 §4.2); other bytes are shown, not fatal.
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end();
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| temp(format!("malformed reply: {line}")))?;
        text.push(line.get(4..).unwrap_or("").to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Some(Response {
                code,
                text: text.join(" "),
                lines: text,
            }));
        }
    }
}

/// Whether an EHLO answer offers `keyword` (RFC 5321 §4.1.1.1: one extension per line).
fn offers(ehlo: &Response, keyword: &str) -> bool {
    ehlo.lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
    })
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

#[path = "relay_dns.rs"]
mod dns;

impl Relay {
    /// A relay client.
    pub fn new(cfg: RelayConfig) -> Relay {
        Relay {
            cfg,
            resolver: OnceCell::new(),
            pool: Mutex::default(),
        }
    }

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
    ///
    /// Without `starttls` the session stays plain: the second try toward a non-PEC domain
    /// whose TLS handshake failed (RFC 7435 §3: opportunistic security falls back to
    /// cleartext).
    async fn open(
        &self,
        host: &str,
        addr: &str,
        d: &Delivery<'_>,
        starttls: bool,
    ) -> Result<Conn, Opening> {
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
            strict_tls: false,
            pipelining: false,
            chunking: false,
            size: false,
            eight_bit: false,
            idle_since: Instant::now(),
        };
        let greeting = c.step(None, t).await?;
        if greeting.class() != 2 {
            return Err(TransportError {
                temporary: greeting.class() == 4,
                text: format!("{addr}: greeting {}", greeting.describe()),
            }
            .into());
        }
        let ehlo = c
            .step(Some(format!("EHLO {}\r\n", self.cfg.helo)), t)
            .await?;
        if ehlo.class() != 2 {
            return Err(temp(format!("{addr}: EHLO refused: {}", ehlo.describe())).into());
        }
        c.pipelining = offers(&ehlo, "PIPELINING");
        c.chunking = offers(&ehlo, "CHUNKING");
        c.size = offers(&ehlo, "SIZE");
        c.eight_bit = offers(&ehlo, "8BITMIME");
        let offers_tls = offers(&ehlo, "STARTTLS");
        if offers_tls && starttls {
            let r = c.step(Some("STARTTLS\r\n".to_string()), t).await?;
            if r.class() == 2 {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| temp(format!("{host}: not a valid TLS name ({e})")))?;
                let plain = c.io.into_inner();
                let config = if d.require_tls {
                    self.cfg.tls.clone()
                } else {
                    self.cfg.opportunistic_tls.clone()
                };
                let tls = tokio::time::timeout(
                    t,
                    tokio_rustls::TlsConnector::from(config).connect(name, plain),
                )
                .await
                .map_err(|_| Opening::Tls(temp(format!("{addr}: TLS handshake timed out"))))?
                .map_err(|e| Opening::Tls(temp(format!("{addr}: TLS handshake failed: {e}"))))?;
                c.io = BufReader::new(Box::new(tls));
                c.tls = true;
                c.strict_tls = d.require_tls;
                let ehlo = c
                    .step(Some(format!("EHLO {}\r\n", self.cfg.helo)), t)
                    .await?;
                if ehlo.class() != 2 {
                    return Err(temp(format!(
                        "{addr}: EHLO after TLS refused: {}",
                        ehlo.describe()
                    ))
                    .into());
                }
                // RFC 3207 §4.2: what was offered before TLS no longer counts.
                c.pipelining = offers(&ehlo, "PIPELINING");
                c.chunking = offers(&ehlo, "CHUNKING");
                c.size = offers(&ehlo, "SIZE");
                c.eight_bit = offers(&ehlo, "8BITMIME");
            } else if d.require_tls {
                return Err(temp(format!("{addr}: STARTTLS refused ({})", r.describe())).into());
            }
        } else if d.require_tls {
            // pec.md §8.2: between gestori the channel must be encrypted.
            return Err(Opening::Other(temp(format!(
                "{addr}: STARTTLS not offered; TLS is required toward the PEC domain {}",
                d.domain
            ))));
        }
        Ok(c)
    }

    /// One mail transaction on an open connection. `Ok(true)` in the second place: the
    /// connection is back in its initial state and may carry another transaction.
    ///
    /// The commands go as the server allows (RFC 2920, RFC 3030): with PIPELINING and CHUNKING,
    /// MAIL, every RCPT, `BDAT n LAST` and the message in one write, answered after one round
    /// trip; with PIPELINING alone, MAIL, RCPT and DATA in one write, then the message; with
    /// neither, each command after the answer to the one before.
    async fn transaction(
        &self,
        c: &mut Conn,
        d: &Delivery<'_>,
    ) -> Result<(Vec<RcptOutcome>, bool), Attempt> {
        let t = self.cfg.timeout;
        // RFC 5321 §4.5.3.2.6: the answer to the end of the message is worth 10 minutes of
        // waiting (20 steps of the default 30 s): the peer may be committing it.
        let final_wait = t * 20;
        let addr = c.addr.clone();
        let mode = match (c.pipelining, c.chunking) {
            (true, true) => Mode::Chunked,
            (true, false) => Mode::Pipelined,
            _ => Mode::Plain,
        };
        // RFC 1870 §6, RFC 6152 §3: SIZE and BODY=8BITMIME only toward a server that offered
        // them. An 8-bit message goes as it is either way: converting it would break the
        // signature that covers it (pec.md §5.5: no 8BITMIME downgrade).
        let mut mail_cmd = format!("MAIL FROM:<{}>", d.mail_from);
        if c.size {
            mail_cmd.push_str(&format!(" SIZE={}", d.message.len()));
        }
        if c.eight_bit && d.message.iter().any(|&b| b >= 0x80) {
            mail_cmd.push_str(" BODY=8BITMIME");
        }
        mail_cmd.push_str("\r\n");
        let rcpt_cmds: Vec<String> = d
            .rcpt_to
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect();
        if mode != Mode::Plain {
            let mut group = Vec::with_capacity(d.message.len() + 256);
            group.extend_from_slice(mail_cmd.as_bytes());
            for r in &rcpt_cmds {
                group.extend_from_slice(r.as_bytes());
            }
            if mode == Mode::Chunked {
                group.extend_from_slice(format!("BDAT {} LAST\r\n", d.message.len()).as_bytes());
                group.extend_from_slice(d.message);
            } else {
                group.extend_from_slice(b"DATA\r\n");
            }
            // A pooled connection the peer closed meanwhile fails here or at the MAIL answer,
            // before anything was accepted: the caller retries on a fresh connection.
            c.send(&group, t * 10).await.map_err(Attempt::Stale)?;
        }
        let mail = match mode {
            Mode::Plain => c.step(Some(mail_cmd), t).await.map_err(Attempt::Stale)?,
            // Only commands were sent: nothing can have been accepted.
            Mode::Pipelined => c.read(t * 4).await.map_err(Attempt::Stale)?,
            // The message is on the wire, and the peer may answer the whole group only once
            // it has committed: the wait is the one for a final answer. A connection closed
            // before any answer was a pooled one the peer had let go; any other failure
            // may come after the message was taken, so it is not retried at once.
            Mode::Chunked => match c.read_first(final_wait).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Err(Attempt::Stale(temp(format!(
                        "{addr}: connection closed by the server"
                    ))));
                }
                Err(e) => return Err(Attempt::Failed(e, false)),
            },
        };
        let mut answers = Vec::with_capacity(rcpt_cmds.len());
        if mode != Mode::Plain {
            for _ in &rcpt_cmds {
                answers.push(c.read(t * 4).await.map_err(|e| Attempt::Failed(e, false))?);
            }
        }
        // The answer to a pipelined DATA or to the BDAT chunk: the final one for BDAT; after a
        // 354 to DATA a message is owed even when the transaction is abandoned.
        let last = match mode {
            Mode::Plain => None,
            Mode::Pipelined => Some(c.read(t * 4).await.map_err(|e| Attempt::Failed(e, false))?),
            Mode::Chunked => Some(
                c.read(final_wait)
                    .await
                    .map_err(|e| Attempt::Failed(e, false))?,
            ),
        };
        let owed = last.as_ref().filter(|_| mode == Mode::Pipelined);
        if mail.class() != 2 {
            let reusable = c.abandon(owed, t).await;
            return Err(Attempt::Failed(
                TransportError {
                    temporary: mail.class() == 4,
                    text: format!("{addr}: MAIL refused: {}", mail.describe()),
                },
                reusable,
            ));
        }
        let mut answers = answers.into_iter();
        let mut outcomes = Vec::with_capacity(d.rcpt_to.len());
        for r in rcpt_cmds {
            let resp = match answers.next() {
                Some(answer) => answer,
                None => c
                    .step(Some(r), t)
                    .await
                    .map_err(|e| Attempt::Failed(e, false))?,
            };
            outcomes.push(match resp.class() {
                2 => RcptOutcome::Accepted,
                4 => RcptOutcome::Temporary(resp.describe()),
                _ => RcptOutcome::Permanent(resp.describe()),
            });
        }
        if !outcomes.contains(&RcptOutcome::Accepted) {
            let reusable = c.abandon(owed, t).await;
            return Ok((outcomes, reusable));
        }
        let done = match (mode, last) {
            (Mode::Chunked, Some(done)) => {
                if done.class() != 2 {
                    // RFC 3030 §2: a refused chunk ends the transaction; RSET makes sure.
                    let reusable = c.reset(t).await;
                    return Ok((refused_by(outcomes, &done), reusable));
                }
                done
            }
            (_, last) => {
                let go = match last {
                    Some(go) => go,
                    None => c
                        .step(Some("DATA\r\n".to_string()), t)
                        .await
                        .map_err(|e| Attempt::Failed(e, false))?,
                };
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
                c.send(&stuffed(d.message), t * 10).await.map_err(|e| {
                    Attempt::Failed(temp(format!("sending the message: {}", e.text)), false)
                })?;
                // The final answer may take long: the next hop commits before answering.
                c.read(final_wait)
                    .await
                    .map_err(|e| Attempt::Failed(e, false))?
            }
        };
        // RFC 5321 §4.1.1.4: after the final answer the transaction state is cleared.
        Ok((refused_by(outcomes, &done), true))
    }

    /// An idle pooled connection to `addr` (encrypted as toward a PEC domain when `tls` is
    /// required).
    fn take(&self, addr: &str, tls: bool) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let idle = pool.get_mut(addr)?;
        while let Some(c) = idle.pop() {
            if c.idle_since.elapsed() < POOL_IDLE && (c.strict_tls || !tls) {
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
        // Pooled connections the peer has closed meanwhile (a restart, its idle timeout) are
        // dropped unused; the first one still open carries the transaction.
        while let Some(mut c) = self.take(addr, d.require_tls) {
            if !c.still_open().await {
                tracing::debug!("pooled connection to {addr} closed by the peer, dropped");
                continue;
            }
            match self.run_on(c, d).await {
                Ok(out) => return out,
                Err(e) => {
                    tracing::debug!("pooled connection to {addr} unusable: {}", e.text);
                    break;
                }
            }
        }
        let c = match self.open(host, addr, d, true).await {
            Ok(c) => c,
            Err(Opening::Tls(e)) if !d.require_tls => {
                tracing::info!("{}; trying again without TLS", e.text);
                self.open(host, addr, d, false)
                    .await
                    .map_err(Opening::into_error)?
            }
            Err(e) => return Err(e.into_error()),
        };
        self.run_on(c, d).await.unwrap_or_else(Err)
    }
}

/// The final answer to a message applied to every recipient whose RCPT was accepted.
fn refused_by(mut outcomes: Vec<RcptOutcome>, done: &Response) -> Vec<RcptOutcome> {
    for o in outcomes.iter_mut() {
        if *o == RcptOutcome::Accepted {
            *o = match done.class() {
                2 => RcptOutcome::Accepted,
                4 => RcptOutcome::Temporary(done.describe()),
                _ => RcptOutcome::Permanent(done.describe()),
            };
        }
    }
    outcomes
}

/// How the commands of a transaction go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One command, one answer (RFC 5321).
    Plain,
    /// MAIL, RCPT and DATA in one write (RFC 2920).
    Pipelined,
    /// MAIL, RCPT and the message as one `BDAT LAST` chunk in one write (RFC 2920, RFC 3030).
    Chunked,
}

/// How a transaction on a connection failed.
enum Attempt {
    /// The connection turned out dead before anything could be accepted (before MAIL FROM
    /// was answered, or closed before any answer to a chunked group).
    Stale(TransportError),
    /// The transaction failed; whether the connection can carry another one.
    Failed(TransportError, bool),
}

/// Idle connections older than this are closed instead of reused (servers keep an idle
/// client for at least 5 minutes, RFC 5321 §4.5.3.2.7).
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per address.
const POOL_MAX: usize = 16;

/// Why a connection could not be opened.
enum Opening {
    /// The TLS handshake failed or timed out.
    Tls(TransportError),
    /// Anything else.
    Other(TransportError),
}

impl Opening {
    fn into_error(self) -> TransportError {
        match self {
            Opening::Tls(e) | Opening::Other(e) => e,
        }
    }
}

impl From<TransportError> for Opening {
    fn from(e: TransportError) -> Self {
        Opening::Other(e)
    }
}

/// An open SMTP client connection.
struct Conn {
    io: BufReader<Box<dyn Stream>>,
    addr: String,
    tls: bool,
    /// Encrypted with the configuration required toward PEC domains (certificates checked
    /// as configured), not opportunistically.
    strict_tls: bool,
    /// The server offered PIPELINING in its last EHLO answer.
    pipelining: bool,
    /// The server offered CHUNKING (BDAT) in its last EHLO answer.
    chunking: bool,
    /// The server offered SIZE (RFC 1870).
    size: bool,
    /// The server offered 8BITMIME (RFC 6152).
    eight_bit: bool,
    idle_since: Instant,
}

impl Conn {
    /// Sends `cmd` (if any) and reads the reply, each within `t`.
    async fn step(&mut self, cmd: Option<String>, t: Duration) -> Result<Response, TransportError> {
        if let Some(c) = cmd {
            self.send(c.as_bytes(), t).await?;
        }
        self.read(t * 4).await
    }

    /// Writes `bytes` within `t`.
    async fn send(&mut self, bytes: &[u8], t: Duration) -> Result<(), TransportError> {
        let addr = &self.addr;
        tokio::time::timeout(t, self.io.get_mut().write_all(bytes))
            .await
            .map_err(|_| temp(format!("{addr}: write timed out")))?
            .map_err(|e| temp(format!("{addr}: {e}")))
    }

    /// Whether an idle connection is still open: nothing is waiting to be read (no end of
    /// stream, no error, no stray bytes), checked without waiting.
    async fn still_open(&mut self) -> bool {
        // One poll of the read, no timer: pending means the peer has said nothing.
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(
                std::pin::Pin::new(&mut self.io)
                    .poll_fill_buf(cx)
                    .is_pending(),
            )
        })
        .await
    }

    /// Reads one reply within `t`; `Ok(None)` when the connection was closed before it.
    async fn read_first(&mut self, t: Duration) -> Result<Option<Response>, TransportError> {
        let addr = &self.addr;
        tokio::time::timeout(t, read_reply(&mut self.io))
            .await
            .map_err(|_| temp(format!("{addr}: no answer")))?
    }

    /// Reads one reply within `t`.
    async fn read(&mut self, t: Duration) -> Result<Response, TransportError> {
        self.read_first(t)
            .await?
            .ok_or_else(|| temp(format!("{}: connection closed by the server", self.addr)))
    }

    /// Abandons a transaction that will carry no message; `go` is the answer to a pipelined
    /// DATA, if one was sent. After a 354 the message is a lone dot, whose answer ends the
    /// transaction (RFC 2920 §3.1); otherwise RSET. Whether the connection is usable afterwards.
    async fn abandon(&mut self, go: Option<&Response>, t: Duration) -> bool {
        if go.is_some_and(|g| g.code == 354) {
            return self.step(Some(".\r\n".into()), t).await.is_ok();
        }
        self.reset(t).await
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
#[path = "relay_tests.rs"]
mod tests;
