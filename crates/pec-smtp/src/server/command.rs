//! SMTP command lines (RFC 5321 §4.1), parsed without I/O: one line in (without CRLF), one
//! typed command or a syntax error out.

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`.
    Ehlo(String),
    /// `HELO domain`.
    Helo(String),
    /// `MAIL FROM:<path> [params]`; the path may be empty (null reverse-path).
    Mail {
        /// Reverse-path.
        from: String,
        /// `SIZE=` parameter, if given.
        size: Option<u64>,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt(String),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030 §2): the next `size` octets are a chunk of the message.
    Bdat {
        /// Octets that follow the command line.
        size: u64,
        /// This chunk ends the message.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// Upper-cased mechanism name.
        mechanism: String,
        /// Initial response, base64.
        initial: Option<String>,
    },
    /// `VRFY`, `EXPN`, `HELP`: answered but not implemented.
    Other(String),
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// Unknown verb (`500`).
    #[error("5.5.2 Comando non riconosciuto / command not recognized")]
    Unknown,
    /// Bad arguments (`501`).
    #[error("5.5.4 Sintassi errata: {0}")]
    Arguments(&'static str),
    /// A BDAT line without a readable size (`501`): the octets that follow cannot be told
    /// apart from commands, so the session ends (RFC 3030 §2).
    #[error(
        "5.5.4 Sintassi errata: BDAT richiede la dimensione del blocco / BDAT needs a chunk size"
    )]
    Chunk,
}

fn path(arg: &str, prefix: &str) -> Result<(String, String), SyntaxError> {
    let rest = arg
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| arg[prefix.len()..].trim_start())
        .ok_or(SyntaxError::Arguments(
            "expected FROM:<address> or TO:<address>",
        ))?;
    let rest = rest.strip_prefix('<').ok_or(SyntaxError::Arguments(
        "the address must be in angle brackets",
    ))?;
    let end = rest
        .find('>')
        .ok_or(SyntaxError::Arguments("missing closing angle bracket"))?;
    let addr = rest[..end].trim();
    // Source routes (RFC 5321 §4.1.2, obsolete) are dropped: `@a,@b:user@d` → `user@d`.
    let addr = addr.rsplit_once(':').map(|(_, a)| a).unwrap_or(addr);
    if addr.chars().any(|c| c.is_control() || c == ' ' || c == '<') {
        return Err(SyntaxError::Arguments("invalid characters in the address"));
    }
    if !addr.is_empty() && !addr.contains('@') {
        return Err(SyntaxError::Arguments("the address has no domain"));
    }
    // RFC 5321 §4.5.3.1: a local part of 64 octets at most, a domain of 255, a path of 256
    // (the brackets included). Longer ones are refused, so a long recipient list cannot
    // hold more memory than its count allows.
    let (local, domain) = addr.rsplit_once('@').unwrap_or(("", ""));
    if addr.len() + 2 > 256 || local.len() > 64 || domain.len() > 255 {
        return Err(SyntaxError::Arguments(
            "the address is too long (RFC 5321 §4.5.3.1: local part 64, path 256 octets)",
        ));
    }
    Ok((addr.to_string(), rest[end + 1..].trim().to_string()))
}

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, SyntaxError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, a.trim()),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    Ok(match verb.as_str() {
        "EHLO" | "HELO" => {
            if arg.is_empty() {
                return Err(SyntaxError::Arguments(
                    "a domain or address literal is required",
                ));
            }
            let d = arg.split_whitespace().next().unwrap_or("").to_string();
            if verb == "EHLO" {
                Command::Ehlo(d)
            } else {
                Command::Helo(d)
            }
        }
        "MAIL" => {
            let (from, params) = path(arg, "FROM:")?;
            let mut size = None;
            for p in params.split_whitespace() {
                if let Some(v) = p.get(..5).filter(|k| k.eq_ignore_ascii_case("SIZE=")) {
                    let _ = v;
                    size = Some(
                        p[5..]
                            .parse()
                            .map_err(|_| SyntaxError::Arguments("SIZE must be a number"))?,
                    );
                }
            }
            Command::Mail { from, size }
        }
        "RCPT" => {
            let (to, _) = path(arg, "TO:")?;
            if to.is_empty() {
                return Err(SyntaxError::Arguments("an empty recipient is not allowed"));
            }
            Command::Rcpt(to)
        }
        "DATA" => Command::Data,
        "BDAT" => {
            let mut it = arg.split_whitespace();
            let size = it
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or(SyntaxError::Chunk)?;
            let last = match it.next() {
                None => false,
                Some(w) if w.eq_ignore_ascii_case("LAST") && it.next().is_none() => true,
                Some(_) => return Err(SyntaxError::Chunk),
            };
            Command::Bdat { size, last }
        }
        "RSET" => Command::Rset,
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "STARTTLS" => Command::StartTls,
        "AUTH" => {
            let mut it = arg.split_whitespace();
            let mechanism = it
                .next()
                .ok_or(SyntaxError::Arguments("a mechanism is required"))?
                .to_ascii_uppercase();
            Command::Auth {
                mechanism,
                initial: it.next().map(str::to_string),
            }
        }
        "VRFY" | "EXPN" | "HELP" => Command::Other(verb),
        _ => return Err(SyntaxError::Unknown),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_commands_we_serve() {
        assert_eq!(
            parse("ehlo client.example").unwrap(),
            Command::Ehlo("client.example".into())
        );
        assert_eq!(
            parse("MAIL FROM:<a@b.it> SIZE=1000 BODY=8BITMIME").unwrap(),
            Command::Mail {
                from: "a@b.it".into(),
                size: Some(1000)
            }
        );
        assert_eq!(
            parse("MAIL FROM:<>").unwrap(),
            Command::Mail {
                from: "".into(),
                size: None
            }
        );
        assert_eq!(
            parse("rcpt to: <X@B.it>").unwrap(),
            Command::Rcpt("X@B.it".into())
        );
        assert_eq!(
            parse("RCPT TO:<@relay:u@d.it>").unwrap(),
            Command::Rcpt("u@d.it".into())
        );
        assert_eq!(
            parse("AUTH plain AGEAYg==").unwrap(),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            }
        );
        assert_eq!(parse("STARTTLS\r\n").unwrap(), Command::StartTls);
        assert_eq!(
            parse("BDAT 1000\r\n").unwrap(),
            Command::Bdat {
                size: 1000,
                last: false
            }
        );
        assert_eq!(
            parse("bdat 0 last").unwrap(),
            Command::Bdat {
                size: 0,
                last: true
            }
        );
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        assert_eq!(parse("FOO"), Err(SyntaxError::Unknown));
        assert!(matches!(
            parse("MAIL FROM:a@b"),
            Err(SyntaxError::Arguments(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<>"),
            Err(SyntaxError::Arguments(_))
        ));
        assert!(matches!(
            parse("RCPT TO:<nodomain>"),
            Err(SyntaxError::Arguments(_))
        ));
        assert!(matches!(parse("EHLO"), Err(SyntaxError::Arguments(_))));
        assert_eq!(parse("BDAT"), Err(SyntaxError::Chunk));
        assert_eq!(parse("BDAT -1 LAST"), Err(SyntaxError::Chunk));
        assert_eq!(parse("BDAT 10 LAST MORE"), Err(SyntaxError::Chunk));
        assert!(matches!(
            parse("MAIL FROM:<a@b> SIZE=x"),
            Err(SyntaxError::Arguments(_))
        ));
    }

    #[test]
    fn paths_past_the_rfc_5321_lengths_are_refused() {
        let local = "a".repeat(65);
        assert!(parse(&format!("RCPT TO:<{local}@b.it>")).is_err());
        let long = format!("{}@{}.it", "a".repeat(64), "d".repeat(200));
        assert!(parse(&format!("RCPT TO:<{long}>")).is_err());
        let ok = format!("{}@{}.it", "a".repeat(64), "d".repeat(150));
        assert!(parse(&format!("RCPT TO:<{ok}>")).is_ok());
    }
}
