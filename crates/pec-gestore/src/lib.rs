//! The gestore runtime: runs the pure PEC engine and commits each of its steps in one store
//! transaction (architecture §4), then drives what follows in time: the outbound queue with
//! retries and the 24h give-up DSN, the 12h / 24h deadlines, and the event log with its hash
//! chain and daily seals (pec.md §6).
//!
//! Protocol crates call [`Gestore::submit`] and [`Gestore::receive`] and answer their clients
//! only after those return: an SMTP `250` always follows a durable commit.

mod accounts;
mod apply;
pub mod clock;
pub mod crl;
mod deadlines;
mod directory;
pub mod eventlog;
pub mod filters;
pub mod lockout;
mod mailboxes;
pub mod ocsp;
pub mod peers;
mod queue;
mod retention;
pub mod sessions;
pub mod throttle;
pub mod totp;
mod web;
pub mod webhooks;

pub use accounts::{Account, Login, hash_password};
pub use clock::Clock;
pub use crl::{FetchFuture, Fetcher};
pub use directory::LocalDirectory;
pub use filters::{Client, Filters, Findings};
pub use queue::{DeliverFuture, Delivery, RcptOutcome, Transport, TransportError};
pub use web::TOKEN_PREFIX;
pub use webhooks::{PostFuture, Poster};

use pec_engine::access::{self, Limits, Submission};
use pec_engine::receiving::{
    self, Inbound, LocalRecipient, MailboxState, OrdinaryPolicy, Reply, SpamPolicy,
};
use pec_engine::{Context, Effect, EngineError, Ids};
use pec_index::Index;
use pec_message::TimeRef;
use pec_message::build::Provider;
use pec_message::ident::IdGenerator;
use pec_message::smime::{Crls, Signer};
use pec_store::{Store, StoreError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// Errors of the runtime, classified for the wire by [`GestoreError::is_temporary`].
#[derive(Debug, thiserror::Error)]
pub enum GestoreError {
    /// Storage failed: temporary for the client.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// A generated message could not be made.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The account may not do this now (its mailbox is locked or disabled).
    #[error("{0}")]
    Forbidden(String),
    /// A security filter did not answer: the message was not scanned, so it is not taken
    /// now (product.md §4; the client retries).
    #[error("{0}")]
    Unavailable(String),
    /// Something internal failed.
    #[error("internal: {0}")]
    Internal(String),
}

impl GestoreError {
    /// Whether a client may retry later (SMTP 4xx) rather than give up (5xx).
    pub fn is_temporary(&self) -> bool {
        !matches!(
            self,
            GestoreError::Invalid(_) | GestoreError::NotFound(_) | GestoreError::Forbidden(_)
        )
    }
}

/// What the runtime needs to know about this gestore.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The provider (name and service domain).
    pub provider: Provider,
    /// Every domain this gestore serves (mailboxes live only there).
    pub domains: Vec<String>,
    /// Host name used in SMTP greetings and DSNs.
    pub hostname: String,
    /// Access-point limits (pec.md §5.1).
    pub limits: Limits,
    /// Default policy for ordinary mail (pec.md §5.6).
    pub ordinary_policy: OrdinaryPolicy,
    /// The data directory (log files live in `data/log`).
    pub data_dir: PathBuf,
    /// The Indice copy to reload when it changes.
    pub index_path: PathBuf,
    /// How long the queue keeps trying (pec.md §5.7: at most 24 hours).
    pub queue_lifetime_secs: i64,
    /// The HTTPS address users reach (`https://host:port`), for links in mail.
    pub public_url: String,
    /// How often each CRL is fetched again, at most (seconds; sooner when its nextUpdate
    /// comes first).
    pub crl_refresh_secs: i64,
    /// Whether a signer certificate with no current CRL is refused (see [`Crls::required`]).
    pub crl_required: bool,
}

/// The result of a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The PEC msgid.
    pub identificativo: String,
    /// The failed formal check, when refused (a non-accettazione was stored).
    pub refused: Option<String>,
}

/// A running gestore.
pub struct Gestore<S: Store> {
    /// Static settings.
    pub settings: Settings,
    /// The store.
    pub store: Arc<S>,
    signer: Box<dyn Signer>,
    anchors: Vec<openssl::x509::X509>,
    index: RwLock<Arc<(Index, Vec<openssl::x509::X509>)>>,
    /// The CRLs in force (see [`crl`]).
    crls: RwLock<Arc<Crls>>,
    /// The last attempt at each CRL distribution point, for `pec admin crl`.
    crl_attempts: Mutex<HashMap<String, crl::Attempt>>,
    /// Wakes the CRL refresher for a pass over every point (`pec admin crl --refresh`).
    crl_wake: Notify,
    /// Passes the refresher completed on such a request.
    crl_passes: std::sync::atomic::AtomicU64,
    ids: Mutex<IdGenerator>,
    /// The clock (with an offset that tests may move).
    pub clock: Clock,
    /// Wakes the queue worker when something was queued for later.
    pub(crate) queued: Notify,
    /// Hands entries leased at their commit to the queue worker.
    pub(crate) handoff: queue::Handoff,
    /// Wakes the webhook worker when a commit recorded a delivery.
    pub(crate) webhooks_due: Notify,
    /// Failed-login counters of the access protocols.
    pub throttle: throttle::LoginThrottle,
    /// The last TOTP step accepted per mailbox: a code is good once (RFC 6238 §5.2).
    totp_used: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// The security filters.
    pub filters: Filters,
    /// Open client connections, to end a locked mailbox's sessions.
    pub sessions: sessions::Sessions,
    /// Turns of the receiving point, striped by Message-ID (see [`Gestore::receive_step`]).
    same_message: Vec<tokio::sync::Mutex<()>>,
}

/// Stripes of [`Gestore::same_message`]: unrelated messages rarely share one.
const SAME_MESSAGE_STRIPES: usize = 256;

/// The Indice with every trust anchor in force: the configured ones, then the provider
/// certificates the Indice copy lists, each an anchor of its own (pec.md §7.3). Built once
/// per Indice load, not per engine call.
fn pinned(index: Index, anchors: &[openssl::x509::X509]) -> (Index, Vec<openssl::x509::X509>) {
    let certs = anchors
        .iter()
        .cloned()
        .chain(
            index
                .records
                .iter()
                .flat_map(|r| r.certificates.iter())
                .filter_map(|der| openssl::x509::X509::from_der(der).ok()),
        )
        .collect();
    (index, certs)
}

struct SharedIds<'a>(&'a Mutex<IdGenerator>);

impl Ids for SharedIds<'_> {
    fn next_id(&mut self, at: TimeRef) -> String {
        // A poisoned lock only means another thread panicked mid-call; the generator state
        // (a counter) is still consistent.
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.next_id(at)
    }
}

impl<S: Store> Gestore<S> {
    /// A gestore over `store`, signing with `signer`, trusting `anchors`, with `index` as its
    /// local Indice copy.
    pub fn new(
        settings: Settings,
        store: Arc<S>,
        signer: Box<dyn Signer>,
        anchors: Vec<openssl::x509::X509>,
        index: Index,
        clock: Clock,
    ) -> Gestore<S> {
        let node = settings
            .hostname
            .split('.')
            .next()
            .unwrap_or("0")
            .to_string();
        // The counter starts at a random point: a restart with the same process id (PID 1
        // in a container) in the same second, or after the clock stepped back, must not
        // repeat an identificativo (pec.md §9). Without randomness, the start time's
        // nanoseconds serve.
        let mut seed = [0u8; 4];
        let start = match openssl::rand::rand_bytes(&mut seed) {
            Ok(()) => u64::from(u32::from_le_bytes(seed)),
            Err(_) => u64::from(chrono::Utc::now().timestamp_subsec_nanos()),
        };
        let ids = IdGenerator::new(
            &node,
            std::process::id(),
            &settings.provider.service_domain,
            start,
        );
        let crl_required = settings.crl_required;
        Gestore {
            settings,
            store,
            signer,
            index: RwLock::new(Arc::new(pinned(index, &anchors))),
            crls: RwLock::new(Arc::new(Crls::new(crl_required))),
            crl_attempts: Mutex::new(HashMap::new()),
            crl_wake: Notify::new(),
            crl_passes: std::sync::atomic::AtomicU64::new(0),
            anchors,
            ids: Mutex::new(ids),
            clock,
            queued: Notify::new(),
            handoff: queue::Handoff::default(),
            webhooks_due: Notify::new(),
            throttle: throttle::LoginThrottle::default(),
            totp_used: Default::default(),
            filters: Filters::default(),
            sessions: sessions::Sessions::default(),
            same_message: (0..SAME_MESSAGE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The same gestore with these security filters.
    pub fn with_filters(mut self, filters: Filters) -> Gestore<S> {
        self.filters = filters;
        self
    }

    /// The current Indice copy and every trust anchor in force.
    fn indexed(&self) -> Arc<(Index, Vec<openssl::x509::X509>)> {
        self.index
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the Indice copy (after a reload).
    pub fn set_index(&self, index: Index) {
        let mut g = self.index.write().unwrap_or_else(|p| p.into_inner());
        *g = Arc::new(pinned(index, &self.anchors));
    }

    /// Whether `domain` is served here.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.settings
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether `domain` is a PEC domain per the Indice (TLS is then required toward it).
    pub fn is_certified_domain(&self, domain: &str) -> bool {
        self.indexed().0.by_domain(domain).is_some()
    }

    /// Runs `f` with an engine context at time `now`.
    fn with_context<T>(&self, now: TimeRef, f: impl FnOnce(&mut Context<'_>) -> T) -> T {
        let indexed = self.indexed();
        let crls = self.crls();
        let dir = LocalDirectory {
            index: &indexed.0,
            local: &self.settings.domains,
        };
        let mut ids = SharedIds(&self.ids);
        let mut ctx = Context {
            now,
            provider: &self.settings.provider,
            signer: self.signer.as_ref(),
            ids: &mut ids,
            directory: &dir,
            anchors: &indexed.1,
            crls: Some(&crls),
        };
        f(&mut ctx)
    }

    /// The access point: checks and certifies one authenticated submission, and returns
    /// after every effect is durably committed (pec.md §1.3 PA).
    pub async fn submit(
        self: &Arc<Self>,
        client: &Client,
        account: &Account,
        mail_from: &str,
        rcpt_to: &[String],
        message: Vec<u8>,
    ) -> Result<Submitted, GestoreError> {
        // A session logged in before its mailbox was locked or disabled keeps no right to
        // send (product.md §4: on lockout the password is invalidated and every session
        // ends): each submission checks the mailbox again.
        match self.store.mailbox(&account.address).await? {
            Some(m) if !(m.disabled || m.locked || m.service || m.password_hash.is_empty()) => {}
            _ => {
                return Err(GestoreError::Forbidden(format!(
                    "la casella {} è bloccata o disabilitata / mailbox locked or disabled",
                    account.address
                )));
            }
        }
        let findings = self
            .scan(client, Some(&account.address), mail_from, rcpt_to, &message)
            .await?;
        let now = self.clock.now();
        let this = self.clone();
        let threat = findings.threat.clone();
        let allowed = vec![account.address.clone()];
        let account_address = account.address.clone();
        let mail_from = mail_from.to_string();
        let rcpt_to = rcpt_to.to_vec();
        let (out, message) = tokio::task::spawn_blocking(move || {
            let out = this.with_context(now, |ctx| {
                access::submit(
                    &Submission {
                        account: &account_address,
                        allowed_senders: &allowed,
                        mail_from: &mail_from,
                        rcpt_to: &rcpt_to,
                        message: &message,
                        threat: threat.as_ref(),
                    },
                    &this.settings.limits,
                    ctx,
                )
            });
            (out, message)
        })
        .await
        .map_err(|e| GestoreError::Internal(e.to_string()))?;
        let mut out = out?;
        let mut base = pec_store::Commit::default();
        let mut locked = false;
        if let Some(spam) = &findings.spam {
            // product.md §4: a PEC submission is still certified and sent; the verdict is
            // logged and counted toward the lockout.
            locked = self
                .outbound_spam(
                    now,
                    &account.address,
                    &out.identificativo,
                    spam,
                    &mut out.effects,
                    &mut base,
                )
                .await?;
        }
        if out.refused.is_none() {
            // The submitted original is kept, read, in the sender's Sent folder, in the same
            // commit as its acceptance.
            let subject = pec_message::original::OriginalHeaders::parse(&message).subject;
            base.messages.push(pec_store::NewMessage {
                mailbox: account.address.to_ascii_lowercase(),
                folder: "Sent".into(),
                flags: "\\Seen".into(),
                bytes: message,
                kind: "ordinaria".into(),
                identificativo: Some(out.identificativo.clone()),
                message_id: None,
                subject,
                date: now.utc().timestamp(),
            });
        }
        self.commit(now, out.effects, base).await?;
        if locked {
            self.count_lockout();
            let n = self.sessions.end(&account.address);
            tracing::warn!(
                "{} locked for sending spam; {n} session(s) ended",
                account.address
            );
        }
        Ok(Submitted {
            identificativo: out.identificativo,
            refused: out.refused.map(|e| e.to_string()),
        })
    }

    /// Whether the MX takes `rcpt` at all (a local domain).
    pub fn accepts_recipient(&self, rcpt: &str) -> bool {
        self.is_local_domain(pec_engine::domain_of(rcpt))
    }

    /// Each recipient's mailbox state, and whether it already holds the message whose
    /// [`receiving::dedup_key`] is `key`.
    async fn local_recipients(
        &self,
        rcpt_to: &[String],
        message: &[u8],
        key: Option<&str>,
    ) -> Result<Vec<LocalRecipient>, GestoreError> {
        let mut out: Vec<LocalRecipient> = Vec::with_capacity(rcpt_to.len());
        for r in rcpt_to {
            // One recipient named twice gets one copy and one receipt (pec.md §2.12, §5.9).
            if out.iter().any(|o| o.address.eq_ignore_ascii_case(r)) {
                continue;
            }
            let state = match self.store.mailbox(r).await? {
                None => MailboxState::Unknown,
                Some(m) if m.disabled => MailboxState::Disabled,
                Some(m) => MailboxState::Active {
                    ordinary: match m.ordinary_policy.as_str() {
                        "refuse" => OrdinaryPolicy::Refuse,
                        "anomalia" => OrdinaryPolicy::Anomalia,
                        _ => self.settings.ordinary_policy,
                    },
                    spam: match m.spam_policy.as_str() {
                        "delete" => SpamPolicy::Delete,
                        _ => SpamPolicy::Junk,
                    },
                    service: m.service,
                    full: m.quota_bytes > 0 && m.used_bytes + message.len() as u64 > m.quota_bytes,
                },
            };
            let address = r.to_ascii_lowercase();
            let has_copy = match key {
                Some(k) => self.store.received_before(&address, k).await?,
                None => false,
            };
            out.push(LocalRecipient {
                address,
                state,
                has_copy,
            });
        }
        Ok(out)
    }

    /// The receiving point for one SMTP transaction to local recipients; returns the answer
    /// to give after DATA, once everything is committed (pec.md §1.3 PR, PC).
    pub async fn receive(
        self: &Arc<Self>,
        client: &Client,
        mail_from: &str,
        rcpt_to: &[String],
        message: Vec<u8>,
    ) -> Result<Reply, GestoreError> {
        let findings = self
            .scan(client, None, mail_from, rcpt_to, &message)
            .await?;
        self.receive_step(mail_from, rcpt_to, message, None, findings)
            .await
    }

    /// The receiving point for scanned bytes. The queue hands locally routed entries here
    /// with no findings: they were scanned at this gestore's access or receiving point.
    pub(crate) async fn receive_step(
        self: &Arc<Self>,
        mail_from: &str,
        rcpt_to: &[String],
        message: Vec<u8>,
        queue_done: Option<i64>,
        findings: Findings,
    ) -> Result<Reply, GestoreError> {
        // pec.md §5.9, DM art. 6: one copy and one receipt per recipient. Two transactions
        // with the same Message-ID (a retry overlapping the first attempt) take turns from the
        // duplicate check to the commit, so the second sees the first one's copy.
        let key = receiving::dedup_key(&message);
        let turn = match &key {
            Some(key) => {
                use std::hash::{Hash as _, Hasher as _};
                let mut h = std::hash::DefaultHasher::new();
                key.hash(&mut h);
                let stripe = (h.finish() % SAME_MESSAGE_STRIPES as u64) as usize;
                Some(self.same_message[stripe].lock().await)
            }
            None => None,
        };
        let recipients = self
            .local_recipients(rcpt_to, &message, key.as_deref())
            .await?;
        let now = self.clock.now();
        let this = self.clone();
        let mail_from = mail_from.to_string();
        let (out, message, mail_from, recipients) = tokio::task::spawn_blocking(move || {
            let out = this.with_context(now, |ctx| {
                receiving::receive(
                    &Inbound {
                        mail_from: &mail_from,
                        recipients: &recipients,
                        message: &message,
                        threat: findings.threat.as_ref(),
                        spam: findings.spam.as_ref(),
                    },
                    ctx,
                )
            });
            (out, message, mail_from, recipients)
        })
        .await
        .map_err(|e| GestoreError::Internal(e.to_string()))?;
        let mut out = out?;
        // Recipients the accepted transaction could not reach go back in a DSN, committed
        // with the rest (pec.md §1.3 PC step 5).
        let tag = if out.undelivered.is_empty() {
            String::new()
        } else {
            // A fresh identifier's left part: unique for this gestore.
            let id = SharedIds(&self.ids).next_id(now);
            id.split('@').next().unwrap_or_default().to_string()
        };
        out.effects.extend(queue::bounce(
            self,
            &mail_from,
            &message,
            &tag,
            &out.undelivered,
        ));
        // A queue entry refused here as a whole goes back in a DSN committed with the
        // entry's end: a crash cannot separate them.
        if let (Some(id), Reply::Refused { text }) = (queue_done, &out.reply) {
            let failures: Vec<pec_engine::bounce::Failure> = rcpt_to
                .iter()
                .map(|r| pec_engine::bounce::Failure {
                    recipient: r.clone(),
                    status: queue::status_of(text, "5.1.1"),
                    diagnostic: text.clone(),
                })
                .collect();
            out.effects.extend(queue::bounce(
                self,
                &mail_from,
                &message,
                &id.to_string(),
                &failures,
            ));
        }
        // pec.md §5.9: the recipients this transaction reached without a copy (no such
        // mailbox, full, disabled) are recorded, so a replay (a 250 lost on the way back)
        // brings no second presa in carico or errore-consegna.
        let taken = match (&key, &out.reply) {
            (Some(key), Reply::Accepted) => recipients
                .iter()
                .filter(|r| !r.has_copy)
                .filter(|r| {
                    !out.effects.iter().any(
                        |e| matches!(e, Effect::Store { mailbox, .. } if *mailbox == r.address),
                    )
                })
                .map(|r| pec_store::Taken {
                    recipient: r.address.clone(),
                    message_id: key.clone(),
                    time: now.utc().timestamp(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let base = pec_store::Commit {
            queue_done: queue_done.into_iter().collect(),
            taken,
            ..Default::default()
        };
        self.commit(now, out.effects, base).await?;
        drop(turn);
        Ok(out.reply)
    }

    /// Starts the background workers (queue, deadlines, event log, Indice reload). Call it
    /// after [`Store::release_leases`] when this process is the store's only user.
    pub fn spawn_workers(self: &Arc<Self>, transport: Arc<dyn Transport>) {
        tokio::spawn(queue::run(self.clone(), transport));
        tokio::spawn(deadlines::run(self.clone()));
        tokio::spawn(eventlog::run(self.clone()));
        tokio::spawn(directory::watch(self.clone()));
        tokio::spawn(retention::run(self.clone()));
    }
}
