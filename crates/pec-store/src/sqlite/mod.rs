//! The embedded backend: SQLite (WAL, `synchronous = FULL`) for metadata and
//! [`crate::blobs::Blobs`] files for message bytes. One writer thread applies every write,
//! grouping concurrent steps into one transaction ([`writer`]); readers borrow read-only
//! connections ([`db`]) and see committed data only.

mod commit;
mod db;
mod folders;
mod reads;
mod rows;
mod schema;
mod security;
mod web;
mod writer;

use crate::blobs::Blobs;
use crate::types::*;
use crate::{Result, Store, StoreError};
use commit::MessageBlob;
use db::{Conn, Readers, all};
use rows::{folder_row, logged_event, mailbox_row, meta_row};
use rusqlite::{OptionalExtension as _, params};
use std::path::Path;
use std::sync::Arc;
use writer::Writer;

/// SQLite + local files.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    blobs: Blobs,
    changes: tokio::sync::broadcast::Sender<String>,
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl SqliteStore {
    /// Removes messages by UID ([`Store::delete_messages`]), with `only_deleted` only those
    /// still flagged `\Deleted` ([`Store::expunge_messages`]).
    async fn remove(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
        only_deleted: bool,
    ) -> Result<u64> {
        let mailbox = mailbox.to_ascii_lowercase();
        let folder = folder.to_string();
        let uids = uids.to_vec();
        let m = mailbox.clone();
        let gone = self
            .writer
            .run(move |w| commit::delete(w, &m, &folder, &uids, only_deleted))
            .await?;
        self.changed(mailbox);
        Ok(gone)
    }

    /// Opens (creating and migrating as needed) the store in `dir`: `dir/pec.sqlite` and
    /// `dir/blobs/`.
    pub async fn open(dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Blob(format!("cannot create {}: {e}", dir.display())))?;
        let db = dir.join("pec.sqlite");
        let writer = Writer::start(db.clone(), migrate).await?;
        Ok(SqliteStore {
            writer,
            readers: Readers::new(db),
            blobs: Blobs::local(&dir.join("blobs"))?,
            changes: tokio::sync::broadcast::channel(1024).0,
        })
    }
}

impl SqliteStore {
    /// Log events with `seq > after`, oldest first, at most `limit`, read from the store in
    /// `dir` through a read-only connection of its own: for `pec log verify`, which checks
    /// the log files against the store without starting a writer (the server may be running).
    pub fn events_offline(dir: &Path, after: i64, limit: usize) -> Result<Vec<LoggedEvent>> {
        let db = dir.join("pec.sqlite");
        if !db.exists() {
            return Err(StoreError::Database(format!(
                "{} does not exist",
                db.display()
            )));
        }
        let c = db::open(&db, true)?;
        all(
            &c,
            "SELECT seq, time, identificativo, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after, limit as i64],
            logged_event,
        )
    }
}

fn migrate(conn: &mut Conn) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
        let n = i as i64 + 1;
        if n <= version {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {n}"))?;
        tx.commit()?;
    }
    Ok(())
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
                let n = w
                    .prepare_cached(
                        "INSERT INTO mailboxes (address, password_hash, quota_bytes, ordinary_policy, service, created,
                                                spam_policy, contact)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![
                        &address,
                        &m.password_hash,
                        m.quota_bytes as i64,
                        &m.ordinary_policy,
                        i64::from(m.service),
                        now(),
                        if m.spam_policy.is_empty() {
                            "junk"
                        } else {
                            m.spam_policy.as_str()
                        },
                        m.contact.as_deref().filter(|c| !c.is_empty()),
                    ])?;
                if n == 1 {
                    folders::create_standard(w, &address)?;
                }
                Ok(n)
            })
            .await?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(format!("mailbox {shown}")));
        }
        Ok(())
    }

    async fn mailbox(&self, address: &str) -> Result<Option<Mailbox>> {
        self.readers.read(|c| {
            Ok(
                c.prepare_cached("SELECT * FROM mailboxes WHERE address = ?")?
                    .query_row([address], mailbox_row)
                    .optional()?,
            )
        })
    }

    async fn mailboxes(&self) -> Result<Vec<Mailbox>> {
        self.readers
            .read_long(|c| {
                all(
                    c,
                    "SELECT * FROM mailboxes ORDER BY address",
                    [],
                    mailbox_row,
                )
            })
            .await
    }

    async fn messages(&self, mailbox: &str) -> Result<Vec<MessageMeta>> {
        let mailbox = mailbox.to_string();
        self.readers
            .read_long(move |c| {
                all(
                    c,
                    "SELECT m.folder, m.uid, f.uidvalidity, m.date, m.subject, m.kind, m.identificativo,
                            m.size, m.blob
                     FROM messages m JOIN folders f ON f.mailbox = m.mailbox AND f.name = m.folder
                     WHERE m.mailbox = ? ORDER BY m.folder, m.uid",
                    [&mailbox],
                    meta_row,
                )
            })
            .await
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
        self.remove(mailbox, folder, uids, false).await
    }

    async fn expunge_messages(&self, mailbox: &str, folder: &str, uids: &[u32]) -> Result<u64> {
        self.remove(mailbox, folder, uids, true).await
    }

    async fn folders(&self, mailbox: &str) -> Result<Vec<Folder>> {
        let mailbox = mailbox.to_string();
        self.readers
            .read_long(move |c| {
                all(
                    c,
                    "SELECT f.name, f.uidvalidity, f.uidnext, f.highestmodseq, f.subscribed,
                            count(m.uid) AS messages,
                            coalesce(sum(instr(m.flags, '\\Seen') = 0), 0) AS unseen
                     FROM folders f LEFT JOIN messages m ON m.mailbox = f.mailbox AND m.folder = f.name
                     WHERE f.mailbox = ? GROUP BY f.name ORDER BY f.name",
                    [&mailbox],
                    folder_row,
                )
            })
            .await
    }

    async fn folder_version(&self, mailbox: &str, folder: &str) -> Result<Option<FolderVersion>> {
        self.readers
            .read(|c| reads::folder_version(c, mailbox, folder))
    }

    async fn folder_changes(
        &self,
        mailbox: &str,
        folder: &str,
        since: u64,
    ) -> Result<Option<(Folder, Vec<IndexEntry>, u32)>> {
        self.readers
            .read(|c| reads::folder_changes(c, mailbox, folder, since))
    }

    async fn folder_index(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> Result<Option<(Folder, Vec<IndexEntry>)>> {
        let (mailbox, folder) = (mailbox.to_string(), folder.to_string());
        self.readers
            .read_long(move |c| reads::folder_index(c, &mailbox, &folder))
            .await
    }

    async fn create_folder(&self, mailbox: &str, name: &str) -> Result<()> {
        let (mailbox, name) = (mailbox.to_ascii_lowercase(), name.to_string());
        self.writer
            .run(move |w| folders::create(w, &mailbox, &name))
            .await
    }

    async fn delete_folder(&self, mailbox: &str, name: &str) -> Result<()> {
        let (mailbox, name) = (mailbox.to_ascii_lowercase(), name.to_string());
        let m = mailbox.clone();
        self.writer
            .run(move |w| folders::delete(w, &m, &name))
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
            .run(move |w| folders::rename(w, &m, &from, &to))
            .await?;
        self.changed(mailbox);
        Ok(())
    }

    async fn subscribe_folder(&self, mailbox: &str, name: &str, on: bool) -> Result<()> {
        let (mailbox, name) = (mailbox.to_ascii_lowercase(), name.to_string());
        self.writer
            .run(move |w| folders::subscribe(w, &mailbox, &name, on))
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
            .run(move |w| folders::set_flags(w, &m, &folder, &uids, op, &flags, unchanged_since))
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
            .run(move |w| folders::copy(w, &m, &from, &uids, &to, remove))
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
            .run(move |w| folders::append(w, &a, &blob, inline))
            .await?;
        self.changed(mailbox);
        Ok(out)
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    async fn received_before(&self, mailbox: &str, message_id: &str) -> Result<bool> {
        self.readers.read(|c| {
            let seen: bool = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE mailbox = ?1 AND message_id = ?2)
                         OR EXISTS (SELECT 1 FROM taken WHERE recipient = ?1 AND message_id = ?2)",
                )?
                .query_row([mailbox, message_id], |r| r.get(0))?;
            Ok(seen)
        })
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
            .run(move |w| commit::apply(w, &c, &blobs, &queue_blobs, &quarantine_blobs))
            .await?;
        for m in touched {
            self.changed(m);
        }
        Ok(out)
    }

    async fn lease_queue(&self, now: i64, lease_secs: i64, max: usize) -> Result<Vec<QueueEntry>> {
        type Leased = (
            i64,
            String,
            String,
            String,
            String,
            Option<Vec<u8>>,
            i64,
            i64,
            Option<String>,
        );
        let rows: Vec<Leased> = self
            .writer
            .run(move |w| {
                all(
                    w,
                    "UPDATE queue SET lease_until = ?1 + ?2, attempts = attempts + 1 WHERE id IN
                     (SELECT id FROM queue WHERE next_attempt <= ?1 AND lease_until <= ?1 ORDER BY next_attempt, id LIMIT ?3)
                     RETURNING id, mail_from, rcpt_to, domain, blob, bytes, created, attempts, last_error",
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
                            r.get(7)?,
                            r.get(8)?,
                        ))
                    },
                )
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, mail_from, rcpt, domain, blob, inline, created, attempts, last_error) in rows {
            let bytes = match inline {
                Some(b) => b,
                None => self.blobs.get(&blob).await?,
            };
            out.push(QueueEntry {
                id,
                mail_from,
                rcpt_to: serde_json::from_str(&rcpt)
                    .map_err(|e| StoreError::Corrupt(format!("queue rcpt_to: {e}")))?,
                domain,
                bytes,
                created,
                attempts: attempts as u32,
                last_error,
                lease_until: now + lease_secs,
            });
        }
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    async fn renew_queue_lease(&self, id: i64, held: i64, until: i64) -> Result<bool> {
        self.writer
            .run(move |w| {
                let n = w
                    .prepare_cached(
                        "UPDATE queue SET lease_until = ?3 WHERE id = ?1 AND lease_until = ?2",
                    )?
                    .execute(params![id, held, until])?;
                Ok(n == 1)
            })
            .await
    }

    async fn lease_deadlines(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> Result<Vec<DueDeadline>> {
        let mut out: Vec<DueDeadline> = self
            .writer
            .run(move |w| {
                all(
                    w,
                    "UPDATE deadlines SET lease_until = ?1 + ?2 WHERE id IN
                     (SELECT id FROM deadlines WHERE due <= ?1 AND lease_until <= ?1 ORDER BY due, id LIMIT ?3)
                     RETURNING id, identificativo, recipient, which, due",
                    params![now, lease_secs, max as i64],
                    |r| {
                        Ok(DueDeadline {
                            id: r.get(0)?,
                            identificativo: r.get(1)?,
                            recipient: r.get(2)?,
                            which: r.get(3)?,
                            due: r.get(4)?,
                        })
                    },
                )
            })
            .await?;
        out.sort_by_key(|d| (d.due, d.id));
        Ok(out)
    }

    async fn tracked(&self, identificativo: &str) -> Result<Option<Tracked>> {
        self.readers.read(|c| {
            let tx = c.unchecked_transaction()?;
            let data: Option<String> = tx
                .prepare_cached("SELECT data FROM tracked WHERE identificativo = ?")?
                .query_row([identificativo], |r| r.get(0))
                .optional()?;
            let Some(data) = data else { return Ok(None) };
            let recipients = all(
                &tx,
                "SELECT recipient, steps FROM tracked_rcpt WHERE identificativo = ? ORDER BY rowid",
                [identificativo],
                |r| {
                    let steps: String = r.get(1)?;
                    Ok((
                        r.get(0)?,
                        steps
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ))
                },
            )?;
            tx.commit()?;
            Ok(Some(Tracked { data, recipients }))
        })
    }

    async fn events(
        &self,
        after: i64,
        identificativo: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>> {
        let identificativo = identificativo.map(str::to_string);
        self.readers
            .read_long(move |c| {
                all(
                    c,
                    "SELECT seq, time, identificativo, json FROM events
                     WHERE seq > ?1 AND (?2 IS NULL OR identificativo = ?2) ORDER BY seq LIMIT ?3",
                    params![after, identificativo, limit as i64],
                    logged_event,
                )
            })
            .await
    }

    async fn purge_events(&self, before: i64) -> Result<(u64, Option<i64>)> {
        self.writer
            .run(move |w| {
                // The oldest run of events before `before`, walked in seq order from the
                // start: only the rows that go are read.
                let n = w
                    .prepare_cached(
                        "DELETE FROM events WHERE seq < coalesce(
                            (SELECT seq FROM events WHERE time >= ?1 ORDER BY seq LIMIT 1),
                            (SELECT max(seq) + 1 FROM events))",
                    )?
                    .execute([before])?;
                let first: Option<i64> = w
                    .prepare_cached("SELECT min(seq) FROM events")?
                    .query_row([], |r| r.get(0))?;
                Ok((n as u64, first))
            })
            .await
    }

    async fn release_leases(&self) -> Result<()> {
        self.writer
            .run(|w| {
                w.execute_batch(
                    "UPDATE queue SET lease_until = 0; UPDATE deadlines SET lease_until = 0",
                )?;
                Ok(())
            })
            .await
    }

    async fn quarantined(&self, since: i64) -> Result<Vec<Quarantined>> {
        self.readers
            .read_long(move |c| reads::quarantined(c, since))
            .await
    }

    async fn purge_quarantine(&self, before: i64) -> Result<u64> {
        let (gone, orphans) = self
            .writer
            .run(move |w| security::purge_quarantine(w, before))
            .await?;
        for b in orphans {
            self.blobs.delete(&b).await?;
        }
        Ok(gone)
    }

    async fn purge_taken(&self, before: i64) -> Result<u64> {
        self.writer
            .run(move |w| {
                let n = w
                    .prepare_cached("DELETE FROM taken WHERE time < ?")?
                    .execute([before])?;
                Ok(n as u64)
            })
            .await
    }

    async fn update_mailbox(&self, address: &str, s: MailboxSettings) -> Result<bool> {
        let address = address.to_ascii_lowercase();
        self.writer
            .run(move |w| security::update_mailbox(w, &address, &s))
            .await
    }

    async fn outbound_spam_count(&self, mailbox: &str, since: i64) -> Result<u64> {
        self.readers
            .read(|c| security::outbound_spam_count(c, mailbox, since))
    }

    async fn reset_token_owner(&self, token_sha256: &str, now: i64) -> Result<Option<String>> {
        self.readers
            .read(|c| security::reset_token_owner(c, token_sha256, now))
    }

    async fn reset_password(
        &self,
        token_sha256: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let (t, h) = (token_sha256.to_string(), password_hash.to_string());
        self.writer
            .run(move |w| security::reset_password(w, &t, &h, now))
            .await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<bool> {
        let (a, h) = (address.to_ascii_lowercase(), password_hash.to_string());
        self.writer
            .run(move |w| security::set_password(w, &a, &h))
            .await
    }

    async fn queue_len(&self) -> Result<usize> {
        self.readers.read(|c| {
            let n: i64 = c.query_row("SELECT count(*) FROM queue", [], |r| r.get(0))?;
            Ok(n as usize)
        })
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
            .run(move |w| web::create_token(w, &hash, &m, &l, now))
            .await?;
        if n == 0 {
            return Err(StoreError::AlreadyExists("API token".into()));
        }
        Ok(())
    }

    async fn api_token_owner(&self, token_sha256: &str) -> Result<Option<String>> {
        self.token_owner(token_sha256)
    }

    async fn set_totp(&self, mailbox: &str, secret: Option<&str>) -> Result<bool> {
        let (m, sec) = (mailbox.to_ascii_lowercase(), secret.map(str::to_string));
        self.writer
            .run(move |w| web::set_totp(w, &m, sec.as_deref()))
            .await
    }

    async fn set_webhook(&self, mailbox: &str, hook: Option<(&str, &str)>) -> Result<()> {
        let m = mailbox.to_ascii_lowercase();
        let hook = hook.map(|(u, s)| (u.to_string(), s.to_string()));
        self.writer
            .run(move |w| {
                web::set_webhook(w, &m, hook.as_ref().map(|(u, s)| (u.as_str(), s.as_str())))
            })
            .await
    }

    async fn webhook(&self, mailbox: &str) -> Result<Option<(String, String)>> {
        self.webhook_of(mailbox)
    }

    async fn lease_webhooks(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> Result<Vec<WebhookDelivery>> {
        self.writer
            .run(move |w| web::lease_webhooks(w, now, lease_secs, max))
            .await
    }

    async fn finish_webhook(&self, id: i64, retry_at: Option<i64>, error: &str) -> Result<()> {
        let error = error.to_string();
        self.writer
            .run(move |w| web::finish_webhook(w, id, retry_at, &error))
            .await
    }
}
