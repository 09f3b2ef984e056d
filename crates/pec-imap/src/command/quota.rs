//! GETQUOTA and GETQUOTAROOT (RFC 9208): one quota root per user, "", whose STORAGE
//! resource is the plan's mailbox quota in units of 1024 octets.

use super::store_error;
use crate::reply::{code, no, ok};
use crate::session::Session;
use imap_types::core::{AString, Tag, Vec1};
use imap_types::extensions::quota::{QuotaGet, Resource};
use imap_types::mailbox::Mailbox;
use imap_types::response::{Data, Status};
use pec_store::Store;

fn root() -> AString<'static> {
    AString::try_from("")
        .unwrap_or_else(|_| AString::try_from("ROOT").unwrap_or_else(|_| unreachable!()))
}

async fn quota_data<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
) -> Result<(), Status<'static>> {
    let m = match s.g.store.mailbox(&s.address()).await {
        Ok(Some(m)) => m,
        Ok(None) => return Err(no(tag, Some(code("NONEXISTENT")), "the mailbox is gone")),
        Err(e) => return Err(store_error(tag, "GETQUOTA", e)),
    };
    if m.quota_bytes > 0 {
        let q = QuotaGet::new(
            Resource::Storage,
            m.used_bytes.div_ceil(1024),
            m.quota_bytes / 1024,
        );
        s.data(Data::Quota {
            root: root(),
            quotas: Vec1::from(q),
        });
    }
    Ok(())
}

pub(crate) async fn get_quota<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    r: &AString<'static>,
) -> Status<'static> {
    if !r.as_ref().is_empty() {
        return no(
            tag,
            Some(code("NONEXISTENT")),
            "the only quota root is \"\"",
        );
    }
    match quota_data(s, tag).await {
        Ok(()) => ok(tag, None, "GETQUOTA completed"),
        Err(st) => st,
    }
}

pub(crate) async fn get_quota_root<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
) -> Status<'static> {
    s.data(Data::QuotaRoot {
        mailbox: mailbox.clone(),
        roots: vec![root()],
    });
    match quota_data(s, tag).await {
        Ok(()) => ok(tag, None, "GETQUOTAROOT completed"),
        Err(st) => st,
    }
}
