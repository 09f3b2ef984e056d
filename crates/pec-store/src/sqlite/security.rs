//! The SQLite side of the security services (product.md §4): mailbox settings, the outbound
//! spam log, password resets after a lockout, and the virus store's retention purge.

use crate::Result;
use crate::types::MailboxSettings;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;

/// Applies the settings that are given; `false` when there is no such mailbox.
pub(super) async fn update_mailbox(
    conn: &mut SqliteConnection,
    address: String,
    s: MailboxSettings,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE mailboxes SET
            spam_policy = coalesce(?, spam_policy),
            contact = CASE WHEN ? THEN nullif(?, '') ELSE contact END,
            ordinary_policy = coalesce(?, ordinary_policy)
         WHERE address = ?",
    )
    .bind(&s.spam_policy)
    .bind(s.contact.is_some())
    .bind(&s.contact)
    .bind(&s.ordinary_policy)
    .bind(&address)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Spam submissions of `mailbox` logged at or after `since`.
pub(super) async fn outbound_spam_count(
    readers: &SqlitePool,
    mailbox: &str,
    since: i64,
) -> Result<u64> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbound_spam WHERE mailbox = ? AND time >= ?")
            .bind(mailbox.to_ascii_lowercase())
            .bind(since)
            .fetch_one(readers)
            .await?;
    Ok(n as u64)
}

/// Sets a new password on the mailbox holding the reset token, if it has not expired, and
/// unlocks it; the token is spent. Returns the mailbox.
pub(super) async fn reset_password(
    conn: &mut SqliteConnection,
    token_sha256: String,
    password_hash: String,
    now: i64,
) -> Result<Option<String>> {
    let address: Option<String> = sqlx::query_scalar(
        "UPDATE mailboxes SET password_hash = ?, locked = 0, reset_token = NULL, reset_expires = NULL
         WHERE reset_token = ? AND reset_expires >= ? RETURNING address",
    )
    .bind(&password_hash)
    .bind(&token_sha256)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(address)
}

/// Sets a password chosen by the operator and unlocks the mailbox; `false` when there is no
/// such mailbox.
pub(super) async fn set_password(
    conn: &mut SqliteConnection,
    address: String,
    password_hash: String,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE mailboxes SET password_hash = ?, locked = 0, reset_token = NULL, reset_expires = NULL
         WHERE address = ? AND service = 0",
    )
    .bind(&password_hash)
    .bind(&address)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes the virus store's entries stored before `before`; returns how many went and the
/// blob files no row names any more, for the caller to delete after the commit.
pub(super) async fn purge_quarantine(
    conn: &mut SqliteConnection,
    before: i64,
) -> Result<(u64, Vec<String>)> {
    let blobs: Vec<String> =
        sqlx::query_scalar("DELETE FROM quarantine WHERE time < ? RETURNING blob")
            .bind(before)
            .fetch_all(&mut *conn)
            .await?;
    let gone = blobs.len() as u64;
    let mut orphans = Vec::new();
    for b in blobs.into_iter().filter(|b| !b.is_empty()) {
        let named: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM quarantine WHERE blob = ?1)
                  + (SELECT count(*) FROM messages WHERE blob = ?1)
                  + (SELECT count(*) FROM queue WHERE blob = ?1)",
        )
        .bind(&b)
        .fetch_one(&mut *conn)
        .await?;
        if named == 0 && !orphans.contains(&b) {
            orphans.push(b);
        }
    }
    Ok((gone, orphans))
}
