//! The outbound queue worker: takes the entries a commit leased as it created them (handed
//! over in memory) and leases due ones (retries, and whatever a restart left), routes local
//! domains back through the receiving point (full PEC processing even inside one gestore,
//! pec.md §5.9) and remote ones through a [`Transport`], retries temporary failures with
//! backoff, and after at most 24 hours (pec.md §5.7) or on a permanent refusal returns an
//! RFC 3464 DSN to the reverse-path.

use crate::{Gestore, GestoreError};
use pec_engine::bounce::{Failure, dsn};
use pec_engine::receiving::dedup_key;
use pec_engine::{Effect, Event, EventKind};
use pec_message::original::OriginalHeaders;
use pec_store::{Commit, QueueEntry, QueueRetry, Store};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How long a lease lasts (seconds): an entry whose attempt has not finished by then goes
/// back to the queue.
pub(crate) const LEASE_SECS: i64 = 600;

/// Entries taken in one go.
const BATCH: usize = 32;

/// How often due entries are leased from the store while handed-over ones keep coming.
const LEASE_EVERY: Duration = Duration::from_millis(500);

/// Queue entries leased by the commit that created them, on their way to the worker in
/// memory: no second write to lease them, no read to get their bytes back. Open while a
/// worker runs; an entry that never reaches it (a crash) is leased again from the store
/// when its lease ends, or at once after a restart ([`pec_store::Store::release_leases`]).
#[derive(Default)]
pub(crate) struct Handoff {
    tx: Mutex<Option<UnboundedSender<(QueueEntry, i64)>>>,
}

impl Handoff {
    fn open(&self) -> UnboundedReceiver<(QueueEntry, i64)> {
        let (tx, rx) = unbounded_channel();
        *self.tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Whether a worker takes handed-over entries.
    pub(crate) fn is_open(&self) -> bool {
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Hands `entries`, leased until `until`, to the worker; false when none runs.
    pub(crate) fn send(&self, entries: Vec<QueueEntry>, until: i64) -> bool {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return false;
        };
        entries.into_iter().all(|e| tx.send((e, until)).is_ok())
    }
}

/// One delivery attempt toward a remote domain.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The next-hop domain.
    pub domain: &'a str,
    /// Reverse-path (empty for a DSN).
    pub mail_from: &'a str,
    /// Forward-paths, all in `domain`.
    pub rcpt_to: &'a [String],
    /// Exact bytes.
    pub message: &'a [u8],
    /// TLS is mandatory (the domain is a PEC domain, pec.md §8.2).
    pub require_tls: bool,
}

/// What the next hop said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Accepted (after DATA).
    Accepted,
    /// 4xx: try again later.
    Temporary(String),
    /// 5xx: give up for this recipient.
    Permanent(String),
}

/// The attempt failed as a whole.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text}")]
pub struct TransportError {
    /// Retry later (connection refused, timeout, 4xx greeting) or not.
    pub temporary: bool,
    /// What happened.
    pub text: String,
}

/// Future returned by [`Transport::deliver`].
pub type DeliverFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<RcptOutcome>, TransportError>> + Send + 'a>>;

/// Sends a message to a remote domain (the SMTP relay client implements it).
pub trait Transport: Send + Sync {
    /// One attempt; on success, one outcome per recipient in order.
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> DeliverFuture<'a>;
}

/// Retry delays after the n-th failed attempt: quick at first (a peer restarting), then
/// spaced out up to half an hour, always within the 24-hour lifetime.
const BACKOFF: [i64; 6] = [15, 60, 300, 600, 900, 1800];

/// How often a running attempt's lease is looked at, and renewed once half of it is gone.
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// The entries this worker is attempting, each with the lease it holds now
/// ([`QueueEntry::lease_until`]).
type InFlight = Arc<Mutex<HashMap<i64, Arc<AtomicI64>>>>;

pub(crate) async fn run<S: Store>(g: Arc<Gestore<S>>, transport: Arc<dyn Transport>) {
    let slots = Arc::new(Semaphore::new(16));
    let in_flight: InFlight = Arc::default();
    let mut handed = g.handoff.open();
    let mut ready: Vec<QueueEntry> = Vec::new();
    let mut last_lease: Option<Instant> = None;
    // A handed-over entry is taken only while its lease still has a minute to run; past
    // that, the store's lease gives it out again.
    let fresh = |g: &Gestore<S>, until: i64| g.clock.unix() < until - 60;
    loop {
        while ready.len() < BATCH {
            match handed.try_recv() {
                Ok((e, until)) if fresh(&g, until) => ready.push(e),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Due entries from the store too: when nothing was handed over, and regularly
        // while entries keep coming, so that retries are never starved.
        if ready.is_empty() || last_lease.is_none_or(|t| t.elapsed() >= LEASE_EVERY) {
            last_lease = Some(Instant::now());
            match g.store.lease_queue(g.clock.unix(), LEASE_SECS, BATCH).await {
                Ok(l) => ready.extend(l),
                Err(e) => tracing::error!("queue lease failed: {e}"),
            }
        }
        if ready.is_empty() {
            tokio::select! {
                h = handed.recv() => match h {
                    Some((e, until)) if fresh(&g, until) => ready.push(e),
                    _ => {}
                },
                _ = g.queued.notified() => {}
                _ = tokio::time::sleep(LEASE_EVERY) => {}
            }
            // A handed-over entry goes out at once, without a lease read first.
            if !ready.is_empty() {
                last_lease = Some(Instant::now());
            }
            continue;
        }
        for entry in std::mem::take(&mut ready) {
            let lease = {
                let mut flying = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(held) = flying.get(&entry.id) {
                    // Its lease ran out while this worker still attempts it (a slow peer,
                    // a clock step) and the store gave it out again, to this worker: the
                    // running attempt holds the new lease, no second one starts.
                    held.store(entry.lease_until, Ordering::SeqCst);
                    continue;
                }
                let lease = Arc::new(AtomicI64::new(entry.lease_until));
                flying.insert(entry.id, lease.clone());
                lease
            };
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let g = g.clone();
            let transport = transport.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                let id = entry.id;
                let work = handle(&g, transport.as_ref(), entry);
                if let Err(e) = under_lease(&g, id, &lease, work).await {
                    tracing::error!(queue_id = id, "queue entry failed, it will come back: {e}");
                }
                in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                drop(permit);
            });
        }
    }
}

/// Runs `work` on entry `id` while keeping its lease: renewed whenever less than half of
/// it is left (an attempt may outlast one lease: a slow peer, a long wait for a slot), so
/// that no other worker attempts the entry meanwhile. When the lease turns out taken by
/// another holder, `work` is dropped: that holder delivers the entry.
async fn under_lease<S: Store>(
    g: &Gestore<S>,
    id: i64,
    lease: &AtomicI64,
    work: impl Future<Output = Result<(), GestoreError>>,
) -> Result<(), GestoreError> {
    let mut work = std::pin::pin!(work);
    // Renewals refused while this worker's own re-lease had not reached `lease` yet.
    let mut refused = 0;
    loop {
        let held = lease.load(Ordering::SeqCst);
        let now = g.clock.unix();
        if held - now < LEASE_SECS / 2 {
            let until = now + LEASE_SECS;
            match g.store.renew_queue_lease(id, held, until).await {
                Ok(true) => {
                    lease.store(until, Ordering::SeqCst);
                    refused = 0;
                }
                // Re-leased to this worker meanwhile: renew the new lease.
                Ok(false) if lease.load(Ordering::SeqCst) != held => continue,
                // The worker's own re-lease may be on its way to `lease` (the store
                // answered, the entry's bytes are being read): look again shortly.
                Ok(false) if refused < 5 => {
                    refused += 1;
                    tokio::select! {
                        r = &mut work => return r,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
                Ok(false) => {
                    tracing::warn!(
                        queue_id = id,
                        "the entry's lease went to another holder; this attempt stops"
                    );
                    return Ok(());
                }
                Err(e) => tracing::warn!(queue_id = id, "lease renewal failed: {e}"),
            }
        }
        tokio::select! {
            r = &mut work => return r,
            _ = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
}

/// One attempt at entry `e`, whose outcome is committed in one transaction: the log
/// event, the DSN of the recipients that failed for good, and the entry finished or put
/// back with the recipients still to reach.
async fn handle<S: Store>(
    g: &Arc<Gestore<S>>,
    transport: &dyn Transport,
    e: QueueEntry,
) -> Result<(), GestoreError> {
    if g.is_local_domain(&e.domain) {
        // The receiving point commits the entry's end, and its DSN when refused, with the
        // rest of its step.
        let Err(err) = g
            .receive_step(
                &e.mail_from,
                &e.rcpt_to,
                e.bytes.clone(),
                Some(e.id),
                crate::Findings::default(),
            )
            .await
        else {
            return Ok(());
        };
        // It failed here (the store, the signing device): retried with backoff like a
        // remote peer's 4xx, and given up after the queue's lifetime (pec.md §5.7).
        tracing::warn!(queue_id = e.id, "local delivery failed: {err}");
        let outcomes = vec![RcptOutcome::Temporary(format!("4.3.0 {err}")); e.rcpt_to.len()];
        return settle(g, &e, outcomes).await;
    }
    let require_tls = g.is_certified_domain(&e.domain);
    let outcomes = transport
        .deliver(Delivery {
            domain: &e.domain,
            mail_from: &e.mail_from,
            rcpt_to: &e.rcpt_to,
            message: &e.bytes,
            require_tls,
        })
        .await;
    let outcomes = match outcomes {
        Ok(o) if o.len() == e.rcpt_to.len() => o,
        Ok(_) => vec![
            RcptOutcome::Temporary("the relay gave no per-recipient answer".into());
            e.rcpt_to.len()
        ],
        Err(err) if err.temporary => vec![RcptOutcome::Temporary(err.text); e.rcpt_to.len()],
        Err(err) => vec![RcptOutcome::Permanent(err.text); e.rcpt_to.len()],
    };
    settle(g, &e, outcomes).await
}

/// Commits what one attempt at `e` came to, one outcome per recipient.
async fn settle<S: Store>(
    g: &Arc<Gestore<S>>,
    e: &QueueEntry,
    outcomes: Vec<RcptOutcome>,
) -> Result<(), GestoreError> {
    let now = g.clock.unix();
    let expired = now - e.created >= g.settings.queue_lifetime_secs;
    let mut failures = Vec::new();
    let mut later = Vec::new();
    let mut last_error = String::new();
    let mut accepted = Vec::new();
    for (r, o) in e.rcpt_to.iter().zip(outcomes) {
        match o {
            RcptOutcome::Accepted => accepted.push(r.clone()),
            RcptOutcome::Permanent(text) => failures.push(Failure {
                recipient: r.clone(),
                status: status_of(&text, "5.0.0"),
                diagnostic: text,
            }),
            RcptOutcome::Temporary(text) if expired => failures.push(Failure {
                recipient: r.clone(),
                status: "4.4.7".into(),
                diagnostic: format!(
                    "nessuna consegna entro 24 ore / not delivered within 24 hours: {text}"
                ),
            }),
            RcptOutcome::Temporary(text) => {
                last_error = text;
                later.push(r.clone());
            }
        }
    }
    let mut effects = Vec::new();
    if !accepted.is_empty() {
        effects.push(Effect::Log(relay_event(
            g,
            e,
            EventKind::Inoltro,
            &accepted,
            format!("consegnato a {}", e.domain),
        )));
    }
    // The attempt number keeps apart the DSNs of one entry's successive attempts.
    let tag = format!("{}.{}", e.id, e.attempts);
    effects.extend(bounce(g, &e.mail_from, &e.bytes, &tag, &failures));
    let mut step = Commit::default();
    if later.is_empty() {
        step.queue_done.push(e.id);
    } else {
        let delay = BACKOFF[(e.attempts.saturating_sub(1) as usize).min(BACKOFF.len() - 1)];
        let next = (now + delay)
            .min(e.created + g.settings.queue_lifetime_secs)
            .max(now + 1);
        tracing::info!(queue_id = e.id, domain = %e.domain, "temporary failure, next attempt in {}s: {last_error}", next - now);
        step.queue_retry.push(QueueRetry {
            id: e.id,
            rcpt_to: later,
            next_attempt: next,
            error: last_error,
            attempts: e.attempts,
        });
    }
    g.commit(g.clock.now(), effects, step).await
}

pub(crate) fn status_of(text: &str, default: &str) -> String {
    text.split_whitespace()
        .find(|w| {
            w.len() >= 5
                && w.chars().filter(|c| *c == '.').count() == 2
                && w.starts_with(['4', '5'])
        })
        .unwrap_or(default)
        .to_string()
}

fn relay_event<S: Store>(
    g: &Gestore<S>,
    e: &QueueEntry,
    kind: EventKind,
    rcpts: &[String],
    detail: String,
) -> Event {
    message_event(g, &e.mail_from, &e.bytes, kind, rcpts, detail)
}

/// An event about `message` from `mail_from`, tied to its Message-ID.
fn message_event<S: Store>(
    g: &Gestore<S>,
    mail_from: &str,
    message: &[u8],
    kind: EventKind,
    rcpts: &[String],
    detail: String,
) -> Event {
    let h = OriginalHeaders::parse(message);
    Event::new(
        g.clock.now(),
        &dedup_key(message).unwrap_or_default(),
        kind,
        mail_from,
        rcpts.to_vec(),
        h.subject,
        &g.settings.provider.name,
    )
    .detail(detail)
}

/// The effects that return `failures` of `original` to `mail_from`: the event (`mancato
/// inoltro`, pec.md §6) and, unless `mail_from` is the null reverse-path (never a DSN of a
/// DSN), the RFC 3464 DSN relayed from `<>`. `tag` makes the DSN's Message-ID unique among
/// those made in the same second.
pub(crate) fn bounce<S: Store>(
    g: &Gestore<S>,
    mail_from: &str,
    original: &[u8],
    tag: &str,
    failures: &[Failure],
) -> Vec<Effect> {
    if failures.is_empty() {
        return Vec::new();
    }
    let rcpts: Vec<String> = failures.iter().map(|f| f.recipient.clone()).collect();
    let mut effects = vec![Effect::Log(message_event(
        g,
        mail_from,
        original,
        EventKind::MancatoInoltro,
        &rcpts,
        failures
            .iter()
            .map(|f| format!("{}: {} {}", f.recipient, f.status, f.diagnostic))
            .collect::<Vec<_>>()
            .join("; "),
    ))];
    if mail_from.is_empty() {
        return effects;
    }
    let now = g.clock.now();
    let id = format!(
        "dsn.{}.{tag}@{}",
        now.compact(),
        g.settings.provider.service_domain
    );
    let bytes = dsn(
        &g.settings.hostname,
        &format!("postmaster@{}", g.settings.provider.service_domain),
        mail_from,
        failures,
        original,
        now,
        &id,
    );
    effects.push(Effect::Relay {
        mail_from: String::new(),
        rcpt_to: vec![mail_from.to_string()],
        message: bytes,
    });
    effects
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
