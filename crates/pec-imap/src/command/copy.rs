//! COPY (RFC 3501 §6.4.7) and MOVE (RFC 6851), plain and UID forms, with COPYUID
//! (RFC 4315 §3). A MOVE is one store transaction, then the moved messages are reported
//! expunged from the selected folder.

use super::{folder_name, store_error};
use crate::reply::{bad, no, ok};
use crate::sequence::{out_of_range, resolve};
use crate::session::Session;
use imap_types::core::{Tag, Vec1};
use imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_types::mailbox::Mailbox;
use imap_types::response::{Code, Status};
use imap_types::sequence::SequenceSet;
use pec_store::{FolderRefusal, Store, StoreError};
use std::num::NonZeroU32;

/// A UID set with runs of consecutive UIDs written as ranges (`1:500`, not 500 numbers);
/// the order is kept, since COPYUID pairs source and destination by position (RFC 4315 §3).
fn uid_set(uids: impl Iterator<Item = u32>) -> Option<UidSet> {
    let mut runs: Vec<(NonZeroU32, NonZeroU32)> = Vec::new();
    for uid in uids.filter_map(NonZeroU32::new) {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(uid) => *end = uid,
            _ => runs.push((uid, uid)),
        }
    }
    let v: Vec<UidElement> = runs
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                UidElement::Single(a)
            } else {
                UidElement::Range(a, b)
            }
        })
        .collect();
    Vec1::try_from(v).ok().map(UidSet)
}

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    set: SequenceSet,
    mailbox: &Mailbox<'static>,
    by_uid: bool,
    remove: bool,
) -> Status<'static> {
    let what = if remove { "MOVE" } else { "COPY" };
    let Some(sel) = &s.selected else {
        return no(tag, None, "select a folder first");
    };
    if remove && sel.read_only {
        return no(
            tag,
            Some(Code::ReadOnly),
            "the folder was opened with EXAMINE",
        );
    }
    let uids = sel.uids();
    if !by_uid && out_of_range(&set, uids.len()) {
        return bad(tag, "no message has that sequence number");
    }
    let chosen: Vec<u32> = resolve(&set, &uids, by_uid)
        .into_iter()
        .map(|i| uids[i])
        .collect();
    if chosen.is_empty() {
        return ok(tag, None, format!("{what} completed: no messages"));
    }
    let (user, from, to) = (s.address(), sel.name.clone(), folder_name(mailbox));
    let dest = match s.g.store.folder_index(&user, &to).await {
        Ok(Some((f, _))) => f,
        Ok(None) => {
            return no(
                tag,
                Some(Code::TryCreate),
                "no such folder; create it first",
            );
        }
        Err(e) => return store_error(tag, what, e),
    };
    match s
        .g
        .store
        .copy_messages(&user, &from, &chosen, &to, remove)
        .await
    {
        Ok(pairs) => {
            let code = match (
                NonZeroU32::new(dest.uidvalidity),
                uid_set(pairs.iter().map(|p| p.0)),
                uid_set(pairs.iter().map(|p| p.1)),
            ) {
                (Some(uid_validity), Some(source), Some(destination)) => Some(Code::CopyUid {
                    uid_validity,
                    source,
                    destination,
                }),
                _ => None,
            };
            if remove {
                // RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs, then OK.
                if let Some(c) = code {
                    s.untagged(crate::reply::untagged_ok(Some(c), "moved"));
                }
                s.dirty = true;
                s.sync().await;
                ok(tag, None, "MOVE completed")
            } else {
                if from == to {
                    s.dirty = true;
                }
                ok(tag, code, "COPY completed")
            }
        }
        Err(StoreError::Refused(FolderRefusal::Missing)) => no(
            tag,
            Some(Code::TryCreate),
            "no such folder; create it first",
        ),
        Err(e) => store_error(tag, what, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_written_as_runs_in_order() {
        let set = uid_set([1, 2, 3, 7, 9, 10].into_iter()).unwrap();
        let text: Vec<String> = set
            .0
            .as_ref()
            .iter()
            .map(|e| match e {
                UidElement::Single(a) => a.to_string(),
                UidElement::Range(a, b) => format!("{a}:{b}"),
            })
            .collect();
        assert_eq!(text, ["1:3", "7", "9:10"]);
        assert!(uid_set([0].into_iter()).is_none());
    }
}
