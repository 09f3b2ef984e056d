//! DELETE (RFC 3501 §6.3.4): a user folder without subfolders, and its messages.

use super::{folder_name, store_error};
use crate::reply::ok;
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::mailbox::Mailbox;
use imap_types::response::Status;
use pec_store::Store;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
) -> Status<'static> {
    let name = folder_name(mailbox);
    match s.g.store.delete_folder(&s.address(), &name).await {
        Ok(()) => {
            if s.selected.as_ref().is_some_and(|f| f.name == name) {
                s.selected = None;
            }
            ok(tag, None, "DELETE completed")
        }
        Err(e) => store_error(tag, "DELETE", e),
    }
}
