//! FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8), with CHANGEDSINCE and MODSEQ (RFC 7162
//! §3.1.4). The command only resolves the set into a [`FetchJob`]; the session runs the job
//! in batches and writes each batch before reading the next messages, so a FETCH of a whole
//! folder of bodies never sits in memory at once.

use crate::fetch::{flag_list, items, needs, sets_seen};
use crate::reply::{bad, no};
use crate::sequence::{out_of_range, resolve};
use crate::session::Session;
use imap_types::IntoStatic;
use imap_types::command::FetchModifier;
use imap_types::core::{Tag, Vec1};
use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName};
use imap_types::response::{Data, Status};
use imap_types::sequence::SequenceSet;
use pec_store::{FlagOp, IndexEntry, Portion, Store};
use std::num::NonZeroU32;

/// Messages per batch.
pub(crate) const BATCH: usize = 256;
/// Bytes of whole messages per batch: a batch is read, turned into responses and written
/// before the next, so this bounds what one FETCH holds (256 messages of 30 MB would be
/// several GB). A message larger than this goes alone.
const BATCH_BYTES: u64 = 32 << 20;

/// The end of the batch starting at `at`: at most [`BATCH`] messages and, when whole
/// messages are read, at most [`BATCH_BYTES`] of them (one at least).
pub(crate) fn batch_end(job: &FetchJob, at: usize) -> usize {
    let end = (at + BATCH).min(job.messages.len());
    if !matches!(job.bytes, Some(Portion::Whole)) {
        return end;
    }
    let mut total = 0u64;
    for (i, (_, e)) in job.messages[at..end].iter().enumerate() {
        total += e.size;
        if total > BATCH_BYTES && i > 0 {
            return at + i;
        }
    }
    end
}

/// A resolved FETCH.
pub(crate) struct FetchJob {
    /// The command's tag.
    pub tag: Tag<'static>,
    /// (sequence number, entry) of each message, ascending.
    pub messages: Vec<(u32, IndexEntry)>,
    /// The items asked for (UID first for UID FETCH).
    pub names: Vec<MessageDataItemName<'static>>,
    /// How much of each message is read.
    pub bytes: Option<Portion>,
    /// `\Seen` is set on the messages that lack it (not for EXAMINE).
    pub mark_seen: bool,
}

/// Resolves the command, or answers it at once.
pub(crate) fn prepare<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    set: SequenceSet,
    names: MacroOrMessageDataItemNames<'static>,
    by_uid: bool,
    modifiers: Vec<FetchModifier>,
) -> Result<FetchJob, Status<'static>> {
    let Some(sel) = &s.selected else {
        return Err(no(tag, None, "select a folder first"));
    };
    let mut names: Vec<MessageDataItemName<'static>> = match names {
        MacroOrMessageDataItemNames::Macro(m) => {
            m.expand().into_iter().map(|n| n.into_static()).collect()
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
    };
    if by_uid && !names.iter().any(|n| matches!(n, MessageDataItemName::Uid)) {
        names.insert(0, MessageDataItemName::Uid);
    }
    let uids = sel.uids();
    if !by_uid && out_of_range(&set, uids.len()) {
        return Err(bad(tag, "no message has that sequence number"));
    }
    let mut changed_since = None;
    for m in modifiers {
        match m {
            FetchModifier::ChangedSince(v) => changed_since = Some(v.get()),
            FetchModifier::Vanished => {
                return Err(bad(tag, "VANISHED needs QRESYNC, which is not enabled"));
            }
        }
    }
    let asks_modseq = names
        .iter()
        .any(|n| matches!(n, MessageDataItemName::ModSeq));
    if changed_since.is_some() || asks_modseq {
        s.condstore = true;
    }
    // CHANGEDSINCE implies MODSEQ in every response (RFC 7162 §3.1.4.1).
    if changed_since.is_some() && !asks_modseq {
        names.push(MessageDataItemName::ModSeq);
    }
    let Some(sel) = &s.selected else {
        return Err(no(tag, None, "select a folder first"));
    };
    let messages: Vec<(u32, IndexEntry)> = resolve(&set, &uids, by_uid)
        .into_iter()
        .map(|i| (i as u32 + 1, sel.entries[i].clone()))
        .filter(|(_, e)| changed_since.is_none_or(|c| e.modseq > c))
        .collect();
    let mark_seen = sets_seen(&names) && !sel.read_only;
    if mark_seen
        && !names
            .iter()
            .any(|n| matches!(n, MessageDataItemName::Flags))
    {
        names.push(MessageDataItemName::Flags);
    }
    Ok(FetchJob {
        tag: tag.clone(),
        bytes: needs(&names),
        messages,
        names,
        mark_seen,
    })
}

/// The FETCH responses of `job.messages[range]`.
pub(crate) async fn batch<S: Store>(
    s: &mut Session<'_, S>,
    job: &mut FetchJob,
    range: std::ops::Range<usize>,
) -> Vec<Data<'static>> {
    let Some(folder) = s.selected.as_ref().map(|f| f.name.clone()) else {
        return Vec::new();
    };
    let user = s.address();
    // Messages whose \Seen this FETCH set: with CONDSTORE their FETCH carries MODSEQ, as
    // every flag change does (RFC 7162 §3.1); otherwise MODSEQ only when asked for.
    let mut seen_now: Vec<u32> = Vec::new();
    if job.mark_seen {
        let unseen: Vec<u32> = job.messages[range.clone()]
            .iter()
            .filter(|(_, e)| !e.has_flag("\\Seen"))
            .map(|(_, e)| e.uid)
            .collect();
        if !unseen.is_empty() {
            let seen = vec!["\\Seen".to_string()];
            match s
                .g
                .store
                .set_flags(&user, &folder, &unseen, FlagOp::Add, &seen, None)
                .await
            {
                Ok(out) => {
                    for (uid, flags, modseq) in out.changed {
                        seen_now.push(uid);
                        if let Some(sel) = s.selected.as_mut()
                            && let Some(i) = sel.position(uid)
                        {
                            let entries = std::sync::Arc::make_mut(&mut sel.entries);
                            entries[i].flags = flags.clone();
                            entries[i].modseq = modseq;
                        }
                        if let Some((_, e)) = job.messages[range.clone()]
                            .iter_mut()
                            .find(|(_, e)| e.uid == uid)
                        {
                            e.flags = flags;
                            e.modseq = modseq;
                        }
                    }
                }
                Err(e) => tracing::warn!("IMAP FETCH could not set \\Seen: {e}"),
            }
        }
    }
    // One read for the whole batch; messages expunged by another session since are left
    // out, and there is nothing to say about them.
    let mut read: std::collections::HashMap<u32, Vec<u8>> = match job.bytes {
        Some(portion) => {
            let uids: Vec<u32> = job.messages[range.clone()]
                .iter()
                .map(|(_, e)| e.uid)
                .collect();
            match s
                .g
                .store
                .messages_bytes(&user, &folder, &uids, portion)
                .await
            {
                Ok(v) => v.into_iter().collect(),
                Err(err) => {
                    tracing::error!("IMAP FETCH of {user} {folder} failed: {err}");
                    return Vec::new();
                }
            }
        }
        None => std::collections::HashMap::new(),
    };
    let mut out = Vec::with_capacity(range.len());
    for (seq, e) in &job.messages[range] {
        let bytes = if job.bytes.is_some() {
            match read.remove(&e.uid) {
                Some(b) => Some(b),
                None => continue,
            }
        } else {
            None
        };
        let list = items(
            &job.names,
            e,
            bytes.as_deref(),
            s.condstore && seen_now.contains(&e.uid),
        );
        let Ok(items) = Vec1::try_from(list) else {
            continue;
        };
        if let Some(seq) = NonZeroU32::new(*seq) {
            out.push(Data::Fetch { seq, items });
        }
    }
    out
}

/// FETCH data for a flag change made by this session (STORE without .SILENT).
pub(crate) fn flags_response(
    seq: u32,
    e: &IndexEntry,
    with_uid: bool,
    condstore: bool,
) -> Option<Data<'static>> {
    let mut items = Vec::new();
    if with_uid {
        items.push(MessageDataItem::Uid(NonZeroU32::new(e.uid)?));
    }
    items.push(MessageDataItem::Flags(flag_list(&e.flags)));
    if condstore {
        items.push(MessageDataItem::ModSeq(std::num::NonZeroU64::new(
            e.modseq,
        )?));
    }
    Some(Data::Fetch {
        seq: NonZeroU32::new(seq)?,
        items: Vec1::try_from(items).ok()?,
    })
}

/// FETCH data carrying only the new MODSEQ (and UID for UID commands) of a message whose
/// flags a silent STORE changed.
pub(crate) fn modseq_response(seq: u32, e: &IndexEntry, with_uid: bool) -> Option<Data<'static>> {
    let mut items = Vec::new();
    if with_uid {
        items.push(MessageDataItem::Uid(NonZeroU32::new(e.uid)?));
    }
    items.push(MessageDataItem::ModSeq(std::num::NonZeroU64::new(
        e.modseq,
    )?));
    Some(Data::Fetch {
        seq: NonZeroU32::new(seq)?,
        items: Vec1::try_from(items).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_message_batches_are_bounded_by_bytes() {
        let entry = |size: u64| IndexEntry {
            uid: 1,
            flags: String::new(),
            modseq: 1,
            size,
            date: 0,
        };
        let mut job = FetchJob {
            tag: Tag::try_from("a").unwrap(),
            messages: (1..=10).map(|n| (n, entry(10 << 20))).collect(),
            names: Vec::new(),
            bytes: Some(Portion::Whole),
            mark_seen: false,
        };
        // Three messages of 10 MiB fit in 32 MiB, a fourth does not.
        assert_eq!(batch_end(&job, 0), 3);
        assert_eq!(batch_end(&job, 9), 10);
        // One larger than a batch goes alone.
        job.messages[0].1.size = 100 << 20;
        assert_eq!(batch_end(&job, 0), 1);
        // Flags alone: by count.
        job.bytes = None;
        assert_eq!(batch_end(&job, 0), 10);
    }
}
