//! The embedded backend: SQLite (WAL, `synchronous = FULL`) for metadata and
//! [`crate::blobs::Blobs`] files for message bytes. One writer thread applies every write,
//! grouping concurrent steps into one transaction ([`writer`]); readers use a pool and see
//! committed data only.

mod commit;
mod folders;
mod reads;
mod schema;
mod security;
mod web;
mod writer;

use crate::blobs::Blobs;
use crate::types::*;
use crate::{Result, Store, StoreError};
use commit::MessageBlob;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use std::path::Path;
use std::time::Duration;
use writer::Writer;

/// SQLite + local files.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: SqlitePool,
    blobs: Blobs,
    changes: tokio::sync::broadcast::Sender<String>,
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the store in `dir`: `dir/pec.sqlite` and
    /// `dir/blobs/`.
    pub async fn open(dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Blob(format!("cannot create {}: {e}", dir.display())))?;
        let db = dir.join("pec.sqlite");
        let writer = Writer::start(options(&db), |conn| Box::pin(migrate(conn))).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options(&db).read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            readers,
            blobs: Blobs::local(&dir.join("blobs"))?,
            changes: tokio::sync::broadcast::channel(1024).0,
        })
    }
}

async fn migrate(conn: &mut SqliteConnection) -> Result<()> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
        let n = i as i64 + 1;
        if n <= version {
            continue;
        }
        let mut tx = conn.begin().await?;
        // Both strings are constants of this crate (the migration text and an integer).
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {n}")))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn mailbox_row(r: &sqlx::sqlite::SqliteRow) -> Result<Mailbox> {
    Ok(Mailbox {
        address: r.try_get("address")?,
        password_hash: r.try_get("password_hash")?,
        quota_bytes: r.try_get::<i64, _>("quota_bytes")? as u64,
        used_bytes: r.try_get::<i64, _>("used_bytes")? as u64,
        messages: r.try_get::<i64, _>("message_count")? as u64,
        ordinary_policy: r.try_get("ordinary_policy")?,
        service: r.try_get::<i64, _>("service")? != 0,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        spam_policy: r.try_get("spam_policy")?,
        contact: r.try_get("contact")?,
        locked: r.try_get::<i64, _>("locked")? != 0,
        totp_secret: r.try_get("totp_secret")?,
    })
}

/// A message row (`folder`, `uid`, the folder's `uidvalidity`, `date`, `subject`, `kind`,
/// `identificativo`, `size`, `blob`) as [`MessageMeta`].
pub(super) fn meta_row(r: &sqlx::sqlite::SqliteRow) -> Result<MessageMeta> {
    Ok(MessageMeta {
        folder: r.try_get("folder")?,
        uid: r.try_get::<i64, _>("uid")? as u32,
        uidvalidity: r.try_get::<i64, _>("uidvalidity")? as u32,
        date: rfc3339(r.try_get("date")?),
        subject: r.try_get("subject")?,
        kind: r.try_get("kind")?,
        identificativo: r.try_get("identificativo")?,
        size: r.try_get::<i64, _>("size")? as u64,
        blob: r.try_get("blob")?,
    })
}

pub(super) fn folder_row(r: &sqlx::sqlite::SqliteRow) -> Result<Folder> {
    Ok(Folder {
        name: r.try_get("name")?,
        uidvalidity: r.try_get::<i64, _>("uidvalidity")? as u32,
        uidnext: r.try_get::<i64, _>("uidnext")? as u32,
        highest_modseq: r.try_get::<i64, _>("highestmodseq")? as u64,
        messages: r.try_get::<i64, _>("messages")? as u32,
        unseen: r.try_get::<i64, _>("unseen")? as u32,
        subscribed: r.try_get::<i64, _>("subscribed")? != 0,
    })
}

impl SqliteStore {
    /// Tells the watchers of [`Store::changes`] that `mailbox` changed (nobody listening is
    /// fine).
    fn changed(&self, mailbox: String) {
        let _ = self.changes.send(mailbox);
    }
}

impl Store for SqliteStore {
    async fn create_mailbox(&self, m: NewMailbox) -> Result<()> {
        let address = m.address.to_ascii_lowercase();
        let shown = m.address.clone();
        let inserted = self
            .writer
            .run(move |w| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO mailboxes (address, password_hash, quota_bytes, ordinary_policy, service, created,
                                                spam_policy, contact)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(&address)
                    .bind(&m.password_hash)
                    .bind(m.quota_bytes as i64)
                    .bind(&m.ordinary_policy)
                    .bind(i64::from(m.service))
                    .bind(now())
                    .bind(if m.spam_policy.is_empty() {
                        "junk"
                    } else {
                        m.spam_policy.as_str()
                    })
                    .bind(m.contact.as_deref().filter(|c| !c.is_empty()))
                    .execute(&mut *w)
                    .await?;
                    if r.rows_affected() == 1 {
                        folders::create_standard(w, &address).await?;
                    }
                    Ok(r.rows_affected())
                })
            })
            .await?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(format!("mailbox {shown}")));
        }
        Ok(())
    }

    async fn mailbox(&self, address: &str) -> Result<Option<Mailbox>> {
        let r = sqlx::query("SELECT * FROM mailboxes WHERE address = ?")
            .bind(address)
            .fetch_optional(&self.readers)
            .await?;
        r.as_ref().map(mailbox_row).transpose()
    }

    async fn mailboxes(&self) -> Result<Vec<Mailbox>> {
        let rows = sqlx::query("SELECT * FROM mailboxes ORDER BY address")
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(mailbox_row).collect()
    }

    async fn messages(&self, mailbox: &str) -> Result<Vec<MessageMeta>> {
        let rows = sqlx::query(
            "SELECT m.folder, m.uid, f.uidvalidity, m.date, m.subject, m.kind, m.identificativo,
                    m.size, m.blob
             FROM messages m JOIN folders f ON f.mailbox = m.mailbox AND f.name = m.folder
             WHERE m.mailbox = ? ORDER BY m.folder, m.uid",
        )
        .bind(mailbox)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(meta_row).collect()
    }

    async fn message_bytes(
        &self,
        mailbox: &str,
        folder: &str,
        uid: u32,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .wholes(mailbox, folder, &[uid])
            .await?
            .pop()
            .map(|(_, b)| b))
    }

    async fn messages_bytes(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
        portion: Portion,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut wanted = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        match portion {
            Portion::Header => self.headers(mailbox, folder, &wanted).await,
            Portion::Whole => self.wholes(mailbox, folder, &wanted).await,
        }
    }

    async fn delete_messages(&self, mailbox: &str, folder: &str, uids: &[u32]) -> Result<u64> {
        let mailbox = mailbox.to_ascii_lowercase();
        let folder = folder.to_string();
        let uids = uids.to_vec();
        let m = mailbox.clone();
        let gone = self
            .writer
            .run(move |w| Box::pin(commit::delete(w, m, folder, uids)))
            .await?;
        self.changed(mailbox);
        Ok(gone)
    }

    async fn folders(&self, mailbox: &str) -> Result<Vec<Folder>> {
        let rows = sqlx::query(
            "SELECT f.name, f.uidvalidity, f.uidnext, f.highestmodseq, f.subscribed,
                    count(m.uid) AS messages,
                    coalesce(sum(instr(m.flags, '\\Seen') = 0), 0) AS unseen
             FROM folders f LEFT JOIN messages m ON m.mailbox = f.mailbox AND m.folder = f.name
             WHERE f.mailbox = ? GROUP BY f.name ORDER BY f.name",
        )
        .bind(mailbox)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(folder_row).collect()
    }

    async fn folder_version(&self, mailbox: &str, folder: &str) -> Result<Option<FolderVersion>> {
        reads::folder_version(&self.readers, mailbox, folder).await
    }

    async fn folder_changes(
        &self,
        mailbox: &str,
        folder: &str,
        since: u64,
    ) -> Result<Option<(Folder, Vec<IndexEntry>, u32)>> {
        reads::folder_changes(&self.readers, mailbox, folder, since).await
    }

    async fn folder_index(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(Folder, Vec<IndexEntry>)>> {
        reads::folder_index(&self.readers, mailbox, folder).await
    }

    async fn create_folder(&self, mailbox: &str, name: &str) -> Result<()> {
        let (mailbox, name) = (mailbox.to_ascii_lowercase(), name.to_string());
        self.writer
            .run(move |w| Box::pin(folders::create(w, mailbox, name)))
            .await
    }

    async fn delete_folder(&self, mailbox: &str, name: &str) -> Result<()> {
        let (mailbox, name) = (mailbox.to_ascii_lowercase(), name.to_string());
        let m = mailbox.clone();
        self.writer
            .run(move |w| Box::pin(folders::delete(w, m, name)))
            .await?;
        self.changed(mailbox);
        Ok(())
    }

    async fn rename_folder(&self, mailbox: &str, from: &str, to: &str) -> Result<()> {
        let (mailbox, from, to) = (
            mailbox.to_ascii_lowercase(),
            from.to_string(),
            to.to_string(),
        );
        let m = mailbox.clone();
        self.writer
            .run(move |w| Box::pin(folders::rename(w, m, from, to)))
            .await?;
        self.changed(mailbox);
        Ok(())
    }

    async fn subscribe_folder(&self, mailbox: &str, name: &str, on: bool) -> Result<()> {
        let (mailbox, name) = (mailbox.to_ascii_lowercase(), name.to_string());
        self.writer
            .run(move |w| Box::pin(folders::subscribe(w, mailbox, name, on)))
            .await
    }

    async fn set_flags(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<FlagsChanged> {
        let (mailbox, folder) = (mailbox.to_ascii_lowercase(), folder.to_string());
        let (uids, flags) = (uids.to_vec(), flags.to_vec());
        let m = mailbox.clone();
        let out = self
            .writer
            .run(move |w| {
                Box::pin(folders::set_flags(
                    w,
                    m,
                    folder,
                    uids,
                    op,
                    flags,
                    unchanged_since,
                ))
            })
            .await?;
        if !out.changed.is_empty() {
            self.changed(mailbox);
        }
        Ok(out)
    }

    async fn copy_messages(
        &self,
        mailbox: &str,
        from: &str,
        uids: &[u32],
        to: &str,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>> {
        let (mailbox, from, to) = (
            mailbox.to_ascii_lowercase(),
            from.to_string(),
            to.to_string(),
        );
        let uids = uids.to_vec();
        let m = mailbox.clone();
        let out = self
            .writer
            .run(move |w| Box::pin(folders::copy(w, m, from, uids, to, remove)))
            .await?;
        if !out.is_empty() {
            self.changed(mailbox);
        }
        Ok(out)
    }

    async fn append(&self, mut a: Append) -> Result<(u32, u32)> {
        a.mailbox = a.mailbox.to_ascii_lowercase();
        let mailbox = a.mailbox.clone();
        // Blob first: a committed row never names a missing blob.
        let (blob, inline) = match a.bytes.len() > commit::BLOB_INLINE_MAX {
            true => (self.blobs.put(&a.bytes).await?, false),
            false => (crate::blobs::address(&a.bytes), true),
        };
        let out = self
            .writer
            .run(move |w| Box::pin(folders::append(w, a, blob, inline)))
            .await?;
        self.changed(mailbox);
        Ok(out)
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    async fn has_message_id(&self, mailbox: &str, message_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages WHERE mailbox = ? AND message_id = ?",
        )
        .bind(mailbox)
        .bind(message_id)
        .fetch_one(&self.readers)
        .await?;
        Ok(n > 0)
    }

    async fn commit(&self, c: Commit) -> Result<Committed> {
        // Blobs first: a committed row never names a missing blob.
        let puts = c.messages.iter().map(|m| async move {
            match m.bytes.len() > commit::BLOB_INLINE_MAX {
                true => self.blobs.put(&m.bytes).await.map(MessageBlob::File),
                false => Ok(MessageBlob::Inline(crate::blobs::address(&m.bytes))),
            }
        });
        let blobs = futures::future::try_join_all(puts).await?;
        let big = c.queue.iter().map(|q| async move {
            match q.bytes.len() > commit::QUEUE_INLINE_MAX {
                true => self.blobs.put(&q.bytes).await.map(Some),
                false => Ok(None),
            }
        });
        let queue_blobs = futures::future::try_join_all(big).await?;
        let infected = c.quarantine.iter().map(|q| async move {
            match q.bytes.len() > commit::QUEUE_INLINE_MAX {
                true => self.blobs.put(&q.bytes).await.map(Some),
                false => Ok(None),
            }
        });
        let quarantine_blobs = futures::future::try_join_all(infected).await?;
        let touched: std::collections::BTreeSet<String> = c
            .messages
            .iter()
            .map(|m| m.mailbox.to_ascii_lowercase())
            .collect();
        let out = self
            .writer
            .run(move |w| {
                Box::pin(async move {
                    commit::apply(w, &c, &blobs, &queue_blobs, &quarantine_blobs).await
                })
            })
            .await?;
        for m in touched {
            self.changed(m);
        }
        Ok(out)
    }

    async fn lease_queue(&self, now: i64, lease_secs: i64, max: usize) -> Result<Vec<QueueEntry>> {
        let rows = self
            .writer
            .run(move |w| {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "UPDATE queue SET lease_until = ?, attempts = attempts + 1 WHERE id IN
                         (SELECT id FROM queue WHERE next_attempt <= ? AND lease_until <= ? ORDER BY next_attempt, id LIMIT ?)
                         RETURNING id, mail_from, rcpt_to, domain, blob, bytes, created, attempts, last_error",
                    )
                    .bind(now + lease_secs)
                    .bind(now)
                    .bind(now)
                    .bind(max as i64)
                    .fetch_all(&mut *w)
                    .await?)
                })
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let rcpt: String = r.try_get("rcpt_to")?;
            let inline: Option<Vec<u8>> = r.try_get("bytes")?;
            let bytes = match inline {
                Some(b) => b,
                None => self.blobs.get(&r.try_get::<String, _>("blob")?).await?,
            };
            out.push(QueueEntry {
                id: r.try_get("id")?,
                mail_from: r.try_get("mail_from")?,
                rcpt_to: serde_json::from_str(&rcpt)
                    .map_err(|e| StoreError::Corrupt(format!("queue rcpt_to: {e}")))?,
                domain: r.try_get("domain")?,
                bytes,
                created: r.try_get("created")?,
                attempts: r.try_get::<i64, _>("attempts")? as u32,
                last_error: r.try_get("last_error")?,
            });
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    async fn retry_queue(
        &self,
        id: i64,
        rcpt_to: Vec<String>,
        next_attempt: i64,
        error: &str,
    ) -> Result<()> {
        let rcpt_to = serde_json::to_string(&rcpt_to)
            .map_err(|e| StoreError::Corrupt(format!("queue rcpt_to: {e}")))?;
        let error = error.to_string();
        self.writer
            .run(move |w| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE queue SET rcpt_to = ?, next_attempt = ?, lease_until = 0, last_error = ? WHERE id = ?",
                    )
                    .bind(&rcpt_to)
                    .bind(next_attempt)
                    .bind(&error)
                    .bind(id)
                    .execute(&mut *w)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn lease_deadlines(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> Result<Vec<DueDeadline>> {
        let rows = self
            .writer
            .run(move |w| {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "UPDATE deadlines SET lease_until = ? WHERE id IN
                         (SELECT id FROM deadlines WHERE due <= ? AND lease_until <= ? ORDER BY due, id LIMIT ?)
                         RETURNING id, identificativo, recipient, which, due",
                    )
                    .bind(now + lease_secs)
                    .bind(now)
                    .bind(now)
                    .bind(max as i64)
                    .fetch_all(&mut *w)
                    .await?)
                })
            })
            .await?;
        let mut out: Vec<DueDeadline> = rows
            .iter()
            .map(|r| {
                Ok(DueDeadline {
                    id: r.try_get("id")?,
                    identificativo: r.try_get("identificativo")?,
                    recipient: r.try_get("recipient")?,
                    which: r.try_get("which")?,
                    due: r.try_get("due")?,
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|d| (d.due, d.id));
        Ok(out)
    }

    async fn tracked(&self, identificativo: &str) -> Result<Option<Tracked>> {
        let data: Option<String> =
            sqlx::query_scalar("SELECT data FROM tracked WHERE identificativo = ?")
                .bind(identificativo)
                .fetch_optional(&self.readers)
                .await?;
        let Some(data) = data else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT recipient, steps FROM tracked_rcpt WHERE identificativo = ? ORDER BY rowid",
        )
        .bind(identificativo)
        .fetch_all(&self.readers)
        .await?;
        let recipients = rows
            .iter()
            .map(|r| {
                let steps: String = r.try_get("steps")?;
                Ok((
                    r.try_get("recipient")?,
                    steps
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Some(Tracked { data, recipients }))
    }

    async fn events(
        &self,
        after: i64,
        identificativo: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>> {
        let rows = sqlx::query(
            "SELECT seq, time, identificativo, json FROM events
             WHERE seq > ? AND (? IS NULL OR identificativo = ?) ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(identificativo)
        .bind(identificativo)
        .bind(limit as i64)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoggedEvent {
                    seq: r.try_get("seq")?,
                    time: r.try_get("time")?,
                    identificativo: r.try_get("identificativo")?,
                    json: r.try_get("json")?,
                })
            })
            .collect()
    }

    async fn release_leases(&self) -> Result<()> {
        self.writer
            .run(|w| {
                Box::pin(async move {
                    sqlx::query("UPDATE queue SET lease_until = 0")
                        .execute(&mut *w)
                        .await?;
                    sqlx::query("UPDATE deadlines SET lease_until = 0")
                        .execute(&mut *w)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn quarantined(&self, since: i64) -> Result<Vec<Quarantined>> {
        reads::quarantined(&self.readers, since).await
    }

    async fn purge_quarantine(&self, before: i64) -> Result<u64> {
        let (gone, orphans) = self
            .writer
            .run(move |w| Box::pin(security::purge_quarantine(w, before)))
            .await?;
        for b in orphans {
            self.blobs.delete(&b).await?;
        }
        Ok(gone)
    }

    async fn update_mailbox(&self, address: &str, s: MailboxSettings) -> Result<bool> {
        let address = address.to_ascii_lowercase();
        self.writer
            .run(move |w| Box::pin(security::update_mailbox(w, address, s)))
            .await
    }

    async fn outbound_spam_count(&self, mailbox: &str, since: i64) -> Result<u64> {
        security::outbound_spam_count(&self.readers, mailbox, since).await
    }

    async fn reset_password(
        &self,
        token_sha256: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let (t, h) = (token_sha256.to_string(), password_hash.to_string());
        self.writer
            .run(move |w| Box::pin(security::reset_password(w, t, h, now)))
            .await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<bool> {
        let (a, h) = (address.to_ascii_lowercase(), password_hash.to_string());
        self.writer
            .run(move |w| Box::pin(security::set_password(w, a, h)))
            .await
    }

    async fn queue_len(&self) -> Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM queue")
            .fetch_one(&self.readers)
            .await?;
        Ok(n as usize)
    }

    async fn page(&self, mailbox: &str, folder: &str, q: &PageQuery) -> Result<Page> {
        self.page_of(mailbox, folder, q).await
    }

    async fn transaction_messages(
        &self,
        mailbox: &str,
        identificativo: &str,
    ) -> Result<Vec<ListedMessage>> {
        self.transaction_of(mailbox, identificativo).await
    }

    async fn create_api_token(
        &self,
        token_sha256: &str,
        mailbox: &str,
        label: &str,
        now: i64,
    ) -> Result<()> {
        let (hash, m, l) = (
            token_sha256.to_string(),
            mailbox.to_ascii_lowercase(),
            label.to_string(),
        );
        let n = self
            .writer
            .run(move |w| Box::pin(web::create_token(w, hash, m, l, now)))
            .await?;
        if n == 0 {
            return Err(StoreError::AlreadyExists("API token".into()));
        }
        Ok(())
    }

    async fn api_token_owner(&self, token_sha256: &str) -> Result<Option<String>> {
        self.token_owner(token_sha256).await
    }

    async fn set_totp(&self, mailbox: &str, secret: Option<&str>) -> Result<bool> {
        let (m, sec) = (mailbox.to_ascii_lowercase(), secret.map(str::to_string));
        self.writer
            .run(move |w| Box::pin(web::set_totp(w, m, sec)))
            .await
    }

    async fn set_webhook(&self, mailbox: &str, hook: Option<(&str, &str)>) -> Result<()> {
        let m = mailbox.to_ascii_lowercase();
        let hook = hook.map(|(u, s)| (u.to_string(), s.to_string()));
        self.writer
            .run(move |w| Box::pin(web::set_webhook(w, m, hook)))
            .await
    }

    async fn webhook(&self, mailbox: &str) -> Result<Option<(String, String)>> {
        self.webhook_of(mailbox).await
    }

    async fn lease_webhooks(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> Result<Vec<WebhookDelivery>> {
        self.writer
            .run(move |w| Box::pin(web::lease_webhooks(w, now, lease_secs, max)))
            .await
    }

    async fn finish_webhook(&self, id: i64, retry_at: Option<i64>, error: &str) -> Result<()> {
        let error = error.to_string();
        self.writer
            .run(move |w| Box::pin(web::finish_webhook(w, id, retry_at, error)))
            .await
    }
}
