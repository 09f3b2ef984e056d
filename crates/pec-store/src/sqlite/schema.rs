//! The SQLite schema, as numbered migrations applied in order (`PRAGMA user_version` holds the
//! last one applied). A migration is never edited once released: add a new one.

/// Migration `n` is `MIGRATIONS[n - 1]`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
CREATE TABLE mailboxes (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    quota_bytes INTEGER NOT NULL DEFAULT 0,
    used_bytes INTEGER NOT NULL DEFAULT 0,
    message_count INTEGER NOT NULL DEFAULT 0,
    ordinary_policy TEXT NOT NULL DEFAULT 'anomalia',
    service INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE folders (
    mailbox TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    PRIMARY KEY (mailbox, name)
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    mailbox TEXT NOT NULL COLLATE NOCASE,
    folder TEXT NOT NULL,
    uid INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    date INTEGER NOT NULL,
    subject TEXT,
    kind TEXT NOT NULL,
    identificativo TEXT,
    message_id TEXT,
    flags TEXT NOT NULL DEFAULT '',
    UNIQUE (mailbox, folder, uid)
);
CREATE UNIQUE INDEX messages_dedup ON messages (mailbox, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX messages_identificativo ON messages (identificativo);
CREATE TABLE queue (
    id INTEGER PRIMARY KEY,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    domain TEXT NOT NULL,
    blob TEXT NOT NULL,
    created INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX queue_due ON queue (next_attempt);
CREATE TABLE tracked (
    identificativo TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE tracked_rcpt (
    identificativo TEXT NOT NULL,
    recipient TEXT NOT NULL COLLATE NOCASE,
    steps TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (identificativo, recipient)
);
CREATE TABLE deadlines (
    id INTEGER PRIMARY KEY,
    identificativo TEXT NOT NULL,
    recipient TEXT NOT NULL,
    which TEXT NOT NULL,
    due INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deadlines_due ON deadlines (due);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    identificativo TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX events_identificativo ON events (identificativo);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"#,
    // 2: small queue entries carry their bytes in the row: the queue is transient, and a file
    // per entry costs an inode allocation and two fsyncs for a message that leaves in seconds.
    r#"
ALTER TABLE queue ADD COLUMN bytes BLOB;
"#,
    // 3: small message blobs live in the database, still addressed by their SHA-256 and never
    // rewritten; larger ones stay files. A file per small message costs an inode allocation
    // and two fsyncs, which dominated the cost of a certified transaction (BENCHMARKS.md).
    r#"
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
);
"#,
    // 4: finding whether a blob is still named when messages are deleted.
    r#"
CREATE INDEX messages_blob ON messages (blob);
"#,
    // 5: IMAP folders: modification sequences (RFC 7162), subscriptions, and the standard
    // folders for every existing mailbox.
    r#"
ALTER TABLE messages ADD COLUMN modseq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE folders ADD COLUMN highestmodseq INTEGER NOT NULL DEFAULT 1;
ALTER TABLE folders ADD COLUMN subscribed INTEGER NOT NULL DEFAULT 1;
INSERT OR IGNORE INTO folders (mailbox, name, uidvalidity, uidnext)
    SELECT m.address, n.name, CAST(strftime('%s', 'now') AS INTEGER), 1
    FROM mailboxes m, (SELECT 'INBOX' AS name UNION ALL SELECT 'Sent' UNION ALL SELECT 'Junk'
                       UNION ALL SELECT 'Trash' UNION ALL SELECT 'Drafts') n;
"#,
    // 6: the header block of each message beside it, for header-only reads (NULL for rows
    // stored before: those are read whole and cut).
    r#"
ALTER TABLE messages ADD COLUMN header BLOB;
"#,
    // 7: the virus store (pec.md §8.4): infected messages, bytes inline or as a blob file.
    r#"
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    identificativo TEXT,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    engine TEXT NOT NULL,
    threat TEXT NOT NULL,
    size INTEGER NOT NULL,
    blob TEXT NOT NULL,
    bytes BLOB
);
CREATE INDEX quarantine_time ON quarantine (time);
"#,
    // 8: the antispam settings and the outbound spam lockout (product.md §4).
    r#"
ALTER TABLE mailboxes ADD COLUMN spam_policy TEXT NOT NULL DEFAULT 'junk';
ALTER TABLE mailboxes ADD COLUMN contact TEXT;
ALTER TABLE mailboxes ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN reset_token TEXT;
ALTER TABLE mailboxes ADD COLUMN reset_expires INTEGER;
CREATE TABLE outbound_spam (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    time INTEGER NOT NULL,
    identificativo TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX outbound_spam_mailbox ON outbound_spam (mailbox, time);
CREATE UNIQUE INDEX mailboxes_reset_token ON mailboxes (reset_token);
"#,
    // 9: the web services: API tokens, the TOTP second factor, webhooks and their
    // deliveries, and the index the webmail's pages and timelines read.
    r#"
ALTER TABLE mailboxes ADD COLUMN totp_secret TEXT;
CREATE TABLE api_tokens (
    hash TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL COLLATE NOCASE,
    label TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE webhooks (
    mailbox TEXT PRIMARY KEY COLLATE NOCASE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL
);
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL COLLATE NOCASE,
    body TEXT NOT NULL,
    created INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt);
CREATE INDEX messages_mailbox_identificativo ON messages (mailbox, identificativo);
"#,
    // 10: messages are only looked up by identificativo within a mailbox, which
    // messages_mailbox_identificativo serves; one index less to update per stored message.
    r#"
DROP INDEX messages_identificativo;
"#,
    // 11: each small message body in its own row of `bodies`, named by the message's `body`
    // (the SHA-256 address stays in `blob` and is checked on every read). A body row is
    // appended at the end of its table, where `blobs` needed an entry at a random place in
    // its hash index, and `messages_blob` another: two random page writes per stored
    // message, a quarter of the pages a certified transaction wrote (BENCHMARKS.md). Rows
    // stored before keep their `blobs` entry, and the index now covers only those, and
    // messages whose bytes are a file.
    r#"
CREATE TABLE bodies (
    id INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL
);
ALTER TABLE messages ADD COLUMN body INTEGER;
DROP INDEX messages_blob;
CREATE INDEX messages_blob ON messages (blob) WHERE body IS NULL;
"#,
    // 12: transactions taken for a recipient without a stored copy (pec.md §5.9), so that a
    // replay gets no second presa in carico or errore-consegna.
    r#"
CREATE TABLE taken (
    recipient TEXT NOT NULL,
    message_id TEXT NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (recipient, message_id)
) WITHOUT ROWID;
CREATE INDEX taken_time ON taken (time);
"#,
    // 13: queue ids are never reused (AUTOINCREMENT). Without it a new entry could take the
    // id of one just finished, which the queue worker still counts as in flight, and a DSN's
    // Message-ID (made from the id) could repeat.
    r#"
CREATE TABLE queue_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    domain TEXT NOT NULL,
    blob TEXT NOT NULL,
    created INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    bytes BLOB
);
INSERT INTO queue_new (id, mail_from, rcpt_to, domain, blob, created, next_attempt, lease_until, attempts, last_error, bytes)
    SELECT id, mail_from, rcpt_to, domain, blob, created, next_attempt, lease_until, attempts, last_error, bytes FROM queue;
DROP TABLE queue;
ALTER TABLE queue_new RENAME TO queue;
CREATE INDEX queue_due ON queue (next_attempt);
"#,
    // 14: the event log keeps every event 30 months (pec.md §6) and may then let it go:
    // deleting an event younger than EVENT_LOG_KEEP_DAYS (920 days) is still refused.
    r#"
DROP TRIGGER events_no_delete;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    WHEN old.time >= CAST(strftime('%s', 'now') AS INTEGER) - 920 * 86400
    BEGIN SELECT RAISE(ABORT, 'the event log keeps every event for 30 months'); END;
"#,
];
