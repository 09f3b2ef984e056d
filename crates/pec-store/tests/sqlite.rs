//! The SQLite + local files backend against the conformance suite, plus what only this
//! backend promises (append-only triggers, reopening keeps everything).

use pec_store::{Commit, NewEvent, NewMailbox, SqliteStore, Store, conformance};

#[tokio::test]
async fn sqlite_backend_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).await.unwrap();
    conformance::run(&s).await;
}

#[tokio::test]
async fn reopened_store_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path()).await.unwrap();
        s.create_mailbox(NewMailbox {
            address: "a@a.test".into(),
            password_hash: "h".into(),
            quota_bytes: 5,
            ordinary_policy: "refuse".into(),
            service: false,
            ..Default::default()
        })
        .await
        .unwrap();
        s.commit(one_event()).await.unwrap();
    }
    let s = SqliteStore::open(dir.path()).await.unwrap();
    let m = s.mailbox("a@a.test").await.unwrap().unwrap();
    assert_eq!((m.quota_bytes, m.ordinary_policy.as_str()), (5, "refuse"));
    assert_eq!(s.events(0, None, 10).await.unwrap().len(), 1);
}

/// Even bypassing the store: no event changes, and none younger than 920 days goes.
#[tokio::test]
async fn the_event_table_refuses_updates_and_early_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).await.unwrap();
    s.commit(one_event()).await.unwrap();
    let mut recent = one_event();
    recent.events[0].time = chrono::Utc::now().timestamp() - 900 * 86_400;
    s.commit(recent).await.unwrap();
    drop(s);
    let c = rusqlite::Connection::open(dir.path().join("pec.sqlite")).unwrap();
    let upd = c.execute("UPDATE events SET json = 'x'", []);
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = c.execute("DELETE FROM events", []);
    assert!(del.unwrap_err().to_string().contains("30 months"));
    assert_eq!(
        c.execute("DELETE FROM events WHERE time = 1", []).unwrap(),
        1
    );
}

/// A message stored before migration 11 keeps its bytes in `blobs`: it still reads back
/// (checked against its address), and deleting it drops that `blobs` entry.
#[tokio::test]
async fn messages_stored_in_blobs_before_bodies_still_read_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).await.unwrap();
    s.create_mailbox(NewMailbox {
        address: "old@a.test".into(),
        password_hash: "h".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    drop(s);
    let bytes = b"Subject: prima\r\n\r\nstored by an earlier version\r\n";
    let hash = pec_store::blobs::address(bytes);
    {
        let c = rusqlite::Connection::open(dir.path().join("pec.sqlite")).unwrap();
        c.execute(
            "INSERT INTO blobs (hash, bytes) VALUES (?, ?)",
            rusqlite::params![hash, &bytes[..]],
        )
        .unwrap();
        c.execute(
            "INSERT INTO messages (mailbox, folder, uid, blob, size, date, kind, flags, modseq)
             VALUES ('old@a.test', 'INBOX', 1, ?, ?, 1700000000, 'ordinaria', '', 1)",
            rusqlite::params![hash, bytes.len() as i64],
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(
        s.message_bytes("old@a.test", "INBOX", 1)
            .await
            .unwrap()
            .unwrap(),
        bytes
    );
    assert_eq!(
        s.delete_messages("old@a.test", "INBOX", &[1])
            .await
            .unwrap(),
        1
    );
    drop(s);
    let c = rusqlite::Connection::open(dir.path().join("pec.sqlite")).unwrap();
    let left: i64 = c
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the unnamed blobs entry is gone");
}

/// A commit holding one log event.
fn one_event() -> Commit {
    Commit {
        events: vec![NewEvent {
            time: 1,
            identificativo: "x".into(),
            json: "{}".into(),
        }],
        ..Default::default()
    }
}
