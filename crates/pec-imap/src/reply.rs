//! Building responses: tagged statuses with a human sentence, and the response codes of
//! RFC 3501 §7.1, RFC 4315, RFC 5530 and RFC 7162 that `imap-types` names or that we name.

use imap_types::core::{Tag, Text};
use imap_types::response::{Code, CodeOther, Status, StatusKind};

/// A response text: CR, LF and anything outside ASCII become spaces or `?`, and an empty
/// text becomes "done" (RFC 3501 §9 `text = 1*TEXT-CHAR`, `TEXT-CHAR` being 7-bit).
pub(crate) fn text(s: impl Into<String>) -> Text<'static> {
    let mut s: String = s
        .into()
        .chars()
        .map(|c| match c {
            '\r' | '\n' => ' ',
            c if c.is_ascii() && c != '\0' => c,
            _ => '?',
        })
        .collect();
    if s.is_empty() {
        s.push_str("done");
    }
    // Every byte left is a TEXT-CHAR: 7-bit, not NUL, CR or LF.
    Text::unvalidated(s)
}

fn status(
    tag: &Tag<'static>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    t: impl Into<String>,
) -> Status<'static> {
    // A text built by `text` is always valid, so `new` cannot fail.
    Status::new(Some(tag.clone()), kind, code, text(t)).unwrap_or_else(|_| {
        Status::Bye(imap_types::response::Bye {
            code: None,
            text: text("internal error"),
        })
    })
}

/// `tag OK [code] text`.
pub(crate) fn ok(
    tag: &Tag<'static>,
    code: Option<Code<'static>>,
    t: impl Into<String>,
) -> Status<'static> {
    status(tag, StatusKind::Ok, code, t)
}

/// `tag NO [code] text`.
pub(crate) fn no(
    tag: &Tag<'static>,
    code: Option<Code<'static>>,
    t: impl Into<String>,
) -> Status<'static> {
    status(tag, StatusKind::No, code, t)
}

/// `tag BAD text`.
pub(crate) fn bad(tag: &Tag<'static>, t: impl Into<String>) -> Status<'static> {
    status(tag, StatusKind::Bad, None, t)
}

/// An untagged `* OK [code] text`.
pub(crate) fn untagged_ok(code: Option<Code<'static>>, t: impl Into<String>) -> Status<'static> {
    Status::new(None, StatusKind::Ok, code, text(t)).unwrap_or_else(|_| {
        Status::Bye(imap_types::response::Bye {
            code: None,
            text: text("internal error"),
        })
    })
}

/// `* BYE text`.
pub(crate) fn bye(t: impl Into<String>) -> Status<'static> {
    Status::Bye(imap_types::response::Bye {
        code: None,
        text: text(t),
    })
}

/// A response code `imap-types` does not name (RFC 5530: `AUTHENTICATIONFAILED`,
/// `NONEXISTENT`, `ALREADYEXISTS`, `CANNOT`, `UNAVAILABLE`, `PRIVACYREQUIRED`, `LIMIT`,
/// `INUSE`, `SERVERBUG`, `CLIENTBUG`).
pub(crate) fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}
