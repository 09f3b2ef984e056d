//! What an SMTP session reads and how it answers: command lines with their length bound,
//! DATA with its terminator and dot-stuffing (RFC 5321 §4.5.2), within the idle timeout, and
//! reply text made ASCII.

use super::limits::{Limiter, Room};
use tokio::io::AsyncBufReadExt;

pub(super) const MAX_LINE: usize = 4096;
/// A client silent this long between commands is dropped (RFC 5321 §4.5.3.2.7: at least
/// 5 minutes). Relay clients that keep connections open for reuse close them sooner.
pub(super) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The error payload of a line too long: whether it ended in CRLF, which decides whether the
/// next line may start the DATA terminator.
#[derive(Debug)]
pub(super) struct LineTooLong {
    pub crlf: bool,
}

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("line too long")
    }
}

impl std::error::Error for LineTooLong {}

/// Reads one line, LF included. A line longer than `max` is read to its end and dropped, and
/// answered `InvalidData` carrying [`LineTooLong`] (RFC 5321 §4.5.3.1.4: reply 500 and
/// discard the rest of the line), so its tail is never taken for a command and memory stays
/// bounded.
pub(super) async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut overflow = false;
    // The last byte consumed, for a dropped line's ending.
    let mut last = 0u8;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return if overflow {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            } else {
                Ok(if line.is_empty() { None } else { Some(line) })
            };
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            if !overflow && line.len() + i < max {
                line.extend_from_slice(&buf[..=i]);
            } else {
                overflow = true;
            }
            let crlf = if i > 0 {
                buf[i - 1] == b'\r'
            } else {
                last == b'\r'
            };
            r.consume(i + 1);
            return if overflow {
                Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    LineTooLong { crlf },
                ))
            } else {
                Ok(Some(line))
            };
        }
        let n = buf.len();
        last = buf[n - 1];
        if overflow || line.len() + n > max {
            overflow = true;
            line = Vec::new();
        } else {
            line.extend_from_slice(buf);
        }
        r.consume(n);
    }
}

/// `io` within `limit`; past it, a `TimedOut` error (the session ends and frees its slot).
pub(super) async fn within<T>(
    limit: std::time::Duration,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, io)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// A line within the idle timeout (AUTH continuations); a line too long is an error.
pub(super) async fn read_within<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    within(IDLE_TIMEOUT, read_line(r, MAX_LINE)).await
}

/// What DATA brought.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received {
    /// The message, dot-stuffing undone.
    Message(Vec<u8>),
    /// It exceeded the size limit; the rest was read and dropped.
    TooBig,
    /// The memory for messages being received ran out ([`Limiter::reserve`]); the rest was
    /// read and dropped.
    NoRoom,
}

/// Reads DATA up to `<CRLF>.<CRLF>`, undoing dot-stuffing (RFC 5321 §4.5.2). Only a dot line
/// ending in CRLF after a line ending in CRLF ends the data (RFC 5321 §4.1.1.4): a bare LF
/// never starts or ends the terminator, so `<LF>.<CRLF>` or `<CRLF>.<LF>` cannot smuggle a
/// second message into the session, and lines after a bare LF are kept as sent. Each line
/// must arrive within the idle timeout. The message may hold `max` bytes, and only as many as
/// `room` can grow to.
pub(super) async fn read_data<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    max: u64,
    limiter: &Limiter,
    room: &mut Room,
) -> std::io::Result<Received> {
    let mut out = Vec::new();
    let mut dropped: Option<Received> = None;
    let mut after_crlf = true;
    loop {
        let line = match within(IDLE_TIMEOUT, read_line(r, 1 << 20)).await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                // A line past 1 MiB: dropped with the rest of the message. Whether it ended in
                // CRLF still decides whether a dot line after it ends the data: after a bare
                // LF it does not, or `<long line><LF>.<CRLF>` would smuggle what follows.
                dropped.get_or_insert(Received::TooBig);
                out = Vec::new();
                after_crlf = e
                    .get_ref()
                    .and_then(|x| x.downcast_ref::<LineTooLong>())
                    .is_some_and(|l| l.crlf);
                continue;
            }
            Err(e) => return Err(e),
        };
        if after_crlf && line == b".\r\n" {
            return Ok(dropped.unwrap_or(Received::Message(out)));
        }
        let ends_crlf = line.ends_with(b"\r\n");
        let line = match line.strip_prefix(b".") {
            Some(rest) if after_crlf => rest,
            _ => &line[..],
        };
        after_crlf = ends_crlf;
        if dropped.is_some() {
            continue;
        }
        let size = out.len() as u64 + line.len() as u64;
        if size > max {
            dropped = Some(Received::TooBig);
        } else if !limiter.reserve(room, size) {
            dropped = Some(Received::NoRoom);
        }
        if dropped.is_some() {
            out = Vec::new();
            *room = Room::default();
            continue;
        }
        out.extend_from_slice(line);
    }
}

/// Bare LF to CRLF (submission only; RFC 5321 §2.3.8). Relayed and received messages are never
/// touched (pec.md §5.5).
pub(super) fn crlf(data: Vec<u8>) -> Vec<u8> {
    if !data.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r') && data.first() != Some(&b'\n') {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut prev = 0u8;
    for &b in &data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Reply text is ASCII (RFC 5321 §4.2): Italian accents become an apostrophe after the vowel.
pub(super) fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'à' | 'á' => out.push_str("a'"),
            'è' | 'é' => out.push_str("e'"),
            'ì' | 'í' => out.push_str("i'"),
            'ò' | 'ó' => out.push_str("o'"),
            'ù' | 'ú' => out.push_str("u'"),
            'È' => out.push_str("E'"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::limits::Limits;
    use tokio::io::BufReader;

    fn limiter(memory_mib: u64) -> Limiter {
        Limiter::new(Limits {
            max_connections: 10,
            max_connections_per_ip: 10,
            messages_per_minute_per_ip: 10,
            message_memory_bytes: memory_mib << 20,
        })
    }

    async fn data<R: AsyncBufReadExt + Unpin>(r: &mut R, max: u64) -> Vec<u8> {
        match read_data(r, max, &limiter(64), &mut Room::default())
            .await
            .unwrap()
        {
            Received::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    /// Messages being received share one memory budget: past it, a message is read to its
    /// end and dropped; the room it held is given back.
    #[tokio::test]
    async fn a_message_past_the_memory_budget_is_dropped() {
        let l = limiter(2);
        let mut held = Room::default();
        assert!(l.reserve(&mut held, 1));
        let line = [vec![b'x'; 1000], b"\r\n".to_vec()].concat();
        let mut input = line.repeat(1500);
        input.extend_from_slice(b".\r\nQUIT\r\n");
        let mut room = Room::default();
        let mut r = BufReader::new(&input[..]);
        assert_eq!(
            read_data(&mut r, 1 << 30, &l, &mut room).await.unwrap(),
            Received::NoRoom
        );
        assert_eq!(
            read_line(&mut r, MAX_LINE).await.unwrap().unwrap(),
            b"QUIT\r\n"
        );
        drop(held);
        let mut r = BufReader::new(&input[..]);
        assert!(matches!(
            read_data(&mut r, 1 << 30, &l, &mut room).await.unwrap(),
            Received::Message(m) if m.len() == 1500 * 1002
        ));
    }

    #[tokio::test]
    async fn data_is_unstuffed_and_capped() {
        let mut r = BufReader::new(&b"a\r\n..b\r\n.\r\nNEXT"[..]);
        assert_eq!(data(&mut r, 100).await, b"a\r\n.b\r\n");
        let mut r = BufReader::new(&b"0123456789\r\n.\r\n"[..]);
        assert_eq!(
            read_data(&mut r, 5, &limiter(64), &mut Room::default())
                .await
                .unwrap(),
            Received::TooBig
        );
    }

    /// SMTP smuggling: only <CRLF>.<CRLF> ends the data; a bare LF neither starts nor ends
    /// the terminator, and what follows it is kept as sent.
    #[tokio::test]
    async fn only_crlf_dot_crlf_ends_data() {
        for (input, kept) in [
            (&b"a\n.\r\nMAIL\r\n.\r\n"[..], &b"a\n.\r\nMAIL\r\n"[..]),
            (b"a\r\n.\nMAIL\r\n.\r\n", b"a\r\n\nMAIL\r\n"),
            (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n"),
            (b"a\n..b\r\n.\r\n", b"a\n..b\r\n"),
        ] {
            let mut r = BufReader::new(input);
            assert_eq!(
                data(&mut r, 100).await,
                kept,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// A line past 1 MiB ending in a bare LF does not let the next dot line end the data:
    /// `<long line><LF>.<CRLF>` smuggles nothing; after a long line ending in CRLF the dot
    /// line does end it. Both are too big either way.
    #[tokio::test]
    async fn an_overlong_data_line_keeps_its_ending() {
        for (ending, ends_here) in [(&b"\n"[..], false), (b"\r\n", true)] {
            let mut input = vec![b'x'; (1 << 20) + 10];
            input.extend_from_slice(ending);
            input.extend_from_slice(b".\r\nMAIL FROM:<a@b>\r\n.\r\nNEXT");
            let mut r = BufReader::with_capacity(4096, &input[..]);
            let got = read_data(&mut r, 1 << 30, &limiter(4096), &mut Room::default())
                .await
                .unwrap();
            assert_eq!(got, Received::TooBig);
            let mut rest = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut r, &mut rest)
                .await
                .unwrap();
            let expect: &[u8] = if ends_here {
                b"MAIL FROM:<a@b>\r\n.\r\nNEXT"
            } else {
                b"NEXT"
            };
            assert_eq!(rest, expect, "{}", String::from_utf8_lossy(ending));
        }
    }

    /// An overlong line is dropped to its end: what follows is the next command, not its tail.
    #[tokio::test]
    async fn an_overlong_line_is_dropped_whole() {
        let mut input = vec![b'A'; 3 * MAX_LINE];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut r = BufReader::with_capacity(1024, &input[..]);
        let e = read_line(&mut r, MAX_LINE).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            read_line(&mut r, MAX_LINE).await.unwrap().unwrap(),
            b"NOOP\r\n"
        );
        assert!(read_line(&mut r, MAX_LINE).await.unwrap().is_none());
    }

    #[test]
    fn replies_are_ascii() {
        assert_eq!(ascii("non è più così"), "non e' piu' cosi'");
    }

    #[test]
    fn bare_lf_becomes_crlf() {
        assert_eq!(crlf(b"a\nb\r\nc".to_vec()), b"a\r\nb\r\nc");
        assert_eq!(crlf(b"a\r\n".to_vec()), b"a\r\n");
    }
}
