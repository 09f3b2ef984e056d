//! One [`Commit`] applied inside the writer's transaction (crate contract: all of it or
//! none of it).

use super::now;
use crate::Result;
use crate::types::*;
use sqlx::sqlite::SqliteConnection;

/// Queue entries up to this size keep their bytes in the queue row instead of a blob file.
pub(super) const QUEUE_INLINE_MAX: usize = 1 << 20;

/// Message blobs up to this size are kept in the `blobs` table instead of a file.
pub(super) const BLOB_INLINE_MAX: usize = 128 << 10;

/// Where the blob of one message of a commit goes.
pub(super) enum MessageBlob {
    /// Into the `blobs` table (address computed, bytes written by [`apply`]).
    Inline(String),
    /// Already written as a file at this address.
    File(String),
}

/// Applies `c`; `blobs` are the blobs of `c.messages`, `queue_blobs` and `quarantine_blobs`
/// the addresses of the queue entries and quarantined messages too large to keep inline.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    c: &Commit,
    blobs: &[MessageBlob],
    queue_blobs: &[Option<String>],
    quarantine_blobs: &[Option<String>],
) -> Result<Committed> {
    let mut out = Committed::default();
    let t = now();
    for (m, blob) in c.messages.iter().zip(blobs) {
        let blob = match blob {
            MessageBlob::File(hash) => hash,
            MessageBlob::Inline(hash) => {
                sqlx::query("INSERT OR IGNORE INTO blobs (hash, bytes) VALUES (?, ?)")
                    .bind(hash)
                    .bind(&m.bytes[..])
                    .execute(&mut *conn)
                    .await?;
                hash
            }
        };
        // One statement creates the folder or takes its next UID (a UID taken by a
        // duplicate below stays unused: UIDs only need to ascend, RFC 3501 §2.3.1.1).
        let (uid, modseq): (i64, i64) = sqlx::query_as(
            "INSERT INTO folders (mailbox, name, uidvalidity, uidnext, highestmodseq) VALUES (?, ?, ?, 2, 2)
             ON CONFLICT (mailbox, name) DO UPDATE SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
             RETURNING uidnext - 1, highestmodseq",
        )
        .bind(&m.mailbox)
        .bind(&m.folder)
        .bind(t)
        .fetch_one(&mut *conn)
        .await?;
        let done = sqlx::query(
            "INSERT INTO messages (mailbox, folder, uid, blob, size, date, subject, kind, identificativo, message_id, flags, modseq, header)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&m.mailbox)
        .bind(&m.folder)
        .bind(uid)
        .bind(blob)
        .bind(m.bytes.len() as i64)
        .bind(m.date)
        .bind(&m.subject)
        .bind(&m.kind)
        .bind(&m.identificativo)
        .bind(&m.message_id)
        .bind(&m.flags)
        .bind(modseq)
        .bind(crate::header_block(&m.bytes))
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE mailboxes SET used_bytes = used_bytes + ?, message_count = message_count + 1 WHERE address = ?",
            )
            .bind(m.bytes.len() as i64)
            .bind(&m.mailbox)
            .execute(&mut *conn)
            .await?;
            out.stored.push(Some(uid as u32));
            if is_receipt_kind(&m.kind) {
                super::web::record_webhook(conn, m, uid, t).await?;
            }
        } else {
            out.stored.push(None);
        }
    }
    for (q, blob) in c.queue.iter().zip(queue_blobs) {
        sqlx::query(
            "INSERT INTO queue (mail_from, rcpt_to, domain, blob, bytes, created, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&q.mail_from)
        .bind(serde_json::to_string(&q.rcpt_to).unwrap_or_default())
        .bind(&q.domain)
        .bind(blob.as_deref().unwrap_or(""))
        .bind(blob.is_none().then_some(&q.bytes[..]))
        .bind(q.not_before)
        .bind(q.not_before)
        .execute(&mut *conn)
        .await?;
    }
    for (q, blob) in c.quarantine.iter().zip(quarantine_blobs) {
        sqlx::query(
            "INSERT INTO quarantine (time, identificativo, sender, recipients, engine, threat, size, blob, bytes)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t)
        .bind(&q.identificativo)
        .bind(&q.sender)
        .bind(serde_json::to_string(&q.recipients).unwrap_or_default())
        .bind(&q.engine)
        .bind(&q.threat)
        .bind(q.bytes.len() as i64)
        .bind(blob.as_deref().unwrap_or(""))
        .bind(blob.is_none().then_some(&q.bytes[..]))
        .execute(&mut *conn)
        .await?;
    }
    for r in &c.outbound_spam {
        sqlx::query(
            "INSERT INTO outbound_spam (mailbox, time, identificativo, detail) VALUES (?, ?, ?, ?)",
        )
        .bind(r.mailbox.to_ascii_lowercase())
        .bind(r.time)
        .bind(&r.identificativo)
        .bind(&r.detail)
        .execute(&mut *conn)
        .await?;
    }
    for l in &c.locks {
        // An empty hash matches no password: the mailbox cannot log in until the reset.
        sqlx::query(
            "UPDATE mailboxes SET password_hash = '', locked = 1, reset_token = ?, reset_expires = ?
             WHERE address = ?",
        )
        .bind(&l.reset_token_sha256)
        .bind(l.expires)
        .bind(l.mailbox.to_ascii_lowercase())
        .execute(&mut *conn)
        .await?;
    }
    for tr in &c.tracked {
        sqlx::query("INSERT OR IGNORE INTO tracked (identificativo, data) VALUES (?, ?)")
            .bind(&tr.identificativo)
            .bind(&tr.data)
            .execute(&mut *conn)
            .await?;
        for r in &tr.recipients {
            sqlx::query(
                "INSERT OR IGNORE INTO tracked_rcpt (identificativo, recipient) VALUES (?, ?)",
            )
            .bind(&tr.identificativo)
            .bind(r)
            .execute(&mut *conn)
            .await?;
        }
    }
    for (id, rcpt, step) in &c.progress {
        sqlx::query(
            "UPDATE tracked_rcpt SET steps = steps || ? || ',' WHERE identificativo = ? AND recipient = ?
             AND instr(steps, ? || ',') = 0",
        )
        .bind(step)
        .bind(id)
        .bind(rcpt)
        .bind(step)
        .execute(&mut *conn)
        .await?;
    }
    for d in &c.deadlines {
        sqlx::query(
            "INSERT INTO deadlines (identificativo, recipient, which, due) VALUES (?, ?, ?, ?)",
        )
        .bind(&d.identificativo)
        .bind(&d.recipient)
        .bind(&d.which)
        .bind(d.due)
        .execute(&mut *conn)
        .await?;
    }
    for e in &c.events {
        sqlx::query("INSERT INTO events (time, identificativo, json) VALUES (?, ?, ?)")
            .bind(e.time)
            .bind(&e.identificativo)
            .bind(&e.json)
            .execute(&mut *conn)
            .await?;
    }
    for id in &c.queue_done {
        sqlx::query("DELETE FROM queue WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    for id in &c.deadlines_done {
        sqlx::query("DELETE FROM deadlines WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(out)
}

/// Deletes messages by UID, shrinks the mailbox's usage, and drops in-database blobs no
/// message names any more (files stay: they may be shared and are cheap to keep).
pub(super) async fn delete(
    conn: &mut SqliteConnection,
    mailbox: String,
    folder: String,
    uids: Vec<u32>,
) -> Result<u64> {
    let mut gone = 0;
    for uid in uids {
        let row: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM messages WHERE mailbox = ? AND folder = ? AND uid = ? RETURNING blob, size",
        )
        .bind(&mailbox)
        .bind(&folder)
        .bind(i64::from(uid))
        .fetch_optional(&mut *conn)
        .await?;
        let Some((blob, size)) = row else { continue };
        gone += 1;
        sqlx::query(
            "UPDATE mailboxes SET used_bytes = max(used_bytes - ?, 0),
             message_count = max(message_count - 1, 0) WHERE address = ?",
        )
        .bind(size)
        .bind(&mailbox)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM blobs WHERE hash = ?1 AND NOT EXISTS (SELECT 1 FROM messages WHERE blob = ?1)",
        )
        .bind(&blob)
        .execute(&mut *conn)
        .await?;
    }
    if gone > 0 {
        // An expunge is a change of the folder (RFC 7162 §3.1.2).
        sqlx::query(
            "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE mailbox = ? AND name = ?",
        )
        .bind(&mailbox)
        .bind(&folder)
        .execute(&mut *conn)
        .await?;
    }
    Ok(gone)
}
