//! The filter clients against the real daemons (issue "Security filters", points 1, 4, 5):
//! clamd with the offline EICAR database, c-icap with virus_scan in front of it, rspamd
//! with GTUBE. Everything runs on 127.0.0.20.

#![allow(clippy::unwrap_used)]

mod daemons;

use base64::Engine as _;
use daemons::*;
use pec_filters::clamd::Clamd;
use pec_filters::icap::Icap;
use pec_filters::rspamd::{Envelope, Rspamd};
use pec_filters::{Engine, FilterError, ScanChain, Verdict};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// A message with `attachment` as a base64 part, as mail carries files.
fn message_with(attachment: &[u8], name: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    format!(
        "From: mario@a.test\r\nTo: anna@b.test\r\nSubject: allegato\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n\
         in allegato\r\n--x\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--x--\r\n"
    )
    .into_bytes()
}

fn clean_message(size: usize) -> Vec<u8> {
    let mut m = b"From: mario@a.test\r\nTo: anna@b.test\r\nSubject: prova\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(b"Testo di prova di una comunicazione certificata.\r\n");
    }
    m
}

fn infected(v: &Verdict, engine: &str, threat_part: &str) -> bool {
    matches!(v, Verdict::Infected { engine: e, threat } if e == engine && threat.contains(threat_part))
}

#[tokio::test(flavor = "multi_thread")]
async fn antivirus_engines_and_the_chain() {
    let root = tempfile::tempdir().unwrap();
    let clam_dir = root.path().join("clam");
    let mut clam = clamd(&clam_dir);
    let icap_daemon = c_icap(&root.path().join("cicap"), &clam_dir);

    // clamd over TCP and over its Unix socket.
    let tcp = Clamd::new(&format!("{IP}:{CLAMD_PORT}"), LIMIT).unwrap();
    let unix = Clamd::new(
        &format!("unix:{}", clam_dir.join("clamd.sock").display()),
        LIMIT,
    )
    .unwrap();
    tcp.ping().await.unwrap();
    unix.ping().await.unwrap();
    let v = tcp.scan(EICAR).await.unwrap();
    assert!(infected(&v, "clamd", "Eicar"), "{v:?}");
    let v = unix.scan(&message_with(EICAR, "eicar.com")).await.unwrap();
    assert!(
        infected(&v, "clamd", "Eicar"),
        "EICAR as a base64 attachment: {v:?}"
    );
    assert_eq!(
        tcp.scan(&clean_message(300_000)).await.unwrap(),
        Verdict::Clean
    );

    // A new signature takes effect after RELOAD, without a restart.
    let novel = b"PEC-TEST-NEW-SIGNATURE-0042-UNIQUE-STRING";
    assert_eq!(tcp.scan(novel).await.unwrap(), Verdict::Clean);
    let hex: String = novel.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        clam_dir.join("db/new.ndb"),
        format!("Pec-New-Signature:0:*:{hex}\n"),
    )
    .unwrap();
    tcp.reload().await.unwrap();
    let mut seen = Verdict::Clean;
    for _ in 0..100 {
        seen = tcp.scan(novel).await.unwrap();
        if seen != Verdict::Clean {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(infected(&seen, "clamd", "Pec-New-Signature"), "{seen:?}");

    // ICAP RESPMOD through c-icap: preview from OPTIONS, 204 for clean mail, the threat
    // from X-Infection-Found for EICAR; a message larger than the preview goes through
    // 100 Continue.
    let icap = Icap::new(&format!("icap://{IP}:{ICAP_PORT}/avscan"), LIMIT).unwrap();
    let preview = icap.options().await.unwrap();
    assert!(preview.is_some(), "c-icap offers a preview");
    let v = icap.scan(&message_with(EICAR, "eicar.com")).await.unwrap();
    assert!(
        infected(&v, "icap", "Eicar"),
        "{v:?}\n{}",
        icap_daemon.log()
    );
    assert_eq!(
        icap.scan(&clean_message(200)).await.unwrap(),
        Verdict::Clean
    );
    assert_eq!(
        icap.scan(&clean_message(200_000)).await.unwrap(),
        Verdict::Clean
    );
    let mut big_infected = clean_message(200_000);
    big_infected.extend_from_slice(&message_with(EICAR, "late.com"));
    let v = icap.scan(&big_infected).await.unwrap();
    assert!(
        infected(&v, "icap", "Eicar"),
        "EICAR past the preview: {v:?}"
    );

    // The chain: clamd first, then ICAP; the first finding names its engine.
    let chain = ScanChain {
        engines: vec![
            Engine::Clamd(tcp.clone()),
            Engine::Icap(Icap::new(&format!("icap://{IP}:{ICAP_PORT}/avscan"), LIMIT).unwrap()),
        ],
    };
    let v = chain.scan(&message_with(EICAR, "eicar.com")).await.unwrap();
    assert!(infected(&v, "clamd", "Eicar"), "{v:?}");
    assert_eq!(
        chain.scan(&clean_message(1000)).await.unwrap(),
        Verdict::Clean
    );
    assert!(chain.health().await.iter().all(|(_, h)| h.is_ok()));

    // clamd stopped: the scan fails as unavailable, never as clean.
    clam.stop();
    let e = chain.scan(&clean_message(1000)).await.unwrap_err();
    assert!(
        matches!(&e, FilterError::Unavailable { engine, .. } if engine == "clamd"),
        "{e}"
    );
    let health = chain.health().await;
    assert!(health[0].1.is_err(), "{health:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rspamd_tells_gtube_from_clean_mail() {
    let root = tempfile::tempdir().unwrap();
    let daemon = rspamd(root.path());
    let r = Rspamd::new(&format!("http://{IP}:{RSPAMD_PORT}"), LIMIT).unwrap();
    let mut ready = Err(FilterError::Unavailable {
        engine: "rspamd".into(),
        reason: "not asked".into(),
    });
    for _ in 0..100 {
        ready = r.ping().await;
        if ready.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ready.unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()));
    // A local client: this machine is offline, and the DNS and RBL checks rspamd runs for
    // remote ones would fail and add score.
    let env = Envelope {
        ip: Some("127.0.0.1".into()),
        helo: Some("mx.example.org".into()),
        from: Some("a@example.org".into()),
        rcpt: vec!["anna@b.test".into()],
        user: None,
    };
    let spam = format!(
        "From: a@example.org\r\nTo: anna@b.test\r\nSubject: offerta\r\nMessage-ID: <g@example.org>\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n\r\n{GTUBE}\r\n"
    );
    let v = r.check(spam.as_bytes(), &env).await.unwrap();
    assert!(v.is_spam(), "{v:?}");
    assert!(v.symbols.iter().any(|s| s == "GTUBE"), "{v:?}");
    let ham = "From: a@example.org\r\nTo: anna@b.test\r\nSubject: riunione\r\n\
               Message-ID: <h@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\n\r\n\
               Ci vediamo domani alle 10 per la riunione.\r\n";
    let v = r.check(ham.as_bytes(), &env).await.unwrap();
    assert!(!v.is_spam(), "{v:?}");
}

#[tokio::test]
async fn unreachable_engines_are_errors() {
    // Nothing listens on this port.
    let c = Clamd::new("127.0.0.20:1", Duration::from_secs(2)).unwrap();
    let e = c.scan(EICAR).await.unwrap_err();
    assert!(matches!(e, FilterError::Unavailable { .. }), "{e}");
    let i = Icap::new("icap://127.0.0.20:1/avscan", Duration::from_secs(2)).unwrap();
    assert!(matches!(
        i.scan(b"x").await.unwrap_err(),
        FilterError::Unavailable { .. }
    ));
    let r = Rspamd::new("http://127.0.0.20:1", Duration::from_secs(2)).unwrap();
    assert!(matches!(
        r.check(b"x", &Envelope::default()).await.unwrap_err(),
        FilterError::Unavailable { .. }
    ));
}
