//! The commands, one file each (or one file for a command and its UID form), and the
//! dispatcher that checks the state a command needs (RFC 3501 §6: any state, not
//! authenticated, authenticated, selected).

pub(crate) mod append;
pub(crate) mod authenticate;
mod capability;
mod close;
mod copy;
mod create;
mod delete;
mod enable;
mod expunge;
pub(crate) mod fetch;
mod id;
mod list;
mod login;
mod namespace;
mod noop;
mod quota;
mod rename;
mod search;
mod select;
mod status;
mod store;
mod subscribe;

use crate::reply::{bad, code, no, ok};
use crate::session::{Next, Session};
use imap_types::command::{Command, CommandBody};
use imap_types::core::Tag;
use imap_types::mailbox::Mailbox;
use imap_types::response::Status;
use pec_store::{FolderRefusal, Store, StoreError};

/// The folder a mailbox name names: INBOX in any case is `INBOX` (RFC 3501 §5.1); other
/// names are kept as sent (modified UTF-7, RFC 3501 §5.1.3).
pub(crate) fn folder_name(m: &Mailbox<'_>) -> String {
    match m {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

/// The wire form of a folder name.
pub(crate) fn mailbox(name: &str) -> Mailbox<'static> {
    Mailbox::try_from(name.to_string()).unwrap_or(Mailbox::Inbox)
}

/// A store failure as a tagged NO with the RFC 5530 / RFC 9208 code that fits.
pub(crate) fn store_error(tag: &Tag<'static>, what: &str, e: StoreError) -> Status<'static> {
    match e {
        StoreError::Refused(FolderRefusal::Missing) => no(
            tag,
            Some(code("NONEXISTENT")),
            format!("{what}: no such folder"),
        ),
        StoreError::Refused(FolderRefusal::Exists) => no(
            tag,
            Some(code("ALREADYEXISTS")),
            format!("{what}: the folder exists already"),
        ),
        StoreError::Refused(FolderRefusal::Protected) => no(
            tag,
            Some(code("CANNOT")),
            format!("{what}: INBOX, Sent, Junk, Trash and Drafts cannot be deleted or renamed"),
        ),
        StoreError::Refused(FolderRefusal::OverQuota) => no(
            tag,
            Some(imap_types::response::Code::OverQuota),
            format!("{what}: the mailbox is full"),
        ),
        other => {
            tracing::error!("IMAP {what} failed: {other}");
            no(
                tag,
                Some(code("UNAVAILABLE")),
                format!("{what} failed for a temporary problem; try again later"),
            )
        }
    }
}

/// Runs one command in the state it needs; `None` for the status when the session still has
/// work to do for it (a FETCH job).
pub(crate) async fn dispatch<S: Store>(
    s: &mut Session<'_, S>,
    cmd: Command<'static>,
) -> (Option<Status<'static>>, Next) {
    let tag = cmd.tag;
    let authenticated = s.user.is_some();
    let selected = s.selected.is_some();
    use CommandBody as C;
    let status = match cmd.body {
        // Any state (RFC 3501 §6.1).
        C::Capability => capability::run(s, &tag),
        C::Noop | C::Check => noop::run(s, &tag).await,
        C::Logout => {
            s.untagged(crate::reply::bye("logging out"));
            return (Some(ok(&tag, None, "LOGOUT completed")), Next::Logout);
        }
        C::Id { parameters } => id::run(s, &tag, parameters),
        // Not authenticated (RFC 3501 §6.2).
        C::StartTLS => {
            if s.cfg.tls || !s.cfg.starttls {
                bad(&tag, "TLS is already active or not offered on this port")
            } else if authenticated {
                bad(&tag, "STARTTLS is only allowed before login")
            } else {
                return (
                    Some(ok(&tag, None, "begin TLS negotiation now")),
                    Next::StartTls,
                );
            }
        }
        C::Login { username, password } => {
            if authenticated {
                bad(&tag, "already logged in")
            } else {
                login::run(s, &tag, username, password).await
            }
        }
        C::Authenticate { .. } => bad(&tag, "AUTHENTICATE is handled by the session"),
        // A command of a later state is a protocol error (RFC 3501 §3): BAD, as most
        // servers answer it.
        _ if !authenticated => bad(
            &tag,
            "log in first (LOGIN or AUTHENTICATE PLAIN, after TLS)",
        ),
        // Authenticated (RFC 3501 §6.3).
        C::Enable { capabilities } => enable::run(s, &tag, capabilities),
        C::Select {
            mailbox,
            parameters,
        } => select::run(s, &tag, &mailbox, parameters, false).await,
        C::Examine {
            mailbox,
            parameters,
        } => select::run(s, &tag, &mailbox, parameters, true).await,
        C::Create { mailbox } => create::run(s, &tag, &mailbox).await,
        C::Delete { mailbox } => delete::run(s, &tag, &mailbox).await,
        C::Rename { from, to } => rename::run(s, &tag, &from, &to).await,
        C::Subscribe { mailbox } => subscribe::run(s, &tag, &mailbox, true).await,
        C::Unsubscribe { mailbox } => subscribe::run(s, &tag, &mailbox, false).await,
        C::List {
            reference,
            mailbox_wildcard,
        } => list::run(s, &tag, &reference, &mailbox_wildcard, false).await,
        C::Lsub {
            reference,
            mailbox_wildcard,
        } => list::run(s, &tag, &reference, &mailbox_wildcard, true).await,
        C::Status {
            mailbox,
            item_names,
        } => status::run(s, &tag, &mailbox, &item_names).await,
        C::Append {
            mailbox,
            flags,
            date,
            message,
        } => append::run(s, &tag, &mailbox, flags, date, message).await,
        C::Namespace => namespace::run(s, &tag),
        C::GetQuota { root } => quota::get_quota(s, &tag, &root).await,
        C::GetQuotaRoot { mailbox } => quota::get_quota_root(s, &tag, &mailbox).await,
        C::SetQuota { .. } => no(
            &tag,
            Some(code("NOPERM")),
            "quotas are set by the provider's plan",
        ),
        _ if !selected => bad(&tag, "select a folder first (SELECT or EXAMINE)"),
        // Selected (RFC 3501 §6.4).
        C::Close => close::run(s, &tag, true).await,
        C::Unselect => close::run(s, &tag, false).await,
        C::Expunge => expunge::run(s, &tag, None).await,
        C::ExpungeUid { sequence_set } => expunge::run(s, &tag, Some(sequence_set)).await,
        C::Search {
            charset,
            criteria,
            uid,
        } => search::run(s, &tag, charset, criteria, uid).await,
        C::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } => match fetch::prepare(s, &tag, sequence_set, macro_or_item_names, uid, modifiers) {
            Ok(job) => return (None, Next::Fetch(Box::new(job))),
            Err(status) => status,
        },
        C::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } => store::run(s, &tag, sequence_set, kind, response, flags, uid, modifiers).await,
        C::Copy {
            sequence_set,
            mailbox,
            uid,
        } => copy::run(s, &tag, sequence_set, &mailbox, uid, false).await,
        C::Move {
            sequence_set,
            mailbox,
            uid,
        } => copy::run(s, &tag, sequence_set, &mailbox, uid, true).await,
        _ => bad(&tag, "command not supported by this server"),
    };
    (Some(status), Next::Continue)
}
