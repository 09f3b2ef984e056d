//! Storage of a PEC gestore: the contracts every backend honours, and the embedded default
//! backend (SQLite in WAL mode for metadata and small bodies, immutable content-addressed files
//! for large ones).
//!
//! # The contract
//!
//! - **One step, one transaction.** [`Store::commit`] applies a whole [`Commit`] (messages,
//!   queue entries, tracked transactions, recipient progress, deadlines, log events, finished
//!   queue entries and deadlines) atomically: after it returns `Ok`, all of it survives a crash;
//!   after an `Err` or a crash before it returns, none of it is visible. Blobs are written before
//!   the metadata that names them, so a committed row never points to a missing blob.
//! - **Bodies are immutable.** A message is a metadata row plus its bytes, which are never
//!   rewritten: each message's own body row, or a blob addressed by the SHA-256 of its bytes
//!   (large messages, and rows stored before migration 11). Flags, folders and receipt links live
//!   in metadata.
//! - **Leased at birth.** A commit with [`Commit::queue_lease_until`] set inserts its queue
//!   entries already leased until then and returns them in [`Committed::leased`], so the caller
//!   can work on them without leasing them again; they come back like any other lease.
//! - **No second copy.** A message whose `message_id` is already in the same mailbox is not
//!   stored again (pec.md §5.9); the commit still succeeds.
//! - **Leases.** Queue entries and deadlines are handed out with a lease: an entry leased until
//!   `t` is not handed out again before `t`, so a crashed worker's entries come back by
//!   themselves. An entry disappears only when a commit names it as done.
//! - **Locks.** A [`Commit`]'s locks empty the mailbox's password hash in the same
//!   transaction as the rest: a locked mailbox logs in again only after
//!   [`Store::reset_password`] or [`Store::set_password`].
//! - **The event log is append-only.** Events get increasing sequence numbers in commit order;
//!   no API changes or removes one.
//!
//! [`conformance`] holds the suite every backend must pass.

pub mod blobs;
pub mod conformance;
mod sqlite;
mod types;

pub use sqlite::SqliteStore;

/// How long the event log keeps every event, in days: 30 months at the longest (two years
/// with a leap day and six months of 31 and 30 days) and a few days more (pec.md §6).
pub const EVENT_LOG_KEEP_DAYS: i64 = 920;
pub use types::*;

use std::future::Future;

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// A blob could not be read or written.
    #[error("blob store error: {0}")]
    Blob(String),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A write could not be completed (the transaction was rolled back).
    #[error("write failed: {0}")]
    Write(String),
    /// A folder operation was refused (the reason is for the client).
    #[error("refused: {0:?}")]
    Refused(FolderRefusal),
    /// Stored data does not have the expected shape.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The storage contract (see the crate documentation for the transaction rules).
pub trait Store: Send + Sync + 'static {
    /// Creates a mailbox; [`StoreError::AlreadyExists`] if the address (case-insensitive) exists.
    fn create_mailbox(&self, m: NewMailbox) -> impl Future<Output = Result<()>> + Send;
    /// One mailbox by address (case-insensitive).
    fn mailbox(&self, address: &str) -> impl Future<Output = Result<Option<Mailbox>>> + Send;
    /// Every mailbox, by address.
    fn mailboxes(&self) -> impl Future<Output = Result<Vec<Mailbox>>> + Send;
    /// The messages of a mailbox, by folder then uid.
    fn messages(&self, mailbox: &str) -> impl Future<Output = Result<Vec<MessageMeta>>> + Send;
    /// The exact bytes of one message.
    fn message_bytes(
        &self,
        mailbox: &str,
        folder: &str,
        uid: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Several messages of one folder in one read, by ascending UID: the whole bytes, or
    /// only the header block (up to and including the empty line, [`header_block`]).
    /// UIDs that are not there are left out.
    fn messages_bytes(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
        portion: Portion,
    ) -> impl Future<Output = Result<Vec<(u32, Vec<u8>)>>> + Send;
    /// The folders of a mailbox, by name. Every mailbox has [`STANDARD_FOLDERS`] from its
    /// creation.
    fn folders(&self, mailbox: &str) -> impl Future<Output = Result<Vec<Folder>>> + Send;
    /// The version of a folder's index; `None` if there is no such folder. Every change to
    /// the folder's messages (a new one, a flag change, one removed or moved away) raises
    /// `highest_modseq`, and a renamed or re-created folder has a new UIDVALIDITY, so two
    /// equal versions mean an equal [`Store::folder_index`].
    fn folder_version(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> impl Future<Output = Result<Option<FolderVersion>>> + Send;
    /// What changed in a folder since modification sequence `since`: the folder, the
    /// messages added or changed since (by ascending UID) and how many messages it holds
    /// now, read at one moment; `None` if there is no such folder. Removed messages are not
    /// listed: a count below the known ones plus the new ones says some went.
    fn folder_changes(
        &self,
        mailbox: &str,
        folder: &str,
        since: u64,
    ) -> impl Future<Output = Result<Option<(Folder, Vec<IndexEntry>, u32)>>> + Send;
    /// One folder and its messages by ascending UID; `None` if there is no such folder.
    fn folder_index(
        &self,
        mailbox: &str,
        folder: &str,
    ) -> impl Future<Output = Result<Option<(Folder, Vec<IndexEntry>)>>> + Send;
    /// Creates a folder and its missing parents (`/` separates levels), not subscribed;
    /// [`StoreError::Refused`] with [`FolderRefusal::Exists`] if it exists. The standard
    /// folders of a new mailbox are subscribed.
    fn create_folder(&self, mailbox: &str, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a user folder with its messages; its subfolders stay (RFC 3501 §6.3.4). The
    /// standard folders are [`FolderRefusal::Protected`].
    fn delete_folder(&self, mailbox: &str, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Renames a user folder with its subfolders; the renamed folders get a new UIDVALIDITY.
    fn rename_folder(
        &self,
        mailbox: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Subscribes to a folder or ends the subscription.
    fn subscribe_folder(
        &self,
        mailbox: &str,
        name: &str,
        on: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Changes the flags of messages in one new modification sequence; with
    /// `unchanged_since`, messages changed after it are left alone and reported (RFC 7162
    /// §3.1.3). Unknown UIDs are ignored.
    fn set_flags(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = Result<FlagsChanged>> + Send;
    /// Copies messages to folder `to` of the same mailbox, or moves them when `remove`
    /// (atomically: all of them or none); returns (source UID, new UID) pairs. A copy counts
    /// against the quota ([`FolderRefusal::OverQuota`]); a move keeps the message's dedup key.
    fn copy_messages(
        &self,
        mailbox: &str,
        from: &str,
        uids: &[u32],
        to: &str,
        remove: bool,
    ) -> impl Future<Output = Result<Vec<(u32, u32)>>> + Send;
    /// Appends a message to a folder; returns (UIDVALIDITY, UID). Refused over quota or for
    /// a missing folder.
    fn append(&self, a: Append) -> impl Future<Output = Result<(u32, u32)>> + Send;
    /// A feed of the addresses of mailboxes whose messages changed (stored, flagged, copied,
    /// moved, deleted) through this store: what wakes IMAP IDLE. A receiver that lags may
    /// miss names and must then look at every folder it watches.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<String>;
    /// Removes messages of `folder` by UID (unknown UIDs are ignored) and returns how many
    /// went; the mailbox's usage shrinks accordingly. A blob no message names any more may
    /// be dropped.
    fn delete_messages(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Removes those of `uids` whose stored flags hold `\Deleted` when the removal runs (an
    /// IMAP EXPUNGE: another session may have cleared the flag since this one looked, and
    /// that message stays); returns how many went, as [`Store::delete_messages`] does.
    fn expunge_messages(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Whether a transaction whose message has `message_id` already reached `mailbox`
    /// (pec.md §5.9): a message with it is in the mailbox, or [`Commit::taken`] recorded
    /// it for the mailbox (taken without a copy: no such mailbox, full, disabled), and
    /// [`Store::purge_taken`] has not removed that record yet.
    fn received_before(
        &self,
        mailbox: &str,
        message_id: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Applies one step atomically. With [`Commit::queue_lease_until`] set, the new queue
    /// entries are leased in the same transaction (their first attempt counted) and
    /// returned; no [`Store::lease_queue`] hands them out before that lease ends.
    fn commit(&self, c: Commit) -> impl Future<Output = Result<Committed>> + Send;
    /// Leases up to `max` queue entries due at `now` until `now + lease_secs`.
    fn lease_queue(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<QueueEntry>>> + Send;
    /// Extends the lease of entry `id` to `until`, only while its lease is still `held`
    /// (the [`QueueEntry::lease_until`] the holder got): `false` when the entry is gone or
    /// another holder leased it since, and the holder must then leave it alone.
    fn renew_queue_lease(
        &self,
        id: i64,
        held: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Leases up to `max` deadlines due at `now`.
    fn lease_deadlines(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DueDeadline>>> + Send;
    /// A tracked transaction and the state of its certified recipients.
    fn tracked(&self, identificativo: &str)
    -> impl Future<Output = Result<Option<Tracked>>> + Send;
    /// Log events with `seq > after`, oldest first, at most `limit`; only those of
    /// `identificativo` when given.
    fn events(
        &self,
        after: i64,
        identificativo: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LoggedEvent>>> + Send;
    /// Removes the log events committed before `before` (Unix seconds): the oldest events,
    /// up to the first one at or after `before`, so what stays is an unbroken run of the
    /// newest. Every event is kept [`EVENT_LOG_KEEP_DAYS`] days at least; the store refuses
    /// (an error, nothing removed) to remove a younger one (pec.md §6: kept 30 months).
    /// Returns how many went and the `seq` of the oldest event kept (`None`: none is left).
    fn purge_events(&self, before: i64) -> impl Future<Output = Result<(u64, Option<i64>)>> + Send;
    /// Ends every lease at once. A node calls it at start when it is the only one using the
    /// store (the embedded default), so work leased by a crashed predecessor resumes at once.
    fn release_leases(&self) -> impl Future<Output = Result<()>> + Send;
    /// The virus store's entries stored at or after `since` (Unix seconds), oldest first.
    fn quarantined(&self, since: i64) -> impl Future<Output = Result<Vec<Quarantined>>> + Send;
    /// Removes the virus store's entries stored before `before` (Unix seconds) with their
    /// bytes; returns how many went (pec.md §8.4: kept 30 months).
    fn purge_quarantine(&self, before: i64) -> impl Future<Output = Result<u64>> + Send;
    /// Removes the records of [`Commit::taken`] made before `before` (Unix seconds);
    /// returns how many went.
    fn purge_taken(&self, before: i64) -> impl Future<Output = Result<u64>> + Send;
    /// Changes the settings given in `s`; `false` when there is no such mailbox.
    fn update_mailbox(
        &self,
        address: &str,
        s: MailboxSettings,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// How many submissions of `mailbox` the outbound spam log holds at or after `since`.
    fn outbound_spam_count(
        &self,
        mailbox: &str,
        since: i64,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// The mailbox holding a reset token (by its hex SHA-256) that is valid at `now`, without
    /// spending it: a cheap check before the work of hashing a new password.
    fn reset_token_owner(
        &self,
        token_sha256: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Spends a reset token (by its hex SHA-256) that is valid at `now`: sets the new password
    /// hash and unlocks the mailbox, in one write. Returns the mailbox, or `None` when no
    /// mailbox holds a valid token of that hash. A token works once.
    fn reset_password(
        &self,
        token_sha256: &str,
        password_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Sets a password hash and unlocks the mailbox; `false` when there is no such mailbox or
    /// it is the service mailbox.
    fn set_password(
        &self,
        address: &str,
        password_hash: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Number of entries in the outbound queue.
    fn queue_len(&self) -> impl Future<Output = Result<usize>> + Send;

    // The web services (webmail and REST API).

    /// One page of a folder's messages matching `q`, newest first (highest UID first), with
    /// the number of matches in the whole folder; an unknown folder is an empty page.
    fn page(
        &self,
        mailbox: &str,
        folder: &str,
        q: &PageQuery,
    ) -> impl Future<Output = Result<Page>> + Send;
    /// Every message of a mailbox that belongs to transaction `identificativo` (the sent
    /// original, its receipts and notices), oldest first.
    fn transaction_messages(
        &self,
        mailbox: &str,
        identificativo: &str,
    ) -> impl Future<Output = Result<Vec<ListedMessage>>> + Send;
    /// Records an API token by the hex SHA-256 of its secret, for `mailbox`;
    /// [`StoreError::AlreadyExists`] if that hash exists. The secret itself is never stored.
    fn create_api_token(
        &self,
        token_sha256: &str,
        mailbox: &str,
        label: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The mailbox an API token (by hex SHA-256) belongs to.
    fn api_token_owner(
        &self,
        token_sha256: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Sets (`Some`, base32) or removes (`None`) a mailbox's TOTP secret; `false` when there
    /// is no such mailbox.
    fn set_totp(
        &self,
        mailbox: &str,
        secret: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Sets (`Some((url, secret))`) or removes a mailbox's webhook. Removing it drops its
    /// pending deliveries.
    fn set_webhook(
        &self,
        mailbox: &str,
        hook: Option<(&str, &str)>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// A mailbox's webhook URL and secret.
    fn webhook(
        &self,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>>> + Send;
    /// Leases up to `max` webhook deliveries due at `now` until `now + lease_secs`. A
    /// delivery is recorded by [`Store::commit`], in the same transaction, for every
    /// message of a [receipt kind](is_receipt_kind) stored in a mailbox that has a webhook.
    fn lease_webhooks(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<WebhookDelivery>>> + Send;
    /// Ends a delivery: `Some(t)` tries it again at `t` (one more attempt counted, the
    /// error kept), `None` removes it (delivered, or given up).
    fn finish_webhook(
        &self,
        id: i64,
        retry_at: Option<i64>,
        error: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}
