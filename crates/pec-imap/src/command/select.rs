//! SELECT and EXAMINE (RFC 3501 §6.3.1, §6.3.2), with the CONDSTORE parameter and the
//! HIGHESTMODSEQ response code (RFC 7162 §3.1.2, §3.1.8).

use super::{folder_name, store_error};
use crate::reply::{no, ok, untagged_ok};
use crate::selected::Selected;
use crate::session::Session;
use imap_types::command::SelectParameter;
use imap_types::core::Tag;
use imap_types::flag::{Flag, FlagPerm};
use imap_types::mailbox::Mailbox;
use imap_types::response::{Code, Data, Status};
use pec_store::{Store, StoreError};
use std::num::{NonZeroU32, NonZeroU64};

/// The system flags (RFC 3501 §2.3.2).
pub(crate) fn system_flags() -> Vec<Flag<'static>> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    parameters: Vec<SelectParameter>,
    read_only: bool,
) -> Status<'static> {
    // A failed SELECT leaves no folder selected (RFC 3501 §6.3.1). The end of the previous
    // selection is announced with [CLOSED] (RFC 7162 §3.2.11, RFC 9051 §7.1), so that
    // responses about it cannot be taken for the new one.
    if s.selected.take().is_some() {
        s.untagged(crate::reply::untagged_ok(
            Some(imap_types::response::Code::Closed),
            "previous folder closed",
        ));
    }
    s.dirty = false;
    if parameters
        .iter()
        .any(|p| matches!(p, SelectParameter::CondStore))
    {
        s.condstore = true;
    }
    if parameters
        .iter()
        .any(|p| matches!(p, SelectParameter::QResync { .. }))
    {
        return no(
            tag,
            Some(crate::reply::code("CANNOT")),
            "QRESYNC is not offered",
        );
    }
    let name = folder_name(mailbox);
    let user = s.address();
    let (folder, entries) = match s.cfg.index.load(&*s.g.store, &user, &name).await {
        Ok(Some(x)) => x,
        Ok(None) => {
            return store_error(
                tag,
                "SELECT",
                StoreError::Refused(pec_store::FolderRefusal::Missing),
            );
        }
        Err(e) => return store_error(tag, "SELECT", e),
    };
    s.data(Data::Flags(system_flags()));
    let mut perm: Vec<FlagPerm<'static>> = system_flags().into_iter().map(FlagPerm::Flag).collect();
    perm.push(FlagPerm::Asterisk);
    if read_only {
        perm.clear();
    }
    s.untagged(untagged_ok(
        Some(Code::PermanentFlags(perm)),
        "flags that can be changed",
    ));
    s.data(Data::Exists(entries.len() as u32));
    s.data(Data::Recent(0));
    let first_unseen = entries.iter().position(|e| !e.has_flag("\\Seen"));
    if let Some(seq) = first_unseen.and_then(|i| NonZeroU32::new(i as u32 + 1)) {
        s.untagged(untagged_ok(Some(Code::Unseen(seq)), "first unseen message"));
    }
    if let Some(v) = NonZeroU32::new(folder.uidvalidity) {
        s.untagged(untagged_ok(Some(Code::UidValidity(v)), "UIDs valid"));
    }
    let uidnext = entries
        .last()
        .map(|e| e.uid + 1)
        .unwrap_or(1)
        .max(folder.uidnext);
    if let Some(n) = NonZeroU32::new(uidnext) {
        s.untagged(untagged_ok(Some(Code::UidNext(n)), "predicted next UID"));
    }
    if let Some(m) = NonZeroU64::new(folder.highest_modseq) {
        s.untagged(untagged_ok(
            Some(Code::HighestModSeq(m)),
            "highest modification sequence",
        ));
    }
    s.selected = Some(Selected::new(&folder, entries, read_only));
    if read_only {
        ok(tag, Some(Code::ReadOnly), "EXAMINE completed")
    } else {
        ok(tag, Some(Code::ReadWrite), "SELECT completed")
    }
}
