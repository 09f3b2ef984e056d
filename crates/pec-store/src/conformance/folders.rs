//! Conformance checks of the folder operations IMAP relies on: standard and user folders,
//! flags with modification sequences, copy/move/append, batched reads, folder versions.

use super::*;

pub(super) async fn mailboxes_have_the_standard_folders_and_user_folders<S: Store>(s: &S) {
    s.create_mailbox(mailbox("f@b.test")).await.unwrap();
    let names = |v: Vec<crate::Folder>| v.into_iter().map(|f| f.name).collect::<Vec<_>>();
    let mut standard: Vec<String> = STANDARD_FOLDERS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    standard.sort();
    assert_eq!(names(s.folders("f@b.test").await.unwrap()), standard);
    s.create_folder("f@b.test", "Clienti/Rossi").await.unwrap();
    assert_eq!(
        refusal(s.create_folder("f@b.test", "Clienti").await),
        FolderRefusal::Exists,
        "parents are created with the child"
    );
    assert_eq!(
        refusal(s.delete_folder("f@b.test", "Sent").await),
        FolderRefusal::Protected
    );
    assert_eq!(
        refusal(s.delete_folder("f@b.test", "Nope").await),
        FolderRefusal::Missing
    );
    let before = s
        .folder_index("f@b.test", "Clienti/Rossi")
        .await
        .unwrap()
        .unwrap()
        .0;
    s.rename_folder("f@b.test", "Clienti", "Archivio")
        .await
        .unwrap();
    let after = s
        .folder_index("f@b.test", "Archivio/Rossi")
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_ne!(
        before.uidvalidity, after.uidvalidity,
        "a renamed folder gets a new UIDVALIDITY"
    );
    assert!(
        s.folder_index("f@b.test", "Clienti")
            .await
            .unwrap()
            .is_none()
    );
    let f = s.folders("f@b.test").await.unwrap();
    let subscribed =
        |f: &[crate::Folder], n: &str| f.iter().find(|f| f.name == n).unwrap().subscribed;
    assert!(
        subscribed(&f, "Sent"),
        "the standard folders are subscribed"
    );
    assert!(!subscribed(&f, "Archivio"), "CREATE does not subscribe");
    s.subscribe_folder("f@b.test", "Archivio", true)
        .await
        .unwrap();
    assert!(subscribed(
        &s.folders("f@b.test").await.unwrap(),
        "Archivio"
    ));
    // A folder with subfolders can be deleted; the subfolders stay (RFC 3501 §6.3.4).
    s.delete_folder("f@b.test", "Archivio").await.unwrap();
    let mut left = standard.clone();
    left.push("Archivio/Rossi".to_string());
    left.sort();
    assert_eq!(names(s.folders("f@b.test").await.unwrap()), left);
    s.delete_folder("f@b.test", "Archivio/Rossi").await.unwrap();
    assert_eq!(names(s.folders("f@b.test").await.unwrap()), standard);
}

pub(super) async fn flags_change_in_new_modification_sequences<S: Store>(s: &S) {
    s.create_mailbox(mailbox("flags@b.test")).await.unwrap();
    let mut changes = s.changes();
    s.commit(Commit {
        messages: vec![
            message("flags@b.test", b"one", None),
            message("flags@b.test", b"two", None),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        changes.recv().await.unwrap(),
        "flags@b.test",
        "a delivery is announced"
    );
    let (f0, idx) = s
        .folder_index("flags@b.test", "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f0.messages, f0.unseen), (2, 2));
    assert!(idx.iter().all(|e| e.modseq <= f0.highest_modseq));
    let seen = vec!["\\Seen".to_string()];
    let out = s
        .set_flags(
            "flags@b.test",
            "INBOX",
            &[1, 2, 99],
            FlagOp::Add,
            &seen,
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.changed.len(), 2);
    let m1 = out.changed[0].2;
    assert!(m1 > f0.highest_modseq, "a change takes a new modseq");
    assert_eq!(changes.recv().await.unwrap(), "flags@b.test");
    // UNCHANGEDSINCE below the current modseq leaves the message alone (RFC 7162 §3.1.3).
    let out = s
        .set_flags(
            "flags@b.test",
            "INBOX",
            &[1],
            FlagOp::Remove,
            &seen,
            Some(m1 - 1),
        )
        .await
        .unwrap();
    assert_eq!((out.changed.len(), out.modified), (0, vec![1]));
    let out = s
        .set_flags(
            "flags@b.test",
            "INBOX",
            &[1],
            FlagOp::Remove,
            &seen,
            Some(m1),
        )
        .await
        .unwrap();
    assert_eq!(out.changed.len(), 1);
    let (f1, idx) = s
        .folder_index("flags@b.test", "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f1.unseen, 1);
    assert_eq!(idx[0].flags, "");
    assert_eq!(idx[1].flags, "\\Seen");
    // An expunge takes only what is flagged \Deleted in the store when it runs: message 1,
    // whose flag another session cleared, stays.
    let deleted = vec!["\\Deleted".to_string()];
    s.set_flags("flags@b.test", "INBOX", &[1], FlagOp::Add, &deleted, None)
        .await
        .unwrap();
    s.set_flags(
        "flags@b.test",
        "INBOX",
        &[1],
        FlagOp::Remove,
        &deleted,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        s.expunge_messages("flags@b.test", "INBOX", &[1])
            .await
            .unwrap(),
        0
    );
    s.delete_messages("flags@b.test", "INBOX", &[2])
        .await
        .unwrap();
    let (f2, _) = s
        .folder_index("flags@b.test", "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert!(
        f2.highest_modseq > f1.highest_modseq,
        "an expunge raises HIGHESTMODSEQ"
    );
}

pub(super) async fn copy_move_and_append_keep_bytes_and_quota<S: Store>(s: &S) {
    let mut m = mailbox("copy@b.test");
    m.quota_bytes = 100;
    s.create_mailbox(m).await.unwrap();
    s.commit(Commit {
        messages: vec![
            message("copy@b.test", &[b'a'; 30], Some("<x@a.test>")),
            message("copy@b.test", &[b'b'; 30], None),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let pairs = s
        .copy_messages("copy@b.test", "INBOX", &[1], "Trash", false)
        .await
        .unwrap();
    assert_eq!(pairs, vec![(1, 1)]);
    assert_eq!(
        s.mailbox("copy@b.test").await.unwrap().unwrap().used_bytes,
        90
    );
    assert_eq!(
        refusal(
            s.copy_messages("copy@b.test", "INBOX", &[1, 2], "Trash", false)
                .await
        ),
        FolderRefusal::OverQuota,
        "a copy over quota is refused whole"
    );
    assert_eq!(
        s.folder_index("copy@b.test", "Trash")
            .await
            .unwrap()
            .unwrap()
            .1
            .len(),
        1
    );
    let pairs = s
        .copy_messages("copy@b.test", "INBOX", &[1], "Drafts", true)
        .await
        .unwrap();
    assert_eq!(pairs, vec![(1, 1)]);
    assert_eq!(
        s.message_bytes("copy@b.test", "Drafts", 1)
            .await
            .unwrap()
            .unwrap(),
        [b'a'; 30]
    );
    assert!(
        s.message_bytes("copy@b.test", "INBOX", 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.received_before("copy@b.test", "<x@a.test>")
            .await
            .unwrap(),
        "a moved message keeps its dedup key"
    );
    assert_eq!(
        s.delete_messages("copy@b.test", "Trash", &[1])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.message_bytes("copy@b.test", "Drafts", 1)
            .await
            .unwrap()
            .unwrap(),
        [b'a'; 30],
        "deleting a copy leaves the message it was copied from whole"
    );
    assert_eq!(
        refusal(
            s.copy_messages("copy@b.test", "INBOX", &[2], "Nope", false)
                .await
        ),
        FolderRefusal::Missing
    );
    let (_, uid) = s
        .append(Append {
            mailbox: "copy@b.test".into(),
            folder: "Sent".into(),
            flags: "\\Seen".into(),
            date: 1_700_000_000,
            bytes: b"appended".to_vec(),
            subject: None,
        })
        .await
        .unwrap();
    assert_eq!(
        s.message_bytes("copy@b.test", "Sent", uid)
            .await
            .unwrap()
            .unwrap(),
        b"appended"
    );
    let big = Append {
        mailbox: "copy@b.test".into(),
        folder: "Sent".into(),
        flags: String::new(),
        date: 1_700_000_000,
        bytes: vec![0; 64],
        subject: None,
    };
    assert_eq!(refusal(s.append(big).await), FolderRefusal::OverQuota);
}

pub(super) async fn folder_versions_follow_every_change<S: Store>(s: &S) {
    let a = "ver@b.test";
    s.create_mailbox(mailbox(a)).await.unwrap();
    let version = || async {
        let v = s.folder_version(a, "INBOX").await.unwrap().unwrap();
        let (f, _) = s.folder_index(a, "INBOX").await.unwrap().unwrap();
        assert_eq!(v, f.version(), "the version is the one folder_index reads");
        v
    };
    let mut seen = vec![version().await];
    let mut changed = |v: FolderVersion, what: &str| {
        assert!(!seen.contains(&v), "{what} left the version as it was");
        seen.push(v);
    };
    s.commit(Commit {
        messages: vec![
            message(a, b"uno", Some("<v1@x>")),
            message(a, b"due", Some("<v2@x>")),
            message(a, b"tre", Some("<v3@x>")),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    changed(version().await, "a delivery");
    let seen_flag = vec!["\\Seen".to_string()];
    s.set_flags(a, "INBOX", &[1], FlagOp::Add, &seen_flag, None)
        .await
        .unwrap();
    changed(version().await, "a flag change");
    s.copy_messages(a, "INBOX", &[2], "Trash", true)
        .await
        .unwrap();
    changed(version().await, "a move away");
    let before = version().await;
    s.set_flags(a, "INBOX", &[3], FlagOp::Add, &seen_flag, None)
        .await
        .unwrap();
    let (f, since, count) = s
        .folder_changes(a, "INBOX", before.highest_modseq)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.version(), version().await);
    assert_eq!(since.iter().map(|e| e.uid).collect::<Vec<_>>(), [3]);
    assert!(since[0].has_flag("\\Seen"));
    assert_eq!(count, 2, "the moved message is no longer counted");
    changed(f.version(), "a second flag change");
    s.delete_messages(a, "INBOX", &[3]).await.unwrap();
    changed(version().await, "a removal");
    assert!(s.folder_version(a, "Nessuna").await.unwrap().is_none());
}

pub(super) async fn many_messages_are_read_at_once_whole_or_header<S: Store>(s: &S) {
    s.create_mailbox(mailbox("batch@b.test")).await.unwrap();
    let big: Vec<u8> = b"Subject: grande\r\nX-A: 1\r\n\r\n"
        .iter()
        .copied()
        .chain((0..(300 << 10)).map(|i| b'a' + (i % 26) as u8))
        .collect();
    let bodies: Vec<Vec<u8>> = vec![
        b"Subject: uno\r\n\r\ncorpo\r\n".to_vec(),
        b"Subject: senza corpo\r\n".to_vec(),
        big,
    ];
    s.commit(Commit {
        messages: bodies
            .iter()
            .enumerate()
            .map(|(i, b)| message("batch@b.test", b, Some(&format!("<batch{i}@x>"))))
            .collect(),
        ..Default::default()
    })
    .await
    .unwrap();
    let appended = b"Subject: aggiunto\n\ntesto\n".to_vec();
    s.append(Append {
        mailbox: "batch@b.test".into(),
        folder: "INBOX".into(),
        bytes: appended.clone(),
        flags: String::new(),
        date: 1_000,
        subject: None,
    })
    .await
    .unwrap();
    let uids: Vec<u32> = s
        .messages("batch@b.test")
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids.len(), 4);
    let mut asked = uids.clone();
    asked.push(999);
    asked.reverse();
    let whole = s
        .messages_bytes("batch@b.test", "INBOX", &asked, Portion::Whole)
        .await
        .unwrap();
    let mut all = bodies.clone();
    all.push(appended.clone());
    assert_eq!(
        whole.iter().map(|w| w.0).collect::<Vec<_>>(),
        uids,
        "by ascending UID, missing ones left out"
    );
    for ((_, got), want) in whole.iter().zip(&all) {
        assert!(got == want, "a batch read changed {} bytes", want.len());
    }
    let headers = s
        .messages_bytes("batch@b.test", "INBOX", &uids, Portion::Header)
        .await
        .unwrap();
    let expected: [&[u8]; 4] = [
        b"Subject: uno\r\n\r\n",
        b"Subject: senza corpo\r\n",
        b"Subject: grande\r\nX-A: 1\r\n\r\n",
        b"Subject: aggiunto\n\n",
    ];
    for ((_, got), want) in headers.iter().zip(expected) {
        assert_eq!(got.as_slice(), want);
    }
    // A copy reads the same.
    let pairs = s
        .copy_messages("batch@b.test", "INBOX", &uids[2..3], "Drafts", false)
        .await
        .unwrap();
    let copied = s
        .messages_bytes("batch@b.test", "Drafts", &[pairs[0].1], Portion::Header)
        .await
        .unwrap();
    assert_eq!(copied[0].1.as_slice(), expected[2]);
    assert!(
        s.messages_bytes("batch@b.test", "INBOX", &[], Portion::Whole)
            .await
            .unwrap()
            .is_empty()
    );
}
