//! RENAME (RFC 3501 §6.3.5): a user folder and its subfolders. Renaming INBOX (which
//! RFC 3501 defines as moving its messages) and the special-use folders is refused.

use super::create::valid_name;
use super::{folder_name, store_error};
use crate::reply::{bad, ok};
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::mailbox::Mailbox;
use imap_types::response::Status;
use pec_store::Store;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    from: &Mailbox<'static>,
    to: &Mailbox<'static>,
) -> Status<'static> {
    let (from, to) = (folder_name(from), folder_name(to));
    if !valid_name(&to) {
        return bad(
            tag,
            "invalid folder name: empty levels, '*', '%' and control characters are not allowed",
        );
    }
    match s.g.store.rename_folder(&s.address(), &from, &to).await {
        Ok(()) => ok(tag, None, "RENAME completed"),
        Err(e) => store_error(tag, "RENAME", e),
    }
}
