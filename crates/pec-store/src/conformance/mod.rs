//! The conformance suite: every backend runs [`run`] on a fresh, empty store and must pass.
//! Each check states one clause of the contract in the crate documentation.

// This module is a test suite run by each backend's tests: a failed step must panic.
#![allow(clippy::unwrap_used)]

mod folders;
mod security;
mod web;

use crate::{
    Append, Commit, FlagOp, FolderRefusal, FolderVersion, NewDeadline, NewEvent, NewMailbox,
    NewMessage, NewQuarantined, NewQueueEntry, NewTracked, Portion, QueueRetry, STANDARD_FOLDERS,
    Store, StoreError, Taken,
};
use folders::*;
use security::*;

fn mailbox(address: &str) -> NewMailbox {
    NewMailbox {
        address: address.into(),
        password_hash: String::new(),
        quota_bytes: 0,
        ordinary_policy: "anomalia".into(),
        service: false,
        ..Default::default()
    }
}

fn message(mailbox: &str, bytes: &[u8], message_id: Option<&str>) -> NewMessage {
    NewMessage {
        mailbox: mailbox.into(),
        folder: "INBOX".into(),
        flags: String::new(),
        bytes: bytes.to_vec(),
        kind: "posta-certificata".into(),
        identificativo: Some("id1@a.test".into()),
        message_id: message_id.map(str::to_string),
        subject: Some("s".into()),
        date: 1_700_000_000,
    }
}

/// Runs every check.
pub async fn run<S: Store>(s: &S) {
    mailboxes_are_unique_ignoring_case(s).await;
    messages_keep_their_bytes_and_get_increasing_uids(s).await;
    a_second_copy_is_not_stored(s).await;
    queue_entries_are_leased_and_come_back(s).await;
    queue_entries_leased_by_their_commit_come_back_when_the_lease_ends(s).await;
    queue_entries_of_any_size_keep_their_bytes(s).await;
    deadlines_are_leased_and_finished(s).await;
    progress_is_recorded_once(s).await;
    events_keep_commit_order(s).await;
    concurrent_commits_are_each_complete(s).await;
    deleted_messages_go_and_usage_shrinks(s).await;
    mailboxes_have_the_standard_folders_and_user_folders(s).await;
    flags_change_in_new_modification_sequences(s).await;
    copy_move_and_append_keep_bytes_and_quota(s).await;
    many_messages_are_read_at_once_whole_or_header(s).await;
    folder_versions_follow_every_change(s).await;
    infected_messages_go_to_the_virus_store(s).await;
    settings_change_only_what_is_given(s).await;
    spam_is_counted_and_a_lock_needs_a_reset(s).await;
    the_virus_store_purges_old_entries(s).await;
    web::pages_are_newest_first_and_filtered(s).await;
    web::a_transaction_gathers_its_messages(s).await;
    web::tokens_and_second_factor_are_kept(s).await;
    web::receipts_raise_webhook_deliveries(s).await;
    old_events_go_and_young_ones_stay(s).await;
}

/// pec.md §6: the oldest events may go once older than the retention, always as the oldest
/// unbroken run; an event younger than [`crate::EVENT_LOG_KEEP_DAYS`] is never removed.
async fn old_events_go_and_young_ones_stay<S: Store>(s: &S) {
    let now = chrono::Utc::now().timestamp();
    s.commit(Commit {
        events: vec![NewEvent {
            time: now,
            identificativo: "recent".into(),
            json: "{}".into(),
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let before = s.events(0, None, 1_000_000).await.unwrap();
    let run = before.iter().take_while(|e| e.time < 3).count();
    assert!(run > 0, "earlier tests logged events at times 1 and 2");
    let (gone, first) = s.purge_events(3).await.unwrap();
    assert_eq!(gone as usize, run);
    assert_eq!(first, Some(before[run].seq));
    let after = s.events(0, None, 1_000_000).await.unwrap();
    assert_eq!(after.len(), before.len() - run);
    // Past the recent event: refused as a whole, nothing removed.
    assert!(s.purge_events(now + 10).await.is_err());
    assert_eq!(
        s.events(0, None, 1_000_000).await.unwrap().len(),
        after.len()
    );
}

fn refusal<T: std::fmt::Debug>(r: crate::Result<T>) -> FolderRefusal {
    match r {
        Err(StoreError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn deleted_messages_go_and_usage_shrinks<S: Store>(s: &S) {
    s.create_mailbox(mailbox("del@b.test")).await.unwrap();
    let bodies: [&[u8]; 3] = [b"one", b"two!", b"three"];
    s.commit(Commit {
        messages: bodies
            .iter()
            .map(|b| message("del@b.test", b, None))
            .collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let before = s.messages("del@b.test").await.unwrap();
    assert_eq!(before.len(), 3);
    assert!(
        before
            .iter()
            .all(|m| m.uidvalidity == before[0].uidvalidity)
    );
    let m = s.mailbox("del@b.test").await.unwrap().unwrap();
    assert_eq!((m.used_bytes, m.messages), (12, 3));
    let gone = s
        .delete_messages("del@b.test", "INBOX", &[before[1].uid, 999])
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let after = s.messages("del@b.test").await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![before[0].uid, before[2].uid],
        "UIDs of the others do not change"
    );
    assert!(
        s.message_bytes("del@b.test", "INBOX", before[1].uid)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.message_bytes("del@b.test", "INBOX", before[2].uid)
            .await
            .unwrap()
            .unwrap(),
        b"three"
    );
    let m = s.mailbox("del@b.test").await.unwrap().unwrap();
    assert_eq!((m.used_bytes, m.messages), (8, 2));
    // A new message takes a higher UID than any deleted one.
    s.commit(Commit {
        messages: vec![message("del@b.test", b"four", None)],
        ..Default::default()
    })
    .await
    .unwrap();
    let last = s.messages("del@b.test").await.unwrap();
    assert!(last.last().unwrap().uid > before[2].uid);
}

async fn mailboxes_are_unique_ignoring_case<S: Store>(s: &S) {
    s.create_mailbox(mailbox("Anna@B.test")).await.unwrap();
    let again = s.create_mailbox(mailbox("anna@b.test")).await;
    assert!(matches!(again, Err(crate::StoreError::AlreadyExists(_))));
    let m = s.mailbox("ANNA@b.TEST").await.unwrap().unwrap();
    assert_eq!(m.address, "anna@b.test");
    assert_eq!(s.mailboxes().await.unwrap().len(), 1);
    assert!(s.mailbox("nobody@b.test").await.unwrap().is_none());
}

async fn messages_keep_their_bytes_and_get_increasing_uids<S: Store>(s: &S) {
    s.create_mailbox(mailbox("m@b.test")).await.unwrap();
    let a = b"first\r\n\x00\xffbinary".to_vec();
    let b = b"second\r\n".to_vec();
    let done = s
        .commit(Commit {
            messages: vec![
                message("m@b.test", &a, Some("x1")),
                message("m@b.test", &b, None),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(done.stored, vec![Some(1), Some(2)]);
    assert_eq!(
        s.message_bytes("m@b.test", "INBOX", 1)
            .await
            .unwrap()
            .unwrap(),
        a
    );
    assert_eq!(
        s.message_bytes("m@b.test", "INBOX", 2)
            .await
            .unwrap()
            .unwrap(),
        b
    );
    assert!(
        s.message_bytes("m@b.test", "INBOX", 3)
            .await
            .unwrap()
            .is_none()
    );
    let list = s.messages("m@b.test").await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].size, a.len() as u64);
    let mb = s.mailbox("m@b.test").await.unwrap().unwrap();
    assert_eq!(mb.used_bytes, (a.len() + b.len()) as u64);
    assert_eq!(mb.messages, 2);
}

async fn a_second_copy_is_not_stored<S: Store>(s: &S) {
    s.create_mailbox(mailbox("d@b.test")).await.unwrap();
    let c = Commit {
        messages: vec![message("d@b.test", b"x", Some("dup@a.test"))],
        ..Default::default()
    };
    assert_eq!(s.commit(c.clone()).await.unwrap().stored, vec![Some(1)]);
    assert_eq!(s.commit(c).await.unwrap().stored, vec![None]);
    assert!(s.received_before("d@b.test", "dup@a.test").await.unwrap());
    assert!(!s.received_before("m@b.test", "dup@a.test").await.unwrap());
    // Taken without a copy (an errore-consegna went back): known until purged.
    let taken = |time| Commit {
        taken: vec![Taken {
            recipient: "m@b.test".into(),
            message_id: "dup@a.test".into(),
            time,
        }],
        ..Default::default()
    };
    s.commit(taken(1_000)).await.unwrap();
    s.commit(taken(1_001)).await.unwrap();
    assert!(s.received_before("m@b.test", "dup@a.test").await.unwrap());
    assert!(!s.received_before("m@b.test", "other@a.test").await.unwrap());
    assert_eq!(s.purge_taken(1_000).await.unwrap(), 0);
    assert_eq!(s.purge_taken(1_001).await.unwrap(), 1);
    assert!(!s.received_before("m@b.test", "dup@a.test").await.unwrap());
    assert_eq!(s.messages("d@b.test").await.unwrap().len(), 1);
}

async fn queue_entries_are_leased_and_come_back<S: Store>(s: &S) {
    s.commit(Commit {
        queue: vec![NewQueueEntry {
            mail_from: "a@a.test".into(),
            rcpt_to: vec!["x@c.test".into(), "y@c.test".into()],
            domain: "c.test".into(),
            bytes: b"queued".to_vec(),
            not_before: 100,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.queue_len().await.unwrap(), 1);
    assert!(
        s.lease_queue(99, 60, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let l = s.lease_queue(100, 60, 10).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].bytes, b"queued");
    assert_eq!(l[0].attempts, 1);
    assert!(
        s.lease_queue(120, 60, 10).await.unwrap().is_empty(),
        "leased"
    );
    s.release_leases().await.unwrap();
    assert_eq!(
        s.lease_queue(120, 60, 10).await.unwrap().len(),
        1,
        "released"
    );
    let again = s.lease_queue(181, 60, 10).await.unwrap();
    assert_eq!(again.len(), 1, "a lapsed lease comes back");
    assert_eq!(again[0].lease_until, 241);
    assert!(
        !s.renew_queue_lease(again[0].id, 180, 900).await.unwrap(),
        "a lease given out since is not the holder's to renew"
    );
    assert!(s.renew_queue_lease(again[0].id, 241, 300).await.unwrap());
    assert!(
        s.lease_queue(260, 60, 10).await.unwrap().is_empty(),
        "renewed past its first end"
    );
    s.commit(Commit {
        queue_retry: vec![QueueRetry {
            id: again[0].id,
            rcpt_to: vec!["y@c.test".into()],
            next_attempt: 500,
            error: "4.0.0 later".into(),
            // Three leases so far, but the worker adopted the later ones into its first
            // attempt: the count it reports is the store's from now on.
            attempts: 1,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        !s.renew_queue_lease(again[0].id, 300, 900).await.unwrap(),
        "a retried entry's lease has ended"
    );
    assert!(s.lease_queue(400, 60, 10).await.unwrap().is_empty());
    let l = s.lease_queue(500, 60, 10).await.unwrap();
    assert_eq!(l[0].rcpt_to, vec!["y@c.test".to_string()]);
    assert_eq!(l[0].last_error.as_deref(), Some("4.0.0 later"));
    assert_eq!(l[0].attempts, 2, "the worker's count, plus this lease");
    s.commit(Commit {
        queue_done: vec![l[0].id],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.queue_len().await.unwrap(), 0);
    assert!(s.lease_queue(10_000, 60, 10).await.unwrap().is_empty());
    // The id of a finished entry is never given again: the worker keys the entries it is
    // attempting by id, and DSN Message-IDs are made from it.
    s.commit(Commit {
        queue: vec![NewQueueEntry {
            mail_from: "a@a.test".into(),
            rcpt_to: vec!["z@c.test".into()],
            domain: "c.test".into(),
            bytes: b"next".to_vec(),
            not_before: 10_000,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let next = s.lease_queue(10_000, 60, 10).await.unwrap();
    assert!(next[0].id > l[0].id, "a queue id was reused");
    s.commit(Commit {
        queue_done: vec![next[0].id],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        !s.renew_queue_lease(l[0].id, l[0].lease_until, 20_000)
            .await
            .unwrap(),
        "a finished entry has no lease"
    );
}

async fn queue_entries_leased_by_their_commit_come_back_when_the_lease_ends<S: Store>(s: &S) {
    let entry = |domain: &str| NewQueueEntry {
        mail_from: "a@a.test".into(),
        rcpt_to: vec![format!("x@{domain}")],
        domain: domain.into(),
        bytes: format!("for {domain}").into_bytes(),
        not_before: 1_000,
    };
    let committed = s
        .commit(Commit {
            queue: vec![entry("d.test"), entry("e.test")],
            queue_lease_until: 1_600,
            ..Default::default()
        })
        .await
        .unwrap();
    let leased = committed.leased;
    assert_eq!(leased.len(), 2, "every new entry comes back, in order");
    assert_eq!(
        (leased[0].domain.as_str(), leased[1].domain.as_str()),
        ("d.test", "e.test")
    );
    assert_eq!(leased[1].bytes, b"for e.test");
    assert_eq!((leased[0].attempts, leased[0].created), (1, 1_000));
    assert_eq!(leased[0].lease_until, 1_600, "the lease of the commit");
    assert_ne!(leased[0].id, leased[1].id);
    assert!(
        s.lease_queue(1_599, 60, 10).await.unwrap().is_empty(),
        "nobody else gets them while the commit's lease lasts"
    );
    let back = s.lease_queue(1_600, 60, 10).await.unwrap();
    assert_eq!(back.len(), 2, "a lapsed lease gives them back");
    assert_eq!(back[0].id, leased[0].id);
    assert_eq!(back[0].attempts, 2, "the first attempt was counted");
    s.commit(Commit {
        queue_done: back.iter().map(|e| e.id).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(s.commit(Commit::default()).await.unwrap().leased.is_empty());
}

/// Small and large queue entries and messages (a backend may keep them in different places)
/// come back intact.
async fn queue_entries_of_any_size_keep_their_bytes<S: Store>(s: &S) {
    let sizes = [0usize, 1, 64 << 10, (1 << 20) + 1, 3 << 20];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
        .collect();
    s.commit(Commit {
        queue: bodies
            .iter()
            .map(|b| NewQueueEntry {
                mail_from: "a@a.test".into(),
                rcpt_to: vec!["x@d.test".into()],
                domain: "d.test".into(),
                bytes: b.clone(),
                not_before: 1_000,
            })
            .collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let l = s.lease_queue(1_000, 60, 10).await.unwrap();
    assert_eq!(l.len(), sizes.len());
    for (e, b) in l.iter().zip(&bodies) {
        assert!(e.bytes == *b, "queue entry of {} bytes changed", b.len());
    }
    s.commit(Commit {
        queue_done: l.iter().map(|e| e.id).collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.queue_len().await.unwrap(), 0);
    // Messages too (a backend may keep small and large ones apart).
    s.commit(Commit {
        messages: bodies
            .iter()
            .enumerate()
            .map(|(i, b)| message("sizes@b.test", b, Some(&format!("<size{i}@x>"))))
            .collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let stored = s.messages("sizes@b.test").await.unwrap();
    assert_eq!(stored.len(), bodies.len());
    for (m, b) in stored.iter().zip(&bodies) {
        let got = s
            .message_bytes("sizes@b.test", "INBOX", m.uid)
            .await
            .unwrap()
            .unwrap();
        assert!(got == *b, "message of {} bytes changed", b.len());
        assert_eq!(m.size, b.len() as u64);
    }
}

async fn infected_messages_go_to_the_virus_store<S: Store>(s: &S) {
    let before = s.quarantined(0).await.unwrap().len();
    let small = b"X5O!P%@AP[4 infected".to_vec();
    let large: Vec<u8> = (0..(2 << 20)).map(|i| (i % 251) as u8).collect();
    s.commit(Commit {
        quarantine: vec![
            NewQuarantined {
                bytes: small.clone(),
                identificativo: Some("opec1@a.test".into()),
                sender: "mario@a.test".into(),
                recipients: vec!["anna@b.test".into(), "carla@b.test".into()],
                engine: "clamd".into(),
                threat: "Eicar-Test-Signature".into(),
            },
            NewQuarantined {
                bytes: large.clone(),
                sender: "x@gmail.test".into(),
                engine: "icap".into(),
                threat: "Big.Threat".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let q = s.quarantined(0).await.unwrap();
    assert_eq!(q.len(), before + 2);
    let a = &q[before];
    assert_eq!(a.identificativo.as_deref(), Some("opec1@a.test"));
    assert_eq!(a.recipients, ["anna@b.test", "carla@b.test"]);
    assert_eq!(
        (a.engine.as_str(), a.threat.as_str(), a.size),
        ("clamd", "Eicar-Test-Signature", small.len() as u64)
    );
    assert_eq!(q[before + 1].size, large.len() as u64);
    assert!(s.quarantined(i64::MAX).await.unwrap().is_empty());
}

/// Many commits at once (a backend may group them): each is applied whole, and each
/// message gets its own UID.
async fn concurrent_commits_are_each_complete<S: Store>(s: &S) {
    let commits = (0..40).map(|i| {
        s.commit(Commit {
            messages: vec![message(
                "many@b.test",
                format!("m{i}").as_bytes(),
                Some(&format!("<m{i}@x>")),
            )],
            events: vec![NewEvent {
                time: 5,
                identificativo: format!("many-{i}"),
                json: "{}".into(),
            }],
            ..Default::default()
        })
    });
    for c in futures::future::join_all(commits).await {
        assert_eq!(c.unwrap().stored.len(), 1);
    }
    let mut uids: Vec<u32> = s
        .messages("many@b.test")
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 40);
    for i in 0..40 {
        let ev = s.events(0, Some(&format!("many-{i}")), 10).await.unwrap();
        assert_eq!(ev.len(), 1);
    }
}

async fn deadlines_are_leased_and_finished<S: Store>(s: &S) {
    let d = |which: &str, due| NewDeadline {
        identificativo: "t1@a.test".into(),
        recipient: "anna@b.test".into(),
        which: which.into(),
        due,
    };
    s.commit(Commit {
        deadlines: vec![d("12h", 1000), d("24h", 2000)],
        ..Default::default()
    })
    .await
    .unwrap();
    let l = s.lease_deadlines(1500, 60, 10).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].which, "12h");
    s.commit(Commit {
        deadlines_done: vec![l[0].id],
        ..Default::default()
    })
    .await
    .unwrap();
    let l = s.lease_deadlines(5000, 60, 10).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].which, "24h");
}

async fn progress_is_recorded_once<S: Store>(s: &S) {
    s.commit(Commit {
        tracked: vec![NewTracked {
            identificativo: "t2@a.test".into(),
            data: "{}".into(),
            recipients: vec!["anna@b.test".into(), "carla@b.test".into()],
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let step = |r: &str, st: &str| ("t2@a.test".to_string(), r.to_string(), st.to_string());
    for _ in 0..2 {
        s.commit(Commit {
            progress: vec![
                step("ANNA@b.test", "presa-in-carico"),
                step("anna@b.test", "avvenuta-consegna"),
                step("nobody@b.test", "avvenuta-consegna"),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let t = s.tracked("t2@a.test").await.unwrap().unwrap();
    assert_eq!(t.data, "{}");
    assert_eq!(
        t.recipients,
        vec![
            (
                "anna@b.test".to_string(),
                vec![
                    "presa-in-carico".to_string(),
                    "avvenuta-consegna".to_string()
                ]
            ),
            ("carla@b.test".to_string(), vec![]),
        ]
    );
    assert!(s.tracked("none@a.test").await.unwrap().is_none());
}

async fn events_keep_commit_order<S: Store>(s: &S) {
    let e = |id: &str, n: i64| NewEvent {
        time: n,
        identificativo: id.into(),
        json: format!("{{\"n\":{n}}}"),
    };
    s.commit(Commit {
        events: vec![e("e1", 1), e("e2", 2)],
        ..Default::default()
    })
    .await
    .unwrap();
    s.commit(Commit {
        events: vec![e("e1", 3)],
        ..Default::default()
    })
    .await
    .unwrap();
    let all = s.events(0, None, 100).await.unwrap();
    let times: Vec<i64> = all.iter().map(|e| e.time).collect();
    assert_eq!(times, vec![1, 2, 3]);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let e1 = s.events(0, Some("e1"), 100).await.unwrap();
    assert_eq!(e1.len(), 2);
    let after = s.events(all[0].seq, None, 100).await.unwrap();
    assert_eq!(after.len(), 2);
}
