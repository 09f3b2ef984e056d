//! The SQLite side of the web services: message pages and transaction timelines for the
//! webmail and the REST API, API tokens, the TOTP secret, and webhooks with their durable
//! delivery queue.

use super::{SqliteStore, rfc3339};
use crate::Result;
use crate::types::*;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

const META: &str = "m.folder, m.uid, f.uidvalidity, m.date, m.subject, m.kind, m.identificativo,
     m.size, m.blob, m.flags, m.header";

fn listed(r: &SqliteRow) -> Result<(ListedMessage, bool)> {
    let header: Option<Vec<u8>> = r.try_get("header")?;
    let flags: String = r.try_get("flags")?;
    let meta = super::meta_row(r)?;
    let from = header
        .as_deref()
        .and_then(|h| header_field(h, "From"))
        .unwrap_or_default();
    Ok((
        ListedMessage {
            meta,
            from,
            flags: flags.split_whitespace().map(str::to_string).collect(),
        },
        header.is_none(),
    ))
}

/// `LIKE` pattern for "contains `text`", with the wildcards in `text` escaped (`\`).
fn contains(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl SqliteStore {
    /// Fills `from` of rows stored before the header column existed.
    async fn fill_senders(&self, mailbox: &str, rows: &mut [(ListedMessage, bool)]) -> Result<()> {
        let mut missing: Vec<(String, u32)> = rows
            .iter()
            .filter(|(_, no_header)| *no_header)
            .map(|(m, _)| (m.meta.folder.clone(), m.meta.uid))
            .collect();
        missing.sort();
        for (folder, uid) in missing {
            let headers = self.headers(mailbox, &folder, &[uid]).await?;
            if let Some((_, h)) = headers.first()
                && let Some(row) = rows
                    .iter_mut()
                    .find(|(m, _)| m.meta.folder == folder && m.meta.uid == uid)
            {
                row.0.from = header_field(h, "From").unwrap_or_default();
            }
        }
        Ok(())
    }

    pub(super) async fn page_of(&self, mailbox: &str, folder: &str, q: &PageQuery) -> Result<Page> {
        let mut cond = String::from("m.mailbox = ? AND m.folder = ?");
        if q.subject.is_some() {
            cond.push_str(" AND m.subject LIKE ? ESCAPE '\\'");
        }
        if q.since.is_some() {
            cond.push_str(" AND m.date >= ?");
        }
        if q.before.is_some() {
            cond.push_str(" AND m.date < ?");
        }
        if q.identificativo.is_some() {
            cond.push_str(" AND m.identificativo = ?");
        }
        if q.uid.is_some() {
            cond.push_str(" AND m.uid = ?");
        }
        if q.sender.is_some() {
            // A coarse filter in SQL; the `From:` field itself is checked below.
            cond.push_str(" AND (m.header IS NULL OR m.header LIKE ? ESCAPE '\\')");
        }
        let bind_all = |sql: String| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(mailbox.to_string())
                .bind(folder.to_string());
            if let Some(s) = &q.subject {
                query = query.bind(contains(s));
            }
            if let Some(t) = q.since {
                query = query.bind(t);
            }
            if let Some(t) = q.before {
                query = query.bind(t);
            }
            if let Some(id) = &q.identificativo {
                query = query.bind(id.clone());
            }
            if let Some(uid) = q.uid {
                query = query.bind(i64::from(uid));
            }
            if let Some(s) = &q.sender {
                query = query.bind(contains(s));
            }
            query
        };
        let from = "FROM messages m JOIN folders f ON f.mailbox = m.mailbox AND f.name = m.folder";
        if let Some(sender) = &q.sender {
            let rows = bind_all(format!(
                "SELECT {META} {from} WHERE {cond} ORDER BY m.uid DESC"
            ))
            .fetch_all(&self.readers)
            .await?;
            let mut all = rows.iter().map(listed).collect::<Result<Vec<_>>>()?;
            self.fill_senders(mailbox, &mut all).await?;
            let needle = sender.to_lowercase();
            let matching: Vec<ListedMessage> = all
                .into_iter()
                .map(|(m, _)| m)
                .filter(|m| m.from.to_lowercase().contains(&needle))
                .collect();
            return Ok(Page {
                total: matching.len() as u64,
                messages: matching
                    .into_iter()
                    .skip(q.offset as usize)
                    .take(q.limit as usize)
                    .collect(),
            });
        }
        let total: i64 = bind_all(format!("SELECT count(*) {from} WHERE {cond}"))
            .fetch_one(&self.readers)
            .await?
            .try_get(0)?;
        let rows = bind_all(format!(
            "SELECT {META} {from} WHERE {cond} ORDER BY m.uid DESC LIMIT {} OFFSET {}",
            q.limit.min(i64::MAX as u64),
            q.offset.min(i64::MAX as u64)
        ))
        .fetch_all(&self.readers)
        .await?;
        let mut page = rows.iter().map(listed).collect::<Result<Vec<_>>>()?;
        self.fill_senders(mailbox, &mut page).await?;
        Ok(Page {
            total: total as u64,
            messages: page.into_iter().map(|(m, _)| m).collect(),
        })
    }

    pub(super) async fn transaction_of(
        &self,
        mailbox: &str,
        identificativo: &str,
    ) -> Result<Vec<ListedMessage>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {META} FROM messages m JOIN folders f ON f.mailbox = m.mailbox AND f.name = m.folder
             WHERE m.mailbox = ? AND m.identificativo = ? ORDER BY m.date, m.id"
        )))
        .bind(mailbox)
        .bind(identificativo)
        .fetch_all(&self.readers)
        .await?;
        let mut all = rows.iter().map(listed).collect::<Result<Vec<_>>>()?;
        self.fill_senders(mailbox, &mut all).await?;
        Ok(all.into_iter().map(|(m, _)| m).collect())
    }

    pub(super) async fn token_owner(&self, hash: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT mailbox FROM api_tokens WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&self.readers)
                .await?,
        )
    }

    pub(super) async fn webhook_of(&self, mailbox: &str) -> Result<Option<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT url, secret FROM webhooks WHERE mailbox = ?")
                .bind(mailbox)
                .fetch_optional(&self.readers)
                .await?,
        )
    }
}

/// Records the webhook event of a receipt stored in the same transaction, when its mailbox
/// has a webhook (the event is durable exactly when the receipt is); it is due at once.
pub(super) async fn record_webhook(
    conn: &mut SqliteConnection,
    m: &NewMessage,
    uid: i64,
    now: i64,
) -> Result<()> {
    let body = serde_json::json!({
        "event": "receipt",
        "mailbox": m.mailbox.to_ascii_lowercase(),
        "kind": m.kind,
        "identificativo": m.identificativo,
        "folder": m.folder,
        "uid": uid,
        "subject": m.subject,
        "date": rfc3339(m.date),
    })
    .to_string();
    sqlx::query(
        "INSERT INTO webhook_deliveries (mailbox, body, created, next_attempt)
         SELECT mailbox, ?, ?, 0 FROM webhooks WHERE mailbox = ?",
    )
    .bind(body)
    .bind(now)
    .bind(&m.mailbox)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn create_token(
    conn: &mut SqliteConnection,
    hash: String,
    mailbox: String,
    label: String,
    now: i64,
) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO api_tokens (hash, mailbox, label, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(hash)
    .bind(mailbox)
    .bind(label)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

pub(super) async fn set_totp(
    conn: &mut SqliteConnection,
    mailbox: String,
    secret: Option<String>,
) -> Result<bool> {
    let r = sqlx::query("UPDATE mailboxes SET totp_secret = ? WHERE address = ?")
        .bind(secret)
        .bind(mailbox)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub(super) async fn set_webhook(
    conn: &mut SqliteConnection,
    mailbox: String,
    hook: Option<(String, String)>,
) -> Result<()> {
    match hook {
        Some((url, secret)) => {
            sqlx::query(
                "INSERT INTO webhooks (mailbox, url, secret) VALUES (?, ?, ?)
                 ON CONFLICT (mailbox) DO UPDATE SET url = excluded.url, secret = excluded.secret",
            )
            .bind(mailbox)
            .bind(url)
            .bind(secret)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM webhooks WHERE mailbox = ?")
                .bind(&mailbox)
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE mailbox = ?")
                .bind(&mailbox)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

pub(super) async fn lease_webhooks(
    conn: &mut SqliteConnection,
    now: i64,
    lease_secs: i64,
    max: usize,
) -> Result<Vec<WebhookDelivery>> {
    let rows = sqlx::query(
        "UPDATE webhook_deliveries SET lease_until = ?1 + ?2
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE next_attempt <= ?1 AND lease_until <= ?1 ORDER BY id LIMIT ?3)
         RETURNING id, mailbox, body, attempts, created,
                   (SELECT url FROM webhooks w WHERE w.mailbox = webhook_deliveries.mailbox) AS url,
                   (SELECT secret FROM webhooks w WHERE w.mailbox = webhook_deliveries.mailbox) AS secret",
    )
    .bind(now)
    .bind(lease_secs)
    .bind(max as i64)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (url, secret): (Option<String>, Option<String>) =
            (r.try_get("url")?, r.try_get("secret")?);
        let id: i64 = r.try_get("id")?;
        let (Some(url), Some(secret)) = (url, secret) else {
            // The webhook went away: nothing to deliver.
            sqlx::query("DELETE FROM webhook_deliveries WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            continue;
        };
        out.push(WebhookDelivery {
            id,
            mailbox: r.try_get("mailbox")?,
            url,
            secret,
            body: r.try_get("body")?,
            attempts: r.try_get::<i64, _>("attempts")? as u32,
            created: r.try_get("created")?,
        });
    }
    out.sort_by_key(|d| d.id);
    Ok(out)
}

pub(super) async fn finish_webhook(
    conn: &mut SqliteConnection,
    id: i64,
    retry_at: Option<i64>,
    error: String,
) -> Result<()> {
    match retry_at {
        Some(t) => {
            sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt = ?,
                 lease_until = 0, last_error = ? WHERE id = ?",
            )
            .bind(t)
            .bind(error)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM webhook_deliveries WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
