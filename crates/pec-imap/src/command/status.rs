//! STATUS (RFC 3501 §6.3.10), with HIGHESTMODSEQ (RFC 7162 §3.1.6).

use super::{folder_name, store_error};
use crate::reply::ok;
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::mailbox::Mailbox;
use imap_types::response::{Data, Status};
use imap_types::status::{StatusDataItem, StatusDataItemName};
use pec_store::{FolderRefusal, Store, StoreError};
use std::num::NonZeroU32;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    names: &[StatusDataItemName],
) -> Status<'static> {
    let name = folder_name(mailbox);
    let (f, entries) = match s.cfg.index.load(&*s.g.store, &s.address(), &name).await {
        Ok(Some(x)) => x,
        Ok(None) => return store_error(tag, "STATUS", StoreError::Refused(FolderRefusal::Missing)),
        Err(e) => return store_error(tag, "STATUS", e),
    };
    let deleted = || entries.iter().filter(|e| e.has_flag("\\Deleted"));
    let mut items = Vec::new();
    for n in names {
        let item = match n {
            StatusDataItemName::Messages => StatusDataItem::Messages(f.messages),
            StatusDataItemName::Recent => StatusDataItem::Recent(0),
            StatusDataItemName::UidNext => StatusDataItem::UidNext(
                NonZeroU32::new(
                    entries
                        .last()
                        .map(|e| e.uid + 1)
                        .unwrap_or(1)
                        .max(f.uidnext),
                )
                .unwrap_or(NonZeroU32::MIN),
            ),
            StatusDataItemName::UidValidity => StatusDataItem::UidValidity(
                NonZeroU32::new(f.uidvalidity).unwrap_or(NonZeroU32::MIN),
            ),
            StatusDataItemName::Unseen => StatusDataItem::Unseen(f.unseen),
            StatusDataItemName::Deleted => StatusDataItem::Deleted(deleted().count() as u32),
            StatusDataItemName::DeletedStorage => {
                StatusDataItem::DeletedStorage(deleted().map(|e| e.size).sum())
            }
            StatusDataItemName::HighestModSeq => {
                s.condstore = true;
                StatusDataItem::HighestModSeq(f.highest_modseq)
            }
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        items.push(item);
    }
    s.data(Data::Status {
        mailbox: mailbox.clone(),
        items: items.into(),
    });
    ok(tag, None, "STATUS completed")
}
