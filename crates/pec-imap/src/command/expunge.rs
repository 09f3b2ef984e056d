//! EXPUNGE (RFC 3501 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1): removes the messages marked
//! `\Deleted` (within the UID set) and reports each removal. The store removes only those
//! still marked when it runs: another session may have cleared the flag meanwhile.

use super::store_error;
use crate::reply::{no, ok};
use crate::sequence::resolve;
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::response::{Code, Status};
use imap_types::sequence::SequenceSet;
use pec_store::Store;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    uids: Option<SequenceSet>,
) -> Status<'static> {
    let Some(sel) = &s.selected else {
        return no(tag, None, "select a folder first");
    };
    if sel.read_only {
        return no(
            tag,
            Some(Code::ReadOnly),
            "the folder was opened with EXAMINE",
        );
    }
    let within: Option<Vec<usize>> = uids.as_ref().map(|set| resolve(set, &sel.uids(), true));
    let gone: Vec<u32> = sel
        .entries
        .iter()
        .enumerate()
        .filter(|(i, _)| within.as_ref().is_none_or(|w| w.binary_search(i).is_ok()))
        .filter(|(_, e)| e.has_flag("\\Deleted"))
        .map(|(_, e)| e.uid)
        .collect();
    let (user, folder) = (s.address(), sel.name.clone());
    if !gone.is_empty()
        && let Err(e) = s.g.store.expunge_messages(&user, &folder, &gone).await
    {
        return store_error(tag, "EXPUNGE", e);
    }
    // The sync that follows every command reports each removed message.
    s.dirty = true;
    s.sync().await;
    ok(tag, None, "EXPUNGE completed")
}
