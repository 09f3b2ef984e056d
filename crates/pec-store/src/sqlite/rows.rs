//! How rows of the embedded store's tables become the store's types.

use crate::types::*;
use rusqlite::Row;

pub(super) fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A row of `SELECT seq, time, identificativo, json FROM events`.
pub(super) fn logged_event(r: &Row<'_>) -> rusqlite::Result<LoggedEvent> {
    Ok(LoggedEvent {
        seq: r.get(0)?,
        time: r.get(1)?,
        identificativo: r.get(2)?,
        json: r.get(3)?,
    })
}

pub(super) fn mailbox_row(r: &Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        address: r.get("address")?,
        password_hash: r.get("password_hash")?,
        quota_bytes: r.get::<_, i64>("quota_bytes")? as u64,
        used_bytes: r.get::<_, i64>("used_bytes")? as u64,
        messages: r.get::<_, i64>("message_count")? as u64,
        ordinary_policy: r.get("ordinary_policy")?,
        service: r.get::<_, i64>("service")? != 0,
        disabled: r.get::<_, i64>("disabled")? != 0,
        spam_policy: r.get("spam_policy")?,
        contact: r.get("contact")?,
        locked: r.get::<_, i64>("locked")? != 0,
        totp_secret: r.get("totp_secret")?,
    })
}

/// A message row (`folder`, `uid`, the folder's `uidvalidity`, `date`, `subject`, `kind`,
/// `identificativo`, `size`, `blob`) as [`MessageMeta`].
pub(super) fn meta_row(r: &Row<'_>) -> rusqlite::Result<MessageMeta> {
    Ok(MessageMeta {
        folder: r.get("folder")?,
        uid: r.get::<_, i64>("uid")? as u32,
        uidvalidity: r.get::<_, i64>("uidvalidity")? as u32,
        date: rfc3339(r.get("date")?),
        subject: r.get("subject")?,
        kind: r.get("kind")?,
        identificativo: r.get("identificativo")?,
        size: r.get::<_, i64>("size")? as u64,
        blob: r.get("blob")?,
    })
}

pub(super) fn folder_row(r: &Row<'_>) -> rusqlite::Result<Folder> {
    Ok(Folder {
        name: r.get("name")?,
        uidvalidity: r.get::<_, i64>("uidvalidity")? as u32,
        uidnext: r.get::<_, i64>("uidnext")? as u32,
        highest_modseq: r.get::<_, i64>("highestmodseq")? as u64,
        messages: r.get::<_, i64>("messages")? as u32,
        unseen: r.get::<_, i64>("unseen")? as u32,
        subscribed: r.get::<_, i64>("subscribed")? != 0,
    })
}
