//! POP3 command parsing, sans-I/O: one line in, one [`Command`] or a [`SyntaxError`] out
//! (RFC 1939 §3: a keyword of 3–4 characters, case-insensitive, and arguments of at most 40
//! characters each).

/// A POP3 command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CAPA (RFC 2449 §5).
    Capa,
    /// STLS (RFC 2595 §4).
    Stls,
    /// USER name.
    User(String),
    /// PASS string (the rest of the line: passwords may hold spaces).
    Pass(String),
    /// AUTH mechanism [initial-response] (RFC 5034).
    Auth {
        /// The SASL mechanism, upper-cased.
        mechanism: String,
        /// The initial response, base64 (`=` for an empty one).
        initial: Option<String>,
    },
    /// STAT.
    Stat,
    /// LIST [msg].
    List(Option<u32>),
    /// UIDL [msg].
    Uidl(Option<u32>),
    /// RETR msg.
    Retr(u32),
    /// TOP msg n.
    Top(u32, u32),
    /// DELE msg.
    Dele(u32),
    /// NOOP.
    Noop,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// Unknown keyword.
    #[error("unknown command")]
    Unknown,
    /// Missing, extra or malformed arguments; the text names the expected form.
    #[error("syntax: {0}")]
    Arguments(&'static str),
}

fn number(s: Option<&str>, form: &'static str) -> Result<u32, SyntaxError> {
    s.and_then(|n| n.parse::<u32>().ok())
        .ok_or(SyntaxError::Arguments(form))
}

/// Parses one command line (with or without its CRLF).
pub fn parse(line: &str) -> Result<Command, SyntaxError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, r),
        None => (line, ""),
    };
    let mut args = rest.split(' ').filter(|a| !a.is_empty());
    let (a1, a2, a3) = (args.next(), args.next(), args.next());
    let none = |form| match a1 {
        None => Ok(()),
        Some(_) => Err(SyntaxError::Arguments(form)),
    };
    let optional = |form| match (a1, a2) {
        (None, _) => Ok(None),
        (Some(_), None) => number(a1, form).map(Some),
        _ => Err(SyntaxError::Arguments(form)),
    };
    let one = |form| match a2 {
        None => number(a1, form),
        Some(_) => Err(SyntaxError::Arguments(form)),
    };
    Ok(match keyword.to_ascii_uppercase().as_str() {
        "CAPA" => none("CAPA").map(|_| Command::Capa)?,
        "STLS" => none("STLS").map(|_| Command::Stls)?,
        "STAT" => none("STAT").map(|_| Command::Stat)?,
        "NOOP" => none("NOOP").map(|_| Command::Noop)?,
        "RSET" => none("RSET").map(|_| Command::Rset)?,
        "QUIT" => none("QUIT").map(|_| Command::Quit)?,
        "USER" => match (a1, a2) {
            (Some(u), None) => Command::User(u.to_string()),
            _ => return Err(SyntaxError::Arguments("USER name")),
        },
        "PASS" if !rest.is_empty() => Command::Pass(rest.to_string()),
        "PASS" => return Err(SyntaxError::Arguments("PASS password")),
        "AUTH" => match (a1, a2, a3) {
            (Some(m), i, None) => Command::Auth {
                mechanism: m.to_ascii_uppercase(),
                initial: i.map(str::to_string),
            },
            _ => return Err(SyntaxError::Arguments("AUTH mechanism [initial-response]")),
        },
        "LIST" => Command::List(optional("LIST [msg]")?),
        "UIDL" => Command::Uidl(optional("UIDL [msg]")?),
        "RETR" => Command::Retr(one("RETR msg")?),
        "DELE" => Command::Dele(one("DELE msg")?),
        "TOP" => match a3 {
            None => Command::Top(number(a1, "TOP msg n")?, number(a2, "TOP msg n")?),
            Some(_) => return Err(SyntaxError::Arguments("TOP msg n")),
        },
        _ => return Err(SyntaxError::Unknown),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively() {
        assert_eq!(parse("capa\r\n"), Ok(Command::Capa));
        assert_eq!(
            parse("uSeR anna@b.test"),
            Ok(Command::User("anna@b.test".into()))
        );
        assert_eq!(parse("PASS a b  c"), Ok(Command::Pass("a b  c".into())));
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse("UIDL 2"), Ok(Command::Uidl(Some(2))));
        assert_eq!(parse("TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse("AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
    }

    #[test]
    fn bad_arguments_name_the_form() {
        assert_eq!(parse("RETR"), Err(SyntaxError::Arguments("RETR msg")));
        assert_eq!(parse("RETR x"), Err(SyntaxError::Arguments("RETR msg")));
        assert_eq!(parse("DELE 1 2"), Err(SyntaxError::Arguments("DELE msg")));
        assert_eq!(parse("TOP 1"), Err(SyntaxError::Arguments("TOP msg n")));
        assert_eq!(parse("STAT now"), Err(SyntaxError::Arguments("STAT")));
        assert_eq!(parse("PASS"), Err(SyntaxError::Arguments("PASS password")));
        assert_eq!(parse("FOO"), Err(SyntaxError::Unknown));
        assert_eq!(parse(""), Err(SyntaxError::Unknown));
    }
}
