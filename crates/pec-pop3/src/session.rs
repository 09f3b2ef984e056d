//! One POP3 session over any stream (RFC 1939 §3–§6): AUTHORIZATION (only after TLS),
//! TRANSACTION on a snapshot of the INBOX taken at login, and UPDATE at QUIT, where the
//! messages marked with DELE are removed. Every error is a `-ERR` with a sentence, with an
//! RFC 2449 / RFC 3206 response code where one applies.

use crate::command::{Command, SyntaxError, parse};
use base64::Engine as _;
use pec_gestore::{Gestore, Login};
use pec_store::Store;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Settings of one session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our host name, in the greeting.
    pub hostname: String,
    /// The stream is already encrypted.
    pub tls: bool,
    /// STLS may be offered (a TLS configuration exists and the stream is plain).
    pub stls: bool,
    /// The client's address (for the failed-login throttle).
    pub peer: IpAddr,
    /// Send the `+OK` greeting. False for the session that continues after STLS: the
    /// client goes on with its next command and expects no second greeting (RFC 2595 §4).
    pub greeting: bool,
}

/// How a session ended.
#[derive(Debug)]
pub enum End<S> {
    /// QUIT, the client went away, or the session timed out.
    Closed,
    /// The client asked for STLS and got `+OK`: upgrade and run a new session.
    StartTls(S),
}

/// Longest command line accepted (RFC 2449 §4 allows 255 octets; SASL responses are longer).
const MAX_LINE: usize = 8192;
/// Inactivity allowed (RFC 1939 §3: an autologout timer of at least 10 minutes).
const IDLE: Duration = Duration::from_secs(600);

struct Entry {
    uid: u32,
    uidvalidity: u32,
    size: u64,
    deleted: bool,
}

enum State {
    Authorization { user: Option<String> },
    Transaction { address: String, drop: Vec<Entry> },
}

/// Reads one line; `Ok(None)` at end of stream; `Err(InvalidData)` for a line too long
/// (the rest of it is consumed).
async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if line.len() + n > MAX_LINE {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        r.consume(n);
        if done {
            return if too_long {
                Err(std::io::ErrorKind::InvalidData.into())
            } else {
                Ok(Some(line))
            };
        }
    }
}

/// RFC 1939 §3: a multi-line body, dot-stuffed, ending with a CRLF and the lone dot.
fn multiline(out: &mut Vec<u8>, body: &[u8]) {
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        match line.strip_suffix(b"\n") {
            Some(l) => {
                out.extend_from_slice(l.strip_suffix(b"\r").unwrap_or(l));
                out.extend_from_slice(b"\r\n");
            }
            None => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b".\r\n");
}

/// The header, the blank line and the first `n` body lines (RFC 1939 §7 TOP).
fn top(message: &[u8], n: u32) -> &[u8] {
    let mut lines = message.split_inclusive(|&b| b == b'\n');
    let mut end = 0;
    for l in lines.by_ref() {
        end += l.len();
        if l == b"\r\n" || l == b"\n" {
            break;
        }
    }
    for l in lines.take(n as usize) {
        end += l.len();
    }
    &message[..end]
}

fn capabilities(cfg: &SessionConfig, authorization: bool) -> String {
    let mut c = String::from(
        "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n",
    );
    if authorization && cfg.tls {
        c.push_str("USER\r\nSASL PLAIN\r\n");
    }
    if authorization && cfg.stls && !cfg.tls {
        c.push_str("STLS\r\n");
    }
    c.push_str("EXPIRE NEVER\r\nIMPLEMENTATION pec\r\n.\r\n");
    c
}

/// Decodes a SASL PLAIN response (RFC 4616): `[authzid] NUL authcid NUL passwd`.
fn plain(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let mut parts = raw.split(|&b| b == 0);
    let (authz, authc, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((
        String::from_utf8(authc.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}

/// Runs a session until QUIT, disconnection, timeout or STLS.
pub async fn run<S, St>(
    stream: S,
    cfg: &SessionConfig,
    g: &Arc<Gestore<St>>,
) -> std::io::Result<End<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    St: Store,
{
    let mut io = BufReader::new(stream);
    let mut state = State::Authorization { user: None };
    macro_rules! send {
        ($bytes:expr) => {{
            io.get_mut().write_all($bytes).await?;
            io.get_mut().flush().await?;
        }};
    }
    macro_rules! reply {
        ($($arg:tt)*) => {{
            let mut text = format!($($arg)*);
            text.push_str("\r\n");
            send!(text.as_bytes());
        }};
    }
    if cfg.greeting {
        reply!("+OK {} POP3 PEC pronto / ready", cfg.hostname);
    }
    loop {
        let Ok(read) = tokio::time::timeout(IDLE, read_line(&mut io)).await else {
            reply!("-ERR autologout: idle for 10 minutes");
            return Ok(End::Closed);
        };
        let line = match read {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(End::Closed),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                reply!("-ERR line too long (at most {MAX_LINE} octets)");
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            reply!("-ERR commands must be UTF-8 text");
            continue;
        };
        let cmd = match parse(text) {
            Ok(c) => c,
            Err(e @ SyntaxError::Unknown) => {
                reply!("-ERR {e}");
                continue;
            }
            Err(e) => {
                reply!("-ERR {e}");
                continue;
            }
        };
        let login = match (&mut state, cmd) {
            (_, Command::Capa) => {
                let auth = matches!(state, State::Authorization { .. });
                send!(capabilities(cfg, auth).as_bytes());
                None
            }
            (State::Authorization { .. }, Command::Quit) => {
                reply!("+OK bye");
                return Ok(End::Closed);
            }
            (State::Authorization { .. }, Command::Stls) if cfg.stls && !cfg.tls => {
                reply!("+OK begin TLS negotiation");
                return Ok(End::StartTls(io.into_inner()));
            }
            (State::Authorization { .. }, Command::Stls) => {
                reply!("-ERR STLS is not available here (already encrypted or not offered)");
                None
            }
            (
                State::Authorization { .. },
                Command::User(_) | Command::Pass(_) | Command::Auth { .. },
            ) if !cfg.tls => {
                // RFC 2595 §2.1 / §4: no cleartext passwords on an unencrypted channel.
                reply!("-ERR [AUTH] authentication requires TLS: use STLS or the POP3S port");
                None
            }
            (State::Authorization { user }, Command::User(u)) => {
                *user = Some(u);
                reply!("+OK send PASS");
                None
            }
            (State::Authorization { user }, Command::Pass(p)) => match user.take() {
                Some(u) => Some((u, p)),
                None => {
                    reply!("-ERR USER first");
                    None
                }
            },
            (State::Authorization { .. }, Command::Auth { mechanism, initial }) => {
                if mechanism != "PLAIN" {
                    reply!("-ERR [AUTH] unsupported mechanism {mechanism}: use PLAIN");
                    continue;
                }
                let response = match initial {
                    Some(r) if r == "=" => String::new(),
                    Some(r) => r,
                    None => {
                        reply!("+ ");
                        let Ok(Ok(Some(l))) = tokio::time::timeout(IDLE, read_line(&mut io)).await
                        else {
                            return Ok(End::Closed);
                        };
                        String::from_utf8_lossy(&l).trim().to_string()
                    }
                };
                if response == "*" {
                    reply!("-ERR authentication cancelled");
                    continue;
                }
                match plain(&response) {
                    Some(creds) => Some(creds),
                    None => {
                        reply!("-ERR [AUTH] malformed PLAIN response");
                        None
                    }
                }
            }
            (State::Authorization { .. }, _) => {
                reply!("-ERR not allowed before login: USER/PASS or AUTH PLAIN first");
                None
            }
            (State::Transaction { .. }, Command::Quit) => {
                let State::Transaction { address, drop } = &state else {
                    continue;
                };
                let uids: Vec<u32> = drop.iter().filter(|e| e.deleted).map(|e| e.uid).collect();
                if uids.is_empty() {
                    reply!("+OK bye");
                    return Ok(End::Closed);
                }
                match g.store.delete_messages(address, "INBOX", &uids).await {
                    Ok(n) => reply!("+OK bye ({n} messages deleted)"),
                    Err(e) => {
                        tracing::error!("POP3 delete for {address} failed: {e}");
                        reply!(
                            "-ERR [SYS/TEMP] the marked messages could not be deleted; nothing was removed"
                        );
                    }
                }
                return Ok(End::Closed);
            }
            (State::Transaction { address, drop }, cmd) => {
                transaction(&mut io, g, address, drop, cmd).await?;
                None
            }
        };
        let Some((user, pass)) = login else { continue };
        match g.login(cfg.peer, &user, &pass).await {
            Ok(Login::Accepted(account)) => match g.store.messages(&account.address).await {
                Ok(list) => {
                    let drop: Vec<Entry> = list
                        .into_iter()
                        .filter(|m| m.folder == "INBOX")
                        .map(|m| Entry {
                            uid: m.uid,
                            uidvalidity: m.uidvalidity,
                            size: m.size,
                            deleted: false,
                        })
                        .collect();
                    reply!("+OK {} has {} messages", account.address, drop.len());
                    state = State::Transaction {
                        address: account.address,
                        drop,
                    };
                }
                Err(e) => {
                    tracing::error!("POP3 listing for {} failed: {e}", account.address);
                    reply!("-ERR [SYS/TEMP] the mailbox cannot be read now; try again later");
                }
            },
            Ok(Login::Refused) => reply!("-ERR [AUTH] invalid user name or password"),
            Ok(Login::Throttled(secs)) => reply!(
                "-ERR [AUTH] too many failed logins for this address or account; try again in {secs} seconds"
            ),
            Err(e) => {
                tracing::error!("POP3 login failed: {e}");
                reply!("-ERR [SYS/TEMP] login is unavailable now; try again later");
            }
        }
    }
}

/// One TRANSACTION-state command (RFC 1939 §5).
async fn transaction<S, St>(
    io: &mut BufReader<S>,
    g: &Arc<Gestore<St>>,
    address: &str,
    drop: &mut [Entry],
    cmd: Command,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    St: Store,
{
    let mut out = Vec::new();
    let live = |drop: &[Entry], n: u32| -> Result<usize, &'static str> {
        let i = (n as usize)
            .checked_sub(1)
            .filter(|&i| i < drop.len())
            .ok_or("no such message")?;
        if drop[i].deleted {
            return Err("message already deleted");
        }
        Ok(i)
    };
    match cmd {
        Command::Stat => {
            let (n, size) = drop
                .iter()
                .filter(|e| !e.deleted)
                .fold((0, 0), |(n, s), e| (n + 1, s + e.size));
            out.extend_from_slice(format!("+OK {n} {size}\r\n").as_bytes());
        }
        Command::List(None) | Command::Uidl(None) => {
            let uidl = matches!(cmd, Command::Uidl(_));
            out.extend_from_slice(b"+OK listing follows\r\n");
            for (i, e) in drop.iter().enumerate().filter(|(_, e)| !e.deleted) {
                let line = match uidl {
                    true => format!("{} {}.{}\r\n", i + 1, e.uidvalidity, e.uid),
                    false => format!("{} {}\r\n", i + 1, e.size),
                };
                out.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(b".\r\n");
        }
        Command::List(Some(n)) => match live(drop, n) {
            Ok(i) => out.extend_from_slice(format!("+OK {n} {}\r\n", drop[i].size).as_bytes()),
            Err(why) => out.extend_from_slice(format!("-ERR {why}\r\n").as_bytes()),
        },
        Command::Uidl(Some(n)) => match live(drop, n) {
            Ok(i) => out.extend_from_slice(
                format!("+OK {n} {}.{}\r\n", drop[i].uidvalidity, drop[i].uid).as_bytes(),
            ),
            Err(why) => out.extend_from_slice(format!("-ERR {why}\r\n").as_bytes()),
        },
        Command::Retr(n) | Command::Top(n, _) => match live(drop, n) {
            Err(why) => out.extend_from_slice(format!("-ERR {why}\r\n").as_bytes()),
            Ok(i) => match g.store.message_bytes(address, "INBOX", drop[i].uid).await {
                Ok(Some(bytes)) => {
                    let body = match cmd {
                        Command::Top(_, lines) => top(&bytes, lines),
                        _ => &bytes[..],
                    };
                    out.extend_from_slice(format!("+OK {} octets\r\n", drop[i].size).as_bytes());
                    multiline(&mut out, body);
                }
                Ok(None) => {
                    out.extend_from_slice(b"-ERR that message was removed by another session\r\n")
                }
                Err(e) => {
                    tracing::error!("POP3 read of {address} uid {} failed: {e}", drop[i].uid);
                    out.extend_from_slice(
                        b"-ERR [SYS/TEMP] the message cannot be read now; try again later\r\n",
                    );
                }
            },
        },
        Command::Dele(n) => match live(drop, n) {
            Ok(i) => {
                drop[i].deleted = true;
                out.extend_from_slice(
                    format!("+OK message {n} marked for deletion\r\n").as_bytes(),
                );
            }
            Err(why) => out.extend_from_slice(format!("-ERR {why}\r\n").as_bytes()),
        },
        Command::Rset => {
            drop.iter_mut().for_each(|e| e.deleted = false);
            out.extend_from_slice(format!("+OK {} messages\r\n", drop.len()).as_bytes());
        }
        Command::Noop => out.extend_from_slice(b"+OK\r\n"),
        Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Stls => {
            out.extend_from_slice(b"-ERR already logged in\r\n");
        }
        Command::Capa | Command::Quit => {}
    }
    io.get_mut().write_all(&out).await?;
    io.get_mut().flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_dot_stuffed_and_terminated() {
        let mut out = Vec::new();
        multiline(&mut out, b"a\r\n.b\r\n..\r\nlast");
        assert_eq!(out, b"a\r\n..b\r\n...\r\nlast\r\n.\r\n");
    }

    #[test]
    fn top_keeps_the_header_and_n_lines() {
        let m = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(top(m, 0), b"A: 1\r\nB: 2\r\n\r\n");
        assert_eq!(top(m, 2), b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(top(m, 9), m);
    }

    #[test]
    fn plain_responses_decode() {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            plain(&b64(b"\0anna@b.test\0se cret")),
            Some(("anna@b.test".into(), "se cret".into()))
        );
        assert_eq!(
            plain(&b64(b"anna@b.test\0anna@b.test\0x")),
            Some(("anna@b.test".into(), "x".into()))
        );
        assert_eq!(plain(&b64(b"luca@b.test\0anna@b.test\0x")), None);
        assert_eq!(plain("not base64!"), None);
    }
}
