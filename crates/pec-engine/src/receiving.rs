//! The receiving point and what follows it (pec.md §1.3 "Punto di Ricezione", §5.4-§5.9):
//! classify one SMTP transaction, issue one presa in carico per transaction, deliver envelopes
//! and notices byte for byte, issue delivery and non-delivery receipts, wrap anything else in
//! an anomaly envelope or refuse it by mailbox policy, and move the sender-side state on when
//! receipts come back.

use crate::access::event;
use crate::bounce::Failure;
use crate::delivery::{Undeliverable, receipt_kind};
use crate::{
    Context, Effect, EngineError, EventKind, Folder, Progress, Spam, Threat, transaction_of,
};
use pec_message::build::{Artefact, Transaction};
use pec_message::classify::{Kind, classify};
use pec_message::daticert::{Daticert, Tipo};
use pec_message::ident::strip_brackets;
use pec_message::mime::Entity;
use pec_message::original::OriginalHeaders;
use pec_message::report::{ProviderDirectory, VerifyOptions, verify_classified};

/// What a mailbox does with ordinary (non-PEC) mail (pec.md §5.6, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrdinaryPolicy {
    /// Wrap it in a busta di anomalia and deliver it.
    #[default]
    Anomalia,
    /// Refuse it at SMTP level.
    Refuse,
}

/// What a mailbox does with ordinary mail classed as spam; the owner chooses (product.md §4).
/// PEC messages are never moved or dropped for spam, whatever the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpamPolicy {
    /// Deliver it into the junk folder.
    #[default]
    Junk,
    /// Delete it (the deletion is logged).
    Delete,
}

/// The state of one local recipient, looked up by the runtime before the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxState {
    /// A mailbox that takes mail.
    Active {
        /// Its ordinary-mail policy.
        ordinary: OrdinaryPolicy,
        /// What it does with ordinary mail classed as spam.
        spam: SpamPolicy,
        /// It is the provider's service mailbox (`mailReceipt`): stores everything as is and
        /// never answers (pec.md §1.2, §5.9).
        service: bool,
        /// It is over quota.
        full: bool,
    },
    /// No such mailbox.
    Unknown,
    /// Disabled by the operator.
    Disabled,
}

/// One local recipient of the SMTP transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecipient {
    /// The address (RCPT TO).
    pub address: String,
    /// Its mailbox.
    pub state: MailboxState,
    /// A message with the same `Message-ID` ([`dedup_key`]) is already in the mailbox
    /// (pec.md §5.9: SMTP retries after a lost `250`).
    pub has_copy: bool,
}

/// One SMTP transaction at the MX (or a locally routed queue entry).
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The reverse-path.
    pub mail_from: &'a str,
    /// The local recipients, in RCPT order.
    pub recipients: &'a [LocalRecipient],
    /// The message bytes as received.
    pub message: &'a [u8],
    /// What the antivirus chain found in it, if anything (pec.md §1.3 PR steps 3 and 6).
    pub threat: Option<&'a Threat>,
    /// The antispam verdict, when the message was classed as spam (product.md §4).
    pub spam: Option<&'a Spam>,
}

/// The SMTP answer after DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `250`: committed.
    Accepted,
    /// `550` / `554`: nothing stored.
    Refused {
        /// Enhanced status and text.
        text: String,
    },
}

/// The outcome of one inbound transaction.
#[derive(Debug)]
pub struct Received {
    /// `pec`, `anomalia` or `ordinaria` (pec.md §4.4).
    pub treat_as: String,
    /// The SMTP answer.
    pub reply: Reply,
    /// The effects to commit (empty when refused).
    pub effects: Vec<Effect>,
    /// Recipients the message could not reach although the transaction was accepted for
    /// others (no such mailbox, disabled, ordinary mail refused by policy). SMTP cannot
    /// answer one recipient after DATA, so the runtime returns them to the reverse-path in a
    /// DSN (pec.md §1.3 PC step 5: "if delivery fails, only the SMTP DSN applies"; §5.6).
    /// Always empty when refused, and for a transport envelope, whose undeliverable
    /// recipients get an errore-consegna instead (pec.md §2.13).
    pub undelivered: Vec<Failure>,
}

/// The key a mailbox uses to drop a second copy: the `Message-ID` without brackets. For a
/// transport envelope it is the identificativo (pec.md §5.9).
pub fn dedup_key(message: &[u8]) -> Option<String> {
    Entity::parse(message)
        .header_value("Message-ID")
        .map(|v| strip_brackets(v.trim()).to_string())
        .filter(|v| !v.is_empty())
}

fn tx_of_daticert(d: &Daticert) -> Transaction {
    Transaction {
        sender: d.mittente.clone(),
        recipients: d.destinatari.clone(),
        reply_to: Some(d.risposte.clone()),
        subject: d.oggetto.clone(),
        identificativo: d.identificativo.clone(),
        client_msgid: d.msgid.clone(),
    }
}

/// Processes one inbound transaction (pec.md §1.3 PR steps 1-6, PC steps 1-5).
pub fn receive(inbound: &Inbound<'_>, ctx: &mut Context<'_>) -> Result<Received, EngineError> {
    let directory: &dyn ProviderDirectory = ctx.directory;
    let c = classify(inbound.message);
    let report = verify_classified(
        inbound.message,
        &c,
        &VerifyOptions {
            anchors: ctx.anchors.to_vec(),
            at: ctx.now,
            directory: Some(directory),
            crls: ctx.crls,
        },
    );
    let daticert = match &c.daticert {
        Some(Ok((d, _))) => Some(d.clone()),
        _ => None,
    };
    let (effects, undelivered) = match (report.treat_as.as_str(), c.kind, daticert) {
        ("pec", Kind::Pec(Tipo::PostaCertificata), Some(d)) => {
            let mail_receipt = report
                .signature
                .signer_sha1
                .as_deref()
                .and_then(|h| ctx.directory.by_certificate_hash(h))
                .map(|e| e.mail_receipt);
            let effects = envelope(
                inbound,
                &d,
                c.postacert,
                // X-TipoRicevuta, else the daticert's <ricevuta> (pec.md §3.3), else completa.
                c.receipt_type(),
                mail_receipt,
                ctx,
            )?;
            (effects, Vec::new())
        }
        ("pec", Kind::Pec(tipo), Some(d)) => {
            let signer_sha1 = report.signature.signer_sha1.as_deref();
            let mut signer_domains = signer_sha1
                .and_then(|h| ctx.directory.by_certificate_hash(h))
                .map(|e| e.managed_domains)
                .unwrap_or_default();
            // Signed here: this gestore speaks for every domain it serves, listed in its own
            // Indice record or not (gestore.domains may have grown since).
            let own = pec_message::pki::certificate_sha1(ctx.signer.certificate());
            let signed_here = signer_sha1.is_some_and(|h| h.eq_ignore_ascii_case(&own));
            if signed_here {
                signer_domains.extend(
                    d.consegna
                        .iter()
                        .chain(&d.ricezione)
                        .filter_map(|a| a.rsplit_once('@').map(|(_, dom)| dom))
                        .filter(|dom| ctx.directory.is_local_domain(dom))
                        .map(str::to_string),
                );
            }
            (
                notice(inbound, tipo, &d, &signer_domains, ctx)?,
                unreachable(inbound),
            )
        }
        ("pec", _, _) => (notice_unchecked(inbound, ctx), unreachable(inbound)),
        (treat, _, _) => {
            let mandatory = treat == "anomalia";
            let reason = if mandatory {
                format!(
                    "Il messaggio firmato dal gestore non è conforme: {}",
                    report.problems.join("; ")
                )
            } else if report.signature.present {
                "Il messaggio non è stato certificato: firma non valida o gestore sconosciuto"
                    .to_string()
            } else {
                "Il messaggio non è un messaggio di posta certificata".to_string()
            };
            return ordinary(inbound, mandatory, &reason, report.treat_as, ctx);
        }
    };
    Ok(finish(report.treat_as, effects, inbound, undelivered))
}

/// The recipients of a transaction that is not a transport envelope which have no mailbox
/// to take it.
fn unreachable(inbound: &Inbound<'_>) -> Vec<Failure> {
    inbound
        .recipients
        .iter()
        .filter(|r| !r.has_copy)
        .filter_map(|r| {
            let (status, diagnostic) = match r.state {
                MailboxState::Active { .. } => return None,
                MailboxState::Unknown => ("5.1.1", "Destinatario sconosciuto / no such mailbox"),
                MailboxState::Disabled => ("5.2.1", "Casella disabilitata / mailbox disabled"),
            };
            Some(Failure {
                recipient: r.address.clone(),
                status: status.into(),
                diagnostic: diagnostic.into(),
            })
        })
        .collect()
}

/// A transaction is refused when nothing was stored, relayed or quarantined for anyone;
/// otherwise accepted, with `undelivered` to be returned in a DSN.
fn finish(
    treat_as: String,
    effects: Vec<Effect>,
    inbound: &Inbound<'_>,
    undelivered: Vec<Failure>,
) -> Received {
    let acted = effects.iter().any(|e| {
        matches!(
            e,
            Effect::Store { .. } | Effect::Relay { .. } | Effect::Quarantine { .. }
        )
    });
    let duplicate = inbound.recipients.iter().any(|r| r.has_copy);
    if acted || duplicate {
        // A DSN comes only from the transaction that delivered the message: a replay of one
        // already delivered (each mailbox that takes it holds its copy) adds nothing.
        let stored = effects.iter().any(|e| matches!(e, Effect::Store { .. }));
        return Received {
            treat_as,
            reply: Reply::Accepted,
            effects,
            undelivered: if stored { undelivered } else { Vec::new() },
        };
    }
    Received {
        treat_as,
        reply: Reply::Refused {
            text: "5.1.1 Destinatario sconosciuto".into(),
        },
        effects: Vec::new(),
        undelivered: Vec::new(),
    }
}

/// A valid transport envelope (pec.md §5.4 first bullet, PC steps 2-4).
fn envelope(
    inbound: &Inbound<'_>,
    d: &Daticert,
    postacert: Option<&[u8]>,
    requested: Option<pec_message::daticert::ReceiptType>,
    mail_receipt: Option<String>,
    ctx: &mut Context<'_>,
) -> Result<Vec<Effect>, EngineError> {
    let tx = tx_of_daticert(d);
    let provider = ctx.provider.name.clone();
    let headers = OriginalHeaders::parse(postacert.unwrap_or(inbound.message));
    let requested = requested.unwrap_or(pec_message::daticert::ReceiptType::Completa);
    let mut effects = Vec::new();
    // One presa in carico per SMTP transaction, for every recipient not already handled.
    let covered: Vec<String> = inbound
        .recipients
        .iter()
        .filter(|r| !r.has_copy)
        .map(|r| r.address.clone())
        .collect();
    if covered.is_empty() {
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::Duplicato, &provider)
                .detail("busta di trasporto già consegnata"),
        ));
        return Ok(effects);
    }
    if let Some(mailbox) = &mail_receipt {
        send_notice(
            ctx,
            &tx,
            &Artefact::PresaInCarico {
                service_mailbox: mailbox.clone(),
                covered: covered.clone(),
            },
            mailbox,
            EventKind::PresaInCarico,
            covered.join(", "),
            &mut effects,
        )?;
    }
    if let Some(threat) = inbound.threat {
        // pec.md §2.10: not delivered; one rilevazione-virus per recipient to the sending
        // provider's mailReceipt; the envelope goes to the virus store.
        for r in inbound.recipients.iter().filter(|r| !r.has_copy) {
            let Some(mailbox) = &mail_receipt else { break };
            send_notice(
                ctx,
                &tx,
                &Artefact::RilevazioneVirus {
                    service_mailbox: mailbox.clone(),
                    recipient: r.address.clone(),
                    virus: threat.name.clone(),
                },
                mailbox,
                EventKind::Virus,
                format!(
                    "rilevazione virus per {}: {} ({})",
                    r.address, threat.name, threat.engine
                ),
                &mut effects,
            )?;
        }
        effects.push(Effect::Quarantine {
            message: inbound.message.to_vec(),
            identificativo: Some(tx.identificativo.clone()),
            sender: tx.sender.clone(),
            recipients: covered,
            threat: threat.clone(),
        });
        return Ok(effects);
    }
    for r in inbound.recipients.iter().filter(|r| !r.has_copy) {
        let problem = match r.state {
            MailboxState::Active { full: true, .. } => Some(Undeliverable::MailboxFull),
            MailboxState::Active { .. } => None,
            MailboxState::Unknown => Some(Undeliverable::NoSuchMailbox),
            MailboxState::Disabled => Some(Undeliverable::Disabled),
        };
        let (artefact, kind, detail) = match problem {
            None => {
                effects.push(Effect::Store {
                    mailbox: r.address.clone(),
                    message: inbound.message.to_vec(),
                    kind: "posta-certificata".into(),
                    identificativo: Some(tx.identificativo.clone()),
                    message_id: Some(tx.identificativo.clone()),
                    folder: Folder::Inbox,
                });
                let kind = receipt_kind(requested, headers.is_primary(&r.address));
                (
                    Artefact::AvvenutaConsegna {
                        recipient: r.address.clone(),
                        kind,
                        original: postacert.unwrap_or_default().to_vec(),
                    },
                    EventKind::AvvenutaConsegna,
                    format!("{} {}", kind.as_str(), r.address),
                )
            }
            Some(u) => {
                let (error, text) = u.describe(&provider);
                (
                    Artefact::ErroreConsegna {
                        recipient: r.address.clone(),
                        error,
                        detail: text.clone(),
                    },
                    EventKind::ErroreConsegna,
                    format!("{}: {text}", r.address),
                )
            }
        };
        // PC step 3: to the original sender, the envelope's SMTP reverse-path.
        send_notice(
            ctx,
            &tx,
            &artefact,
            // Notices go to the reverse-path (pec.md §2.1); an envelope relayed with a null
            // one still names its certified sender, who gets them instead of nobody.
            if inbound.mail_from.is_empty() {
                &d.mittente
            } else {
                inbound.mail_from
            },
            kind,
            detail,
            &mut effects,
        )?;
    }
    Ok(effects)
}

/// Builds and signs `artefact`, relays it from the service address to `to`, and logs it as
/// `kind` with its Message-ID and `detail`.
fn send_notice(
    ctx: &mut Context<'_>,
    tx: &Transaction,
    artefact: &Artefact,
    to: &str,
    kind: EventKind,
    detail: String,
    effects: &mut Vec<Effect>,
) -> Result<(), EngineError> {
    let (id, bytes) = ctx.make(artefact, tx)?;
    effects.push(Effect::Relay {
        mail_from: ctx.provider.service_address(),
        rcpt_to: vec![to.to_string()],
        message: bytes,
    });
    let provider = ctx.provider.name.clone();
    effects.push(Effect::Log(
        event(ctx, tx, kind, &provider).related([id]).detail(detail),
    ));
    Ok(())
}

/// A valid receipt or notice from a provider: delivered unchanged, no receipt of any kind
/// (pec.md §5.4 second bullet, §5.9), and the sender-side state moves on. A rilevazione-virus
/// about one of our senders' messages becomes the errore-consegna per virus to that sender
/// (pec.md §2.11).
fn notice(
    inbound: &Inbound<'_>,
    tipo: Tipo,
    d: &Daticert,
    signer_domains: &[String],
    ctx: &mut Context<'_>,
) -> Result<Vec<Effect>, EngineError> {
    let mut effects = store_unchanged(inbound, tipo.as_str(), Some(&d.identificativo));
    // A notice speaks for the recipients of the provider that signed it: only the provider
    // managing a recipient's domain takes it in charge, delivers or fails to deliver to it
    // (pec.md §4.4 step 5, §7.3). A notice about anyone else's recipient is kept, but moves
    // nothing: one listed provider cannot stop the timers of another's recipients.
    let speaks_for = |address: &String| {
        address
            .rsplit_once('@')
            .is_some_and(|(_, dom)| signer_domains.iter().any(|m| m.eq_ignore_ascii_case(dom)))
    };
    let steps: Vec<(String, Progress)> = match tipo {
        Tipo::PresaInCarico => d
            .ricezione
            .iter()
            .map(|a| (a.clone(), Progress::TakenInCharge))
            .collect(),
        Tipo::AvvenutaConsegna => d
            .consegna
            .iter()
            .map(|a| (a.clone(), Progress::Delivered))
            .collect(),
        Tipo::ErroreConsegna | Tipo::RilevazioneVirus => d
            .consegna
            .iter()
            .map(|a| (a.clone(), Progress::Failed))
            .collect(),
        _ => Vec::new(),
    };
    let steps: Vec<(String, Progress)> = steps.into_iter().filter(|(a, _)| speaks_for(a)).collect();
    let delivered = effects.iter().any(|e| matches!(e, Effect::Store { .. }));
    if delivered {
        for (recipient, step) in steps {
            effects.push(Effect::Progress {
                identificativo: d.identificativo.clone(),
                recipient,
                step,
            });
        }
        let tx = tx_of_daticert(d);
        let id = dedup_key(inbound.message).unwrap_or_default();
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::RicevutaRicevuta, &d.gestore_emittente)
                .related([id])
                .detail(tipo.as_str()),
        ));
        // Only the sender's own provider answers a rilevazione-virus, and only for a sender
        // it serves, reached through its service mailbox (pec.md §2.10: sent to the sending
        // provider's mailReceipt; §2.11). Any other copy is kept and nothing is relayed.
        let ours = tx
            .sender
            .rsplit_once('@')
            .is_some_and(|(_, d)| ctx.directory.is_local_domain(d))
            && inbound
                .recipients
                .iter()
                .any(|r| matches!(r.state, MailboxState::Active { service: true, .. }));
        if tipo == Tipo::RilevazioneVirus && ours {
            let virus = d.errore_esteso.clone().unwrap_or_else(|| "virus".into());
            for recipient in d.consegna.iter().filter(|a| speaks_for(a)) {
                send_notice(
                    ctx,
                    &tx,
                    &Artefact::ErroreConsegnaVirus {
                        recipient: recipient.clone(),
                        virus: virus.clone(),
                    },
                    &tx.sender,
                    EventKind::Virus,
                    format!("errore-consegna per virus per {recipient}: {virus}"),
                    &mut effects,
                )?;
            }
        }
    }
    if let Some(threat) = inbound.threat {
        // A provider's notice is delivered whatever the antivirus says: it carries the
        // legal evidence of the transaction. The finding is logged.
        let tx = tx_of_daticert(d);
        let provider = ctx.provider.name.clone();
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::Virus, &provider).detail(format!(
                "threat in a {} notice, delivered: {} ({})",
                tipo.as_str(),
                threat.name,
                threat.engine
            )),
        ));
    }
    Ok(effects)
}

/// A PEC message without a readable daticert cannot reach here as `pec`; kept total.
fn notice_unchecked(inbound: &Inbound<'_>, _ctx: &mut Context<'_>) -> Vec<Effect> {
    store_unchanged(inbound, "anomalia", None)
}

fn store_unchanged(inbound: &Inbound<'_>, kind: &str, identificativo: Option<&str>) -> Vec<Effect> {
    let message_id = dedup_key(inbound.message);
    inbound
        .recipients
        .iter()
        .filter(|r| !r.has_copy && matches!(r.state, MailboxState::Active { .. }))
        .map(|r| Effect::Store {
            mailbox: r.address.clone(),
            message: inbound.message.to_vec(),
            kind: kind.to_string(),
            identificativo: identificativo.map(str::to_string),
            message_id: message_id.clone(),
            folder: Folder::Inbox,
        })
        .collect()
}

/// Ordinary mail, or provider-signed mail that is malformed (`mandatory`): anomaly envelope
/// or refusal (pec.md §5.4 third and fourth bullets, §5.6).
fn ordinary(
    inbound: &Inbound<'_>,
    mandatory: bool,
    reason: &str,
    treat_as: String,
    ctx: &mut Context<'_>,
) -> Result<Received, EngineError> {
    let h = OriginalHeaders::parse(inbound.message);
    // "Per conto di: <original sender>" (pec.md §2.9). A provider-signed message is From
    // posta-certificata@ its provider; its sender is the reverse-path, as for every
    // certification datum (pec.md §2.1). For ordinary mail the reverse-path is often a
    // bounce address, so its author, From, is named (and offered as Reply-To).
    let from = h.from.first().cloned();
    let sender = if mandatory && !inbound.mail_from.is_empty() {
        inbound.mail_from.to_string()
    } else {
        from.unwrap_or_else(|| inbound.mail_from.to_string())
    };
    let identificativo = match dedup_key(inbound.message) {
        Some(id) => id,
        None => ctx.ids.next_id(ctx.now),
    };
    let tx = transaction_of(&h, &sender, &identificativo, ctx);
    let provider = ctx.provider.name.clone();
    let mut effects = Vec::new();
    if let Some(threat) = inbound.threat {
        // pec.md §8.4: infected ordinary mail is dropped with no notice, and logged. A
        // provider-signed message that had to be wrapped is kept in the virus store.
        if mandatory {
            effects.push(Effect::Quarantine {
                message: inbound.message.to_vec(),
                identificativo: None,
                sender: tx.sender.clone(),
                recipients: inbound
                    .recipients
                    .iter()
                    .map(|r| r.address.clone())
                    .collect(),
                threat: threat.clone(),
            });
        }
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::Virus, &provider).detail(format!(
                "infected message not delivered: {} ({})",
                threat.name, threat.engine
            )),
        ));
        return Ok(Received {
            treat_as,
            reply: Reply::Accepted,
            effects,
            undelivered: Vec::new(),
        });
    }
    let mut wrapped: Option<(String, Vec<u8>)> = None;
    let mut undelivered = unreachable(inbound);
    let mut refused = false;
    let mut refused_full = false;
    let mut deleted = false;
    for r in inbound.recipients.iter().filter(|r| !r.has_copy) {
        let MailboxState::Active {
            ordinary,
            service,
            spam: spam_policy,
            full,
        } = r.state
        else {
            continue;
        };
        if service {
            // The service mailbox keeps DSNs and stray mail as they are (pec.md §5.9).
            effects.extend(store_unchanged(
                &Inbound {
                    recipients: std::slice::from_ref(r),
                    ..*inbound
                },
                "ordinaria",
                None,
            ));
            continue;
        }
        if !mandatory && ordinary == OrdinaryPolicy::Refuse {
            refused = true;
            effects.push(Effect::Log(
                event(ctx, &tx, EventKind::Rifiuto, &provider).detail(r.address.clone()),
            ));
            undelivered.push(Failure {
                recipient: r.address.clone(),
                status: "5.7.1".into(),
                diagnostic: REFUSED_ORDINARY.into(),
            });
            continue;
        }
        // Ordinary mail respects the quota, as an envelope does (errore-consegna, pec.md
        // §2.13); provider-signed mail that had to be wrapped is PEC traffic and is kept.
        if !mandatory && full {
            refused_full = true;
            effects.push(Effect::Log(
                event(ctx, &tx, EventKind::Rifiuto, &provider)
                    .detail(format!("{}: {MAILBOX_FULL}", r.address)),
            ));
            undelivered.push(Failure {
                recipient: r.address.clone(),
                status: "5.2.2".into(),
                diagnostic: MAILBOX_FULL.into(),
            });
            continue;
        }
        // product.md §4: ordinary spam goes to the junk folder or is deleted, as the owner
        // chose. Provider-signed mail that had to be wrapped is PEC traffic: never moved.
        let folder = match (inbound.spam, mandatory, spam_policy) {
            (Some(spam), false, SpamPolicy::Delete) => {
                effects.push(Effect::Log(
                    event(ctx, &tx, EventKind::Spam, &provider).detail(format!(
                        "spam deleted for {}: {} ({})",
                        r.address, spam.detail, spam.engine
                    )),
                ));
                deleted = true;
                continue;
            }
            (Some(_), false, SpamPolicy::Junk) => Folder::Junk,
            _ => Folder::Inbox,
        };
        if wrapped.is_none() {
            wrapped = Some(ctx.make(
                &Artefact::Anomalia {
                    received: inbound.message.to_vec(),
                    error: reason.to_string(),
                },
                &tx,
            )?);
        }
        if let Some((id, bytes)) = &wrapped {
            effects.push(Effect::Store {
                mailbox: r.address.clone(),
                message: bytes.clone(),
                kind: "anomalia".into(),
                identificativo: Some(identificativo.clone()),
                message_id: dedup_key(inbound.message).or(Some(id.clone())),
                folder,
            });
        }
    }
    if let (Some(spam), false) = (inbound.spam, mandatory) {
        let junked: Vec<String> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Store {
                    mailbox,
                    folder: Folder::Junk,
                    ..
                } => Some(mailbox.clone()),
                _ => None,
            })
            .collect();
        if !junked.is_empty() {
            effects.push(Effect::Log(
                event(ctx, &tx, EventKind::Spam, &provider).detail(format!(
                    "spam put in the junk folder of {}: {} ({})",
                    junked.join(", "),
                    spam.detail,
                    spam.engine
                )),
            ));
        }
    }
    if let Some((id, _)) = &wrapped {
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::Anomalia, &provider)
                .related([id.clone()])
                .detail(reason.to_string()),
        ));
    }
    let stored = effects.iter().any(|e| matches!(e, Effect::Store { .. }));
    if !stored && deleted {
        // Deleted as spam for every recipient: taken, and only logged (product.md §4).
        return Ok(Received {
            treat_as,
            reply: Reply::Accepted,
            effects,
            undelivered: Vec::new(),
        });
    }
    // A retry of a message some mailbox already holds is not refused: the sender would
    // hear that it failed although it was delivered.
    let duplicate = inbound.recipients.iter().any(|r| r.has_copy);
    if !stored && (refused || refused_full) && !duplicate {
        return Ok(Received {
            treat_as,
            reply: Reply::Refused {
                text: if refused {
                    format!("5.7.1 {REFUSED_ORDINARY}")
                } else {
                    format!("5.2.2 {MAILBOX_FULL}")
                },
            },
            undelivered: Vec::new(),
            // The refusal is logged even though nothing is stored.
            effects: effects
                .into_iter()
                .filter(|e| matches!(e, Effect::Log(_)))
                .collect(),
        });
    }
    if inbound.spam.is_some() {
        // Spam names a forged sender more often than not: returning it would send mail to
        // a third party (backscatter). The refusals are logged above.
        undelivered.clear();
    }
    Ok(finish(treat_as, effects, inbound, undelivered))
}

/// Why a mailbox that refuses ordinary mail did not take it (pec.md §5.6).
/// ASCII, as SMTP replies and the DSN text are.
const MAILBOX_FULL: &str = "La casella di destinazione e' piena (mailbox full)";

const REFUSED_ORDINARY: &str = "Questa casella di posta certificata non accetta posta ordinaria";

#[cfg(test)]
#[path = "receiving_tests.rs"]
mod tests;
