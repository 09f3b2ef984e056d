//! Conformance checks of the security services' storage: mailbox settings, the outbound
//! spam log, locks and password resets, and the virus store's purge.

use super::mailbox;
use crate::{Commit, MailboxSettings, NewLock, NewQuarantined, NewSpamRecord, Store};

pub(super) async fn settings_change_only_what_is_given<S: Store>(s: &S) {
    s.create_mailbox(mailbox("owner@sec.test")).await.unwrap();
    let m = s.mailbox("owner@sec.test").await.unwrap().unwrap();
    assert_eq!(
        (m.spam_policy.as_str(), m.contact.as_deref(), m.locked),
        ("junk", None, false),
        "defaults"
    );
    let set = |spam: Option<&str>, contact: Option<&str>| MailboxSettings {
        spam_policy: spam.map(str::to_string),
        contact: contact.map(str::to_string),
        ordinary_policy: None,
    };
    assert!(
        s.update_mailbox("OWNER@sec.test", set(Some("delete"), Some("me@home.test")))
            .await
            .unwrap()
    );
    let m = s.mailbox("owner@sec.test").await.unwrap().unwrap();
    assert_eq!(m.spam_policy, "delete");
    assert_eq!(m.contact.as_deref(), Some("me@home.test"));
    assert_eq!(m.ordinary_policy, "anomalia", "not given, not changed");
    assert!(
        s.update_mailbox("owner@sec.test", set(None, Some("")))
            .await
            .unwrap()
    );
    let m = s.mailbox("owner@sec.test").await.unwrap().unwrap();
    assert_eq!((m.spam_policy.as_str(), m.contact), ("delete", None));
    assert!(
        !s.update_mailbox("nobody@sec.test", set(Some("junk"), None))
            .await
            .unwrap()
    );
}

pub(super) async fn spam_is_counted_and_a_lock_needs_a_reset<S: Store>(s: &S) {
    let mut m = mailbox("spammer@sec.test");
    m.password_hash = "old-hash".into();
    s.create_mailbox(m).await.unwrap();
    let record = |time: i64| NewSpamRecord {
        mailbox: "Spammer@sec.test".into(),
        time,
        identificativo: Some(format!("id{time}@sec.test")),
        detail: "score 15".into(),
    };
    s.commit(Commit {
        outbound_spam: (0..5).map(|i| record(1_000 + i * 100)).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        s.outbound_spam_count("spammer@sec.test", 0).await.unwrap(),
        5
    );
    assert_eq!(
        s.outbound_spam_count("spammer@sec.test", 1_200)
            .await
            .unwrap(),
        3
    );
    assert_eq!(s.outbound_spam_count("other@sec.test", 0).await.unwrap(), 0);

    // The lock is part of the commit that records the spam that caused it.
    s.commit(Commit {
        outbound_spam: vec![record(1_500)],
        locks: vec![NewLock {
            mailbox: "spammer@sec.test".into(),
            reset_token_sha256: "aa".repeat(32),
            expires: 5_000,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let m = s.mailbox("spammer@sec.test").await.unwrap().unwrap();
    assert!(m.locked);
    assert_eq!(m.password_hash, "", "the password is invalidated");
    assert_eq!(
        s.outbound_spam_count("spammer@sec.test", 0).await.unwrap(),
        6
    );

    // A wrong or expired token does nothing; the right one works once.
    assert_eq!(
        s.reset_token_owner(&"bb".repeat(32), 1_000).await.unwrap(),
        None
    );
    assert_eq!(
        s.reset_token_owner(&"aa".repeat(32), 5_001).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        s.reset_token_owner(&"aa".repeat(32), 4_000)
            .await
            .unwrap()
            .as_deref(),
        Some("spammer@sec.test"),
        "looking does not spend the token"
    );
    assert_eq!(
        s.reset_password(&"bb".repeat(32), "new", 1_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.reset_password(&"aa".repeat(32), "new", 5_001)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert!(s.mailbox("spammer@sec.test").await.unwrap().unwrap().locked);
    assert_eq!(
        s.reset_password(&"aa".repeat(32), "new-hash", 4_000)
            .await
            .unwrap()
            .as_deref(),
        Some("spammer@sec.test")
    );
    let m = s.mailbox("spammer@sec.test").await.unwrap().unwrap();
    assert!(!m.locked);
    assert_eq!(m.password_hash, "new-hash");
    assert_eq!(
        s.reset_password(&"aa".repeat(32), "again", 4_000)
            .await
            .unwrap(),
        None,
        "a token works once"
    );
    assert_eq!(
        s.reset_token_owner(&"aa".repeat(32), 4_000).await.unwrap(),
        None,
        "a spent token has no owner"
    );

    // The operator's password also unlocks.
    s.commit(Commit {
        locks: vec![NewLock {
            mailbox: "spammer@sec.test".into(),
            reset_token_sha256: "cc".repeat(32),
            expires: 9_000,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        s.set_password("SPAMMER@sec.test", "operator-hash")
            .await
            .unwrap()
    );
    let m = s.mailbox("spammer@sec.test").await.unwrap().unwrap();
    assert_eq!(
        (m.locked, m.password_hash.as_str()),
        (false, "operator-hash")
    );
    assert_eq!(
        s.reset_password(&"cc".repeat(32), "x", 1).await.unwrap(),
        None,
        "the operator's password spends the pending token"
    );
    assert!(!s.set_password("nobody@sec.test", "h").await.unwrap());
}

pub(super) async fn the_virus_store_purges_old_entries<S: Store>(s: &S) {
    let large: Vec<u8> = (0..(2 << 20)).map(|i| (i % 241) as u8).collect();
    s.commit(Commit {
        quarantine: vec![NewQuarantined {
            bytes: large,
            sender: "x@gmail.test".into(),
            engine: "clamd".into(),
            threat: "Old.Threat".into(),
            ..Default::default()
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let all = s.quarantined(0).await.unwrap();
    assert!(!all.is_empty());
    let oldest = all.iter().map(|q| q.time).min().unwrap();
    let newest = all.iter().map(|q| q.time).max().unwrap();
    assert_eq!(s.purge_quarantine(oldest).await.unwrap(), 0, "none older");
    assert_eq!(
        s.purge_quarantine(newest + 1).await.unwrap(),
        all.len() as u64
    );
    assert!(s.quarantined(0).await.unwrap().is_empty());
    assert_eq!(s.purge_quarantine(newest + 1).await.unwrap(), 0);
}
