//! What a rule decides: the effects the runtime commits in one transaction (architecture §4),
//! and the log events of pec.md §6.

use pec_message::TimeRef;
use pec_message::build::Timeout;
use serde::{Deserialize, Serialize};

/// How a stored message is labelled, as `pec verify` names kinds (`kind` in the admin listing).
pub type StoredKind = String;

/// One decision of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Put a message, byte for byte, into a local mailbox (pec.md §5.5).
    Store {
        /// The mailbox address.
        mailbox: String,
        /// The exact bytes.
        message: Vec<u8>,
        /// The kind, as `pec verify` names it.
        kind: StoredKind,
        /// The transaction the message belongs to, if any.
        identificativo: Option<String>,
        /// The `Message-ID` (without brackets) used to drop a second copy (pec.md §5.9).
        message_id: Option<String>,
        /// The folder it goes to.
        folder: Folder,
    },
    /// Hand a message to the outbound queue with this SMTP envelope (pec.md §1.3 PA step 8:
    /// MAIL FROM and RCPT TO unchanged). Local domains go back through the receiving point.
    Relay {
        /// The reverse-path (empty for a DSN).
        mail_from: String,
        /// The forward-paths.
        rcpt_to: Vec<String>,
        /// The exact bytes.
        message: Vec<u8>,
    },
    /// Start tracking a certified transaction at the sender side (pec.md §5.7).
    Track {
        /// The PEC msgid.
        identificativo: String,
        /// The original sender.
        sender: String,
        /// The transaction facts, serialised for the deadline notices.
        transaction: TrackedTransaction,
    },
    /// A certified recipient of a tracked transaction moved on (pec.md §1.3, "Sending provider,
    /// on receiving notices back").
    Progress {
        /// The PEC msgid.
        identificativo: String,
        /// The recipient.
        recipient: String,
        /// What happened.
        step: Progress,
    },
    /// Arm a deadline for a certified recipient.
    Deadline {
        /// The PEC msgid.
        identificativo: String,
        /// The recipient.
        recipient: String,
        /// 12h or 24h.
        which: TimeoutKind,
        /// When it falls due.
        due: TimeRef,
    },
    /// Append an event to the message log.
    Log(Event),
    /// Keep an infected message in the virus store for 30 months; it is never delivered
    /// (pec.md §2.5, §2.10, §8.4).
    Quarantine {
        /// The exact bytes as received.
        message: Vec<u8>,
        /// The transaction, when it has one.
        identificativo: Option<String>,
        /// Sender of the message.
        sender: String,
        /// Its recipients.
        recipients: Vec<String>,
        /// What was found, and by which engine.
        threat: crate::Threat,
    },
}

/// Where a stored message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Folder {
    /// The inbox: every PEC message and notice, and ordinary mail that is not spam.
    #[default]
    Inbox,
    /// The junk folder ("Posta indesiderata"): ordinary mail classed as spam, when the
    /// mailbox owner chose to keep it (product.md §4).
    Junk,
}

impl Folder {
    /// The folder's name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Inbox => "INBOX",
            Folder::Junk => "Junk",
        }
    }
}

/// 12h or 24h, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutKind {
    /// pec.md §5.7 first notice.
    H12,
    /// pec.md §5.7 second notice.
    H24,
}

impl TimeoutKind {
    /// The builder's view.
    pub fn timeout(self) -> Timeout {
        match self {
            TimeoutKind::H12 => Timeout::Hours12,
            TimeoutKind::H24 => Timeout::Hours24,
        }
    }
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::H12 => "12h",
            TimeoutKind::H24 => "24h",
        }
    }
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<TimeoutKind> {
        match s {
            "12h" => Some(TimeoutKind::H12),
            "24h" => Some(TimeoutKind::H24),
            _ => None,
        }
    }
}

/// The facts of a transaction the sender side keeps to write later notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedTransaction {
    /// The original sender.
    pub sender: String,
    /// Every recipient: (address, certified).
    pub recipients: Vec<(String, bool)>,
    /// Reply-To of the original.
    pub reply_to: Option<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// Client Message-ID, with brackets.
    pub client_msgid: Option<String>,
    /// T0: the acceptance time reference (Unix seconds).
    pub t0: i64,
}

/// A step of a certified recipient at the sender side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A presa in carico covered it (cancels the 12h notice).
    TakenInCharge,
    /// An avvenuta-consegna arrived (ends the timers).
    Delivered,
    /// An errore-consegna arrived (ends the timers).
    Failed,
    /// The 12h notice was sent.
    Notified12h,
    /// The 24h notice was sent (tracking ends).
    Notified24h,
}

impl Progress {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::TakenInCharge => "presa-in-carico",
            Progress::Delivered => "avvenuta-consegna",
            Progress::Failed => "errore-consegna",
            Progress::Notified12h => "preavviso-12h",
            Progress::Notified24h => "preavviso-24h",
        }
    }
}

/// One entry of the message log (pec.md §6): the eight required fields plus a detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The transaction time reference (RFC 3339, UTC).
    pub time: String,
    /// 1. The message identifier (the PEC msgid).
    pub identificativo: String,
    /// 6. What happened.
    pub event: EventKind,
    /// 3. Sender of the original message.
    pub sender: String,
    /// 4. Recipients of the original message.
    pub recipients: Vec<String>,
    /// 5. Subject of the original message.
    pub subject: Option<String>,
    /// 7. Message identifiers of the generated messages.
    pub related: Vec<String>,
    /// 8. The sending provider.
    pub provider: String,
    /// Free detail: error text, receipt kind, recipient concerned.
    pub detail: Option<String>,
}

/// Event types of the log (pec.md §6 field 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Submission accepted; acceptance receipt issued.
    Accettazione,
    /// Submission refused by a formal check.
    NonAccettazione,
    /// Transport envelope signed and queued.
    BustaTrasporto,
    /// Transport envelope received from a provider; presa in carico issued.
    PresaInCarico,
    /// Envelope delivered into a mailbox; delivery receipt issued.
    AvvenutaConsegna,
    /// Envelope not delivered; errore-consegna issued.
    ErroreConsegna,
    /// A provider notice received and delivered.
    RicevutaRicevuta,
    /// A timeout notice issued.
    PreavvisoErroreConsegna,
    /// A message wrapped in an anomaly envelope.
    Anomalia,
    /// Ordinary mail refused by policy.
    Rifiuto,
    /// A duplicate copy dropped.
    Duplicato,
    /// A relayed message delivered to the next hop.
    Inoltro,
    /// Relay gave up; DSN issued.
    MancatoInoltro,
    /// A virus was found: non-accettazione per virus, rilevazione virus, errore-consegna per
    /// virus, or an infected ordinary message discarded (the detail says which).
    Virus,
    /// Spam found: ordinary mail put in the junk folder or deleted, a PEC message delivered
    /// all the same, or a submission classed as spam (the detail says which; product.md §4).
    Spam,
}

impl Event {
    /// A log event at `time` for the transaction facts given.
    pub fn new(
        time: TimeRef,
        identificativo: &str,
        event: EventKind,
        sender: &str,
        recipients: Vec<String>,
        subject: Option<String>,
        provider: &str,
    ) -> Event {
        Event {
            time: time
                .utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            identificativo: identificativo.to_string(),
            event,
            sender: sender.to_string(),
            recipients,
            subject,
            related: Vec::new(),
            provider: provider.to_string(),
            detail: None,
        }
    }

    /// Adds the identifiers of generated messages.
    pub fn related(mut self, ids: impl IntoIterator<Item = String>) -> Event {
        self.related.extend(ids);
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, d: impl Into<String>) -> Event {
        self.detail = Some(d.into());
        self
    }
}
