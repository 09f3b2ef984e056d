//! The records the store keeps.

use serde::Serialize;

/// A mailbox to create.
#[derive(Debug, Clone, Default)]
pub struct NewMailbox {
    /// Address, stored lower-case.
    pub address: String,
    /// PHC string (argon2id), or empty for a mailbox that cannot log in (the service mailbox).
    pub password_hash: String,
    /// Quota in bytes (0 = unlimited).
    pub quota_bytes: u64,
    /// `anomalia` or `refuse` (pec.md §5.6).
    pub ordinary_policy: String,
    /// The provider's service mailbox (pec.md §1.2).
    pub service: bool,
    /// `junk` or `delete`: what happens to ordinary mail classed as spam (product.md §4).
    pub spam_policy: String,
    /// The owner's contact address, where a password-reset link goes.
    pub contact: Option<String>,
}

/// A stored mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct Mailbox {
    /// Address.
    pub address: String,
    /// PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Quota in bytes (0 = unlimited).
    pub quota_bytes: u64,
    /// Bytes stored.
    pub used_bytes: u64,
    /// Messages stored.
    pub messages: u64,
    /// Ordinary-mail policy.
    pub ordinary_policy: String,
    /// Service mailbox.
    pub service: bool,
    /// Disabled by the operator.
    pub disabled: bool,
    /// `junk` or `delete` (product.md §4).
    pub spam_policy: String,
    /// The owner's contact address.
    pub contact: Option<String>,
    /// Locked after sending spam: the password is invalidated until a reset.
    pub locked: bool,
    /// The TOTP second factor's secret (base32), when the owner turned it on.
    #[serde(skip)]
    pub totp_secret: Option<String>,
}

/// Settings a mailbox owner or the operator may change; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct MailboxSettings {
    /// `junk` or `delete`.
    pub spam_policy: Option<String>,
    /// The contact address; `Some("")` removes it.
    pub contact: Option<String>,
    /// `anomalia`, `refuse` or `default`.
    pub ordinary_policy: Option<String>,
}

/// A submission the antispam engine classed as spam (product.md §4: the outbound spam log).
#[derive(Debug, Clone, Default)]
pub struct NewSpamRecord {
    /// The sending mailbox.
    pub mailbox: String,
    /// When (Unix seconds, the gestore's clock).
    pub time: i64,
    /// The transaction.
    pub identificativo: Option<String>,
    /// The engine's verdict, for the log.
    pub detail: String,
}

/// A mailbox to lock: its password is invalidated and only the reset token opens it again.
#[derive(Debug, Clone, Default)]
pub struct NewLock {
    /// The mailbox.
    pub mailbox: String,
    /// Hex SHA-256 of the reset token sent to the owner (the token itself is not kept).
    pub reset_token_sha256: String,
    /// Until when the token is valid (Unix seconds).
    pub expires: i64,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Mailbox address.
    pub mailbox: String,
    /// Folder (`INBOX`).
    pub folder: String,
    /// IMAP flags, space-separated (`\Seen` for a submitted original kept in Sent).
    pub flags: String,
    /// Exact bytes.
    pub bytes: Vec<u8>,
    /// Kind, as `pec verify` names it.
    pub kind: String,
    /// Transaction.
    pub identificativo: Option<String>,
    /// Dedup key.
    pub message_id: Option<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// Arrival time (Unix seconds).
    pub date: i64,
}

/// A stored message.
#[derive(Debug, Clone, Serialize)]
pub struct MessageMeta {
    /// Folder.
    pub folder: String,
    /// UID in the folder.
    pub uid: u32,
    /// The folder's UIDVALIDITY: (uidvalidity, uid) names a message for good (RFC 3501
    /// §2.3.1.1; POP3 UIDL, RFC 1939 §7).
    pub uidvalidity: u32,
    /// Arrival (RFC 3339).
    pub date: String,
    /// Decoded subject.
    pub subject: Option<String>,
    /// Kind.
    pub kind: String,
    /// Transaction.
    pub identificativo: Option<String>,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the blob.
    #[serde(skip)]
    pub blob: String,
}

/// A message for the outbound queue, one next-hop domain.
#[derive(Debug, Clone)]
pub struct NewQueueEntry {
    /// Reverse-path (empty for a DSN).
    pub mail_from: String,
    /// Forward-paths, all in `domain`.
    pub rcpt_to: Vec<String>,
    /// The next-hop domain.
    pub domain: String,
    /// Exact bytes.
    pub bytes: Vec<u8>,
    /// First attempt not before (Unix seconds).
    pub not_before: i64,
}

/// A leased queue entry.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// Id.
    pub id: i64,
    /// Reverse-path.
    pub mail_from: String,
    /// Remaining forward-paths.
    pub rcpt_to: Vec<String>,
    /// Next-hop domain.
    pub domain: String,
    /// Exact bytes.
    pub bytes: Vec<u8>,
    /// When it was queued.
    pub created: i64,
    /// Attempts so far.
    pub attempts: u32,
    /// Last error.
    pub last_error: Option<String>,
    /// Until when this holder's lease runs (Unix seconds). It is also the lease's token:
    /// [`crate::Store::renew_queue_lease`] extends the lease only while it is unchanged.
    pub lease_until: i64,
}

/// A transaction taken for a recipient without a copy stored (pec.md §5.9).
#[derive(Debug, Clone)]
pub struct Taken {
    /// The recipient's address.
    pub recipient: String,
    /// The message's `Message-ID` without brackets (the identificativo of an envelope).
    pub message_id: String,
    /// When (Unix seconds).
    pub time: i64,
}

/// A leased queue entry put back for a later attempt, with the recipients still to reach.
#[derive(Debug, Clone)]
pub struct QueueRetry {
    /// The entry.
    pub id: i64,
    /// Remaining forward-paths.
    pub rcpt_to: Vec<String>,
    /// When to try again (Unix seconds).
    pub next_attempt: i64,
    /// What went wrong.
    pub error: String,
    /// The attempts made so far, as the worker counts them: a lease given out again while
    /// the attempt was still running (and adopted by it) is not one more.
    pub attempts: u32,
}

/// A transaction to track at the sender side.
#[derive(Debug, Clone)]
pub struct NewTracked {
    /// PEC msgid.
    pub identificativo: String,
    /// Serialized transaction facts.
    pub data: String,
    /// Certified recipients.
    pub recipients: Vec<String>,
}

/// A tracked transaction with per-recipient state.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// Serialized transaction facts.
    pub data: String,
    /// (recipient, steps reached, by name).
    pub recipients: Vec<(String, Vec<String>)>,
}

/// A deadline to arm.
#[derive(Debug, Clone)]
pub struct NewDeadline {
    /// PEC msgid.
    pub identificativo: String,
    /// Recipient.
    pub recipient: String,
    /// `12h` or `24h`.
    pub which: String,
    /// Due (Unix seconds).
    pub due: i64,
}

/// A leased deadline.
#[derive(Debug, Clone)]
pub struct DueDeadline {
    /// Id.
    pub id: i64,
    /// PEC msgid.
    pub identificativo: String,
    /// Recipient.
    pub recipient: String,
    /// `12h` or `24h`.
    pub which: String,
    /// Due.
    pub due: i64,
}

/// A log event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Time (Unix seconds).
    pub time: i64,
    /// PEC msgid.
    pub identificativo: String,
    /// The serialized event (JSON).
    pub json: String,
}

/// A logged event.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// Sequence number (increasing in commit order).
    pub seq: i64,
    /// Time.
    pub time: i64,
    /// PEC msgid.
    pub identificativo: String,
    /// The serialized event.
    pub json: String,
}

/// One step's writes.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Messages to store.
    pub messages: Vec<NewMessage>,
    /// Queue entries to add.
    pub queue: Vec<NewQueueEntry>,
    /// Transactions to track.
    pub tracked: Vec<NewTracked>,
    /// (identificativo, recipient, step name) to record.
    pub progress: Vec<(String, String, String)>,
    /// Deadlines to arm.
    pub deadlines: Vec<NewDeadline>,
    /// Events to log.
    pub events: Vec<NewEvent>,
    /// Queue entries finished.
    pub queue_done: Vec<i64>,
    /// Leased queue entries put back for a later attempt (their lease ends, their attempt
    /// count becomes the one given).
    pub queue_retry: Vec<QueueRetry>,
    /// Recipients a transaction reached without storing a copy (an errore-consegna went
    /// back instead), so that a replay of it is known ([`crate::Store::received_before`]).
    pub taken: Vec<Taken>,
    /// Deadlines finished.
    pub deadlines_done: Vec<i64>,
    /// Infected messages for the virus store.
    pub quarantine: Vec<NewQuarantined>,
    /// Entries for the outbound spam log.
    pub outbound_spam: Vec<NewSpamRecord>,
    /// Mailboxes to lock.
    pub locks: Vec<NewLock>,
    /// When non-zero, the entries of `queue` are created already leased until this time
    /// (Unix seconds, as [`crate::Store::lease_queue`] leases them) and come back in
    /// [`Committed::leased`]: the committer delivers them at once, without a lease write.
    pub queue_lease_until: i64,
}

/// An infected message for the virus store, kept 30 months and never delivered (pec.md
/// §8.4).
#[derive(Debug, Clone, Default)]
pub struct NewQuarantined {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// The transaction, when it has one.
    pub identificativo: Option<String>,
    /// Sender.
    pub sender: String,
    /// Recipients.
    pub recipients: Vec<String>,
    /// The engine that found the threat.
    pub engine: String,
    /// The threat's name.
    pub threat: String,
}

/// One entry of the virus store, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// Entry number.
    pub id: i64,
    /// When it was stored (Unix seconds).
    pub time: i64,
    /// The transaction, when it has one.
    pub identificativo: Option<String>,
    /// Sender.
    pub sender: String,
    /// Recipients.
    pub recipients: Vec<String>,
    /// The engine that found the threat.
    pub engine: String,
    /// The threat's name.
    pub threat: String,
    /// Size in bytes.
    pub size: u64,
}

/// The folders every mailbox has, with their RFC 6154 special use: certified mail and
/// receipts arrive in INBOX, submitted originals are kept in Sent.
pub const STANDARD_FOLDERS: [(&str, Option<&str>); 5] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Junk", Some("\\Junk")),
    ("Trash", Some("\\Trash")),
    ("Drafts", Some("\\Drafts")),
];

/// A folder and its counters.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    /// Name (`INBOX`, `Sent`, or a user folder; `/` separates levels).
    pub name: String,
    /// UIDVALIDITY (RFC 3501 §2.3.1.1).
    pub uidvalidity: u32,
    /// The UID the next message will get at least.
    pub uidnext: u32,
    /// The highest modification sequence of the folder (RFC 7162 §3.1.2).
    pub highest_modseq: u64,
    /// Messages.
    pub messages: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// Subscribed (RFC 3501 §6.3.6).
    pub subscribed: bool,
}

/// What identifies one state of a folder's index (see [`crate::Store::folder_version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderVersion {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// The UID the next message will get at least.
    pub uidnext: u32,
    /// The highest modification sequence.
    pub highest_modseq: u64,
}

impl Folder {
    /// The version of the index this folder description was read with.
    pub fn version(&self) -> FolderVersion {
        FolderVersion {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            highest_modseq: self.highest_modseq,
        }
    }
}

/// One message as a folder index lists it: what an IMAP session keeps per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// UID.
    pub uid: u32,
    /// Flags, space-separated.
    pub flags: String,
    /// Modification sequence of the last change (RFC 7162).
    pub modseq: u64,
    /// Bytes.
    pub size: u64,
    /// Arrival (Unix seconds): the IMAP INTERNALDATE.
    pub date: i64,
}

impl IndexEntry {
    /// Whether the message has `flag` (compared ignoring case, RFC 3501 §2.3.2).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags
            .split_whitespace()
            .any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// How much of a message [`crate::Store::messages_bytes`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portion {
    /// The header block only, kept beside the message so that header reads (IMAP
    /// ENVELOPE, HEADER.FIELDS, header SEARCH keys) do not load the body.
    Header,
    /// The exact stored bytes.
    Whole,
}

/// The header block of a message: its bytes up to and including the first empty line
/// (RFC 5322 §2.1), or all of them when there is none.
pub fn header_block(message: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| pos + i + 1);
        let line = &message[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return &message[..end];
        }
        pos = end;
    }
    message
}

/// How STORE changes flags (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}

/// The outcome of a flag change.
#[derive(Debug, Clone, Default)]
pub struct FlagsChanged {
    /// (uid, new flags, new modseq) of each message whose flags changed.
    pub changed: Vec<(u32, String, u64)>,
    /// UIDs left alone because they changed after `UNCHANGEDSINCE` (RFC 7162 §3.1.3).
    pub modified: Vec<u32>,
}

/// A message to append to a folder (IMAP APPEND, RFC 3501 §6.3.11).
#[derive(Debug, Clone)]
pub struct Append {
    /// Mailbox address.
    pub mailbox: String,
    /// Folder.
    pub folder: String,
    /// Flags, space-separated.
    pub flags: String,
    /// Arrival (Unix seconds).
    pub date: i64,
    /// Exact bytes.
    pub bytes: Vec<u8>,
    /// Decoded subject.
    pub subject: Option<String>,
}

/// Why a folder operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderRefusal {
    /// No such folder.
    Missing,
    /// A folder of that name exists.
    Exists,
    /// INBOX and the special-use folders cannot be deleted or renamed.
    Protected,
    /// The mailbox quota would be exceeded.
    OverQuota,
}

/// What a commit did.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// (mailbox, uid) per stored message; `None` where a copy existed already.
    pub stored: Vec<Option<u32>>,
    /// Webhook deliveries recorded with the stored receipts.
    pub webhooks: usize,
    /// The entries of `queue`, in order, when [`Commit::queue_lease_until`] leased them.
    pub leased: Vec<QueueEntry>,
}

/// What a page of a folder's message list holds (the webmail list and the REST API).
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    /// Only messages whose `From:` field contains this text (case-insensitive).
    pub sender: Option<String>,
    /// Only messages whose subject contains this text (case-insensitive).
    pub subject: Option<String>,
    /// Only messages stored at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only messages stored before this time (Unix seconds).
    pub before: Option<i64>,
    /// Only messages of this transaction.
    pub identificativo: Option<String>,
    /// Only the message with this UID.
    pub uid: Option<u32>,
    /// Only messages with a UID above this one.
    pub after_uid: Option<u32>,
    /// Messages to skip (newest first).
    pub offset: u64,
    /// At most this many (0: none, only the total).
    pub limit: u64,
}

/// One message of a page.
#[derive(Debug, Clone, Serialize)]
pub struct ListedMessage {
    /// The stored facts.
    #[serde(flatten)]
    pub meta: MessageMeta,
    /// The `From:` field as written (unfolded, not decoded).
    pub from: String,
    /// The message's flags (`\Seen`, …).
    pub flags: Vec<String>,
}

/// A page of a folder's message list, newest first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Page {
    /// How many messages match the query in the whole folder.
    pub total: u64,
    /// The messages of this page.
    pub messages: Vec<ListedMessage>,
}

/// A webhook delivery handed out with a lease (the REST API's receipt events).
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    /// Id.
    pub id: i64,
    /// The mailbox whose event it is.
    pub mailbox: String,
    /// Where it goes (the mailbox's webhook now).
    pub url: String,
    /// The HMAC-SHA256 key.
    pub secret: String,
    /// The JSON body.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the event was recorded (Unix seconds).
    pub created: i64,
}

/// The kinds of stored message that raise a webhook event: every receipt and notice about a
/// transaction (pec.md §2), not envelopes nor ordinary mail.
pub fn is_receipt_kind(kind: &str) -> bool {
    !matches!(kind, "posta-certificata" | "ordinaria" | "anomalia" | "")
}

/// The unfolded value of the first header field `name` (case-insensitive) in a header block.
pub fn header_field(block: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(block);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}
