//! The access point (pec.md §1.3 "Punto di Accesso", §5.1, §5.2): formal checks of a
//! submission, the acceptance or non-acceptance notice, the signed transport envelope and the
//! per-recipient deadlines.

use crate::effect::TrackedTransaction;
use crate::{Context, Effect, EngineError, Event, EventKind, Threat, TimeoutKind, transaction_of};
use pec_message::build::{Artefact, Transaction};
use pec_message::daticert::RecipientType;
use pec_message::original::{OriginalHeaders, is_valid_address};

/// Limits of the access point (pec.md §5.1 check 6; DM art. 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size × number of recipients may not exceed this (never below 30 MB).
    pub max_size_x_recipients: u64,
    /// Most recipients in one submission (never below 50).
    pub max_recipients: usize,
}

/// The floor the rules guarantee (DM art. 12): 30 MB and 50 recipients.
pub const MIN_SIZE_X_RECIPIENTS: u64 = 30 * 1024 * 1024;
/// See [`MIN_SIZE_X_RECIPIENTS`].
pub const MIN_RECIPIENTS: usize = 50;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size_x_recipients: 100 * 1024 * 1024,
            max_recipients: 100,
        }
    }
}

/// One authenticated SMTP (or web) submission.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The authenticated account's own address: a non-acceptance goes here when the
    /// reverse-path is not an address the account may use (pec.md §5.3).
    pub account: &'a str,
    /// Addresses the authenticated account may send as (pec.md §5.3).
    pub allowed_senders: &'a [String],
    /// SMTP reverse-path.
    pub mail_from: &'a str,
    /// SMTP forward-paths.
    pub rcpt_to: &'a [String],
    /// The message as received.
    pub message: &'a [u8],
    /// What the antivirus chain found in it, if anything (pec.md §1.3 PA step 3).
    pub threat: Option<&'a Threat>,
}

/// A formal check that failed (pec.md §5.1). The text goes into the non-acceptance notice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormalError {
    /// The message is not valid RFC 5322: a field that may occur at most once occurs more
    /// often (RFC 5322 §3.6), so the certified data and what a client shows could differ.
    #[error("il campo {0} compare più volte (RFC 5322 §3.6)")]
    Repeated(String),
    /// Not valid RFC 5322: a line that is not a header field ends the header block.
    #[error(
        "l'intestazione non è conforme a RFC 5322: la riga \"{0}\" non è un campo e non è \
         separata dal corpo da una riga vuota"
    )]
    StrayLine(String),
    /// Check 1.
    #[error("il campo From deve contenere un solo indirizzo valido")]
    From,
    /// Check 2.
    #[error("il campo To deve contenere almeno un indirizzo valido")]
    To,
    /// Checks 1-2: an address in To or Cc that is not a valid mailbox (RFC 5321 §4.1.2;
    /// internationalised addresses are not foreseen, pec.md §9).
    #[error("l'indirizzo {0} nei campi To o Cc non è un indirizzo valido")]
    Address(String),
    /// Check 3.
    #[error("il mittente SMTP ({0}) non coincide con il campo From")]
    MailFromMismatch(String),
    /// Check 3, authentication (pec.md §5.3).
    #[error("il mittente {0} non appartiene all'utente autenticato")]
    NotOwner(String),
    /// Check 4.
    #[error("il destinatario {0} non è presente nei campi To o Cc")]
    HiddenRecipient(String),
    /// Check 5.
    #[error("il campo Bcc non è ammesso")]
    Bcc,
    /// Check 6, recipients.
    #[error("il numero di destinatari ({0}) supera il limite consentito ({1})")]
    TooManyRecipients(usize, usize),
    /// Check 6, size.
    #[error(
        "la dimensione per il numero di destinatari ({0} byte) supera il limite consentito ({1} byte)"
    )]
    TooLarge(u64, u64),
}

/// Runs the formal checks of pec.md §5.1 in order and returns the first failure.
pub fn formal_checks(
    sub: &Submission<'_>,
    h: &OriginalHeaders,
    limits: &Limits,
) -> Result<(), FormalError> {
    // The message must be valid RFC 5322: no single-occurrence field twice (a second From
    // would be certified under the first one's name).
    if let Some(name) = &h.repeated {
        return Err(FormalError::Repeated(name.clone()));
    }
    // Nor a header block ended by a line that is not a field: readers disagree on what
    // follows it (a From or Bcc after `X-Name : value` would go unchecked here, RFC 5322
    // §2.1, §4.5).
    if let Some(line) = &h.stray_line {
        return Err(FormalError::StrayLine(line.clone()));
    }
    // 1. One From address.
    let [from] = h.from.as_slice() else {
        return Err(FormalError::From);
    };
    if !is_valid_address(from) {
        return Err(FormalError::From);
    }
    // 2. To holds one or more addresses, and every To and Cc address is valid: each is
    // certified in daticert.xml.
    if h.to.is_empty() {
        return Err(FormalError::To);
    }
    if let Some(bad) = h.to.iter().chain(&h.cc).find(|a| !is_valid_address(a)) {
        return Err(FormalError::Address(bad.clone()));
    }
    // 3. MAIL FROM = From, owned by the authenticated account.
    if !sub.mail_from.eq_ignore_ascii_case(from) {
        return Err(FormalError::MailFromMismatch(sub.mail_from.to_string()));
    }
    if !sub
        .allowed_senders
        .iter()
        .any(|a| a.eq_ignore_ascii_case(from))
    {
        return Err(FormalError::NotOwner(from.clone()));
    }
    // 5. No Bcc value (checked before 4: a Bcc header explains a hidden RCPT best).
    if h.bcc_has_value {
        return Err(FormalError::Bcc);
    }
    // 4. Every RCPT appears in To or Cc.
    let listed = h.recipients();
    for r in sub.rcpt_to {
        if !listed.iter().any(|a| a.eq_ignore_ascii_case(r)) {
            return Err(FormalError::HiddenRecipient(r.clone()));
        }
    }
    // 6. Size × recipients.
    let n = sub.rcpt_to.len().max(listed.len());
    if n > limits.max_recipients {
        return Err(FormalError::TooManyRecipients(n, limits.max_recipients));
    }
    let product = sub.message.len() as u64 * n as u64;
    if product > limits.max_size_x_recipients {
        return Err(FormalError::TooLarge(product, limits.max_size_x_recipients));
    }
    Ok(())
}

/// Why the access point did not accept a submission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A formal check failed (pec.md §2.4).
    #[error(transparent)]
    Formal(#[from] FormalError),
    /// The antivirus found a threat (pec.md §2.5).
    #[error("virus {}", .0.name)]
    Virus(Threat),
}

/// What the access point decided.
#[derive(Debug)]
pub struct Accepted {
    /// The PEC msgid assigned to the submission.
    pub identificativo: String,
    /// `None` when accepted; why not otherwise.
    pub refused: Option<Refusal>,
    /// The effects to commit.
    pub effects: Vec<Effect>,
}

/// Processes one submission (pec.md §1.3 PA steps 2-10).
pub fn submit(
    sub: &Submission<'_>,
    limits: &Limits,
    ctx: &mut Context<'_>,
) -> Result<Accepted, EngineError> {
    let h = OriginalHeaders::parse(sub.message);
    // Step 4-5: one time reference, one PEC msgid.
    let identificativo = ctx.ids.next_id(ctx.now);
    let sender = h
        .from
        .first()
        .cloned()
        .unwrap_or_else(|| sub.mail_from.to_string());
    let tx = transaction_of(&h, &sender, &identificativo, ctx);
    let provider = ctx.provider.name.clone();
    let mut effects = Vec::new();

    if let Err(e) = formal_checks(sub, &h, limits) {
        // pec.md §2.1, §2.4: the notice goes to the reverse-path, when it is an address the
        // authenticated account may use; otherwise (another user's address, a foreign or a
        // null one) to the account that submitted, never to a third party.
        let owned = sub
            .allowed_senders
            .iter()
            .any(|a| a.eq_ignore_ascii_case(sub.mail_from));
        let to = if owned { sub.mail_from } else { sub.account };
        let mut tx = tx;
        tx.sender = to.to_string();
        if tx.recipients.is_empty() {
            // No To or Cc address to state: daticert.xml still needs one `destinatari`
            // (daticert.dtd), so the notice names the SMTP recipients.
            tx.recipients = sub
                .rcpt_to
                .iter()
                .map(|a| pec_message::daticert::Destinatario {
                    tipo: ctx.classify_recipient(a),
                    address: a.clone(),
                })
                .collect();
        }
        let (id, bytes) = ctx.make(
            &Artefact::NonAccettazione {
                reason: e.to_string(),
            },
            &tx,
        )?;
        effects.push(store(to, bytes, "non-accettazione", &tx, &id));
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::NonAccettazione, &provider)
                .related([id])
                .detail(e.to_string()),
        ));
        return Ok(Accepted {
            identificativo,
            refused: Some(Refusal::Formal(e)),
            effects,
        });
    }

    // Step 3 (pec.md §2.5): a virus ends the transaction with the notice to the sender; the
    // original is not attached and goes to the virus store.
    if let Some(threat) = sub.threat {
        let (id, bytes) = ctx.make(
            &Artefact::NonAccettazioneVirus {
                virus: threat.name.clone(),
            },
            &tx,
        )?;
        effects.push(store(&tx.sender, bytes, "non-accettazione", &tx, &id));
        effects.push(Effect::Quarantine {
            message: sub.message.to_vec(),
            identificativo: Some(identificativo.clone()),
            sender: tx.sender.clone(),
            recipients: sub.rcpt_to.to_vec(),
            threat: threat.clone(),
        });
        effects.push(Effect::Log(
            event(ctx, &tx, EventKind::Virus, &provider)
                .related([id])
                .detail(format!(
                    "non-accettazione per virus: {} ({})",
                    threat.name, threat.engine
                )),
        ));
        return Ok(Accepted {
            identificativo,
            refused: Some(Refusal::Virus(threat.clone())),
            effects,
        });
    }

    // Step 7: the acceptance receipt, into the sender's own mailbox.
    let (acc_id, acc) = ctx.make(&Artefact::Accettazione, &tx)?;
    effects.push(store(&tx.sender, acc, "accettazione", &tx, &acc_id));
    // Step 8: the envelope, relayed with the SMTP envelope unchanged.
    let (env_id, envelope) = ctx.make(
        &Artefact::PostaCertificata {
            original: sub.message.to_vec(),
        },
        &tx,
    )?;
    effects.push(Effect::Relay {
        mail_from: sub.mail_from.to_string(),
        rcpt_to: sub.rcpt_to.to_vec(),
        message: envelope,
    });
    // Step 9: timers for certified recipients only (pec.md §5.2).
    let certified: Vec<&str> = tx
        .recipients
        .iter()
        .filter(|r| r.tipo == RecipientType::Certificato)
        .map(|r| r.address.as_str())
        .filter(|a| sub.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(a)))
        .collect();
    if !certified.is_empty() {
        effects.push(Effect::Track {
            identificativo: identificativo.clone(),
            sender: tx.sender.clone(),
            transaction: TrackedTransaction {
                sender: tx.sender.clone(),
                recipients: tx
                    .recipients
                    .iter()
                    .map(|r| (r.address.clone(), r.tipo == RecipientType::Certificato))
                    .collect(),
                reply_to: tx.reply_to.clone(),
                subject: tx.subject.clone(),
                client_msgid: tx.client_msgid.clone(),
                t0: ctx.now.utc().timestamp(),
            },
        });
        for r in &certified {
            for which in [TimeoutKind::H12, TimeoutKind::H24] {
                effects.push(Effect::Deadline {
                    identificativo: identificativo.clone(),
                    recipient: r.to_string(),
                    which,
                    due: crate::deadline::due(ctx.now, which),
                });
            }
        }
    }
    // Step 10: log.
    effects.push(Effect::Log(
        event(ctx, &tx, EventKind::Accettazione, &provider).related([acc_id]),
    ));
    effects.push(Effect::Log(
        event(ctx, &tx, EventKind::BustaTrasporto, &provider).related([env_id]),
    ));
    Ok(Accepted {
        identificativo,
        refused: None,
        effects,
    })
}

fn store(mailbox: &str, bytes: Vec<u8>, kind: &str, tx: &Transaction, id: &str) -> Effect {
    Effect::Store {
        mailbox: mailbox.to_string(),
        message: bytes,
        kind: kind.to_string(),
        identificativo: Some(tx.identificativo.clone()),
        message_id: Some(id.to_string()),
        folder: crate::Folder::Inbox,
    }
}

pub(crate) fn event(ctx: &Context<'_>, tx: &Transaction, kind: EventKind, provider: &str) -> Event {
    Event::new(
        ctx.now,
        &tx.identificativo,
        kind,
        &tx.sender,
        tx.recipients.iter().map(|r| r.address.clone()).collect(),
        tx.subject.clone(),
        provider,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    const MSG: &[u8] = b"From: Mario <mario@a.test>\r\nTo: anna@b.test, x@gmail.test\r\nCc: c@a.test\r\nSubject: Prova\r\nMessage-ID: <m1@client>\r\n\r\nbody\r\n";

    fn sub<'a>(allowed: &'a [String], rcpt: &'a [String], msg: &'a [u8]) -> Submission<'a> {
        Submission {
            account: "mario@a.test",
            allowed_senders: allowed,
            mail_from: "mario@a.test",
            rcpt_to: rcpt,
            message: msg,
            threat: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn formal_checks_follow_section_5_1() {
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test", "x@gmail.test", "c@a.test"]);
        let h = |m: &[u8]| OriginalHeaders::parse(m);
        let l = Limits::default();
        assert_eq!(
            formal_checks(&sub(&allowed, &rcpt, MSG), &h(MSG), &l),
            Ok(())
        );
        // 1. two From addresses
        let m = b"From: a@a.test, mario@a.test\r\nTo: anna@b.test\r\n\r\n";
        assert_eq!(
            formal_checks(&sub(&allowed, &rcpt, m), &h(m), &l),
            Err(FormalError::From)
        );
        // 2. no To
        let m = b"From: mario@a.test\r\nCc: anna@b.test\r\n\r\n";
        assert_eq!(
            formal_checks(&sub(&allowed, &rcpt, m), &h(m), &l),
            Err(FormalError::To)
        );
        // 1-2. addresses that are not valid mailboxes
        let m = b"From: mario@a.test\r\nTo: anna@, x@gmail.test\r\n\r\n";
        assert_eq!(
            formal_checks(&sub(&allowed, &rcpt, m), &h(m), &l),
            Err(FormalError::Address("anna@".into()))
        );
        let m = "From: mario@a.test\r\nTo: anna@b.test\r\nCc: josé@b.test\r\n\r\n";
        assert_eq!(
            formal_checks(&sub(&allowed, &rcpt, m.as_bytes()), &h(m.as_bytes()), &l),
            Err(FormalError::Address("josé@b.test".into()))
        );
        // 3. MAIL FROM differs from From (case-insensitive compare)
        let m = b"From: MARIO@a.test\r\nTo: anna@b.test, x@gmail.test\r\nCc: c@a.test\r\n\r\n";
        assert_eq!(formal_checks(&sub(&allowed, &rcpt, m), &h(m), &l), Ok(()));
        let other = strings(&["luca@a.test"]);
        assert!(matches!(
            formal_checks(&sub(&other, &rcpt, MSG), &h(MSG), &l),
            Err(FormalError::NotOwner(_))
        ));
        let mut s = sub(&allowed, &rcpt, MSG);
        s.mail_from = "luca@a.test";
        assert!(matches!(
            formal_checks(&s, &h(MSG), &l),
            Err(FormalError::MailFromMismatch(_))
        ));
        // 4. hidden recipient
        let more = strings(&["anna@b.test", "hidden@b.test"]);
        assert_eq!(
            formal_checks(&sub(&allowed, &more, MSG), &h(MSG), &l),
            Err(FormalError::HiddenRecipient("hidden@b.test".into()))
        );
        // 5. Bcc with a value
        let m = b"From: mario@a.test\r\nTo: anna@b.test\r\nBcc: z@b.test\r\n\r\n";
        let r = strings(&["anna@b.test", "z@b.test"]);
        assert_eq!(
            formal_checks(&sub(&allowed, &r, m), &h(m), &l),
            Err(FormalError::Bcc)
        );
        // 6. size x recipients, and recipient count
        let tight = Limits {
            max_size_x_recipients: MSG.len() as u64 * 2,
            max_recipients: 50,
        };
        assert!(matches!(
            formal_checks(&sub(&allowed, &rcpt, MSG), &h(MSG), &tight),
            Err(FormalError::TooLarge(..))
        ));
        let few = Limits {
            max_size_x_recipients: u64::MAX,
            max_recipients: 2,
        };
        assert!(matches!(
            formal_checks(&sub(&allowed, &rcpt, MSG), &h(MSG), &few),
            Err(FormalError::TooManyRecipients(3, 2))
        ));
    }

    #[test]
    fn accepted_submission_makes_receipt_envelope_timers_and_log() {
        let mut f = Fixture::new();
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test", "x@gmail.test", "c@a.test"]);
        let out = submit(&sub(&allowed, &rcpt, MSG), &Limits::default(), &mut f.ctx()).unwrap();
        assert!(out.refused.is_none());
        let e = &out.effects;
        let stored: Vec<_> = e
            .iter()
            .filter_map(|e| match e {
                Effect::Store { mailbox, kind, .. } => Some((mailbox.as_str(), kind.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(stored, vec![("mario@a.test", "accettazione")]);
        let relay = e
            .iter()
            .find_map(|e| match e {
                Effect::Relay {
                    mail_from,
                    rcpt_to,
                    message,
                } => Some((mail_from, rcpt_to, message)),
                _ => None,
            })
            .unwrap();
        assert_eq!(relay.0, "mario@a.test");
        assert_eq!(relay.1, &rcpt);
        let r = f.verify(relay.2);
        assert_eq!(r.treat_as, "pec", "{:?}", r.problems);
        assert_eq!(r.kind, "posta-certificata");
        // Timers: anna@b.test and c@a.test are certified, x@gmail.test is not.
        let deadlines: Vec<_> = e
            .iter()
            .filter_map(|e| match e {
                Effect::Deadline {
                    recipient,
                    which,
                    due,
                    ..
                } => Some((
                    recipient.as_str(),
                    *which,
                    due.utc().timestamp() - f.now.utc().timestamp(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            deadlines,
            vec![
                ("anna@b.test", TimeoutKind::H12, 12 * 3600),
                ("anna@b.test", TimeoutKind::H24, 22 * 3600),
                ("c@a.test", TimeoutKind::H12, 12 * 3600),
                ("c@a.test", TimeoutKind::H24, 22 * 3600),
            ]
        );
        let logs = e.iter().filter(|e| matches!(e, Effect::Log(_))).count();
        assert_eq!(logs, 2);
    }

    /// pec.md §2.6: Reply-To is the original's when it names an address, the sender's
    /// otherwise; never two (an empty or group-only Reply-To is replaced, not doubled).
    #[test]
    fn the_envelope_has_one_reply_to() {
        let mut f = Fixture::new();
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test"]);
        for (reply_to, expect) in [
            ("", "Reply-To: mario@a.test"),
            ("Reply-To:\r\n", "Reply-To: mario@a.test"),
            ("Reply-To: undisclosed:;\r\n", "Reply-To: mario@a.test"),
            (
                "Reply-To: Ufficio <uff@a.test>\r\n",
                "Reply-To: Ufficio <uff@a.test>",
            ),
        ] {
            let m = format!(
                "From: mario@a.test\r\nTo: anna@b.test\r\n{reply_to}Subject: s\r\n\r\nx\r\n"
            );
            let out = submit(
                &sub(&allowed, &rcpt, m.as_bytes()),
                &Limits::default(),
                &mut f.ctx(),
            )
            .unwrap();
            let envelope = out
                .effects
                .iter()
                .find_map(|e| match e {
                    Effect::Relay { message, .. } => Some(message),
                    _ => None,
                })
                .unwrap();
            let outer = pec_message::mime::Entity::parse(envelope);
            let fields: Vec<String> = outer
                .headers_named("Reply-To")
                .map(|h| format!("Reply-To: {}", h.value()))
                .collect();
            assert_eq!(fields, vec![expect.to_string()], "{reply_to:?}");
        }
    }

    #[test]
    fn refused_submission_makes_only_the_notice() {
        let mut f = Fixture::new();
        let allowed = strings(&["mario@a.test"]);
        let m =
            b"From: mario@a.test\r\nTo: anna@b.test\r\nBcc: z@b.test\r\nSubject: s\r\n\r\nx\r\n";
        let rcpt = strings(&["anna@b.test", "z@b.test"]);
        let out = submit(&sub(&allowed, &rcpt, m), &Limits::default(), &mut f.ctx()).unwrap();
        assert_eq!(out.refused, Some(Refusal::Formal(FormalError::Bcc)));
        assert_eq!(out.effects.len(), 2);
        let Effect::Store {
            mailbox,
            message,
            kind,
            ..
        } = &out.effects[0]
        else {
            panic!("expected a stored notice");
        };
        assert_eq!(
            (mailbox.as_str(), kind.as_str()),
            ("mario@a.test", "non-accettazione")
        );
        assert_eq!(f.verify(message).kind, "non-accettazione");
        assert!(
            !out.effects
                .iter()
                .any(|e| matches!(e, Effect::Relay { .. }))
        );
    }

    /// RFC 5322 §3.6 (pec.md §5.1 "valid RFC 5322"): a second From is not certified under
    /// the first one's name.
    #[test]
    fn a_repeated_single_field_is_refused() {
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test"]);
        let m = b"From: boss@a.test\r\nTo: anna@b.test\r\nFrom: mario@a.test\r\n\r\nx\r\n";
        assert_eq!(
            formal_checks(
                &sub(&allowed, &rcpt, m),
                &OriginalHeaders::parse(m),
                &Limits::default()
            ),
            Err(FormalError::Repeated("From".into()))
        );
    }

    /// RFC 5322 §2.1, §4.5: a header block cut by a line that is not a field (here the
    /// obsolete `name :` form) is refused, so fields after it cannot escape the checks.
    #[test]
    fn a_header_block_cut_by_a_stray_line_is_refused() {
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test"]);
        let check = |m: &[u8]| {
            formal_checks(
                &sub(&allowed, &rcpt, m),
                &OriginalHeaders::parse(m),
                &Limits::default(),
            )
        };
        let m = b"From: mario@a.test\r\nTo: anna@b.test\r\nSubject: Offerta\r\nX-N : 1\r\nFrom: boss@a.test\r\nBcc: z@c.test\r\n\r\nx\r\n";
        assert_eq!(check(m), Err(FormalError::StrayLine("X-N : 1".into())));
        let m = b"From: mario@a.test\r\nTo: anna@b.test\r\nCiao\r\n";
        assert_eq!(check(m), Err(FormalError::StrayLine("Ciao".into())));
        // A well-formed message, and one that is all header fields, pass.
        assert_eq!(
            check(b"From: mario@a.test\r\nTo: anna@b.test\r\n\r\nCiao\r\n"),
            Ok(())
        );
        assert_eq!(check(b"From: mario@a.test\r\nTo: anna@b.test\r\n"), Ok(()));
    }

    /// pec.md §2.1, §5.3: the notice for a reverse-path the account may not use goes to the
    /// account that submitted, not to the address it named; and with no To or Cc at all the
    /// notice's daticert.xml names the SMTP recipients (daticert.dtd: `destinatari+`).
    #[test]
    fn a_notice_never_goes_to_an_address_the_submitter_does_not_own() {
        let mut f = Fixture::new();
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test"]);
        for mail_from in ["luca@a.test", "x@gmail.test", ""] {
            let m = format!("From: {mail_from}\r\nTo: anna@b.test\r\nSubject: s\r\n\r\nx\r\n");
            let s = Submission {
                mail_from,
                ..sub(&allowed, &rcpt, m.as_bytes())
            };
            let out = submit(&s, &Limits::default(), &mut f.ctx()).unwrap();
            assert!(out.refused.is_some(), "{mail_from}");
            let Effect::Store { mailbox, kind, .. } = &out.effects[0] else {
                panic!("expected the stored notice");
            };
            assert_eq!(
                (mailbox.as_str(), kind.as_str()),
                ("mario@a.test", "non-accettazione")
            );
        }

        let m = b"From: mario@a.test\r\nSubject: s\r\n\r\nx\r\n";
        let out = submit(&sub(&allowed, &rcpt, m), &Limits::default(), &mut f.ctx()).unwrap();
        assert_eq!(out.refused, Some(Refusal::Formal(FormalError::To)));
        let Effect::Store { message, .. } = &out.effects[0] else {
            panic!("expected the stored notice");
        };
        let report = f.verify(message);
        assert_eq!(report.kind, "non-accettazione");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let d = report.daticert.expect("a readable daticert.xml");
        assert_eq!(d.destinatari.len(), 1);
        assert_eq!(d.destinatari[0].address, "anna@b.test");
    }

    #[test]
    fn infected_submission_gets_the_virus_notice_and_goes_to_the_virus_store() {
        let mut f = Fixture::new();
        let allowed = strings(&["mario@a.test"]);
        let rcpt = strings(&["anna@b.test", "x@gmail.test", "c@a.test"]);
        let threat = Threat {
            engine: "clamd".into(),
            name: "Eicar-Test-Signature".into(),
        };
        let s = Submission {
            threat: Some(&threat),
            ..sub(&allowed, &rcpt, MSG)
        };
        let out = submit(&s, &Limits::default(), &mut f.ctx()).unwrap();
        assert_eq!(out.refused, Some(Refusal::Virus(threat.clone())));
        assert_eq!(
            out.refused.as_ref().unwrap().to_string(),
            "virus Eicar-Test-Signature"
        );
        // pec.md §2.5: the notice to the sender, without the original; nothing relayed, no
        // timers; the original kept in the virus store.
        let Effect::Store {
            mailbox,
            message,
            kind,
            ..
        } = &out.effects[0]
        else {
            panic!("expected the stored notice: {:?}", out.effects);
        };
        assert_eq!(
            (mailbox.as_str(), kind.as_str()),
            ("mario@a.test", "non-accettazione")
        );
        let report = f.verify(message);
        assert_eq!(report.kind, "non-accettazione");
        assert!(report.virus, "{report:?}");
        let text = String::from_utf8_lossy(message);
        assert!(
            text.contains("AVVISO DI NON ACCETTAZIONE PER VIRUS: Prova"),
            "{text}"
        );
        assert!(text.contains("X-VerificaSicurezza: errore"));
        assert!(!text.contains("body\r\n"), "the original is not attached");
        assert!(out.effects.iter().any(|e| matches!(e,
            Effect::Quarantine { message, sender, recipients, threat: t, .. }
                if message == MSG && sender == "mario@a.test" && recipients.len() == 3 && *t == threat)));
        assert!(!out.effects.iter().any(|e| matches!(
            e,
            Effect::Relay { .. } | Effect::Deadline { .. } | Effect::Track { .. }
        )));
        assert!(out.effects.iter().any(|e| matches!(e,
            Effect::Log(ev) if ev.event == EventKind::Virus
                && ev.detail.as_deref().is_some_and(|d| d.contains("Eicar-Test-Signature")))));
    }
}
