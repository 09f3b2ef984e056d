//! Conformance checks of the web services' storage: message pages with their filters,
//! transaction timelines, API tokens, the TOTP secret, and webhook deliveries recorded in
//! the same commit as the receipt that raises them.

use super::mailbox;
use crate::{Commit, NewMessage, PageQuery, Store, StoreError};

fn stored(to: &str, kind: &str, from: &str, subject: &str, id: &str, date: i64) -> NewMessage {
    NewMessage {
        mailbox: to.into(),
        folder: "INBOX".into(),
        flags: String::new(),
        bytes: format!("From: {from}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n")
            .into_bytes(),
        kind: kind.into(),
        identificativo: Some(id.into()),
        message_id: None,
        subject: Some(subject.into()),
        date,
    }
}

pub(super) async fn pages_are_newest_first_and_filtered<S: Store>(s: &S) {
    s.create_mailbox(mailbox("pages@web.test")).await.unwrap();
    let messages = (0..30)
        .map(|i| {
            let from = if i % 3 == 0 {
                "\"Per conto di: mario@a.test\"\r\n <posta-certificata@a.test>"
            } else {
                "luisa@b.test"
            };
            stored(
                "pages@web.test",
                "posta-certificata",
                from,
                &format!("Fattura {i} 100%_off"),
                &format!("id{i}@web.test"),
                1_700_000_000 + i * 60,
            )
        })
        .collect();
    s.commit(Commit {
        messages,
        ..Default::default()
    })
    .await
    .unwrap();
    let q = |f: &dyn Fn(&mut PageQuery)| {
        let mut q = PageQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let p = s
        .page("pages@web.test", "INBOX", &q(&|_| {}))
        .await
        .unwrap();
    assert_eq!(p.total, 30);
    assert_eq!(p.messages.len(), 10);
    assert_eq!(
        p.messages[0].meta.subject.as_deref(),
        Some("Fattura 29 100%_off")
    );
    assert_eq!(p.messages[0].from, "luisa@b.test");
    let second = s
        .page("pages@web.test", "INBOX", &q(&|q| q.offset = 25))
        .await
        .unwrap();
    assert_eq!(second.messages.len(), 5, "the last page is short");
    assert_eq!(
        second.messages[4].meta.subject.as_deref(),
        Some("Fattura 0 100%_off")
    );
    assert!(
        second.messages[4].from.contains("mario@a.test"),
        "a folded From: is unfolded: {:?}",
        second.messages[4].from
    );
    let by_sender = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| q.sender = Some("MARIO@a".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        by_sender.total, 10,
        "case-insensitive, in the From: field only"
    );
    let by_subject = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| q.subject = Some("fattura 1".into())),
        )
        .await
        .unwrap();
    assert_eq!(by_subject.total, 11, "1 and 10-19");
    let wildcard = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| q.subject = Some("0%_".into())),
        )
        .await
        .unwrap();
    assert_eq!(wildcard.total, 30, "% and _ are literal");
    let newer = s
        .page("pages@web.test", "INBOX", &q(&|q| q.after_uid = Some(27)))
        .await
        .unwrap();
    assert_eq!(
        newer
            .messages
            .iter()
            .map(|m| m.meta.uid)
            .collect::<Vec<_>>(),
        [30, 29, 28],
        "only UIDs above 27, newest first"
    );
    let none = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| q.subject = Some("x%".into())),
        )
        .await
        .unwrap();
    assert_eq!(none.total, 0);
    let dated = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| {
                q.since = Some(1_700_000_000 + 5 * 60);
                q.before = Some(1_700_000_000 + 8 * 60);
            }),
        )
        .await
        .unwrap();
    assert_eq!(dated.total, 3);
    let one = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| q.identificativo = Some("id7@web.test".into())),
        )
        .await
        .unwrap();
    assert_eq!(one.total, 1);
    let uid = one.messages[0].meta.uid;
    let by_uid = s
        .page("pages@web.test", "INBOX", &q(&|q| q.uid = Some(uid)))
        .await
        .unwrap();
    assert_eq!(
        by_uid.messages[0].meta.identificativo.as_deref(),
        Some("id7@web.test")
    );
    s.set_flags(
        "pages@web.test",
        "INBOX",
        &[uid],
        crate::FlagOp::Add,
        &["\\Seen".into()],
        None,
    )
    .await
    .unwrap();
    let one = s
        .page(
            "pages@web.test",
            "INBOX",
            &q(&|q| q.identificativo = Some("id7@web.test".into())),
        )
        .await
        .unwrap();
    assert_eq!(one.messages[0].flags, vec!["\\Seen".to_string()]);
    let empty = s.page("pages@web.test", "Nope", &q(&|_| {})).await.unwrap();
    assert_eq!((empty.total, empty.messages.len()), (0, 0));
}

pub(super) async fn a_transaction_gathers_its_messages<S: Store>(s: &S) {
    s.create_mailbox(mailbox("timeline@web.test"))
        .await
        .unwrap();
    s.create_mailbox(mailbox("other@web.test")).await.unwrap();
    let mut original = stored(
        "timeline@web.test",
        "ordinaria",
        "me",
        "Sent",
        "t1@web.test",
        10,
    );
    original.folder = "Sent".into();
    s.commit(Commit {
        messages: vec![
            original,
            stored(
                "timeline@web.test",
                "accettazione",
                "p",
                "A",
                "t1@web.test",
                11,
            ),
            stored(
                "timeline@web.test",
                "avvenuta-consegna",
                "p",
                "C",
                "t1@web.test",
                12,
            ),
            stored(
                "timeline@web.test",
                "accettazione",
                "p",
                "A",
                "t2@web.test",
                13,
            ),
            stored(
                "other@web.test",
                "accettazione",
                "p",
                "A",
                "t1@web.test",
                14,
            ),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let t = s
        .transaction_messages("timeline@web.test", "t1@web.test")
        .await
        .unwrap();
    let kinds: Vec<_> = t
        .iter()
        .map(|m| (m.meta.folder.as_str(), m.meta.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("Sent", "ordinaria"),
            ("INBOX", "accettazione"),
            ("INBOX", "avvenuta-consegna")
        ],
        "oldest first, this mailbox only"
    );
}

pub(super) async fn tokens_and_second_factor_are_kept<S: Store>(s: &S) {
    s.create_mailbox(mailbox("tok@web.test")).await.unwrap();
    s.create_api_token("aa11", "TOK@web.test", "erp", 1)
        .await
        .unwrap();
    assert_eq!(
        s.api_token_owner("aa11").await.unwrap().as_deref(),
        Some("tok@web.test")
    );
    assert_eq!(s.api_token_owner("bb22").await.unwrap(), None);
    assert!(matches!(
        s.create_api_token("aa11", "tok@web.test", "again", 2).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let m = s.mailbox("tok@web.test").await.unwrap().unwrap();
    assert_eq!(m.totp_secret, None);
    assert!(
        s.set_totp("tok@web.test", Some("JBSWY3DPEHPK3PXP"))
            .await
            .unwrap()
    );
    let m = s.mailbox("tok@web.test").await.unwrap().unwrap();
    assert_eq!(m.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    assert!(s.set_totp("tok@web.test", None).await.unwrap());
    assert_eq!(
        s.mailbox("tok@web.test")
            .await
            .unwrap()
            .unwrap()
            .totp_secret,
        None
    );
    assert!(!s.set_totp("nobody@web.test", None).await.unwrap());
}

pub(super) async fn receipts_raise_webhook_deliveries<S: Store>(s: &S) {
    s.create_mailbox(mailbox("hook@web.test")).await.unwrap();
    s.create_mailbox(mailbox("nohook@web.test")).await.unwrap();
    s.set_webhook("hook@web.test", Some(("http://127.0.0.1:9/h", "k1")))
        .await
        .unwrap();
    assert_eq!(
        s.webhook("HOOK@web.test").await.unwrap(),
        Some(("http://127.0.0.1:9/h".into(), "k1".into()))
    );
    let committed = s
        .commit(Commit {
            messages: vec![
                stored("hook@web.test", "accettazione", "p", "A", "w1@web.test", 20),
                stored(
                    "hook@web.test",
                    "posta-certificata",
                    "p",
                    "E",
                    "w2@web.test",
                    21,
                ),
                stored(
                    "nohook@web.test",
                    "accettazione",
                    "p",
                    "A",
                    "w3@web.test",
                    22,
                ),
                stored(
                    "hook@web.test",
                    "avvenuta-consegna",
                    "p",
                    "C",
                    "w1@web.test",
                    23,
                ),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(committed.webhooks, 2, "the commit counts what it recorded");
    let leased = s.lease_webhooks(1_000, 60, 10).await.unwrap();
    assert_eq!(
        leased.len(),
        2,
        "receipts of the hooked mailbox only: {leased:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&leased[0].body).unwrap();
    assert_eq!(body["kind"], "accettazione");
    assert_eq!(body["identificativo"], "w1@web.test");
    assert_eq!(leased[0].url, "http://127.0.0.1:9/h");
    assert!(
        s.lease_webhooks(1_010, 60, 10).await.unwrap().is_empty(),
        "leased"
    );
    s.finish_webhook(leased[0].id, Some(1_100), "connection refused")
        .await
        .unwrap();
    s.finish_webhook(leased[1].id, None, "").await.unwrap();
    assert!(s.lease_webhooks(1_050, 60, 10).await.unwrap().is_empty());
    let again = s.lease_webhooks(1_100, 60, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    s.finish_webhook(again[0].id, Some(1_200), "503")
        .await
        .unwrap();
    s.set_webhook("hook@web.test", None).await.unwrap();
    assert_eq!(s.webhook("hook@web.test").await.unwrap(), None);
    assert!(
        s.lease_webhooks(5_000, 60, 10).await.unwrap().is_empty(),
        "removing the webhook drops its deliveries"
    );
}
