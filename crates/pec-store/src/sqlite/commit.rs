//! One [`Commit`] applied inside the writer's transaction (crate contract: all of it or
//! none of it).

use super::db::Conn;
use super::now;
use crate::Result;
use crate::types::*;
use rusqlite::{OptionalExtension as _, params};

/// Queue entries up to this size keep their bytes in the queue row instead of a blob file.
pub(super) const QUEUE_INLINE_MAX: usize = 1 << 20;

/// Message bodies up to this size are kept in the `bodies` table instead of a file.
pub(super) const BLOB_INLINE_MAX: usize = 128 << 10;

/// Where the blob of one message of a commit goes.
pub(super) enum MessageBlob {
    /// Into the `bodies` table (address computed, bytes written by [`apply`]).
    Inline(String),
    /// Already written as a file at this address.
    File(String),
}

/// Stores `bytes` as a new row of `bodies`; returns its id.
pub(super) fn insert_body(conn: &Conn, bytes: &[u8]) -> Result<i64> {
    conn.prepare_cached("INSERT INTO bodies (bytes) VALUES (?)")?
        .execute([bytes])?;
    Ok(conn.last_insert_rowid())
}

/// Stores a copy of body `id` as a new row of `bodies`; returns the copy's id.
pub(super) fn copy_body(conn: &Conn, id: i64) -> Result<i64> {
    conn.prepare_cached("INSERT INTO bodies (bytes) SELECT bytes FROM bodies WHERE id = ?")?
        .execute([id])?;
    Ok(conn.last_insert_rowid())
}

/// Applies `c`; `blobs` are the blobs of `c.messages`, `queue_blobs` and `quarantine_blobs`
/// the addresses of the queue entries and quarantined messages too large to keep inline.
pub(super) fn apply(
    conn: &Conn,
    c: &Commit,
    blobs: &[MessageBlob],
    queue_blobs: &[Option<String>],
    quarantine_blobs: &[Option<String>],
) -> Result<Committed> {
    let mut out = Committed::default();
    let t = now();
    for (m, blob) in c.messages.iter().zip(blobs) {
        let (blob, body) = match blob {
            MessageBlob::File(hash) => (hash, None),
            MessageBlob::Inline(hash) => (hash, Some(insert_body(conn, &m.bytes)?)),
        };
        // One statement creates the folder or takes its next UID (a UID taken by a
        // duplicate below stays unused: UIDs only need to ascend, RFC 3501 §2.3.1.1).
        let (uid, modseq): (i64, i64) = conn
            .prepare_cached(
                "INSERT INTO folders (mailbox, name, uidvalidity, uidnext, highestmodseq) VALUES (?, ?, ?, 2, 2)
                 ON CONFLICT (mailbox, name) DO UPDATE SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
                 RETURNING uidnext - 1, highestmodseq",
            )?
            .query_row(params![&m.mailbox, &m.folder, t], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let done = conn
            .prepare_cached(
                "INSERT INTO messages (mailbox, folder, uid, blob, size, date, subject, kind, identificativo, message_id, flags, modseq, header, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                &m.mailbox,
                &m.folder,
                uid,
                blob,
                m.bytes.len() as i64,
                m.date,
                &m.subject,
                &m.kind,
                &m.identificativo,
                &m.message_id,
                &m.flags,
                modseq,
                crate::header_block(&m.bytes),
                body,
            ])?;
        if done == 1 {
            conn.prepare_cached(
                "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE address = ?",
            )?
            .execute(params![m.bytes.len() as i64, &m.mailbox])?;
            out.stored.push(Some(uid as u32));
            if is_receipt_kind(&m.kind) {
                out.webhooks += super::web::record_webhook(conn, m, uid, t)?;
            }
        } else {
            // A duplicate (pec.md §5.9): the body stored for it is nobody's.
            if let Some(id) = body {
                delete_body(conn, id)?;
            }
            out.stored.push(None);
        }
    }
    let leased = c.queue_lease_until > 0;
    for (q, blob) in c.queue.iter().zip(queue_blobs) {
        conn.prepare_cached(
            "INSERT INTO queue (mail_from, rcpt_to, domain, blob, bytes, created, next_attempt, lease_until, attempts)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            &q.mail_from,
            serde_json::to_string(&q.rcpt_to).unwrap_or_default(),
            &q.domain,
            blob.as_deref().unwrap_or(""),
            blob.is_none().then_some(&q.bytes[..]),
            q.not_before,
            q.not_before,
            c.queue_lease_until,
            i64::from(leased),
        ])?;
        if leased {
            out.leased.push(QueueEntry {
                id: conn.last_insert_rowid(),
                mail_from: q.mail_from.clone(),
                rcpt_to: q.rcpt_to.clone(),
                domain: q.domain.clone(),
                bytes: q.bytes.clone(),
                created: q.not_before,
                attempts: 1,
                last_error: None,
                lease_until: c.queue_lease_until,
            });
        }
    }
    for (q, blob) in c.quarantine.iter().zip(quarantine_blobs) {
        conn.prepare_cached(
            "INSERT INTO quarantine (time, identificativo, sender, recipients, engine, threat, size, blob, bytes)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            t,
            &q.identificativo,
            &q.sender,
            serde_json::to_string(&q.recipients).unwrap_or_default(),
            &q.engine,
            &q.threat,
            q.bytes.len() as i64,
            blob.as_deref().unwrap_or(""),
            blob.is_none().then_some(&q.bytes[..]),
        ])?;
    }
    for r in &c.outbound_spam {
        conn.prepare_cached(
            "INSERT INTO outbound_spam (mailbox, time, identificativo, detail) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![
            r.mailbox.to_ascii_lowercase(),
            r.time,
            &r.identificativo,
            &r.detail
        ])?;
    }
    for l in &c.locks {
        // An empty hash matches no password: the mailbox cannot log in until the reset.
        conn.prepare_cached(
            "UPDATE mailboxes SET password_hash = '', locked = 1, reset_token = ?, reset_expires = ?
             WHERE address = ?",
        )?
        .execute(params![
            &l.reset_token_sha256,
            l.expires,
            l.mailbox.to_ascii_lowercase()
        ])?;
    }
    for tr in &c.tracked {
        conn.prepare_cached("INSERT OR IGNORE INTO tracked (identificativo, data) VALUES (?, ?)")?
            .execute(params![&tr.identificativo, &tr.data])?;
        for r in &tr.recipients {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO tracked_rcpt (identificativo, recipient) VALUES (?, ?)",
            )?
            .execute(params![&tr.identificativo, r])?;
        }
    }
    for (id, rcpt, step) in &c.progress {
        conn.prepare_cached(
            "UPDATE tracked_rcpt SET steps = steps || ?1 || ',' WHERE identificativo = ?2 AND recipient = ?3
             AND instr(steps, ?1 || ',') = 0",
        )?
        .execute(params![step, id, rcpt])?;
    }
    for d in &c.deadlines {
        conn.prepare_cached(
            "INSERT INTO deadlines (identificativo, recipient, which, due) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![&d.identificativo, &d.recipient, &d.which, d.due])?;
    }
    for e in &c.events {
        conn.prepare_cached("INSERT INTO events (time, identificativo, json) VALUES (?, ?, ?)")?
            .execute(params![e.time, &e.identificativo, &e.json])?;
    }
    for id in &c.queue_done {
        conn.prepare_cached("DELETE FROM queue WHERE id = ?")?
            .execute([id])?;
    }
    for t in &c.taken {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO taken (recipient, message_id, time) VALUES (?, ?, ?)",
        )?
        .execute(params![&t.recipient, &t.message_id, t.time])?;
    }
    for r in &c.queue_retry {
        conn.prepare_cached(
            "UPDATE queue SET rcpt_to = ?, next_attempt = ?, lease_until = 0, last_error = ?, \
             attempts = ? WHERE id = ?",
        )?
        .execute(params![
            serde_json::to_string(&r.rcpt_to).unwrap_or_default(),
            r.next_attempt,
            &r.error,
            r.attempts,
            r.id
        ])?;
    }
    for id in &c.deadlines_done {
        conn.prepare_cached("DELETE FROM deadlines WHERE id = ?")?
            .execute([id])?;
    }
    Ok(out)
}

/// Deletes messages by UID, shrinks the mailbox's usage, and drops their bodies and the
/// in-database blobs no message names any more (files stay: they may be shared and are
/// cheap to keep).
/// Deletes messages by UID; with `only_deleted`, only those whose stored flags still hold
/// `\Deleted` (an IMAP EXPUNGE decided on a session's view of the flags).
pub(super) fn delete(
    conn: &Conn,
    mailbox: &str,
    folder: &str,
    uids: &[u32],
    only_deleted: bool,
) -> Result<u64> {
    let mut gone = 0;
    for &uid in uids {
        let row: Option<(String, i64, Option<i64>)> = conn
            .prepare_cached(
                "DELETE FROM messages WHERE mailbox = ? AND folder = ? AND uid = ?
                 AND (? = 0 OR instr(flags, '\\Deleted') > 0) RETURNING blob, size, body",
            )?
            .query_row(
                params![mailbox, folder, i64::from(uid), only_deleted],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((blob, size, body)) = row else {
            continue;
        };
        gone += 1;
        conn.prepare_cached(
            "UPDATE mailboxes SET used_bytes = max(used_bytes - ?, 0),
             message_count = max(message_count - 1, 0) WHERE address = ?",
        )?
        .execute(params![size, mailbox])?;
        match body {
            // A body belongs to one message (a copy gets its own).
            Some(id) => delete_body(conn, id)?,
            // Stored before the `bodies` table: drop its `blobs` entry once unnamed.
            None => {
                conn.prepare_cached(
                    "DELETE FROM blobs WHERE hash = ?1
                     AND NOT EXISTS (SELECT 1 FROM messages WHERE blob = ?1 AND body IS NULL)",
                )?
                .execute([&blob])?;
            }
        }
    }
    if gone > 0 {
        // An expunge is a change of the folder (RFC 7162 §3.1.2).
        conn.prepare_cached(
            "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE mailbox = ? AND name = ?",
        )?
        .execute(params![mailbox, folder])?;
    }
    Ok(gone)
}

fn delete_body(conn: &Conn, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM bodies WHERE id = ?")?
        .execute([id])?;
    Ok(())
}
