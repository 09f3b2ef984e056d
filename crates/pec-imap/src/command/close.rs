//! CLOSE (RFC 3501 §6.4.2: expunge silently, then deselect) and UNSELECT (RFC 3691:
//! deselect without expunging).

use crate::reply::ok;
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::response::Status;
use pec_store::Store;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    expunge: bool,
) -> Status<'static> {
    if let Some(sel) = s.selected.take()
        && expunge
        && !sel.read_only
    {
        let gone: Vec<u32> = sel
            .entries
            .iter()
            .filter(|e| e.has_flag("\\Deleted"))
            .map(|e| e.uid)
            .collect();
        if !gone.is_empty()
            && let Err(e) =
                s.g.store
                    .expunge_messages(&s.address(), &sel.name, &gone)
                    .await
        {
            return super::store_error(tag, "CLOSE", e);
        }
    }
    s.dirty = false;
    ok(
        tag,
        None,
        if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        },
    )
}
