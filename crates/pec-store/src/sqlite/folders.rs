//! Folder operations of the embedded backend, each one job of the writer: folders
//! (create, delete, rename, subscribe), flags with modification sequences (RFC 7162), copy
//! and move between folders, and APPEND.
//!
//! Every change to a folder's messages takes the next modification sequence of that folder:
//! `folders.highestmodseq` is raised and the changed message rows carry the new value.

use super::db::{Conn, all};
use super::now;
use crate::types::*;
use crate::{Result, StoreError};
use rusqlite::{OptionalExtension as _, params};

fn refused(r: FolderRefusal) -> StoreError {
    StoreError::Refused(r)
}

/// Whether `name` is INBOX or one of the special-use folders.
pub(super) fn is_standard(name: &str) -> bool {
    STANDARD_FOLDERS
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn exists(conn: &Conn, mailbox: &str, name: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM folders WHERE mailbox = ? AND name = ?")?
        .query_row(params![mailbox, name], |r| r.get(0))?;
    Ok(n > 0)
}

/// Creates the standard folders of a new mailbox.
pub(super) fn create_standard(conn: &Conn, mailbox: &str) -> Result<()> {
    for (name, _) in STANDARD_FOLDERS {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO folders (mailbox, name, uidvalidity, uidnext) VALUES (?, ?, ?, 1)",
        )?
        .execute(params![mailbox, name, now()])?;
    }
    Ok(())
}

/// Creates a user folder (and its missing parents, RFC 3501 §6.3.3), not subscribed
/// (RFC 3501 §6.3.6: only SUBSCRIBE adds to the subscription list).
pub(super) fn create(conn: &Conn, mailbox: &str, name: &str) -> Result<()> {
    if exists(conn, mailbox, name)? || is_standard(name) {
        return Err(refused(FolderRefusal::Exists));
    }
    let mut path = String::new();
    for (i, level) in name.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.push_str(level);
        conn.prepare_cached(
            "INSERT OR IGNORE INTO folders (mailbox, name, uidvalidity, uidnext, subscribed)
             VALUES (?, ?, ?, 1, 0)",
        )?
        .execute(params![mailbox, &path, now()])?;
    }
    Ok(())
}

/// Deletes a user folder and its messages. Subfolders stay (RFC 3501 §6.3.4: DELETE
/// must not remove inferior names); the deleted name then only exists as their parent.
pub(super) fn delete(conn: &Conn, mailbox: &str, name: &str) -> Result<()> {
    if is_standard(name) {
        return Err(refused(FolderRefusal::Protected));
    }
    if !exists(conn, mailbox, name)? {
        return Err(refused(FolderRefusal::Missing));
    }
    let uids = all(
        conn,
        "SELECT uid FROM messages WHERE mailbox = ? AND folder = ?",
        params![mailbox, name],
        |r| Ok(r.get::<_, i64>(0)? as u32),
    )?;
    super::commit::delete(conn, mailbox, name, &uids, false)?;
    conn.prepare_cached("DELETE FROM folders WHERE mailbox = ? AND name = ?")?
        .execute(params![mailbox, name])?;
    Ok(())
}

/// Renames a user folder and its subfolders; messages keep their UIDs, and the folders get
/// a new UIDVALIDITY (RFC 3501 §6.3.5 allows either; a new one is always safe for clients).
pub(super) fn rename(conn: &Conn, mailbox: &str, from: &str, to: &str) -> Result<()> {
    if is_standard(from) || is_standard(to) {
        return Err(refused(FolderRefusal::Protected));
    }
    if !exists(conn, mailbox, from)? {
        return Err(refused(FolderRefusal::Missing));
    }
    if exists(conn, mailbox, to)? {
        return Err(refused(FolderRefusal::Exists));
    }
    let names: Vec<String> = all(
        conn,
        "SELECT name FROM folders WHERE mailbox = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
        params![mailbox, from],
        |r| r.get(0),
    )?;
    for old in names {
        let new = format!("{to}{}", &old[from.len()..]);
        conn.prepare_cached(
            "UPDATE folders SET name = ?, uidvalidity = uidvalidity + 1 WHERE mailbox = ? AND name = ?",
        )?
        .execute(params![&new, mailbox, &old])?;
        conn.prepare_cached("UPDATE messages SET folder = ? WHERE mailbox = ? AND folder = ?")?
            .execute(params![&new, mailbox, &old])?;
    }
    // Parents of the new name exist too (RFC 3501 §6.3.5).
    if let Some((parent, _)) = to.rsplit_once('/')
        && !exists(conn, mailbox, parent)?
    {
        create(conn, mailbox, parent)?;
    }
    Ok(())
}

/// Sets or clears the subscription of a folder.
pub(super) fn subscribe(conn: &Conn, mailbox: &str, name: &str, on: bool) -> Result<()> {
    let done = conn
        .prepare_cached("UPDATE folders SET subscribed = ? WHERE mailbox = ? AND name = ?")?
        .execute(params![i64::from(on), mailbox, name])?;
    if done == 0 {
        return Err(refused(FolderRefusal::Missing));
    }
    Ok(())
}

/// Takes the next modification sequence of a folder.
fn next_modseq(conn: &Conn, mailbox: &str, folder: &str) -> Result<u64> {
    let m: Option<i64> = conn
        .prepare_cached(
            "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE mailbox = ? AND name = ?
             RETURNING highestmodseq",
        )?
        .query_row(params![mailbox, folder], |r| r.get(0))
        .optional()?;
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
pub(super) fn set_flags(
    conn: &Conn,
    mailbox: &str,
    folder: &str,
    uids: &[u32],
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<u64>,
) -> Result<FlagsChanged> {
    let mut out = FlagsChanged::default();
    let mut modseq = None;
    for &uid in uids {
        let row: Option<(String, i64)> = conn
            .prepare_cached(
                "SELECT flags, modseq FROM messages WHERE mailbox = ? AND folder = ? AND uid = ?",
            )?
            .query_row(params![mailbox, folder, i64::from(uid)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((current, current_modseq)) = row else {
            continue;
        };
        if unchanged_since.is_some_and(|u| current_modseq as u64 > u) {
            out.modified.push(uid);
            continue;
        }
        let new = apply_flags(&current, op, flags);
        if new == current {
            continue;
        }
        let m = match modseq {
            Some(m) => m,
            None => {
                let m = next_modseq(conn, mailbox, folder)?;
                modseq = Some(m);
                m
            }
        };
        conn.prepare_cached(
            "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox = ? AND folder = ? AND uid = ?",
        )?
        .execute(params![&new, m as i64, mailbox, folder, i64::from(uid)])?;
        out.changed.push((uid, new, m));
    }
    Ok(out)
}

/// blob, size, date, subject, kind, identificativo, flags, header, body.
type MessageRow = (
    String,
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    String,
    Option<Vec<u8>>,
    Option<i64>,
);

/// Copies (or moves) messages to another folder of the same mailbox; returns (source UID,
/// new UID) pairs in source order (RFC 4315 COPYUID).
pub(super) fn copy(
    conn: &Conn,
    mailbox: &str,
    from: &str,
    uids: &[u32],
    to: &str,
    remove: bool,
) -> Result<Vec<(u32, u32)>> {
    if !exists(conn, mailbox, to)? {
        return Err(refused(FolderRefusal::Missing));
    }
    let mut pairs = Vec::new();
    let mut added: i64 = 0;
    let mut moved = Vec::new();
    let mut dest_modseq = None;
    for &uid in uids {
        let row: Option<MessageRow> = conn
            .prepare_cached(
                "SELECT blob, size, date, subject, kind, identificativo, flags, header, body FROM messages
                 WHERE mailbox = ? AND folder = ? AND uid = ?",
            )?
            .query_row(params![mailbox, from, i64::from(uid)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .optional()?;
        let Some((blob, size, date, subject, kind, identificativo, flags, header, body)) = row
        else {
            continue;
        };
        let (new_uid, modseq): (i64, i64) = conn
            .prepare_cached(
                "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + ?
                 WHERE mailbox = ? AND name = ? RETURNING uidnext - 1, highestmodseq",
            )?
            .query_row(
                params![i64::from(dest_modseq.is_none()), mailbox, to],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        dest_modseq.get_or_insert(modseq);
        if remove {
            // A move keeps the row (and its dedup key, pec.md §5.9): only its place changes.
            conn.prepare_cached(
                "UPDATE messages SET folder = ?, uid = ?, modseq = ? WHERE mailbox = ? AND folder = ? AND uid = ?",
            )?
            .execute(params![to, new_uid, modseq, mailbox, from, i64::from(uid)])?;
            moved.push(uid);
        } else {
            // A copy is a new message without the dedup key: the delivered one keeps it.
            // It gets its own body row, so that deleting either never touches the other.
            let body = body
                .map(|id| super::commit::copy_body(conn, id))
                .transpose()?;
            conn.prepare_cached(
                "INSERT INTO messages (mailbox, folder, uid, blob, size, date, subject, kind, identificativo, flags, modseq, header, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                mailbox,
                to,
                new_uid,
                &blob,
                size,
                date,
                &subject,
                &kind,
                &identificativo,
                &flags,
                modseq,
                &header,
                body,
            ])?;
            added += size;
        }
        pairs.push((uid, new_uid as u32));
    }
    if added > 0 {
        over_quota(conn, mailbox, added)?;
        conn.prepare_cached(
            "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + ? WHERE address = ?",
        )?
        .execute(params![added, pairs.len() as i64, mailbox])?;
    }
    if !moved.is_empty() {
        next_modseq(conn, mailbox, from)?;
    }
    Ok(pairs)
}

/// Refuses `more` bytes that would take the mailbox over its quota.
fn over_quota(conn: &Conn, mailbox: &str, more: i64) -> Result<()> {
    let (quota, used): (i64, i64) = conn
        .prepare_cached("SELECT quota_bytes, used_bytes FROM mailboxes WHERE address = ?")?
        .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if quota > 0 && used + more > quota {
        return Err(refused(FolderRefusal::OverQuota));
    }
    Ok(())
}

/// Appends a message whose blob is already stored as a file (address `blob`) or, when
/// `inline`, goes into `bodies` here; returns (UIDVALIDITY, UID).
pub(super) fn append(conn: &Conn, a: &Append, blob: &str, inline: bool) -> Result<(u32, u32)> {
    over_quota(conn, &a.mailbox, a.bytes.len() as i64)?;
    // On a refusal below, the job's savepoint takes this row back too.
    let body = if inline {
        Some(super::commit::insert_body(conn, &a.bytes)?)
    } else {
        None
    };
    let row: Option<(i64, i64, i64)> = conn
        .prepare_cached(
            "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
             WHERE mailbox = ? AND name = ? RETURNING uidvalidity, uidnext - 1, highestmodseq",
        )?
        .query_row(params![&a.mailbox, &a.folder], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((uidvalidity, uid, modseq)) = row else {
        return Err(refused(FolderRefusal::Missing));
    };
    conn.prepare_cached(
        "INSERT INTO messages (mailbox, folder, uid, blob, size, date, subject, kind, flags, modseq, header, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'ordinaria', ?, ?, ?, ?)",
    )?
    .execute(params![
        &a.mailbox,
        &a.folder,
        uid,
        blob,
        a.bytes.len() as i64,
        a.date,
        &a.subject,
        &a.flags,
        modseq,
        crate::header_block(&a.bytes),
        body,
    ])?;
    conn.prepare_cached(
        "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE address = ?",
    )?
    .execute(params![a.bytes.len() as i64, &a.mailbox])?;
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
