//! One SMTP session (RFC 5321), generic over the stream so tests can drive it in memory. The
//! roles differ only in policy: the MX (pec.md §1.3 PR) takes mail for local domains from
//! anyone, with or without TLS; submission (pec.md §8.1) requires AUTH, offered only once the
//! channel is encrypted (RFC 4954 §4, RFC 3207). DATA is answered only after the gestore has
//! committed the step (architecture §4).

use super::command::{Command, parse};
use super::input::{
    IDLE_TIMEOUT, MAX_LINE, Received, ascii, crlf, read_data, read_line, read_within, within,
};
use super::limits::{Limiter, Room};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pec_engine::receiving::Reply;
use pec_gestore::{Account, Gestore, GestoreError, Login};
use pec_store::Store;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Which service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Port 25: mail from other gestori and the Internet.
    Mx,
    /// Ports 587 / 465: authenticated users.
    Submission,
}

/// Per-session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// MX or submission.
    pub role: Role,
    /// Our host name (greeting, EHLO).
    pub hostname: String,
    /// Hard size limit: larger messages are refused with 552 (pec.md §5.1).
    pub max_message_bytes: u64,
    /// Most recipients per transaction (452 beyond).
    pub max_recipients: usize,
    /// STARTTLS can be offered (an acceptor exists and the stream is not yet TLS).
    pub starttls: bool,
    /// The stream is already TLS.
    pub tls: bool,
    /// The client address.
    pub peer: IpAddr,
}

/// How a session ended.
pub enum End<S> {
    /// QUIT, EOF or a fatal error.
    Closed,
    /// The client asked for STARTTLS; upgrade the stream and run a fresh session.
    StartTls(S),
}

/// How much of a BDAT chunk is read (and budgeted) at a time.
const BDAT_STEP: u64 = 1 << 20;

const MAX_AUTH_FAILURES: u32 = 3;

/// The answer to a message that found no room in the memory budget (RFC 3463 §3.4: 4.3.1,
/// system storage exceeded; the client tries again later).
const NO_ROOM: &str = "452 4.3.1 Memoria esaurita, riprovare piu' tardi / insufficient system storage, try again later";

#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// The message received so far by BDAT (RFC 3030 §2); `None` until its first chunk.
    chunks: Option<Vec<u8>>,
    /// A chunk took the message past the size limit: the rest is read and dropped.
    too_big: bool,
    /// A chunk found no room in the memory budget: the rest is read and dropped.
    no_room: bool,
    /// The memory the chunks hold in the budget.
    room: Room,
}

/// Runs a session until QUIT, EOF or STARTTLS.
pub async fn run<S, St>(
    g: &Arc<Gestore<St>>,
    cfg: &SessionConfig,
    limiter: &Limiter,
    stream: S,
    greet: bool,
) -> std::io::Result<End<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    St: Store,
{
    let mut io = BufReader::new(stream);
    // Replies wait here until the client has no complete command left in our buffer, so a
    // pipelined group is answered with one write (RFC 2920 §3.2).
    let mut out: Vec<u8> = Vec::with_capacity(512);
    macro_rules! reply {
        ($($arg:tt)*) => {{
            out.extend_from_slice(ascii(&format!($($arg)*)).as_bytes());
            out.extend_from_slice(b"\r\n");
        }};
    }
    macro_rules! send {
        () => {{
            if !out.is_empty() {
                // A client that stops reading must not hold the connection slot for good.
                let write = async {
                    io.get_mut().write_all(&out).await?;
                    io.get_mut().flush().await
                };
                within(IDLE_TIMEOUT, write).await?;
                out.clear();
            }
        }};
    }
    // Before every read: the replies go out unless another whole line is already buffered
    // (the client never waits for an answer in the middle of a line).
    macro_rules! send_before_read {
        () => {{
            if !io.buffer().contains(&b'\n') {
                send!();
            }
        }};
    }
    if greet {
        reply!("220 {} ESMTP PEC gestore pronto", cfg.hostname);
    }
    let mut helo: Option<String> = None;
    // The client greeted with EHLO, to which CHUNKING is offered (RFC 3030 §2).
    let mut extended = false;
    let mut account: Option<Account> = None;
    let mut auth_failures = 0;
    let mut tx = Transaction::default();
    loop {
        send_before_read!();
        let Ok(read) = tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut io, MAX_LINE)).await
        else {
            reply!(
                "421 4.4.2 {} nessun comando da 5 minuti / idle timeout, closing",
                cfg.hostname
            );
            send!();
            return Ok(End::Closed);
        };
        let line = match read {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(End::Closed),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                reply!("500 5.5.2 Riga troppo lunga / line too long");
                continue;
            }
            Err(e) => return Err(e),
        };
        let line = String::from_utf8_lossy(&line).to_string();
        let cmd = match parse(&line) {
            Ok(c) => c,
            Err(e @ super::command::SyntaxError::Unknown) => {
                reply!("500 {e}");
                continue;
            }
            Err(e @ super::command::SyntaxError::Chunk) => {
                reply!("501 {e}");
                send!();
                return Ok(End::Closed);
            }
            Err(e) => {
                reply!("501 {e}");
                continue;
            }
        };
        match cmd {
            Command::Ehlo(d) => {
                helo = Some(d);
                extended = true;
                tx = Transaction::default();
                let mut caps = vec![
                    cfg.hostname.clone(),
                    format!("SIZE {}", cfg.max_message_bytes),
                    "8BITMIME".into(),
                    "PIPELINING".into(),
                    "CHUNKING".into(),
                    "ENHANCEDSTATUSCODES".into(),
                ];
                if cfg.starttls && !cfg.tls {
                    caps.push("STARTTLS".into());
                }
                if cfg.role == Role::Submission && cfg.tls && account.is_none() {
                    caps.push("AUTH PLAIN LOGIN".into());
                }
                let n = caps.len();
                let mut text = String::new();
                for (i, c) in caps.iter().enumerate() {
                    let sep = if i + 1 == n { ' ' } else { '-' };
                    text.push_str(&format!("250{sep}{c}\r\n"));
                }
                out.extend_from_slice(text.as_bytes());
            }
            Command::Helo(d) => {
                helo = Some(d);
                extended = false;
                tx = Transaction::default();
                reply!("250 {}", cfg.hostname);
            }
            Command::StartTls => {
                if !cfg.starttls || cfg.tls {
                    reply!("502 5.5.1 STARTTLS non disponibile / not available");
                    continue;
                }
                if !io.buffer().is_empty() {
                    // RFC 3207 §6: nothing may follow STARTTLS in the same packet.
                    reply!("554 5.5.1 Comandi dopo STARTTLS non ammessi");
                    send!();
                    return Ok(End::Closed);
                }
                reply!("220 2.0.0 Pronto per TLS / ready to start TLS");
                send!();
                return Ok(End::StartTls(io.into_inner()));
            }
            Command::Auth { mechanism, initial } => {
                if cfg.role != Role::Submission {
                    reply!("502 5.5.1 AUTH non disponibile su questo servizio");
                    continue;
                }
                if !cfg.tls {
                    reply!("538 5.7.11 Usare STARTTLS prima di AUTH / encryption required");
                    continue;
                }
                if account.is_some() {
                    reply!("503 5.5.1 Già autenticato / already authenticated");
                    continue;
                }
                let creds = match mechanism.as_str() {
                    "PLAIN" => {
                        let resp = match initial {
                            Some(r) => r,
                            None => {
                                reply!("334 ");
                                send_before_read!();
                                match read_within(&mut io).await? {
                                    Some(l) => String::from_utf8_lossy(&l).trim().to_string(),
                                    None => return Ok(End::Closed),
                                }
                            }
                        };
                        B64.decode(resp.trim()).ok().and_then(|b| {
                            let parts: Vec<&[u8]> = b.split(|&c| c == 0).collect();
                            match parts.as_slice() {
                                [_, user, pass] => Some((
                                    String::from_utf8_lossy(user).to_string(),
                                    String::from_utf8_lossy(pass).to_string(),
                                )),
                                _ => None,
                            }
                        })
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(u) => u,
                            None => {
                                reply!("334 VXNlcm5hbWU6");
                                send_before_read!();
                                match read_within(&mut io).await? {
                                    Some(l) => String::from_utf8_lossy(&l).trim().to_string(),
                                    None => return Ok(End::Closed),
                                }
                            }
                        };
                        reply!("334 UGFzc3dvcmQ6");
                        send_before_read!();
                        let pass = match read_within(&mut io).await? {
                            Some(l) => String::from_utf8_lossy(&l).trim().to_string(),
                            None => return Ok(End::Closed),
                        };
                        match (B64.decode(user), B64.decode(pass)) {
                            (Ok(u), Ok(p)) => Some((
                                String::from_utf8_lossy(&u).to_string(),
                                String::from_utf8_lossy(&p).to_string(),
                            )),
                            _ => None,
                        }
                    }
                    _ => {
                        reply!("504 5.5.4 Meccanismo non supportato / unsupported mechanism");
                        continue;
                    }
                };
                let Some((user, pass)) = creds else {
                    reply!("501 5.5.2 Risposta AUTH non valida / cannot decode response");
                    continue;
                };
                // Through the failed-login throttle shared with IMAP, POP3 and the webmail:
                // reconnecting does not reset it.
                let refusal = match g.login(cfg.peer, &user, &pass).await {
                    Ok(Login::Accepted(a)) => {
                        account = Some(a);
                        reply!("235 2.7.0 Autenticazione riuscita / authentication succeeded");
                        continue;
                    }
                    Ok(Login::Refused) => {
                        "535 5.7.8 Credenziali non valide / authentication failed".to_string()
                    }
                    Ok(Login::Throttled(secs)) => format!(
                        "454 4.7.0 Troppi tentativi falliti, riprovare tra {secs} secondi / too many failures, try again in {secs} s"
                    ),
                    Err(e) => {
                        tracing::error!("authentication backend: {e}");
                        "454 4.7.0 Errore temporaneo di autenticazione".to_string()
                    }
                };
                auth_failures += 1;
                if auth_failures >= MAX_AUTH_FAILURES {
                    reply!("421 4.7.0 Troppi tentativi falliti / too many failures");
                    send!();
                    return Ok(End::Closed);
                }
                reply!("{refusal}");
            }
            Command::Mail { from, size } => {
                if helo.is_none() {
                    reply!("503 5.5.1 Inviare prima EHLO / send EHLO first");
                    continue;
                }
                if tx.mail_from.is_some() {
                    reply!("503 5.5.1 Transazione già aperta / nested MAIL command");
                    continue;
                }
                if cfg.role == Role::Submission && account.is_none() {
                    reply!("530 5.7.0 Autenticazione richiesta / authentication required");
                    continue;
                }
                if size.is_some_and(|s| s > cfg.max_message_bytes) {
                    reply!(
                        "552 5.3.4 Messaggio troppo grande (limite {} byte)",
                        cfg.max_message_bytes
                    );
                    continue;
                }
                if !limiter.allow_message(cfg.peer) {
                    reply!("450 4.7.1 Troppi messaggi, riprovare più tardi / rate limit exceeded");
                    continue;
                }
                tx.mail_from = Some(from);
                reply!("250 2.1.0 Ok");
            }
            Command::Rcpt(to) => {
                if tx.mail_from.is_none() {
                    reply!("503 5.5.1 Inviare prima MAIL / need MAIL command");
                    continue;
                }
                if tx.chunks.is_some() {
                    reply!("503 5.5.1 Destinatari non ammessi dopo BDAT / RCPT after BDAT");
                    continue;
                }
                if tx.rcpt_to.len() >= cfg.max_recipients {
                    reply!(
                        "452 4.5.3 Troppi destinatari (limite {}) / too many recipients",
                        cfg.max_recipients
                    );
                    continue;
                }
                if cfg.role == Role::Mx && !g.accepts_recipient(&to) {
                    reply!(
                        "550 5.7.1 Relay non consentito: {to} non è un dominio di questo gestore"
                    );
                    continue;
                }
                // One recipient named twice is one recipient: one copy, one receipt
                // (pec.md §2.12, §5.9).
                if !tx.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
                    tx.rcpt_to.push(to);
                }
                reply!("250 2.1.5 Ok");
            }
            Command::Data => {
                if tx.chunks.is_some() {
                    reply!("503 5.5.1 DATA non ammesso dopo BDAT / DATA after BDAT");
                    continue;
                }
                let (Some(from), false) = (tx.mail_from.clone(), tx.rcpt_to.is_empty()) else {
                    reply!("503 5.5.1 Nessun destinatario valido / need RCPT command");
                    continue;
                };
                reply!("354 Inviare il messaggio, terminare con <CRLF>.<CRLF>");
                send_before_read!();
                // Held until the message is committed.
                let mut room = Room::default();
                // Each line within the idle timeout, and the whole message within the time
                // the largest one takes at 64 KiB/s: a line every few minutes cannot hold
                // the connection for ever.
                let whole =
                    IDLE_TIMEOUT + std::time::Duration::from_secs(cfg.max_message_bytes / 65_536);
                let data = within(
                    whole,
                    read_data(&mut io, cfg.max_message_bytes, limiter, &mut room),
                )
                .await?;
                let rcpts = std::mem::take(&mut tx.rcpt_to);
                tx.mail_from = None;
                let data = match data {
                    Received::Message(data) => data,
                    Received::TooBig => {
                        reply!(
                            "552 5.3.4 Messaggio troppo grande (limite {} byte)",
                            cfg.max_message_bytes
                        );
                        continue;
                    }
                    Received::NoRoom => {
                        reply!("{NO_ROOM}");
                        continue;
                    }
                };
                let (answer, close) =
                    deliver(g, cfg, account.as_ref(), &helo, from, rcpts, data).await;
                for line in answer {
                    reply!("{line}");
                }
                if close {
                    send!();
                    return Ok(End::Closed);
                }
            }
            Command::Bdat { size, last } => {
                // RFC 3030 §2: the chunk follows its command whatever the answer, so it is
                // read (or skipped) first. Queued answers wait only while the whole chunk is
                // already buffered; before waiting on the network they go out (RFC 2920 §3.2).
                let open = extended && tx.mail_from.is_some() && !tx.rcpt_to.is_empty();
                if (io.buffer().len() as u64) < size {
                    send!();
                }
                // A chunk larger than any message may be is not read through: skipping it
                // would hold the connection for as long as the client cares to send.
                if size > cfg.max_message_bytes {
                    reply!(
                        "552 5.3.4 Blocco BDAT oltre la dimensione massima del messaggio ({} byte) / chunk exceeds the message size limit",
                        cfg.max_message_bytes
                    );
                    send!();
                    return Ok(End::Closed);
                }
                let so_far = tx.chunks.as_ref().map_or(0, Vec::len) as u64;
                let fits = open
                    && !tx.too_big
                    && !tx.no_room
                    && size <= cfg.max_message_bytes.saturating_sub(so_far);
                let mut keep = fits;
                // The chunk is read a step at a time: the memory budget grows with the bytes
                // that arrived (the size is the client's word), and a client silent for the
                // idle timeout in the middle of it is dropped.
                let read = async {
                    let mut left = size;
                    while left > 0 {
                        let step = left.min(BDAT_STEP);
                        if keep {
                            let held = tx.chunks.as_ref().map_or(0, Vec::len) as u64;
                            keep = limiter.reserve(&mut tx.room, held + step);
                        }
                        let n = if keep {
                            let buf = tx.chunks.get_or_insert_with(Vec::new);
                            within(IDLE_TIMEOUT, (&mut io).take(step).read_to_end(buf)).await?
                                as u64
                        } else {
                            within(
                                IDLE_TIMEOUT,
                                tokio::io::copy(&mut (&mut io).take(step), &mut tokio::io::sink()),
                            )
                            .await?
                        };
                        if n < step {
                            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                        }
                        left -= n;
                    }
                    Ok(())
                };
                // The idle timeout, plus the time the chunk takes at 64 KiB/s.
                let allowed = IDLE_TIMEOUT + std::time::Duration::from_secs(size / 65_536);
                within(allowed, read).await?;
                if open && !keep {
                    if fits {
                        tx.no_room = true;
                    } else if !tx.no_room {
                        tx.too_big = true;
                    }
                    tx.chunks = Some(Vec::new());
                    tx.room = Room::default();
                }
                if !extended {
                    tx = Transaction::default();
                    reply!("503 5.5.1 BDAT richiede EHLO / BDAT needs EHLO (RFC 3030)");
                    continue;
                }
                if !open {
                    if last {
                        tx = Transaction::default();
                    }
                    reply!("503 5.5.1 Nessun destinatario valido / need MAIL and RCPT before BDAT");
                    continue;
                }
                if tx.no_room {
                    if last {
                        tx = Transaction::default();
                    }
                    reply!("{NO_ROOM}");
                    continue;
                }
                if tx.too_big {
                    if last {
                        tx = Transaction::default();
                    }
                    reply!(
                        "552 5.3.4 Messaggio troppo grande (limite {} byte)",
                        cfg.max_message_bytes
                    );
                    continue;
                }
                if !last {
                    reply!("250 2.0.0 {size} byte ricevuti / octets received");
                    continue;
                }
                let done = std::mem::take(&mut tx);
                let (Some(from), Some(data)) = (done.mail_from, done.chunks) else {
                    // Not reached (an open transaction has both); answered all the same.
                    reply!("503 5.5.1 Nessuna transazione aperta / no transaction in progress");
                    continue;
                };
                // RFC 2920 §3.2: with nothing left to read, what is queued goes out before
                // the message is scanned and committed.
                if io.buffer().is_empty() {
                    send!();
                }
                let (answer, close) =
                    deliver(g, cfg, account.as_ref(), &helo, from, done.rcpt_to, data).await;
                for line in answer {
                    reply!("{line}");
                }
                if close {
                    send!();
                    return Ok(End::Closed);
                }
            }
            Command::Rset => {
                tx = Transaction::default();
                reply!("250 2.0.0 Ok");
            }
            Command::Noop => reply!("250 2.0.0 Ok"),
            Command::Quit => {
                reply!("221 2.0.0 Arrivederci");
                send!();
                return Ok(End::Closed);
            }
            // RFC 5321 §3.5.3: a server that does not verify addresses answers VRFY with
            // 252 (it still takes mail for them); §4.1.1.8: HELP answers 214.
            Command::Other(v) if v == "VRFY" => {
                reply!(
                    "252 2.5.0 Verifica non disponibile; il messaggio sarà accettato / cannot VRFY, but will take the message"
                )
            }
            Command::Other(v) if v == "HELP" => {
                reply!(
                    "214 2.0.0 Comandi: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT STARTTLS AUTH"
                )
            }
            Command::Other(v) => reply!("502 5.5.1 {v} non implementato"),
        }
    }
}

/// Hands a complete message to the gestore and says what to answer: the reply lines, and
/// whether the session ends after them. The answer comes only after the gestore committed
/// (architecture §4), for DATA and for the last BDAT chunk alike.
async fn deliver<St: Store>(
    g: &Arc<Gestore<St>>,
    cfg: &SessionConfig,
    account: Option<&Account>,
    helo: &Option<String>,
    from: String,
    rcpts: Vec<String>,
    data: Vec<u8>,
) -> (Vec<String>, bool) {
    let client = pec_gestore::Client {
        ip: Some(cfg.peer),
        helo: helo.clone(),
    };
    let result = match cfg.role {
        Role::Mx => g
            .receive(&client, &from, &rcpts, data)
            .await
            .map(|r| match r {
                Reply::Accepted => Ok("2.0.0 Ok: messaggio preso in carico".to_string()),
                Reply::Refused { text } => Err(text),
            }),
        Role::Submission => {
            let Some(a) = account else {
                return (vec!["530 5.7.0 Autenticazione richiesta".into()], false);
            };
            g.submit(&client, a, &from, &rcpts, crlf(data)).await.map(|s| {
                Ok(match s.refused {
                    None => format!("2.0.0 Ok: accettato, identificativo {}", s.identificativo),
                    Some(why) => format!(
                        "2.0.0 Messaggio non accettato ({why}): avviso di non accettazione inviato, identificativo {}",
                        s.identificativo
                    ),
                })
            })
        }
    };
    let answer = match result {
        Ok(Ok(text)) => format!("250 {text}"),
        Ok(Err(text)) => format!("550 {text}"),
        Err(e @ GestoreError::Invalid(_)) => format!("554 5.6.0 {e}"),
        Err(GestoreError::Forbidden(why)) => format!("550 5.7.1 {why}"),
        Err(GestoreError::Unavailable(why)) => {
            // product.md §4: nothing is taken unscanned; the client retries.
            tracing::warn!("message deferred, a filter is down: {why}");
            "451 4.7.1 Controllo antivirus/antispam non disponibile, riprovare / content scanner unavailable, try again later".into()
        }
        Err(e) => {
            tracing::error!("message not committed: {e}");
            "451 4.3.0 Errore temporaneo, riprovare / temporary failure, try again".into()
        }
    };
    if pec_gestore::sessions::ending_here() {
        // This submission locked the mailbox (product.md §4): its answer is given, then the
        // session ends like every other one of the mailbox.
        return (
            vec![
                answer,
                "421 4.7.0 Casella bloccata per invio di spam / mailbox locked for sending spam, closing".into(),
            ],
            true,
        );
    }
    (vec![answer], false)
}
