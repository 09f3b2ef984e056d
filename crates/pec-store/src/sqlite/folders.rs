//! Folder operations of the embedded backend, each one job of the writer: folders
//! (create, delete, rename, subscribe), flags with modification sequences (RFC 7162), copy
//! and move between folders, and APPEND.
//!
//! Every change to a folder's messages takes the next modification sequence of that folder:
//! `folders.highestmodseq` is raised and the changed message rows carry the new value.

use super::now;
use crate::types::*;
use crate::{Result, StoreError};
use sqlx::sqlite::SqliteConnection;

fn refused(r: FolderRefusal) -> StoreError {
    StoreError::Refused(r)
}

/// Whether `name` is INBOX or one of the special-use folders.
pub(super) fn is_standard(name: &str) -> bool {
    STANDARD_FOLDERS
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

async fn exists(conn: &mut SqliteConnection, mailbox: &str, name: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM folders WHERE mailbox = ? AND name = ?")
        .bind(mailbox)
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// Creates the standard folders of a new mailbox.
pub(super) async fn create_standard(conn: &mut SqliteConnection, mailbox: &str) -> Result<()> {
    for (name, _) in STANDARD_FOLDERS {
        sqlx::query(
            "INSERT OR IGNORE INTO folders (mailbox, name, uidvalidity, uidnext) VALUES (?, ?, ?, 1)",
        )
        .bind(mailbox)
        .bind(name)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Creates a user folder (and its missing parents, RFC 3501 §6.3.3), not subscribed
/// (RFC 3501 §6.3.6: only SUBSCRIBE adds to the subscription list).
pub(super) async fn create(
    conn: &mut SqliteConnection,
    mailbox: String,
    name: String,
) -> Result<()> {
    if exists(conn, &mailbox, &name).await? || is_standard(&name) {
        return Err(refused(FolderRefusal::Exists));
    }
    let mut path = String::new();
    for (i, level) in name.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.push_str(level);
        sqlx::query(
            "INSERT OR IGNORE INTO folders (mailbox, name, uidvalidity, uidnext, subscribed)
             VALUES (?, ?, ?, 1, 0)",
        )
        .bind(&mailbox)
        .bind(&path)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Deletes a user folder and its messages. Subfolders stay (RFC 3501 §6.3.4: DELETE
/// must not remove inferior names); the deleted name then only exists as their parent.
pub(super) async fn delete(
    conn: &mut SqliteConnection,
    mailbox: String,
    name: String,
) -> Result<()> {
    if is_standard(&name) {
        return Err(refused(FolderRefusal::Protected));
    }
    if !exists(conn, &mailbox, &name).await? {
        return Err(refused(FolderRefusal::Missing));
    }
    let uids: Vec<i64> =
        sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox = ? AND folder = ?")
            .bind(&mailbox)
            .bind(&name)
            .fetch_all(&mut *conn)
            .await?;
    let uids = uids.into_iter().map(|u| u as u32).collect();
    super::commit::delete(conn, mailbox.clone(), name.clone(), uids).await?;
    sqlx::query("DELETE FROM folders WHERE mailbox = ? AND name = ?")
        .bind(&mailbox)
        .bind(&name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Renames a user folder and its subfolders; messages keep their UIDs, and the folders get
/// a new UIDVALIDITY (RFC 3501 §6.3.5 allows either; a new one is always safe for clients).
pub(super) async fn rename(
    conn: &mut SqliteConnection,
    mailbox: String,
    from: String,
    to: String,
) -> Result<()> {
    if is_standard(&from) || is_standard(&to) {
        return Err(refused(FolderRefusal::Protected));
    }
    if !exists(conn, &mailbox, &from).await? {
        return Err(refused(FolderRefusal::Missing));
    }
    if exists(conn, &mailbox, &to).await? {
        return Err(refused(FolderRefusal::Exists));
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM folders WHERE mailbox = ? AND (name = ? OR substr(name, 1, length(?) + 1) = ? || '/')",
    )
    .bind(&mailbox)
    .bind(&from)
    .bind(&from)
    .bind(&from)
    .fetch_all(&mut *conn)
    .await?;
    for old in names {
        let new = format!("{to}{}", &old[from.len()..]);
        sqlx::query("UPDATE folders SET name = ?, uidvalidity = uidvalidity + 1 WHERE mailbox = ? AND name = ?")
            .bind(&new)
            .bind(&mailbox)
            .bind(&old)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE messages SET folder = ? WHERE mailbox = ? AND folder = ?")
            .bind(&new)
            .bind(&mailbox)
            .bind(&old)
            .execute(&mut *conn)
            .await?;
    }
    // Parents of the new name exist too (RFC 3501 §6.3.5).
    if let Some((parent, _)) = to.rsplit_once('/') {
        let parent = parent.to_string();
        if !exists(conn, &mailbox, &parent).await? {
            create(conn, mailbox, parent).await?;
        }
    }
    Ok(())
}

/// Sets or clears the subscription of a folder.
pub(super) async fn subscribe(
    conn: &mut SqliteConnection,
    mailbox: String,
    name: String,
    on: bool,
) -> Result<()> {
    let done = sqlx::query("UPDATE folders SET subscribed = ? WHERE mailbox = ? AND name = ?")
        .bind(i64::from(on))
        .bind(&mailbox)
        .bind(&name)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(refused(FolderRefusal::Missing));
    }
    Ok(())
}

/// Takes the next modification sequence of a folder.
async fn next_modseq(conn: &mut SqliteConnection, mailbox: &str, folder: &str) -> Result<u64> {
    let m: Option<i64> = sqlx::query_scalar(
        "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE mailbox = ? AND name = ?
         RETURNING highestmodseq",
    )
    .bind(mailbox)
    .bind(folder)
    .fetch_optional(&mut *conn)
    .await?;
    m.map(|m| m as u64).ok_or(refused(FolderRefusal::Missing))
}

/// The flags of `current` after `op` with `flags` (system flags compared ignoring case,
/// RFC 3501 §2.3.2); the order of first appearance is kept.
pub fn apply_flags(current: &str, op: FlagOp, flags: &[String]) -> String {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut out: Vec<&str> = match op {
        FlagOp::Replace => Vec::new(),
        _ => current.split_whitespace().collect(),
    };
    match op {
        FlagOp::Add | FlagOp::Replace => {
            for f in flags {
                if !out.iter().any(|o| same(o, f)) {
                    out.push(f);
                }
            }
        }
        FlagOp::Remove => out.retain(|o| !flags.iter().any(|f| same(o, f))),
    }
    out.join(" ")
}

/// Changes the flags of `uids` in one modification sequence.
pub(super) async fn set_flags(
    conn: &mut SqliteConnection,
    mailbox: String,
    folder: String,
    uids: Vec<u32>,
    op: FlagOp,
    flags: Vec<String>,
    unchanged_since: Option<u64>,
) -> Result<FlagsChanged> {
    let mut out = FlagsChanged::default();
    let mut modseq = None;
    for uid in uids {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT flags, modseq FROM messages WHERE mailbox = ? AND folder = ? AND uid = ?",
        )
        .bind(&mailbox)
        .bind(&folder)
        .bind(i64::from(uid))
        .fetch_optional(&mut *conn)
        .await?;
        let Some((current, current_modseq)) = row else {
            continue;
        };
        if unchanged_since.is_some_and(|u| current_modseq as u64 > u) {
            out.modified.push(uid);
            continue;
        }
        let new = apply_flags(&current, op, &flags);
        if new == current {
            continue;
        }
        let m = match modseq {
            Some(m) => m,
            None => {
                let m = next_modseq(conn, &mailbox, &folder).await?;
                modseq = Some(m);
                m
            }
        };
        sqlx::query("UPDATE messages SET flags = ?, modseq = ? WHERE mailbox = ? AND folder = ? AND uid = ?")
            .bind(&new)
            .bind(m as i64)
            .bind(&mailbox)
            .bind(&folder)
            .bind(i64::from(uid))
            .execute(&mut *conn)
            .await?;
        out.changed.push((uid, new, m));
    }
    Ok(out)
}

/// blob, size, date, subject, kind, identificativo, flags, header.
type MessageRow = (
    String,
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<Vec<u8>>,
);

/// Copies (or moves) messages to another folder of the same mailbox; returns (source UID,
/// new UID) pairs in source order (RFC 4315 COPYUID).
pub(super) async fn copy(
    conn: &mut SqliteConnection,
    mailbox: String,
    from: String,
    uids: Vec<u32>,
    to: String,
    remove: bool,
) -> Result<Vec<(u32, u32)>> {
    if !exists(conn, &mailbox, &to).await? {
        return Err(refused(FolderRefusal::Missing));
    }
    let mut pairs = Vec::new();
    let mut added: i64 = 0;
    let mut moved = Vec::new();
    let mut dest_modseq = None;
    for uid in uids {
        let row: Option<MessageRow> = sqlx::query_as(
            "SELECT blob, size, date, subject, kind, identificativo, flags, header FROM messages
                 WHERE mailbox = ? AND folder = ? AND uid = ?",
        )
        .bind(&mailbox)
        .bind(&from)
        .bind(i64::from(uid))
        .fetch_optional(&mut *conn)
        .await?;
        let Some((blob, size, date, subject, kind, identificativo, flags, header)) = row else {
            continue;
        };
        let (new_uid, modseq): (i64, i64) = sqlx::query_as(
            "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + ?
             WHERE mailbox = ? AND name = ? RETURNING uidnext - 1, highestmodseq",
        )
        .bind(i64::from(dest_modseq.is_none()))
        .bind(&mailbox)
        .bind(&to)
        .fetch_one(&mut *conn)
        .await?;
        dest_modseq.get_or_insert(modseq);
        if remove {
            // A move keeps the row (and its dedup key, pec.md §5.9): only its place changes.
            sqlx::query(
                "UPDATE messages SET folder = ?, uid = ?, modseq = ? WHERE mailbox = ? AND folder = ? AND uid = ?",
            )
            .bind(&to)
            .bind(new_uid)
            .bind(modseq)
            .bind(&mailbox)
            .bind(&from)
            .bind(i64::from(uid))
            .execute(&mut *conn)
            .await?;
            moved.push(uid);
        } else {
            // A copy is a new message without the dedup key: the delivered one keeps it.
            sqlx::query(
                "INSERT INTO messages (mailbox, folder, uid, blob, size, date, subject, kind, identificativo, flags, modseq, header)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&mailbox)
            .bind(&to)
            .bind(new_uid)
            .bind(&blob)
            .bind(size)
            .bind(date)
            .bind(&subject)
            .bind(&kind)
            .bind(&identificativo)
            .bind(&flags)
            .bind(modseq)
            .bind(&header)
            .execute(&mut *conn)
            .await?;
            added += size;
        }
        pairs.push((uid, new_uid as u32));
    }
    if added > 0 {
        over_quota(conn, &mailbox, added).await?;
        sqlx::query(
            "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + ? WHERE address = ?",
        )
        .bind(added)
        .bind(pairs.len() as i64)
        .bind(&mailbox)
        .execute(&mut *conn)
        .await?;
    }
    if !moved.is_empty() {
        next_modseq(conn, &mailbox, &from).await?;
    }
    Ok(pairs)
}

/// Refuses `more` bytes that would take the mailbox over its quota.
async fn over_quota(conn: &mut SqliteConnection, mailbox: &str, more: i64) -> Result<()> {
    let (quota, used): (i64, i64) =
        sqlx::query_as("SELECT quota_bytes, used_bytes FROM mailboxes WHERE address = ?")
            .bind(mailbox)
            .fetch_one(&mut *conn)
            .await?;
    if quota > 0 && used + more > quota {
        return Err(refused(FolderRefusal::OverQuota));
    }
    Ok(())
}

/// Appends a message whose blob is already stored (address `blob`, bytes given when the
/// blob lives in the database); returns (UIDVALIDITY, UID).
pub(super) async fn append(
    conn: &mut SqliteConnection,
    a: Append,
    blob: String,
    inline: bool,
) -> Result<(u32, u32)> {
    over_quota(conn, &a.mailbox, a.bytes.len() as i64).await?;
    if inline {
        sqlx::query("INSERT OR IGNORE INTO blobs (hash, bytes) VALUES (?, ?)")
            .bind(&blob)
            .bind(&a.bytes[..])
            .execute(&mut *conn)
            .await?;
    }
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
         WHERE mailbox = ? AND name = ? RETURNING uidvalidity, uidnext - 1, highestmodseq",
    )
    .bind(&a.mailbox)
    .bind(&a.folder)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((uidvalidity, uid, modseq)) = row else {
        return Err(refused(FolderRefusal::Missing));
    };
    sqlx::query(
        "INSERT INTO messages (mailbox, folder, uid, blob, size, date, subject, kind, flags, modseq, header)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'ordinaria', ?, ?, ?)",
    )
    .bind(&a.mailbox)
    .bind(&a.folder)
    .bind(uid)
    .bind(&blob)
    .bind(a.bytes.len() as i64)
    .bind(a.date)
    .bind(&a.subject)
    .bind(&a.flags)
    .bind(modseq)
    .bind(crate::header_block(&a.bytes))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE address = ?",
    )
    .bind(a.bytes.len() as i64)
    .bind(&a.mailbox)
    .execute(&mut *conn)
    .await?;
    Ok((uidvalidity as u32, uid as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_added_removed_and_replaced_ignoring_case() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(apply_flags("", FlagOp::Add, &f(&["\\Seen"])), "\\Seen");
        assert_eq!(
            apply_flags("\\Seen", FlagOp::Add, &f(&["\\SEEN", "x"])),
            "\\Seen x"
        );
        assert_eq!(
            apply_flags("\\Seen x", FlagOp::Remove, &f(&["\\seen"])),
            "x"
        );
        assert_eq!(
            apply_flags("\\Seen x", FlagOp::Replace, &f(&["\\Draft"])),
            "\\Draft"
        );
        assert_eq!(apply_flags("a", FlagOp::Replace, &[]), "");
    }
}
