//! The SQLite side of the web services: message pages and transaction timelines for the
//! webmail and the REST API, API tokens, the TOTP secret, and webhooks with their durable
//! delivery queue.

use super::SqliteStore;
use super::db::{Conn, all};
use super::rows::rfc3339;
use crate::Result;
use crate::types::*;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension as _, Row, params, params_from_iter};

const META: &str = "m.folder, m.uid, f.uidvalidity, m.date, m.subject, m.kind, m.identificativo,
     m.size, m.blob, m.flags, m.header";

fn listed(r: &Row<'_>) -> rusqlite::Result<(ListedMessage, bool)> {
    let header: Option<Vec<u8>> = r.get("header")?;
    let flags: String = r.get("flags")?;
    let meta = super::rows::meta_row(r)?;
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

/// The rows of `sql` with `args`, as listed messages.
fn listed_rows(conn: &Conn, sql: &str, args: &[Value]) -> Result<Vec<(ListedMessage, bool)>> {
    all(conn, sql, params_from_iter(args), listed)
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
        let mut args = vec![
            Value::from(mailbox.to_string()),
            Value::from(folder.to_string()),
        ];
        if let Some(s) = &q.subject {
            cond.push_str(" AND m.subject LIKE ? ESCAPE '\\'");
            args.push(contains(s).into());
        }
        if let Some(t) = q.since {
            cond.push_str(" AND m.date >= ?");
            args.push(t.into());
        }
        if let Some(t) = q.before {
            cond.push_str(" AND m.date < ?");
            args.push(t.into());
        }
        if let Some(id) = &q.identificativo {
            cond.push_str(" AND m.identificativo = ?");
            args.push(id.clone().into());
        }
        if let Some(uid) = q.uid {
            cond.push_str(" AND m.uid = ?");
            args.push(i64::from(uid).into());
        }
        if let Some(uid) = q.after_uid {
            cond.push_str(" AND m.uid > ?");
            args.push(i64::from(uid).into());
        }
        if let Some(s) = &q.sender {
            // A coarse filter in SQL; the `From:` field itself is checked below.
            cond.push_str(" AND (m.header IS NULL OR m.header LIKE ? ESCAPE '\\')");
            args.push(contains(s).into());
        }
        let from = "FROM messages m JOIN folders f ON f.mailbox = m.mailbox AND f.name = m.folder";
        if let Some(sender) = &q.sender {
            let sql = format!("SELECT {META} {from} WHERE {cond} ORDER BY m.uid DESC");
            let mut all = self
                .readers
                .read_long(move |c| listed_rows(c, &sql, &args))
                .await?;
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
        let count = format!("SELECT count(*) {from} WHERE {cond}");
        let sql = format!(
            "SELECT {META} {from} WHERE {cond} ORDER BY m.uid DESC LIMIT {} OFFSET {}",
            q.limit.min(i64::MAX as u64),
            q.offset.min(i64::MAX as u64)
        );
        let (total, mut page) = self
            .readers
            .read_long(move |c| {
                // One read transaction: the count and the page describe one moment.
                let tx = c.unchecked_transaction()?;
                let total: i64 = tx
                    .prepare_cached(&count)?
                    .query_row(params_from_iter(&args), |r| r.get(0))?;
                let page = listed_rows(&tx, &sql, &args)?;
                tx.commit()?;
                Ok((total, page))
            })
            .await?;
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
        let sql = format!(
            "SELECT {META} FROM messages m JOIN folders f ON f.mailbox = m.mailbox AND f.name = m.folder
             WHERE m.mailbox = ? AND m.identificativo = ? ORDER BY m.date, m.id"
        );
        let args = [
            Value::from(mailbox.to_string()),
            Value::from(identificativo.to_string()),
        ];
        let mut all = self.readers.read(|c| listed_rows(c, &sql, &args))?;
        self.fill_senders(mailbox, &mut all).await?;
        Ok(all.into_iter().map(|(m, _)| m).collect())
    }

    pub(super) fn token_owner(&self, hash: &str) -> Result<Option<String>> {
        self.readers.read(|c| {
            Ok(
                c.prepare_cached("SELECT mailbox FROM api_tokens WHERE hash = ?")?
                    .query_row([hash], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    pub(super) fn webhook_of(&self, mailbox: &str) -> Result<Option<(String, String)>> {
        self.readers.read(|c| {
            Ok(
                c.prepare_cached("SELECT url, secret FROM webhooks WHERE mailbox = ?")?
                    .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            )
        })
    }
}

/// Records the webhook event of a receipt stored in the same transaction, when its mailbox
/// has a webhook (the event is durable exactly when the receipt is); it is due at once.
/// Returns how many were recorded (0 or 1).
pub(super) fn record_webhook(conn: &Conn, m: &NewMessage, uid: i64, now: i64) -> Result<usize> {
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
    Ok(conn
        .prepare_cached(
            "INSERT INTO webhook_deliveries (mailbox, body, created, next_attempt)
             SELECT mailbox, ?, ?, 0 FROM webhooks WHERE mailbox = ?",
        )?
        .execute(params![body, now, &m.mailbox])?)
}

pub(super) fn create_token(
    conn: &Conn,
    hash: &str,
    mailbox: &str,
    label: &str,
    now: i64,
) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO api_tokens (hash, mailbox, label, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )?
        .execute(params![hash, mailbox, label, now])?)
}

pub(super) fn set_totp(conn: &Conn, mailbox: &str, secret: Option<&str>) -> Result<bool> {
    let n = conn
        .prepare_cached("UPDATE mailboxes SET totp_secret = ? WHERE address = ?")?
        .execute(params![secret, mailbox])?;
    Ok(n == 1)
}

pub(super) fn set_webhook(conn: &Conn, mailbox: &str, hook: Option<(&str, &str)>) -> Result<()> {
    match hook {
        Some((url, secret)) => {
            conn.prepare_cached(
                "INSERT INTO webhooks (mailbox, url, secret) VALUES (?, ?, ?)
                 ON CONFLICT (mailbox) DO UPDATE SET url = excluded.url, secret = excluded.secret",
            )?
            .execute(params![mailbox, url, secret])?;
        }
        None => {
            conn.prepare_cached("DELETE FROM webhooks WHERE mailbox = ?")?
                .execute([mailbox])?;
            conn.prepare_cached("DELETE FROM webhook_deliveries WHERE mailbox = ?")?
                .execute([mailbox])?;
        }
    }
    Ok(())
}

/// id, mailbox, body, attempts, created, url, secret.
type DeliveryRow = (
    i64,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

pub(super) fn lease_webhooks(
    conn: &Conn,
    now: i64,
    lease_secs: i64,
    max: usize,
) -> Result<Vec<WebhookDelivery>> {
    let rows: Vec<DeliveryRow> = all(
        conn,
        "UPDATE webhook_deliveries SET lease_until = ?1 + ?2
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE next_attempt <= ?1 AND lease_until <= ?1 ORDER BY id LIMIT ?3)
         RETURNING id, mailbox, body, attempts, created,
                   (SELECT url FROM webhooks w WHERE w.mailbox = webhook_deliveries.mailbox),
                   (SELECT secret FROM webhooks w WHERE w.mailbox = webhook_deliveries.mailbox)",
        params![now, lease_secs, max as i64],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, mailbox, body, attempts, created, url, secret) in rows {
        let (Some(url), Some(secret)) = (url, secret) else {
            // The webhook went away: nothing to deliver.
            conn.prepare_cached("DELETE FROM webhook_deliveries WHERE id = ?")?
                .execute([id])?;
            continue;
        };
        out.push(WebhookDelivery {
            id,
            mailbox,
            url,
            secret,
            body,
            attempts: attempts as u32,
            created,
        });
    }
    out.sort_by_key(|d| d.id);
    Ok(out)
}

pub(super) fn finish_webhook(
    conn: &Conn,
    id: i64,
    retry_at: Option<i64>,
    error: &str,
) -> Result<()> {
    match retry_at {
        Some(t) => {
            conn.prepare_cached(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt = ?,
                 lease_until = 0, last_error = ? WHERE id = ?",
            )?
            .execute(params![t, error, id])?;
        }
        None => {
            conn.prepare_cached("DELETE FROM webhook_deliveries WHERE id = ?")?
                .execute([id])?;
        }
    }
    Ok(())
}
