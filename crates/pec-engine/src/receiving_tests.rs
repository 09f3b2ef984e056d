//! Rules of the receiving and delivery points, driven with envelopes made by gestore A's
//! access point and received by gestore B.

use super::*;
use crate::access::{Limits, Submission, submit};
use crate::testing::Fixture;
use pec_message::daticert::ReceiptType;

const ORIGINAL: &[u8] = b"From: mario@a.test\r\nTo: anna@b.test\r\nCc: carla@b.test\r\nSubject: Prova\r\nMessage-ID: <m1@client>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nciao\r\n";

fn active() -> MailboxState {
    MailboxState::Active {
        ordinary: OrdinaryPolicy::Anomalia,
        spam: SpamPolicy::Junk,
        service: false,
        full: false,
    }
}

fn rcpt(address: &str, state: MailboxState) -> LocalRecipient {
    LocalRecipient {
        address: address.into(),
        state,
        has_copy: false,
    }
}

/// The envelope A relays for ORIGINAL (or `original`).
fn envelope_from_a(f: &mut Fixture, original: &[u8]) -> Vec<u8> {
    let allowed = vec!["mario@a.test".to_string()];
    let h = OriginalHeaders::parse(original);
    let rcpts = h.recipients();
    let out = submit(
        &Submission {
            account: "mario@a.test",
            allowed_senders: &allowed,
            mail_from: "mario@a.test",
            rcpt_to: &rcpts,
            message: original,
            threat: None,
        },
        &Limits::default(),
        &mut f.ctx(),
    )
    .unwrap();
    out.effects
        .into_iter()
        .find_map(|e| match e {
            Effect::Relay { message, .. } => Some(message),
            _ => None,
        })
        .unwrap()
}

/// One inbound transaction through the receiving point.
fn deliver(
    mail_from: &str,
    recipients: &[LocalRecipient],
    message: &[u8],
    ctx: &mut Context<'_>,
) -> Received {
    deliver_scanned(mail_from, recipients, message, None, ctx)
}

/// The same, with what the antivirus found.
fn deliver_scanned(
    mail_from: &str,
    recipients: &[LocalRecipient],
    message: &[u8],
    threat: Option<&Threat>,
    ctx: &mut Context<'_>,
) -> Received {
    receive(
        &Inbound {
            mail_from,
            recipients,
            message,
            threat,
            spam: None,
        },
        ctx,
    )
    .unwrap()
}

fn relays(effects: &[Effect]) -> Vec<(&str, &str, &[u8])> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Relay {
                mail_from,
                rcpt_to,
                message,
            } => Some((mail_from.as_str(), rcpt_to[0].as_str(), message.as_slice())),
            _ => None,
        })
        .collect()
}

fn stores(effects: &[Effect]) -> Vec<(&str, &str, &[u8])> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Store {
                mailbox,
                kind,
                message,
                ..
            } => Some((mailbox.as_str(), kind.as_str(), message.as_slice())),
            _ => None,
        })
        .collect()
}

#[test]
fn envelope_gets_one_presa_in_carico_and_a_receipt_per_recipient() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let recipients = [
        rcpt("anna@b.test", active()),
        rcpt("carla@b.test", active()),
    ];
    let out = deliver("mario@a.test", &recipients, &env, &mut f.ctx_b());
    assert_eq!(out.treat_as, "pec");
    assert_eq!(out.reply, Reply::Accepted);
    let s = stores(&out.effects);
    assert_eq!(s.len(), 2);
    for (_, kind, bytes) in &s {
        assert_eq!(*kind, "posta-certificata");
        assert_eq!(
            *bytes,
            env.as_slice(),
            "delivered byte for byte (pec.md §5.5)"
        );
    }
    let r = relays(&out.effects);
    assert_eq!(r.len(), 3);
    // Presa in carico to A's mailReceipt, covering both.
    assert_eq!(r[0].0, "posta-certificata@b.test");
    assert_eq!(r[0].1, "posta-certificata@a.test");
    let p = f.verify(r[0].2);
    assert_eq!(p.kind, "presa-in-carico");
    assert_eq!(p.treat_as, "pec", "{:?}", p.problems);
    // Completa for To, sintetica for Cc, to the envelope's reverse-path.
    let kinds: Vec<_> = r[1..]
        .iter()
        .map(|(_, to, m)| {
            assert_eq!(*to, "mario@a.test");
            let rep = f.verify(m);
            assert_eq!(rep.treat_as, "pec", "{:?}", rep.problems);
            rep.receipt_type.unwrap()
        })
        .collect();
    assert_eq!(kinds, vec!["completa", "sintetica"]);
}

#[test]
fn breve_is_honoured_for_primary_recipients() {
    let mut f = Fixture::new();
    let original = b"From: mario@a.test\r\nTo: anna@b.test\r\nSubject: B\r\nX-TipoRicevuta: breve\r\n\r\nx\r\n";
    let env = envelope_from_a(&mut f, original);
    let recipients = [rcpt("anna@b.test", active())];
    let out = deliver("mario@a.test", &recipients, &env, &mut f.ctx_b());
    let r = relays(&out.effects);
    assert_eq!(
        f.verify(r[1].2).receipt_type.as_deref(),
        Some(ReceiptType::Breve.as_str())
    );

    // A provider that leaves X-TipoRicevuta off the envelope (outside the signed part) still
    // says it in daticert.xml (pec.md §2.6, §3.3).
    let text = String::from_utf8_lossy(&env).into_owned();
    assert!(text.contains("X-TipoRicevuta: breve\r\n"));
    let bare = text.replacen("X-TipoRicevuta: breve\r\n", "", 1);
    assert_eq!(f.verify(bare.as_bytes()).treat_as, "pec");
    let out = deliver("mario@a.test", &recipients, bare.as_bytes(), &mut f.ctx_b());
    let r = relays(&out.effects);
    assert_eq!(
        f.verify(r[1].2).receipt_type.as_deref(),
        Some(ReceiptType::Breve.as_str())
    );
}

#[test]
fn a_second_copy_is_not_delivered_nor_receipted() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let mut r = rcpt("anna@b.test", active());
    r.has_copy = true;
    let out = deliver("mario@a.test", &[r], &env, &mut f.ctx_b());
    assert_eq!(out.reply, Reply::Accepted);
    assert!(stores(&out.effects).is_empty());
    assert!(relays(&out.effects).is_empty());
}

#[test]
fn unknown_recipient_gets_errore_consegna_no_dest() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let recipients = [
        rcpt("anna@b.test", active()),
        rcpt("carla@b.test", MailboxState::Unknown),
    ];
    let out = deliver("mario@a.test", &recipients, &env, &mut f.ctx_b());
    assert_eq!(stores(&out.effects).len(), 1);
    let r = relays(&out.effects);
    let err = f.verify(r[2].2);
    assert_eq!(err.kind, "errore-consegna");
    let d = err.daticert.unwrap();
    assert_eq!(d.errore, "no-dest");
}

#[test]
fn ordinary_mail_is_wrapped_or_refused_by_policy() {
    let mut f = Fixture::new();
    let plain = b"From: x@gmail.test\r\nTo: anna@b.test\r\nSubject: ciao\r\nMessage-ID: <o1@gmail.test>\r\n\r\nhello\r\n";
    let out = deliver(
        "x@gmail.test",
        &[rcpt("anna@b.test", active())],
        plain,
        &mut f.ctx_b(),
    );
    assert_eq!(out.treat_as, "ordinaria");
    let s = stores(&out.effects);
    assert_eq!(s[0].1, "anomalia");
    let rep = f.verify(s[0].2);
    assert_eq!(rep.kind, "anomalia");
    assert!(
        relays(&out.effects).is_empty(),
        "no receipts for ordinary mail"
    );
    // The anomaly keeps the received Message-ID, and the log relates that one (pec.md §2.9,
    // §6 field 7), not an identifier no message carries.
    assert!(String::from_utf8_lossy(s[0].2).contains("Message-ID: <o1@gmail.test>"));
    let related: Vec<&String> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Log(ev) => Some(&ev.related),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(related.iter().any(|r| *r == "o1@gmail.test"), "{related:?}");

    let refuse = MailboxState::Active {
        ordinary: OrdinaryPolicy::Refuse,
        spam: SpamPolicy::Junk,
        service: false,
        full: false,
    };
    let out = deliver(
        "x@gmail.test",
        &[rcpt("anna@b.test", refuse)],
        plain,
        &mut f.ctx_b(),
    );
    assert!(matches!(out.reply, Reply::Refused { .. }));
    assert!(stores(&out.effects).is_empty());

    // A full mailbox takes no ordinary mail: refused alone, returned in the DSN beside
    // another recipient.
    let full = MailboxState::Active {
        ordinary: OrdinaryPolicy::Anomalia,
        spam: SpamPolicy::Junk,
        service: false,
        full: true,
    };
    let out = deliver(
        "x@gmail.test",
        &[rcpt("anna@b.test", full)],
        plain,
        &mut f.ctx_b(),
    );
    assert!(
        matches!(&out.reply, Reply::Refused { text } if text.starts_with("5.2.2")),
        "{:?}",
        out.reply
    );
    assert!(stores(&out.effects).is_empty());
    let out = deliver(
        "x@gmail.test",
        &[rcpt("anna@b.test", full), rcpt("carla@b.test", active())],
        plain,
        &mut f.ctx_b(),
    );
    assert_eq!(out.reply, Reply::Accepted);
    assert_eq!(stores(&out.effects).len(), 1);
    assert_eq!(out.undelivered.len(), 1);
    assert_eq!(out.undelivered[0].status, "5.2.2");
}

/// pec.md §1.3 PC step 5, §5.6: when ordinary mail or a notice reaches some recipients and
/// not others, the transaction is accepted and the others are returned in a DSN; nothing is
/// dropped in silence. An envelope's undeliverable recipients get an errore-consegna instead.
#[test]
fn recipients_left_out_of_an_accepted_transaction_are_returned() {
    let mut f = Fixture::new();
    let refuse = MailboxState::Active {
        ordinary: OrdinaryPolicy::Refuse,
        spam: SpamPolicy::Junk,
        service: false,
        full: false,
    };
    let plain = b"From: x@gmail.test\r\nTo: anna@b.test, bob@b.test, gone@b.test, off@b.test\r\nSubject: ciao\r\nMessage-ID: <o2@gmail.test>\r\n\r\nhello\r\n";
    let recipients = [
        rcpt("anna@b.test", active()),
        rcpt("bob@b.test", refuse),
        rcpt("gone@b.test", MailboxState::Unknown),
        rcpt("off@b.test", MailboxState::Disabled),
    ];
    let out = deliver("x@gmail.test", &recipients, plain, &mut f.ctx_b());
    assert_eq!(out.reply, Reply::Accepted);
    assert_eq!(stores(&out.effects).len(), 1);
    let back: Vec<(&str, &str)> = out
        .undelivered
        .iter()
        .map(|u| (u.recipient.as_str(), u.status.as_str()))
        .collect();
    assert_eq!(
        back,
        vec![
            ("gone@b.test", "5.1.1"),
            ("off@b.test", "5.2.1"),
            ("bob@b.test", "5.7.1")
        ]
    );

    // Spam: nothing goes back to a sender that is most likely forged (backscatter).
    let spam = Spam {
        engine: "rspamd".into(),
        detail: "score 20".into(),
    };
    let out = receive(
        &Inbound {
            mail_from: "x@gmail.test",
            recipients: &recipients,
            message: plain,
            threat: None,
            spam: Some(&spam),
        },
        &mut f.ctx_b(),
    )
    .unwrap();
    assert_eq!(out.reply, Reply::Accepted);
    assert!(out.undelivered.is_empty());

    // A replay once anna holds her copy: accepted (not refused for bob), and no second DSN.
    let mut again = recipients.clone();
    again[0].has_copy = true;
    let out = deliver("x@gmail.test", &again, plain, &mut f.ctx_b());
    assert_eq!(out.reply, Reply::Accepted);
    assert!(stores(&out.effects).is_empty());
    assert!(out.undelivered.is_empty());

    // Refused for everyone: the SMTP answer says it, no DSN on top.
    let out = deliver(
        "x@gmail.test",
        &[
            rcpt("bob@b.test", refuse),
            rcpt("gone@b.test", MailboxState::Unknown),
        ],
        plain,
        &mut f.ctx_b(),
    );
    assert!(matches!(out.reply, Reply::Refused { .. }));
    assert!(out.undelivered.is_empty());

    // A notice for a known and an unknown mailbox.
    let env = envelope_from_a(&mut f, ORIGINAL);
    let at_b = deliver(
        "mario@a.test",
        &[
            rcpt("anna@b.test", active()),
            rcpt("carla@b.test", active()),
        ],
        &env,
        &mut f.ctx_b(),
    );
    let receipt = relays(&at_b.effects)
        .into_iter()
        .find(|r| r.1 == "mario@a.test")
        .unwrap()
        .2
        .to_vec();
    let out = deliver(
        "posta-certificata@b.test",
        &[
            rcpt("mario@a.test", active()),
            rcpt("ghost@a.test", MailboxState::Unknown),
        ],
        &receipt,
        &mut f.ctx(),
    );
    assert_eq!(out.treat_as, "pec");
    assert_eq!(out.reply, Reply::Accepted);
    assert_eq!(out.undelivered.len(), 1);
    assert_eq!(out.undelivered[0].recipient, "ghost@a.test");
    let mut held = rcpt("mario@a.test", active());
    held.has_copy = true;
    let out = deliver(
        "posta-certificata@b.test",
        &[held, rcpt("ghost@a.test", MailboxState::Unknown)],
        &receipt,
        &mut f.ctx(),
    );
    assert_eq!(out.reply, Reply::Accepted);
    assert!(out.undelivered.is_empty(), "a replay sends no second DSN");

    // An envelope: the unknown recipient gets an errore-consegna, not a DSN.
    let out = deliver(
        "mario@a.test",
        &[
            rcpt("anna@b.test", active()),
            rcpt("carla@b.test", MailboxState::Unknown),
        ],
        &env,
        &mut f.ctx_b(),
    );
    assert_eq!(out.reply, Reply::Accepted);
    assert!(out.undelivered.is_empty());
}

#[test]
fn altered_envelope_is_ordinary_and_wrapped() {
    let mut f = Fixture::new();
    let mut env = envelope_from_a(&mut f, ORIGINAL);
    let pos = env.windows(4).position(|w| w == b"ciao").unwrap();
    env[pos] = b'C';
    let out = deliver(
        "mario@a.test",
        &[rcpt("anna@b.test", active())],
        &env,
        &mut f.ctx_b(),
    );
    assert_eq!(out.treat_as, "ordinaria");
    assert_eq!(stores(&out.effects)[0].1, "anomalia");
    assert!(relays(&out.effects).is_empty());
}

/// A provider-signed but malformed envelope is wrapped, and the anomaly names the SMTP
/// sender, not the From it carries (pec.md §2.1, §2.9).
#[test]
fn a_malformed_signed_envelope_names_its_smtp_sender() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    // The From is outside the signed part: the signature holds, the format does not.
    let text = String::from_utf8_lossy(&env).into_owned();
    let from_line = text
        .lines()
        .find(|l| l.starts_with("From: "))
        .unwrap()
        .to_string();
    let env = text.replacen(&from_line, "From: posta-certificata@altro.test", 1);
    let out = deliver(
        "mario@a.test",
        &[rcpt("anna@b.test", active())],
        env.as_bytes(),
        &mut f.ctx_b(),
    );
    assert_eq!(out.treat_as, "anomalia");
    let s = stores(&out.effects);
    assert_eq!(s[0].1, "anomalia");
    let anomaly = String::from_utf8_lossy(s[0].2);
    assert!(
        anomaly.contains("From: \"Per conto di: mario@a.test\""),
        "{}",
        &anomaly[..anomaly.len().min(600)]
    );
}

/// pec.md §4.4 step 3: a revoked sender certificate makes the envelope untrusted (wrapped
/// in an anomaly, no presa in carico); an unknown status counts only when a CRL is required.
#[test]
fn the_sender_certificate_is_checked_against_the_crl() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let verdict = |f: &mut Fixture, crls: &pec_message::smime::Crls, id: &str| {
        let out = deliver(
            "mario@a.test",
            &[rcpt(&format!("{id}@b.test"), active())],
            &env,
            &mut f.ctx_b_with(crls),
        );
        let kinds: Vec<String> = stores(&out.effects)
            .iter()
            .map(|s| s.1.to_string())
            .collect();
        (out.treat_as, kinds, relays(&out.effects).len())
    };
    let good = f.crls(false, true);
    assert_eq!(
        verdict(&mut f, &good, "anna"),
        ("pec".into(), vec!["posta-certificata".into()], 2)
    );
    let revoked = f.crls(true, false);
    assert_eq!(
        verdict(&mut f, &revoked, "carla"),
        ("ordinaria".into(), vec!["anomalia".into()], 0)
    );
    let unknown = pec_message::smime::Crls::new(false);
    assert_eq!(verdict(&mut f, &unknown, "dario").0, "pec");
    let required = pec_message::smime::Crls::new(true);
    assert_eq!(verdict(&mut f, &required, "elena").0, "ordinaria");
}

#[test]
fn receipts_coming_back_move_the_sender_side_on() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let recipients = [rcpt("anna@b.test", active())];
    let at_b = deliver("mario@a.test", &recipients, &env, &mut f.ctx_b());
    let r = relays(&at_b.effects);
    // The presa in carico reaches A's service mailbox.
    let service = MailboxState::Active {
        ordinary: OrdinaryPolicy::Anomalia,
        spam: SpamPolicy::Junk,
        service: true,
        full: false,
    };
    let presa = deliver(
        r[0].0,
        &[rcpt("posta-certificata@a.test", service)],
        r[0].2,
        &mut f.ctx(),
    );
    assert_eq!(stores(&presa.effects)[0].1, "presa-in-carico");
    assert!(presa.effects.iter().any(|e| matches!(
        e,
        Effect::Progress { recipient, step: Progress::TakenInCharge, .. } if recipient == "anna@b.test"
    )));
    // The delivery receipt reaches the sender, unchanged.
    let receipt = deliver(
        r[1].0,
        &[rcpt("mario@a.test", active())],
        r[1].2,
        &mut f.ctx(),
    );
    let s = stores(&receipt.effects);
    assert_eq!(s[0].1, "avvenuta-consegna");
    assert_eq!(s[0].2, r[1].2);
    assert!(receipt.effects.iter().any(|e| matches!(
        e,
        Effect::Progress {
            step: Progress::Delivered,
            ..
        }
    )));
    assert!(
        relays(&receipt.effects).is_empty(),
        "no receipt for a receipt"
    );

    // The subject lies outside the signed part; one that lacks its prefix is reported by the
    // verifier but does not make the receipt an anomaly (pec.md Appendix A: classify by
    // header, never by subject).
    let text = String::from_utf8_lossy(r[1].2).into_owned();
    assert!(text.contains("Subject: CONSEGNA: "));
    let renamed = text.replacen("Subject: CONSEGNA: ", "Subject: Consegna - ", 1);
    let rep = f.verify(renamed.as_bytes());
    assert_eq!(rep.treat_as, "pec", "{:?}", rep.problems);
    assert!(
        rep.problems.iter().any(|p| p.contains("subject")),
        "{:?}",
        rep.problems
    );
    let receipt = deliver(
        r[1].0,
        &[rcpt("mario@a.test", active())],
        renamed.as_bytes(),
        &mut f.ctx(),
    );
    assert_eq!(stores(&receipt.effects)[0].1, "avvenuta-consegna");
    assert!(receipt.effects.iter().any(|e| matches!(
        e,
        Effect::Progress {
            step: Progress::Delivered,
            ..
        }
    )));
}

/// pec.md §2.1: an envelope relayed with a null reverse-path gets its receipt addressed to
/// the sender its daticert certifies, not to an empty address.
#[test]
fn a_null_reverse_path_sends_the_receipt_to_the_certified_sender() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let out = deliver("", &[rcpt("anna@b.test", active())], &env, &mut f.ctx_b());
    let r = relays(&out.effects);
    assert_eq!(f.verify(r[1].2).kind, "avvenuta-consegna");
    assert_eq!(r[1].1, "mario@a.test");
}

/// pec.md §4.4 step 5: a provider's receipt about a recipient of a domain it does not
/// manage is kept for the sender, but does not move the transaction on.
#[test]
fn a_receipt_about_another_providers_recipient_moves_nothing() {
    let mut f = Fixture::new();
    let original = b"From: mario@a.test\r\nTo: zoe@c.test\r\nSubject: Prova\r\n\r\nciao\r\n";
    let env = envelope_from_a(&mut f, original);
    // B signs a delivery receipt for zoe@c.test, a domain the Indice gives to no one.
    let at_b = deliver(
        "mario@a.test",
        &[rcpt("zoe@c.test", active())],
        &env,
        &mut f.ctx_b(),
    );
    let r = relays(&at_b.effects);
    assert_eq!(f.verify(r[1].2).kind, "avvenuta-consegna");
    let back = deliver(
        r[1].0,
        &[rcpt("mario@a.test", active())],
        r[1].2,
        &mut f.ctx(),
    );
    assert_eq!(stores(&back.effects)[0].1, "avvenuta-consegna");
    assert!(
        !back
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Progress { .. })),
        "B does not speak for c.test"
    );

    // A's own receipt for a domain A serves but its Indice record does not list yet
    // (gestore.domains grown since) does move it on.
    f.a_serves_also("a2.test");
    let original = b"From: mario@a.test\r\nTo: zia@a2.test\r\nSubject: Prova\r\n\r\nciao\r\n";
    let env = envelope_from_a(&mut f, original);
    let here = deliver(
        "mario@a.test",
        &[rcpt("zia@a2.test", active())],
        &env,
        &mut f.ctx(),
    );
    let receipt = relays(&here.effects)
        .into_iter()
        .find(|r| f.verify(r.2).kind == "avvenuta-consegna")
        .unwrap();
    let back = deliver(
        receipt.0,
        &[rcpt("mario@a.test", active())],
        receipt.2,
        &mut f.ctx(),
    );
    assert!(back.effects.iter().any(|e| matches!(
        e,
        Effect::Progress { recipient, step: Progress::Delivered, .. } if recipient == "zia@a2.test"
    )));
}

/// Virus and spam findings at the receiving point.
#[path = "receiving_scan_tests.rs"]
mod scan;
