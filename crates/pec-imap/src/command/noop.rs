//! NOOP (RFC 3501 §6.1.2) and CHECK (§6.4.1): nothing to do but report changes, which the
//! session does after every command when the selected folder changed.

use crate::reply::ok;
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::response::Status;
use pec_store::Store;

pub(crate) async fn run<S: Store>(s: &mut Session<'_, S>, tag: &Tag<'static>) -> Status<'static> {
    if s.selected.is_some() {
        s.sync().await;
    }
    ok(tag, None, "NOOP completed")
}
