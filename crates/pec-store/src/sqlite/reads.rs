//! Reads of the embedded backend that the mail access protocols lean on: messages whole or
//! header only, many at once; folder indexes, their versions and the changes since a
//! modification sequence; and the virus store listing.

use super::SqliteStore;
use super::db::{Conn, all};
use super::rows::folder_row;
use crate::types::*;
use crate::{Result, StoreError};
use rusqlite::{OptionalExtension as _, params};

/// uid, blob address, the bytes when they live in the database (`bodies` or `blobs`).
type WholeRow = (i64, String, Option<Vec<u8>>);

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
        let (mailbox_, folder_) = (mailbox.to_string(), folder.to_string());
        let read = move |c: &Conn| -> Result<Vec<WholeRow>> {
            all(
                c,
                "SELECT m.uid, m.blob, coalesce(d.bytes, b.bytes)
                 FROM messages m LEFT JOIN bodies d ON d.id = m.body
                 LEFT JOIN blobs b ON m.body IS NULL AND b.hash = m.blob
                 WHERE m.mailbox = ? AND m.folder = ? AND m.uid IN (SELECT value FROM json_each(?))
                 ORDER BY m.uid",
                params![mailbox_, folder_, list],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        };
        let rows = match wanted.len() {
            1 => self.readers.read(read)?,
            _ => self.readers.read_long(read).await?,
        };
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
        let list = serde_json::to_string(wanted).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (mailbox_, folder_) = (mailbox.to_string(), folder.to_string());
        let read = move |c: &Conn| -> Result<Vec<(i64, Option<Vec<u8>>)>> {
            let pair = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
            if dense {
                all(
                    c,
                    "SELECT uid, header FROM messages
                     WHERE mailbox = ? AND folder = ? AND uid BETWEEN ? AND ? ORDER BY uid",
                    params![mailbox_, folder_, i64::from(first), i64::from(last)],
                    pair,
                )
            } else {
                all(
                    c,
                    "SELECT uid, header FROM messages WHERE mailbox = ? AND folder = ?
                     AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
                    params![mailbox_, folder_, list],
                    pair,
                )
            }
        };
        let rows = match wanted.len() {
            1 => self.readers.read(read)?,
            _ => self.readers.read_long(read).await?,
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

/// A folder's row (counters left at 0).
fn folder_head(c: &Conn, mailbox: &str, folder: &str) -> Result<Option<Folder>> {
    Ok(c.prepare_cached(
        "SELECT name, uidvalidity, uidnext, highestmodseq, subscribed, 0 AS messages, 0 AS unseen
         FROM folders WHERE mailbox = ? AND name = ?",
    )?
    .query_row(params![mailbox, folder], folder_row)
    .optional()?)
}

/// The index entries of a folder whose modification sequence is above `since`, by UID
/// (every message has one of at least 1, so `since = 0` lists them all).
fn entries_since(c: &Conn, mailbox: &str, folder: &str, since: u64) -> Result<Vec<IndexEntry>> {
    all(
        c,
        "SELECT uid, flags, modseq, size, date FROM messages
         WHERE mailbox = ? AND folder = ? AND modseq > ? ORDER BY uid",
        params![mailbox, folder, since as i64],
        |r| {
            Ok(IndexEntry {
                uid: r.get::<_, i64>(0)? as u32,
                flags: r.get(1)?,
                modseq: r.get::<_, i64>(2)? as u64,
                size: r.get::<_, i64>(3)? as u64,
                date: r.get(4)?,
            })
        },
    )
}

pub(super) fn folder_version(
    c: &Conn,
    mailbox: &str,
    folder: &str,
) -> Result<Option<FolderVersion>> {
    Ok(c.prepare_cached(
        "SELECT uidvalidity, uidnext, highestmodseq FROM folders WHERE mailbox = ? AND name = ?",
    )?
    .query_row(params![mailbox, folder], |r| {
        Ok(FolderVersion {
            uidvalidity: r.get::<_, i64>(0)? as u32,
            uidnext: r.get::<_, i64>(1)? as u32,
            highest_modseq: r.get::<_, i64>(2)? as u64,
        })
    })
    .optional()?)
}

pub(super) fn folder_changes(
    c: &Conn,
    mailbox: &str,
    folder: &str,
    since: u64,
) -> Result<Option<(Folder, Vec<IndexEntry>, u32)>> {
    // One read transaction: the folder, the changes and the count describe one moment.
    let tx = c.unchecked_transaction()?;
    let Some(f) = folder_head(&tx, mailbox, folder)? else {
        return Ok(None);
    };
    let changed = entries_since(&tx, mailbox, folder, since)?;
    let count: i64 = tx
        .prepare_cached("SELECT count(*) FROM messages WHERE mailbox = ? AND folder = ?")?
        .query_row(params![mailbox, folder], |r| r.get(0))?;
    tx.commit()?;
    Ok(Some((f, changed, count as u32)))
}

pub(super) fn folder_index(
    c: &Conn,
    mailbox: &str,
    folder: &str,
) -> Result<Option<(Folder, Vec<IndexEntry>)>> {
    // One read transaction: the counters and the list describe the same moment.
    let tx = c.unchecked_transaction()?;
    let Some(mut f) = folder_head(&tx, mailbox, folder)? else {
        return Ok(None);
    };
    let entries = entries_since(&tx, mailbox, folder, 0)?;
    tx.commit()?;
    f.messages = entries.len() as u32;
    f.unseen = entries.iter().filter(|e| !e.has_flag("\\Seen")).count() as u32;
    Ok(Some((f, entries)))
}

pub(super) fn quarantined(c: &Conn, since: i64) -> Result<Vec<Quarantined>> {
    all(
        c,
        "SELECT id, time, identificativo, sender, recipients, engine, threat, size
         FROM quarantine WHERE time >= ? ORDER BY id",
        [since],
        |r| {
            let recipients: String = r.get(4)?;
            Ok(Quarantined {
                id: r.get(0)?,
                time: r.get(1)?,
                identificativo: r.get(2)?,
                sender: r.get(3)?,
                recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                engine: r.get(5)?,
                threat: r.get(6)?,
                size: r.get::<_, i64>(7)? as u64,
            })
        },
    )
}
