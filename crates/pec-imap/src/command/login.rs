//! LOGIN (RFC 3501 §6.2.3), only after TLS (LOGINDISABLED before), through the gestore's
//! failed-login throttle.

use crate::reply::{code, no, ok};
use crate::session::{Session, capabilities};
use imap_types::core::{AString, Tag};
use imap_types::response::{Code, Status};
use imap_types::secret::Secret;
use pec_gestore::Login;
use pec_store::Store;

/// Checks a user name and password and moves the session to the authenticated state.
pub(crate) async fn check<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    user: &str,
    password: &str,
) -> Status<'static> {
    if !s.cfg.tls {
        return no(
            tag,
            Some(code("PRIVACYREQUIRED")),
            "authentication requires TLS: use STARTTLS or port 993",
        );
    }
    match s.g.login(s.cfg.peer, user, password).await {
        Ok(Login::Accepted(account)) => {
            s.user = Some(account.address.to_ascii_lowercase());
            let caps = capabilities(s.cfg, true);
            ok(
                tag,
                Some(Code::Capability(caps)),
                format!("{} logged in", account.address),
            )
        }
        Ok(Login::Refused) => no(
            tag,
            Some(code("AUTHENTICATIONFAILED")),
            "invalid user name or password",
        ),
        Ok(Login::Throttled(secs)) => no(
            tag,
            Some(code("UNAVAILABLE")),
            format!(
                "too many failed logins for this address or account; try again in {secs} seconds"
            ),
        ),
        Err(e) => {
            tracing::error!("IMAP login failed: {e}");
            no(
                tag,
                Some(code("UNAVAILABLE")),
                "login is unavailable now; try again later",
            )
        }
    }
}

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    username: AString<'static>,
    password: Secret<AString<'static>>,
) -> Status<'static> {
    let user = String::from_utf8_lossy(username.as_ref()).into_owned();
    let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
    check(s, tag, &user, &pass).await
}
