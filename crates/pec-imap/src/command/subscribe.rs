//! SUBSCRIBE and UNSUBSCRIBE (RFC 3501 §6.3.6, §6.3.7).

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
    on: bool,
) -> Status<'static> {
    let name = folder_name(mailbox);
    let what = if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
    match s.g.store.subscribe_folder(&s.address(), &name, on).await {
        Ok(()) => ok(tag, None, format!("{what} completed")),
        Err(e) => store_error(tag, what, e),
    }
}
