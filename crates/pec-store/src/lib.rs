//! Storage of a PEC gestore: the contracts every backend honours, and the embedded default
//! backend (SQLite in WAL mode for metadata, immutable content-addressed files for blobs).
//!
//! # The contract
//!
//! - **One step, one transaction.** [`Store::commit`] applies a whole [`Commit`] (messages,
//!   queue entries, tracked transactions, recipient progress, deadlines, log events, finished
//!   queue entries and deadlines) atomically: after it returns `Ok`, all of it survives a crash;
//!   after an `Err` or a crash before it returns, none of it is visible. Blobs are written before
//!   the metadata that names them, so a committed row never points to a missing blob.
//! - **Blobs are immutable.** A message is a metadata row plus a blob addressed by the SHA-256
//!   of its bytes; a blob is never rewritten. Flags, folders and receipt links live in metadata.
//! - **No second copy.** A message whose `message_id` is already in the same mailbox is not
//!   stored again (pec.md §5.9); the commit still succeeds.
//! - **Leases.** Queue entries and deadlines are handed out with a lease: an entry leased until
//!   `t` is not handed out again before `t`, so a crashed worker's entries come back by
//!   themselves. An entry disappears only when a commit names it as done.
//! - **The event log is append-only.** Events get increasing sequence numbers in commit order;
//!   no API changes or removes one.
//!
//! [`conformance`] holds the suite every backend must pass.

pub mod blobs;
pub mod conformance;
mod sqlite;
mod types;

pub use sqlite::SqliteStore;
pub use types::*;

use std::future::Future;

/// Errors of a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A blob could not be read or written.
    #[error("blob store error: {0}")]
    Blob(String),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A write could not be completed (the transaction was rolled back).
    #[error("write failed: {0}")]
    Write(String),
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
        uid: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
    /// Removes messages of `folder` by UID (unknown UIDs are ignored) and returns how many
    /// went; the mailbox's usage shrinks accordingly. A blob no message names any more may
    /// be dropped.
    fn delete_messages(
        &self,
        mailbox: &str,
        folder: &str,
        uids: &[u32],
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Whether a message with `message_id` is in `mailbox` (pec.md §5.9).
    fn has_message_id(
        &self,
        mailbox: &str,
        message_id: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Applies one step atomically.
    fn commit(&self, c: Commit) -> impl Future<Output = Result<Committed>> + Send;
    /// Leases up to `max` queue entries due at `now` until `now + lease_secs`.
    fn lease_queue(
        &self,
        now: i64,
        lease_secs: i64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<QueueEntry>>> + Send;
    /// Puts a leased entry back for a later attempt with fewer recipients or a new error.
    fn retry_queue(
        &self,
        id: i64,
        rcpt_to: Vec<String>,
        next_attempt: i64,
        error: &str,
    ) -> impl Future<Output = Result<()>> + Send;
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
    /// Ends every lease at once. A node calls it at start when it is the only one using the
    /// store (the embedded default), so work leased by a crashed predecessor resumes at once.
    fn release_leases(&self) -> impl Future<Output = Result<()>> + Send;
    /// Number of entries in the outbound queue.
    fn queue_len(&self) -> impl Future<Output = Result<usize>> + Send;
}
