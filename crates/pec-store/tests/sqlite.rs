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

#[tokio::test]
async fn the_event_table_refuses_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).await.unwrap();
    s.commit(one_event()).await.unwrap();
    drop(s);
    let c = rusqlite::Connection::open(dir.path().join("pec.sqlite")).unwrap();
    let upd = c.execute("UPDATE events SET json = 'x'", []);
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = c.execute("DELETE FROM events", []);
    assert!(del.unwrap_err().to_string().contains("append-only"));
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
