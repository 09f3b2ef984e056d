//! SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8), with MODSEQ criteria and the
//! `(MODSEQ n)` result (RFC 7162 §3.1.5). Charsets other than US-ASCII and UTF-8 are
//! refused with BADCHARSET.

use super::store_error;
use crate::reply::{no, ok};
use crate::search::{Candidate, has_words, matches, needs, required_words, uses_modseq};
use crate::session::Session;
use imap_types::core::{Charset, Tag, Vec1};
use imap_types::response::{Code, Data, Status};
use imap_types::search::SearchKey;
use pec_message::mime::Entity;
use pec_store::{Portion, Store};
use std::num::{NonZeroU32, NonZeroU64};

/// Messages read per store call: header blocks are small, whole messages may not be.
const HEADER_BATCH: usize = 2048;
const WHOLE_BATCH: usize = 256;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    charset: Option<Charset<'static>>,
    criteria: Vec1<SearchKey<'static>>,
    by_uid: bool,
) -> Status<'static> {
    if let Some(c) = &charset {
        let c = c.as_ref().to_ascii_uppercase();
        if c != "US-ASCII" && c != "UTF-8" {
            let allowed = ["US-ASCII", "UTF-8"]
                .iter()
                .filter_map(|c| Charset::try_from(*c).ok())
                .collect();
            return no(
                tag,
                Some(Code::BadCharset { allowed }),
                "only US-ASCII and UTF-8 searches",
            );
        }
    }
    let key = SearchKey::And(criteria);
    let modseq = uses_modseq(&key);
    if modseq {
        s.condstore = true;
    }
    let Some(sel) = &s.selected else {
        return no(tag, None, "select a folder first");
    };
    let (user, folder) = (s.address(), sel.name.clone());
    let uids = sel.uids();
    let portion = needs(&key);
    let words = required_words(&key);
    let mut found = Vec::new();
    let mut highest = 0;
    // Messages are read in batches, one store read each, and only as much as the keys need.
    let batch = match portion {
        Some(Portion::Whole) => WHOLE_BATCH,
        _ => HEADER_BATCH,
    };
    let sets = crate::search::Sets::of(&key, &uids);
    for (n, chunk) in sel.entries.chunks(batch).enumerate() {
        // Both the index and what the store returns ascend by UID.
        let mut read = match portion {
            Some(p) => {
                let want: Vec<u32> = chunk.iter().map(|e| e.uid).collect();
                match s.g.store.messages_bytes(&user, &folder, &want, p).await {
                    Ok(v) => v.into_iter().peekable(),
                    Err(e) => return store_error(tag, "SEARCH", e),
                }
            }
            None => Vec::new().into_iter().peekable(),
        };
        for (j, e) in chunk.iter().enumerate() {
            let i = n * batch + j;
            let bytes = match portion {
                Some(_) => {
                    while read.next_if(|(uid, _)| *uid < e.uid).is_some() {}
                    match read.next_if(|(uid, _)| *uid == e.uid) {
                        Some((_, b)) => Some(b),
                        // Expunged by another session since.
                        None => continue,
                    }
                }
                None => None,
            };
            if bytes.as_deref().is_some_and(|b| !has_words(b, &words)) {
                continue;
            }
            let entity = bytes.as_deref().map(Entity::parse);
            let c = Candidate {
                index: i,
                entry: e,
                message: entity.as_ref(),
            };
            if matches(&key, &c, &sets) {
                highest = highest.max(e.modseq);
                found.extend(NonZeroU32::new(if by_uid { e.uid } else { i as u32 + 1 }));
            }
        }
    }
    let m = if modseq {
        NonZeroU64::new(highest)
    } else {
        None
    };
    s.data(Data::Search(found, m));
    ok(tag, None, "SEARCH completed")
}
