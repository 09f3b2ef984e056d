//! STORE and UID STORE (RFC 3501 §6.4.6, §6.4.8) with UNCHANGEDSINCE and the MODIFIED
//! response code (RFC 7162 §3.1.3). `\Recent` cannot be set (RFC 3501 §2.3.2).

use super::fetch::{flags_response, modseq_response};
use super::store_error;
use crate::fetch::flag_name;
use crate::reply::{bad, no, ok};
use crate::sequence::{out_of_range, resolve};
use crate::session::Session;
use imap_types::command::StoreModifier;
use imap_types::core::Tag;
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::response::{Code, Status};
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use pec_store::{FlagOp, Store};
use std::num::NonZeroU32;
use std::sync::Arc;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    set: SequenceSet,
    kind: StoreType,
    response: StoreResponse,
    flags: Vec<Flag<'static>>,
    by_uid: bool,
    modifiers: Vec<StoreModifier>,
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
    let uids = sel.uids();
    if !by_uid && out_of_range(&set, uids.len()) {
        return bad(tag, "no message has that sequence number");
    }
    let unchanged_since = modifiers
        .iter()
        .map(|m| match m {
            StoreModifier::UnchangedSince(v) => *v,
        })
        .next();
    if unchanged_since.is_some() {
        s.condstore = true;
    }
    let names: Vec<String> = flags
        .iter()
        .map(flag_name)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    let op = match kind {
        StoreType::Add => FlagOp::Add,
        StoreType::Remove => FlagOp::Remove,
        StoreType::Replace => FlagOp::Replace,
    };
    let chosen: Vec<u32> = resolve(&set, &uids, by_uid)
        .into_iter()
        .map(|i| uids[i])
        .collect();
    let (user, folder) = (s.address(), sel.name.clone());
    let out = match s
        .g
        .store
        .set_flags(&user, &folder, &chosen, op, &names, unchanged_since)
        .await
    {
        Ok(out) => out,
        Err(e) => return store_error(tag, "STORE", e),
    };
    let condstore = s.condstore;
    let mut responses = Vec::new();
    if let Some(sel) = s.selected.as_mut() {
        for (uid, flags, modseq) in &out.changed {
            if let Some(i) = sel.position(*uid) {
                let entries = Arc::make_mut(&mut sel.entries);
                entries[i].flags = flags.clone();
                entries[i].modseq = *modseq;
                // RFC 7162 §3.1.3: with UNCHANGEDSINCE, changes are reported even when silent.
                if response == StoreResponse::Answer || unchanged_since.is_some() {
                    responses.extend(flags_response(
                        i as u32 + 1,
                        &sel.entries[i],
                        by_uid,
                        condstore,
                    ));
                } else if condstore {
                    // .SILENT still reports the new mod-sequence of each changed message
                    // under CONDSTORE (RFC 7162 §3.2).
                    responses.extend(modseq_response(i as u32 + 1, &sel.entries[i], by_uid));
                }
            }
        }
        if response == StoreResponse::Answer {
            // Messages whose flags were already as asked are reported too (RFC 3501 §6.4.6).
            for uid in &chosen {
                if out.changed.iter().any(|c| c.0 == *uid) || out.modified.contains(uid) {
                    continue;
                }
                if let Some(i) = sel.position(*uid) {
                    responses.extend(flags_response(
                        i as u32 + 1,
                        &sel.entries[i],
                        by_uid,
                        condstore,
                    ));
                }
            }
        }
    }
    for d in responses {
        s.data(d);
    }
    if !out.modified.is_empty() {
        // MODIFIED lists UIDs for UID STORE and sequence numbers for STORE.
        let list: Vec<Sequence> = out
            .modified
            .iter()
            .filter_map(|uid| {
                let n = if by_uid {
                    *uid
                } else {
                    s.selected.as_ref()?.position(*uid)? as u32 + 1
                };
                NonZeroU32::new(n).map(|n| Sequence::Single(SeqOrUid::Value(n)))
            })
            .collect();
        if let Ok(v) = imap_types::core::Vec1::try_from(list) {
            return ok(
                tag,
                Some(Code::Modified(SequenceSet(v))),
                "conditional STORE failed for some messages",
            );
        }
    }
    ok(tag, None, "STORE completed")
}
