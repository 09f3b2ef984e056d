//! Reads of the embedded backend that the mail access protocols lean on: messages whole or
//! header only, many at once; folder indexes, their versions and the changes since a
//! modification sequence; and the virus store listing.

use super::{SqliteStore, folder_row};
use crate::types::*;
use crate::{Result, StoreError};
use sqlx::SqlitePool;

impl SqliteStore {
    /// The exact bytes of `wanted` (sorted, distinct), in one read, each checked against
    /// its address.
    pub(super) async fn wholes(
        &self,
        mailbox: &str,
        folder: &str,
        wanted: &[u32],
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(wanted).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows: Vec<(i64, String, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT m.uid, m.blob, b.bytes
             FROM messages m LEFT JOIN blobs b ON b.hash = m.blob
             WHERE m.mailbox = ? AND m.folder = ? AND m.uid IN (SELECT value FROM json_each(?))
             ORDER BY m.uid",
        )
        .bind(mailbox)
        .bind(folder)
        .bind(list)
        .fetch_all(&self.readers)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (uid, hash, bytes) in rows {
            let bytes = match bytes {
                Some(b) if crate::blobs::address(&b) == hash => b,
                Some(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "blob {hash} does not match its address"
                    )));
                }
                None => self.blobs.get(&hash).await?,
            };
            out.push((uid as u32, bytes));
        }
        Ok(out)
    }

    /// The header blocks of `wanted` (sorted, distinct): read from their column without
    /// touching the bodies, over the UID range when it is dense, else by list. Rows stored
    /// before the column existed are read whole and cut.
    pub(super) async fn headers(
        &self,
        mailbox: &str,
        folder: &str,
        wanted: &[u32],
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
            return Ok(Vec::new());
        };
        let dense = ((last - first) as usize) < wanted.len() * 4;
        let rows: Vec<(i64, Option<Vec<u8>>)> = if dense {
            sqlx::query_as(
                "SELECT uid, header FROM messages
                 WHERE mailbox = ? AND folder = ? AND uid BETWEEN ? AND ? ORDER BY uid",
            )
            .bind(mailbox)
            .bind(folder)
            .bind(i64::from(first))
            .bind(i64::from(last))
            .fetch_all(&self.readers)
            .await?
        } else {
            let list =
                serde_json::to_string(wanted).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query_as(
                "SELECT uid, header FROM messages WHERE mailbox = ? AND folder = ?
                 AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
            )
            .bind(mailbox)
            .bind(folder)
            .bind(list)
            .fetch_all(&self.readers)
            .await?
        };
        let mut out = Vec::with_capacity(wanted.len());
        let mut older = Vec::new();
        for (uid, header) in rows {
            let uid = uid as u32;
            if wanted.binary_search(&uid).is_err() {
                continue;
            }
            match header {
                Some(h) => out.push((uid, h)),
                None => older.push(uid),
            }
        }
        if !older.is_empty() {
            for (uid, bytes) in self.wholes(mailbox, folder, &older).await? {
                out.push((uid, crate::header_block(&bytes).to_vec()));
            }
            out.sort_unstable_by_key(|(uid, _)| *uid);
        }
        Ok(out)
    }
}

/// A folder's row (counters left at 0), inside a read transaction.
async fn folder_head(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    mailbox: &str,
    folder: &str,
) -> Result<Option<Folder>> {
    let row = sqlx::query(
        "SELECT name, uidvalidity, uidnext, highestmodseq, subscribed, 0 AS messages, 0 AS unseen
         FROM folders WHERE mailbox = ? AND name = ?",
    )
    .bind(mailbox)
    .bind(folder)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| folder_row(&r)).transpose()
}

/// The index entries of a folder whose modification sequence is above `since`, by UID
/// (every message has one of at least 1, so `since = 0` lists them all).
async fn entries_since(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    mailbox: &str,
    folder: &str,
    since: u64,
) -> Result<Vec<IndexEntry>> {
    let rows: Vec<(i64, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT uid, flags, modseq, size, date FROM messages
         WHERE mailbox = ? AND folder = ? AND modseq > ? ORDER BY uid",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(since as i64)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(uid, flags, modseq, size, date)| IndexEntry {
            uid: uid as u32,
            flags,
            modseq: modseq as u64,
            size: size as u64,
            date,
        })
        .collect())
}

pub(super) async fn folder_version(
    readers: &SqlitePool,
    mailbox: &str,
    folder: &str,
) -> Result<Option<FolderVersion>> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT uidvalidity, uidnext, highestmodseq FROM folders WHERE mailbox = ? AND name = ?",
    )
    .bind(mailbox)
    .bind(folder)
    .fetch_optional(readers)
    .await?;
    Ok(row.map(|(v, n, m)| FolderVersion {
        uidvalidity: v as u32,
        uidnext: n as u32,
        highest_modseq: m as u64,
    }))
}

pub(super) async fn folder_changes(
    readers: &SqlitePool,
    mailbox: &str,
    folder: &str,
    since: u64,
) -> Result<Option<(Folder, Vec<IndexEntry>, u32)>> {
    // One read transaction: the folder, the changes and the count describe one moment.
    let mut tx = readers.begin().await?;
    let Some(f) = folder_head(&mut tx, mailbox, folder).await? else {
        return Ok(None);
    };
    let changed = entries_since(&mut tx, mailbox, folder, since).await?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE mailbox = ? AND folder = ?")
            .bind(mailbox)
            .bind(folder)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Some((f, changed, count as u32)))
}

pub(super) async fn folder_index(
    readers: &SqlitePool,
    mailbox: &str,
    folder: &str,
) -> Result<Option<(Folder, Vec<IndexEntry>)>> {
    // One read transaction: the counters and the list describe the same moment.
    let mut tx = readers.begin().await?;
    let Some(mut f) = folder_head(&mut tx, mailbox, folder).await? else {
        return Ok(None);
    };
    let entries = entries_since(&mut tx, mailbox, folder, 0).await?;
    tx.commit().await?;
    f.messages = entries.len() as u32;
    f.unseen = entries.iter().filter(|e| !e.has_flag("\\Seen")).count() as u32;
    Ok(Some((f, entries)))
}

/// id, time, identificativo, sender, recipients (JSON), engine, threat, size.
type QuarantineRow = (
    i64,
    i64,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
);

pub(super) async fn quarantined(readers: &SqlitePool, since: i64) -> Result<Vec<Quarantined>> {
    let rows: Vec<QuarantineRow> = sqlx::query_as(
        "SELECT id, time, identificativo, sender, recipients, engine, threat, size
         FROM quarantine WHERE time >= ? ORDER BY id",
    )
    .bind(since)
    .fetch_all(readers)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, time, identificativo, sender, recipients, engine, threat, size)| Quarantined {
                id,
                time,
                identificativo,
                sender,
                recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                engine,
                threat,
                size: size as u64,
            },
        )
        .collect())
}
