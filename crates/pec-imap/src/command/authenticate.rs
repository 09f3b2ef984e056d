//! AUTHENTICATE PLAIN (RFC 3501 §6.2.2, RFC 4616), with or without an initial response
//! (SASL-IR, RFC 4959); `*` cancels. Only after TLS.

use crate::reply::{bad, code, no};
use crate::session::Session;
use imap_next::types::CommandAuthenticate;
use imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_types::core::Tag;
use imap_types::response::Status;
use pec_store::Store;

/// Splits a PLAIN response: `[authzid] NUL authcid NUL passwd`; an authzid other than the
/// authcid is refused (no proxy logins).
fn plain(raw: &[u8]) -> Option<(String, String)> {
    let mut it = raw.split(|&b| b == 0);
    let (authz, user, pass) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || (!authz.is_empty() && authz != user) {
        return None;
    }
    Some((
        String::from_utf8(user.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}

/// Starts an exchange: a status when it is already over, `None` when the client must send
/// its response after a continuation request.
pub(crate) async fn start<S: Store>(
    s: &mut Session<'_, S>,
    a: CommandAuthenticate,
) -> Option<Status<'static>> {
    let tag = a.tag;
    if s.user.is_some() {
        return Some(bad(&tag, "already logged in"));
    }
    if !s.cfg.tls {
        return Some(no(
            &tag,
            Some(code("PRIVACYREQUIRED")),
            "authentication requires TLS: use STARTTLS or port 993",
        ));
    }
    if a.mechanism != AuthMechanism::Plain {
        return Some(no(
            &tag,
            Some(code("CANNOT")),
            "only the PLAIN mechanism is offered",
        ));
    }
    match a.initial_response {
        Some(r) => Some(respond(s, &tag, r.declassify()).await),
        None => None,
    }
}

async fn respond<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    raw: &[u8],
) -> Status<'static> {
    match plain(raw) {
        Some((user, pass)) => super::login::check(s, tag, &user, &pass).await,
        None => bad(tag, "malformed PLAIN response (RFC 4616)"),
    }
}

/// Ends an exchange with the client's response.
pub(crate) async fn finish<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    data: AuthenticateData<'static>,
) -> Status<'static> {
    match data {
        AuthenticateData::Cancel => bad(tag, "authentication cancelled"),
        AuthenticateData::Continue(r) => respond(s, tag, r.declassify()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn plain_responses_are_split_and_proxying_refused() {
        assert_eq!(
            plain(b"\0u@a.test\0pw"),
            Some(("u@a.test".into(), "pw".into()))
        );
        assert_eq!(
            plain(b"u@a.test\0u@a.test\0pw"),
            Some(("u@a.test".into(), "pw".into()))
        );
        assert_eq!(plain(b"other\0u@a.test\0pw"), None);
        assert_eq!(plain(b"u@a.test\0pw"), None);
    }
}
