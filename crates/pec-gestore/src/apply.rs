//! Turns the engine's effects into one store commit (architecture §4: the message, the
//! generated receipts, the queue entries, the log events and the deadlines together).

use crate::{Gestore, GestoreError};
use pec_engine::{Effect, domain_of};
use pec_message::TimeRef;
use pec_message::original::OriginalHeaders;
use pec_store::{Commit, NewDeadline, NewEvent, NewMessage, NewQueueEntry, NewTracked, Store};
use std::collections::BTreeMap;

impl<S: Store> Gestore<S> {
    /// Commits `effects` at `now` together with `base` (a finished queue entry or deadline,
    /// the sender's copy of a submission) in one transaction.
    pub(crate) async fn commit(
        &self,
        now: TimeRef,
        effects: Vec<Effect>,
        base: Commit,
    ) -> Result<(), GestoreError> {
        let t = now.utc().timestamp();
        let mut c = base;
        let mut queued = false;
        for e in effects {
            match e {
                Effect::Store {
                    mailbox,
                    message,
                    kind,
                    identificativo,
                    message_id,
                    folder,
                } => {
                    let subject = OriginalHeaders::parse(&message).subject;
                    c.messages.push(NewMessage {
                        mailbox: mailbox.to_ascii_lowercase(),
                        folder: folder.as_str().into(),
                        flags: String::new(),
                        bytes: message,
                        kind,
                        identificativo,
                        message_id,
                        subject,
                        date: t,
                    });
                }
                Effect::Relay {
                    mail_from,
                    rcpt_to,
                    message,
                } => {
                    // One queue entry per next-hop domain, RCPT order kept.
                    let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for r in rcpt_to {
                        by_domain
                            .entry(domain_of(&r).to_ascii_lowercase())
                            .or_default()
                            .push(r);
                    }
                    for (domain, rcpt_to) in by_domain {
                        c.queue.push(NewQueueEntry {
                            mail_from: mail_from.clone(),
                            rcpt_to,
                            domain,
                            bytes: message.clone(),
                            not_before: t,
                        });
                    }
                    queued = true;
                }
                Effect::Track {
                    identificativo,
                    transaction,
                    ..
                } => {
                    let recipients = transaction
                        .recipients
                        .iter()
                        .filter(|(_, certified)| *certified)
                        .map(|(a, _)| a.clone())
                        .collect();
                    c.tracked.push(NewTracked {
                        identificativo,
                        data: serde_json::to_string(&transaction)
                            .map_err(|e| GestoreError::Internal(e.to_string()))?,
                        recipients,
                    });
                }
                Effect::Progress {
                    identificativo,
                    recipient,
                    step,
                } => c
                    .progress
                    .push((identificativo, recipient, step.as_str().to_string())),
                Effect::Deadline {
                    identificativo,
                    recipient,
                    which,
                    due,
                } => c.deadlines.push(NewDeadline {
                    identificativo,
                    recipient,
                    which: which.as_str().into(),
                    due: due.utc().timestamp(),
                }),
                Effect::Log(ev) => c.events.push(NewEvent {
                    time: t,
                    identificativo: ev.identificativo.clone(),
                    json: serde_json::to_string(&ev)
                        .map_err(|e| GestoreError::Internal(e.to_string()))?,
                }),
                Effect::Quarantine {
                    message,
                    identificativo,
                    sender,
                    recipients,
                    threat,
                } => c.quarantine.push(pec_store::NewQuarantined {
                    bytes: message,
                    identificativo,
                    sender,
                    recipients,
                    engine: threat.engine,
                    threat: threat.name,
                }),
            }
        }
        // With a queue worker running, new entries are leased in this commit and handed to
        // it directly; otherwise the worker finds them in the store.
        if queued && self.handoff.is_open() {
            c.queue_lease_until = self.clock.unix() + crate::queue::LEASE_SECS;
        }
        let until = c.queue_lease_until;
        let mut committed = self.store.commit(c).await?;
        let leased = std::mem::take(&mut committed.leased);
        let handed = until > 0 && self.handoff.send(leased, until);
        if queued && !handed {
            self.queued.notify_one();
        }
        if committed.webhooks > 0 {
            self.webhooks_due.notify_one();
        }
        Ok(())
    }
}
