//! The queue worker against a scripted [`Transport`]: leases that outlast an attempt, and
//! one commit per attempt whatever mix of outcomes it had.

use super::*;
use crate::{Clock, Settings};
use pec_engine::access::Limits;
use pec_engine::receiving::OrdinaryPolicy;
use pec_message::build::Provider;
use pec_message::pki;
use pec_message::smime::SoftwareSigner;
use pec_store::{NewQueueEntry, SqliteStore};
use std::sync::atomic::AtomicUsize;
use tokio::sync::Notify;

/// Answers every delivery with the outcome its recipient's local part names (`ok…`,
/// `perm…`, otherwise temporary), after `gate` lets it go when one is set.
#[derive(Default)]
struct Scripted {
    calls: AtomicUsize,
    gate: Option<Arc<Notify>>,
    seen: Mutex<Vec<(String, Vec<String>)>>,
}

impl Transport for Scripted {
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.seen
                .lock()
                .unwrap()
                .push((d.domain.to_string(), d.rcpt_to.to_vec()));
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            Ok(d.rcpt_to
                .iter()
                .map(|r| {
                    if r.starts_with("ok") {
                        RcptOutcome::Accepted
                    } else if r.starts_with("perm") {
                        RcptOutcome::Permanent("550 5.1.1 no such user".into())
                    } else {
                        RcptOutcome::Temporary("451 4.3.0 try later".into())
                    }
                })
                .collect())
        })
    }
}

async fn gestore(dir: &std::path::Path) -> Arc<Gestore<SqliteStore>> {
    let now = chrono::Utc::now().timestamp();
    let ca = pki::make_ca("Queue test CA", now - 86_400, 30).unwrap();
    let leaf = pki::issue_signing_cert(&ca, "Queue", "a.test", None, now - 86_400, 30).unwrap();
    let signer = SoftwareSigner::from_pkcs8(
        &leaf.key_pkcs8_der().unwrap(),
        leaf.cert_der().unwrap(),
        vec![ca.cert_der().unwrap()],
    )
    .unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("store")).await.unwrap());
    let settings = Settings {
        provider: Provider {
            name: "Queue test".into(),
            service_domain: "a.test".into(),
        },
        domains: vec!["a.test".into()],
        hostname: "mx.a.test".into(),
        limits: Limits::default(),
        ordinary_policy: OrdinaryPolicy::Anomalia,
        data_dir: dir.to_path_buf(),
        index_path: dir.join("index.ldif"),
        queue_lifetime_secs: 86_400,
        public_url: "https://a.test".into(),
        crl_refresh_secs: 3_600,
        crl_required: false,
    };
    Arc::new(Gestore::new(
        settings,
        store,
        Box::new(signer),
        vec![ca.cert.clone()],
        pec_index::Index::default(),
        Clock::default(),
    ))
}

async fn queue_one(g: &Gestore<SqliteStore>, from: &str, rcpt: &[&str]) {
    g.store
        .commit(Commit {
            queue: vec![NewQueueEntry {
                mail_from: from.into(),
                rcpt_to: rcpt.iter().map(|r| r.to_string()).collect(),
                domain: "c.test".into(),
                bytes: b"Message-ID: <m1@a.test>\r\nSubject: queued\r\n\r\nbody\r\n".to_vec(),
                not_before: g.clock.unix(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if ok().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_outlasting_its_lease_is_not_started_twice() {
    let dir = tempfile::tempdir().unwrap();
    let g = gestore(dir.path()).await;
    queue_one(&g, "x@a.test", &["ok1@c.test"]).await;
    let gate = Arc::new(Notify::new());
    let t = Arc::new(Scripted {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    tokio::spawn(run(g.clone(), t.clone()));
    until("the first attempt", async || {
        t.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    // The lease runs out while the peer still has not answered; the worker leases due
    // entries every half second.
    g.clock.advance(LEASE_SECS + 5);
    tokio::time::sleep(LEASE_EVERY * 4).await;
    assert_eq!(
        t.calls.load(Ordering::SeqCst),
        1,
        "a second attempt started"
    );
    gate.notify_one();
    until("the entry to finish", async || {
        g.store.queue_len().await.unwrap() == 0
    })
    .await;
    assert_eq!(t.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_attempt_commits_its_delivery_bounce_and_retry_together() {
    let dir = tempfile::tempdir().unwrap();
    let g = gestore(dir.path()).await;
    queue_one(
        &g,
        "x@z.test",
        &["ok1@c.test", "perm1@c.test", "later1@c.test"],
    )
    .await;
    let t = Arc::new(Scripted::default());
    tokio::spawn(run(g.clone(), t.clone()));
    until("the DSN's attempt", async || {
        t.seen.lock().unwrap().iter().any(|(d, _)| d == "z.test")
    })
    .await;
    let events = g.store.events(0, None, 100).await.unwrap();
    let kinds: Vec<pec_engine::Event> = events
        .iter()
        .map(|e| serde_json::from_str(&e.json).unwrap())
        .collect();
    let kinds: Vec<EventKind> = kinds.iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        [EventKind::Inoltro, EventKind::MancatoInoltro],
        "one commit: the delivery and the bounce"
    );
    // The entry waits with the one recipient still to reach; the DSN went to the sender.
    let seen = t.seen.lock().unwrap().clone();
    assert_eq!(seen[0].1.len(), 3);
    assert!(
        seen.iter()
            .any(|(d, r)| d == "z.test" && r == &["x@z.test".to_string()])
    );
    g.clock.advance(20);
    until("the retry", async || {
        t.seen
            .lock()
            .unwrap()
            .iter()
            .any(|(d, r)| d == "c.test" && r == &["later1@c.test".to_string()])
    })
    .await;
}
