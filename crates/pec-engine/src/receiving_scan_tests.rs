//! The receiving point with scan findings: virus notices and the virus store (pec.md §2.10,
//! §2.11, §8.4), spam to the junk folder or deleted by the owner's choice, never for PEC.

use super::*;

#[test]
fn infected_envelope_gets_rilevazione_virus_then_errore_consegna_per_virus() {
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let recipients = [
        rcpt("anna@b.test", active()),
        rcpt("carla@b.test", active()),
    ];
    let threat = Threat {
        engine: "icap".into(),
        name: "Eicar-Test-Signature".into(),
    };
    // At B (pec.md §2.10): presa in carico as usual, nothing delivered, one rilevazione
    // per recipient to A's mailReceipt, the envelope into the virus store.
    let out = deliver_scanned(
        "mario@a.test",
        &recipients,
        &env,
        Some(&threat),
        &mut f.ctx_b(),
    );
    assert_eq!(out.reply, Reply::Accepted);
    assert!(
        stores(&out.effects).is_empty(),
        "an infected envelope is not delivered"
    );
    let r = relays(&out.effects);
    assert_eq!(r.len(), 3);
    assert_eq!(f.verify(r[0].2).kind, "presa-in-carico");
    let mut notices = Vec::new();
    for (from, to, m) in &r[1..] {
        assert_eq!(
            (*from, *to),
            ("posta-certificata@b.test", "posta-certificata@a.test")
        );
        let rep = f.verify(m);
        assert_eq!(rep.kind, "rilevazione-virus");
        assert_eq!(rep.treat_as, "pec", "{:?}", rep.problems);
        let text = String::from_utf8_lossy(m);
        assert!(text.contains("PROBLEMA DI SICUREZZA: Prova"));
        assert!(text.contains("X-Mittente: mario@a.test"));
        assert!(text.contains("Eicar-Test-Signature"));
        notices.push(m.to_vec());
    }
    assert!(out.effects.iter().any(|e| matches!(e,
        Effect::Quarantine { message, recipients, threat: t, .. }
            if *message == env && recipients.len() == 2 && *t == threat)));

    // At A (pec.md §2.11): the notice is kept in the service mailbox, and the sender gets
    // the errore-consegna per virus for that recipient.
    let service = LocalRecipient {
        address: "posta-certificata@a.test".into(),
        state: MailboxState::Active {
            ordinary: OrdinaryPolicy::Anomalia,
            spam: SpamPolicy::Junk,
            service: true,
            full: false,
        },
        has_copy: false,
    };
    let back = deliver(
        "posta-certificata@b.test",
        std::slice::from_ref(&service),
        &notices[0],
        &mut f.ctx(),
    );
    assert_eq!(back.reply, Reply::Accepted);
    let s = stores(&back.effects);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].0, s[0].1),
        ("posta-certificata@a.test", "rilevazione-virus")
    );
    let r = relays(&back.effects);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, "mario@a.test");
    let rep = f.verify(r[0].2);
    assert_eq!(rep.kind, "errore-consegna");
    assert!(rep.virus, "{rep:?}");
    let text = String::from_utf8_lossy(r[0].2);
    assert!(
        text.contains("AVVISO DI MANCATA CONSEGNA PER VIRUS: Prova"),
        "{text}"
    );
    assert!(text.contains("anna@b.test") && text.contains("Eicar-Test-Signature"));
    assert!(back.effects.iter().any(|e| matches!(e,
        Effect::Progress { recipient, step: Progress::Failed, .. } if recipient == "anna@b.test")));

    // The same notice reaching a user's mailbox, or a gestore that does not serve the
    // sender, is kept, and no errore-consegna per virus is made.
    let user = deliver(
        "posta-certificata@b.test",
        &[rcpt("luigi@a.test", active())],
        &notices[1],
        &mut f.ctx(),
    );
    assert_eq!(stores(&user.effects).len(), 1);
    assert!(relays(&user.effects).is_empty(), "not to a service mailbox");
    let service_b = LocalRecipient {
        address: "posta-certificata@b.test".into(),
        ..service
    };
    let foreign = deliver(
        "posta-certificata@b.test",
        &[service_b],
        &notices[1],
        &mut f.ctx_b(),
    );
    assert_eq!(stores(&foreign.effects).len(), 1);
    assert!(
        relays(&foreign.effects).is_empty(),
        "not a sender it serves"
    );
}

#[test]
fn infected_ordinary_mail_is_dropped_and_logged() {
    let mut f = Fixture::new();
    let threat = Threat {
        engine: "clamd".into(),
        name: "Eicar-Test-Signature".into(),
    };
    let m = b"From: x@gmail.test\r\nTo: anna@b.test\r\nSubject: ciao\r\n\r\nX5O!P\r\n";
    let out = deliver_scanned(
        "x@gmail.test",
        &[rcpt("anna@b.test", active())],
        m,
        Some(&threat),
        &mut f.ctx_b(),
    );
    assert_eq!(
        out.reply,
        Reply::Accepted,
        "dropped without a notice (pec.md §8.4)"
    );
    assert!(stores(&out.effects).is_empty());
    assert!(relays(&out.effects).is_empty());
    assert!(
        !out.effects
            .iter()
            .any(|e| matches!(e, Effect::Quarantine { .. }))
    );
    assert!(out.effects.iter().any(|e| matches!(e,
        Effect::Log(ev) if ev.event == EventKind::Virus)));
}

fn spam() -> Spam {
    Spam {
        engine: "rspamd".into(),
        detail: "score 1000.0, action reject".into(),
    }
}

fn folders(effects: &[Effect]) -> Vec<(&str, Folder)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Store {
                mailbox, folder, ..
            } => Some((mailbox.as_str(), *folder)),
            _ => None,
        })
        .collect()
}

fn logged(effects: &[Effect], kind: EventKind) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Log(ev) if ev.event == kind => Some(ev.detail.clone().unwrap_or_default()),
            _ => None,
        })
        .collect()
}

#[test]
fn ordinary_spam_goes_to_junk_or_is_deleted_by_the_owners_choice() {
    // product.md §4: the owner chooses between the junk folder and deletion.
    let mut f = Fixture::new();
    let plain = b"From: x@gmail.test\r\nTo: anna@b.test\r\nSubject: offerta\r\nMessage-ID: <s1@gmail.test>\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    let deleting = MailboxState::Active {
        ordinary: OrdinaryPolicy::Anomalia,
        spam: SpamPolicy::Delete,
        service: false,
        full: false,
    };
    let s = spam();
    let out = receive(
        &Inbound {
            mail_from: "x@gmail.test",
            recipients: &[
                rcpt("anna@b.test", active()),
                rcpt("carla@b.test", deleting),
            ],
            message: plain,
            threat: None,
            spam: Some(&s),
        },
        &mut f.ctx_b(),
    )
    .unwrap();
    assert_eq!(out.reply, Reply::Accepted);
    assert_eq!(folders(&out.effects), vec![("anna@b.test", Folder::Junk)]);
    let spam_log = logged(&out.effects, EventKind::Spam);
    assert_eq!(spam_log.len(), 2, "{spam_log:?}");
    assert!(spam_log[0].contains("deleted for carla@b.test"));
    assert!(spam_log[1].contains("junk folder of anna@b.test"));

    // Deleted for everyone: still taken (a refusal would tell the spammer), only logged.
    let out = receive(
        &Inbound {
            mail_from: "x@gmail.test",
            recipients: &[rcpt("carla@b.test", deleting)],
            message: plain,
            threat: None,
            spam: Some(&s),
        },
        &mut f.ctx_b(),
    )
    .unwrap();
    assert_eq!(out.reply, Reply::Accepted);
    assert!(folders(&out.effects).is_empty());
    assert_eq!(logged(&out.effects, EventKind::Spam).len(), 1);
}

#[test]
fn pec_messages_are_never_moved_or_dropped_for_spam() {
    // product.md §4: users cannot act on the spam verdict for inbound PEC messages.
    let mut f = Fixture::new();
    let env = envelope_from_a(&mut f, ORIGINAL);
    let deleting = MailboxState::Active {
        ordinary: OrdinaryPolicy::Anomalia,
        spam: SpamPolicy::Delete,
        service: false,
        full: false,
    };
    let s = spam();
    let out = receive(
        &Inbound {
            mail_from: "mario@a.test",
            recipients: &[rcpt("anna@b.test", deleting)],
            message: &env,
            threat: None,
            spam: Some(&s),
        },
        &mut f.ctx_b(),
    )
    .unwrap();
    assert_eq!(folders(&out.effects), vec![("anna@b.test", Folder::Inbox)]);
    assert_eq!(stores(&out.effects)[0].2, env.as_slice());
    assert!(logged(&out.effects, EventKind::Spam).is_empty());
}
