//! CREATE (RFC 3501 §6.3.3): a user folder and its missing parents.

use super::{folder_name, store_error};
use crate::reply::{bad, ok};
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::mailbox::Mailbox;
use imap_types::response::Status;
use pec_store::Store;

/// Whether a new folder name is acceptable: not empty, no empty level, no wildcard.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.split('/').any(str::is_empty)
        && !name.contains(['*', '%'])
        && !name.chars().any(char::is_control)
}

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
) -> Status<'static> {
    let name = folder_name(mailbox);
    let name = name.strip_suffix('/').unwrap_or(&name).to_string();
    if !valid_name(&name) {
        return bad(
            tag,
            "invalid folder name: empty levels, '*', '%' and control characters are not allowed",
        );
    }
    match s.g.store.create_folder(&s.address(), &name).await {
        Ok(()) => ok(tag, None, "CREATE completed"),
        Err(e) => store_error(tag, "CREATE", e),
    }
}
