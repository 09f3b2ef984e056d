//! SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8), with MODSEQ criteria and the
//! `(MODSEQ n)` result (RFC 7162 §3.1.5). Charsets other than US-ASCII and UTF-8 are
//! refused with BADCHARSET.

use crate::reply::{no, ok};
use crate::search::{Candidate, matches, needs_bytes, uses_modseq};
use crate::session::Session;
use imap_types::core::{Charset, Tag, Vec1};
use imap_types::response::{Code, Data, Status};
use imap_types::search::SearchKey;
use pec_message::mime::Entity;
use pec_store::Store;
use std::num::{NonZeroU32, NonZeroU64};

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
    let with_bytes = needs_bytes(&key);
    let mut found = Vec::new();
    let mut highest = 0;
    for (i, e) in sel.entries.iter().enumerate() {
        let bytes = if with_bytes {
            match s.g.store.message_bytes(&user, &folder, e.uid).await {
                Ok(Some(b)) => Some(b),
                _ => continue,
            }
        } else {
            None
        };
        let entity = bytes.as_deref().map(Entity::parse);
        let c = Candidate {
            index: i,
            entry: e,
            message: entity.as_ref(),
        };
        if matches(&key, &c, &uids) {
            highest = highest.max(e.modseq);
            found.extend(NonZeroU32::new(if by_uid { e.uid } else { i as u32 + 1 }));
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
