//! The SQLite side of the security services (product.md §4): mailbox settings, the outbound
//! spam log, password resets after a lockout, and the virus store's retention purge.

use super::db::{Conn, all};
use crate::Result;
use crate::types::MailboxSettings;
use rusqlite::{OptionalExtension as _, params};

/// Applies the settings that are given; `false` when there is no such mailbox.
pub(super) fn update_mailbox(conn: &Conn, address: &str, s: &MailboxSettings) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE mailboxes SET
                spam_policy = coalesce(?, spam_policy),
                contact = CASE WHEN ? THEN nullif(?, '') ELSE contact END,
                ordinary_policy = coalesce(?, ordinary_policy)
             WHERE address = ?",
        )?
        .execute(params![
            &s.spam_policy,
            s.contact.is_some(),
            &s.contact,
            &s.ordinary_policy,
            address
        ])?;
    Ok(n == 1)
}

/// Spam submissions of `mailbox` logged at or after `since`.
pub(super) fn outbound_spam_count(conn: &Conn, mailbox: &str, since: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbound_spam WHERE mailbox = ? AND time >= ?")?
        .query_row(params![mailbox.to_ascii_lowercase(), since], |r| r.get(0))?;
    Ok(n as u64)
}

/// The mailbox holding the reset token, if it has not expired.
pub(super) fn reset_token_owner(
    conn: &Conn,
    token_sha256: &str,
    now: i64,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT address FROM mailboxes WHERE reset_token = ? AND reset_expires >= ?",
        )?
        .query_row(params![token_sha256, now], |r| r.get(0))
        .optional()?)
}

/// Sets a new password on the mailbox holding the reset token, if it has not expired, and
/// unlocks it; the token is spent. Returns the mailbox.
pub(super) fn reset_password(
    conn: &Conn,
    token_sha256: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "UPDATE mailboxes SET password_hash = ?, locked = 0, reset_token = NULL, reset_expires = NULL
             WHERE reset_token = ? AND reset_expires >= ? RETURNING address",
        )?
        .query_row(params![password_hash, token_sha256, now], |r| r.get(0))
        .optional()?)
}

/// Sets a password chosen by the operator and unlocks the mailbox; `false` when there is no
/// such mailbox.
pub(super) fn set_password(conn: &Conn, address: &str, password_hash: &str) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE mailboxes SET password_hash = ?, locked = 0, reset_token = NULL, reset_expires = NULL
             WHERE address = ? AND service = 0",
        )?
        .execute(params![password_hash, address])?;
    Ok(n == 1)
}

/// Removes the virus store's entries stored before `before`; returns how many went and the
/// blob files no row names any more, for the caller to delete after the commit.
pub(super) fn purge_quarantine(conn: &Conn, before: i64) -> Result<(u64, Vec<String>)> {
    let blobs: Vec<String> = all(
        conn,
        "DELETE FROM quarantine WHERE time < ? RETURNING blob",
        [before],
        |r| r.get(0),
    )?;
    let gone = blobs.len() as u64;
    let mut orphans = Vec::new();
    for b in blobs.into_iter().filter(|b| !b.is_empty()) {
        let named: i64 = conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM quarantine WHERE blob = ?1)
                      + (SELECT count(*) FROM messages WHERE blob = ?1 AND body IS NULL)
                      + (SELECT count(*) FROM queue WHERE blob = ?1)",
            )?
            .query_row([&b], |r| r.get(0))?;
        if named == 0 && !orphans.contains(&b) {
            orphans.push(b);
        }
    }
    Ok((gone, orphans))
}
