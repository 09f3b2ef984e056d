//! The selected folder as this session last told the client about it (RFC 3501 §5.2):
//! the sequence of UIDs with their flags and modification sequences. Bringing it up to date
//! with the store yields the untagged EXPUNGE, EXISTS and FETCH responses the client needs.

use crate::fetch::flag_list;
use imap_types::fetch::MessageDataItem;
use imap_types::response::Data;
use pec_store::{Folder, IndexEntry};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

/// One selected folder.
#[derive(Debug)]
pub(crate) struct Selected {
    /// Folder name.
    pub name: String,
    /// EXAMINE: nothing may change.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// The messages, by ascending UID: position + 1 is the sequence number. Shared with
    /// other sessions until this one changes it ([`Arc::make_mut`]).
    pub entries: Arc<Vec<IndexEntry>>,
    /// HIGHESTMODSEQ last reported.
    pub highest_modseq: u64,
}

impl Selected {
    /// A fresh view of `folder`.
    pub fn new(folder: &Folder, entries: Arc<Vec<IndexEntry>>, read_only: bool) -> Selected {
        Selected {
            name: folder.name.clone(),
            read_only,
            uidvalidity: folder.uidvalidity,
            entries,
            highest_modseq: folder.highest_modseq,
        }
    }

    /// UIDs in order.
    pub fn uids(&self) -> Vec<u32> {
        self.entries.iter().map(|e| e.uid).collect()
    }

    /// The index of a UID.
    pub fn position(&self, uid: u32) -> Option<usize> {
        self.entries.binary_search_by_key(&uid, |e| e.uid).ok()
    }

    /// Moves the view to `fresh` and returns the responses that tell the client (RFC 3501
    /// §7.4.1: each EXPUNGE renumbers what follows, so they are sent from the highest
    /// sequence number down; then EXISTS; then the FETCH of changed flags, with MODSEQ when
    /// CONDSTORE is on).
    pub fn sync(
        &mut self,
        folder: &Folder,
        fresh: Arc<Vec<IndexEntry>>,
        condstore: bool,
    ) -> Vec<Data<'static>> {
        let mut out = Vec::new();
        let mut keep = Vec::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate().rev() {
            if fresh.binary_search_by_key(&e.uid, |f| f.uid).is_err() {
                if let Some(seq) = NonZeroU32::new(i as u32 + 1) {
                    out.push(Data::Expunge(seq));
                }
            } else {
                keep.push(e.clone());
            }
        }
        keep.reverse();
        let before = keep.len();
        let last = keep.last().map(|e| e.uid).unwrap_or(0);
        let grew = fresh.iter().any(|f| f.uid > last);
        let mut changed = Vec::new();
        for (i, f) in fresh.iter().enumerate() {
            if f.uid > last {
                break;
            }
            if let Some(old) = keep.get(i)
                && old.uid == f.uid
                && old.flags != f.flags
            {
                changed.push(i);
            }
        }
        if grew || fresh.len() != before {
            out.push(Data::Exists(fresh.len() as u32));
        }
        for i in changed {
            let e = &fresh[i];
            let mut items = vec![
                MessageDataItem::Uid(NonZeroU32::new(e.uid).unwrap_or(NonZeroU32::MIN)),
                MessageDataItem::Flags(flag_list(&e.flags)),
            ];
            if condstore {
                items.push(MessageDataItem::ModSeq(
                    NonZeroU64::new(e.modseq).unwrap_or(NonZeroU64::MIN),
                ));
            }
            if let (Some(seq), Ok(items)) = (NonZeroU32::new(i as u32 + 1), items.try_into()) {
                out.push(Data::Fetch { seq, items });
            }
        }
        self.entries = fresh;
        self.highest_modseq = folder.highest_modseq;
        out
    }
}
