//! The security filters end to end (issue "Security filters", point 5), with the real
//! engines started by the test (../shared/design/components.md §1-3): clamd with an offline
//! EICAR database, c-icap with virus_scan in front of it, rspamd with GTUBE.
//!
//! Gestore B (127.0.0.22) scans with clamd, then ICAP, and checks with rspamd; gestore A
//! (127.0.0.21) has no filters, so it relays what B must catch. One test, in phases, since
//! the phases share the daemons and one of them stops clamd.

#![allow(clippy::unwrap_used)]

#[path = "../../pec-filters/tests/daemons/mod.rs"]
mod daemons;
mod gestori;

use gestori::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IP_A: &str = "127.0.0.21";
const IP_B: &str = "127.0.0.22";

fn eicar_attachment() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(daemons::EICAR)
}

fn mail(from: &str, to: &str, subject: &str, body: &str, attachment: Option<&str>) -> Vec<u8> {
    let id = subject.replace(' ', "-");
    let mut m = format!(
        "From: <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@client.example>\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n"
    );
    if let Some(b64) = attachment {
        m.push_str(&format!(
            "--b1\r\nContent-Type: application/octet-stream; name=\"fattura.com\"\r\n\
             Content-Disposition: attachment; filename=\"fattura.com\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
        ));
    }
    m.push_str("--b1--\r\n");
    m.into_bytes()
}

fn raw(g: &Gestore, address: &str, m: &Value) -> Vec<u8> {
    let o = run(&[
        "admin",
        "--data",
        g.data(),
        "message",
        address,
        &m["uid"].to_string(),
        "--folder",
        m["folder"].as_str().unwrap(),
    ]);
    assert!(o.status.success());
    o.stdout
}

fn admin_json(g: &Gestore, args: &[&str]) -> Value {
    let mut a = vec!["admin", "--data", g.data()];
    a.extend_from_slice(args);
    serde_json::from_str(&run_ok(&a)).unwrap()
}

/// An IMAPS session of `user` that stays logged in until the server closes it.
fn imap_session(g: &Gestore, user: &str) -> std::process::Child {
    let script = format!(
        "import imaplib, ssl, sys, time\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         c = imaplib.IMAP4_SSL({ip:?}, 9930, ssl_context=ctx)\n\
         c.login({user:?}, {pw:?})\n\
         print('LOGGED IN', flush=True)\n\
         try:\n\
         \x20   for _ in range(600):\n\
         \x20       c.noop(); time.sleep(0.2)\n\
         \x20   print('STILL OPEN', flush=True)\n\
         except Exception as e:\n\
         \x20   print('CLOSED', type(e).__name__, flush=True)\n",
        ca = g.ca().display().to_string(),
        ip = g.ip,
        user = user,
        pw = PASSWORD,
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "LOGGED IN", "the IMAP session did not log in");
    child
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let mut rest = String::new();
            use std::io::Read as _;
            child
                .stdout
                .as_mut()
                .unwrap()
                .read_to_string(&mut rest)
                .unwrap();
            return rest;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the IMAP session of a locked mailbox was not ended");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn viruses_spam_lockout_and_engine_failures_with_real_engines() {
    require("curl");
    require("python3");
    let root = tempfile::tempdir().unwrap();
    let mut clamd = daemons::clamd(&root.path().join("clamd"));
    let _icap = daemons::c_icap(&root.path().join("c-icap"), &root.path().join("clamd"));
    let _rspamd = daemons::rspamd(&root.path().join("rspamd"));
    let sink = Sink::start();
    let scan = [
        "--clamd",
        &format!("{}:{}", daemons::IP, daemons::CLAMD_PORT),
        "--icap",
        &format!("icap://{}:{}/avscan", daemons::IP, daemons::ICAP_PORT),
        "--rspamd",
        &format!("http://{}:{}", daemons::IP, daemons::RSPAMD_PORT),
    ]
    .map(String::from);
    let scan: Vec<&str> = scan.iter().map(String::as_str).collect();
    let mut a = Gestore::init(
        root.path(),
        "fa.test",
        "Gestore A",
        IP_A,
        &[format!("fb.test={IP_B}:2525")],
    );
    let mut b = Gestore::init_with(
        root.path(),
        "fb.test",
        "Gestore B",
        IP_B,
        &[
            format!("fa.test={IP_A}:2525"),
            format!("ext.test=127.0.0.1:{}", sink.port),
        ],
        &scan,
    );
    a.peer(&b);
    b.peer(&a);
    a.start();
    b.start();
    a.add_mailbox("mario@fa.test", &[]);
    b.add_mailbox("anna@fb.test", &[]);
    b.add_mailbox("carla@fb.test", &["--spam", "delete"]);
    b.add_mailbox("luca@fb.test", &["--contact", "owner@ext.test"]);

    // 1. EICAR submitted by a user of B: non-accettazione per virus, the message kept in
    //    the virus store, nothing relayed.
    let infected = mail(
        "anna@fb.test",
        "mario@fa.test",
        "fattura virus",
        "In allegato la fattura.",
        Some(&eicar_attachment()),
    );
    let (ok, transcript) = submit_as(&b, "anna@fb.test", PASSWORD, &["mario@fa.test"], &infected);
    assert!(ok, "{transcript}");
    assert!(transcript.contains("non accettato"), "{transcript}");
    let inbox = b.wait_for("anna@fb.test", "the non-accettazione", |m| {
        count(m, "non-accettazione") == 1
    });
    let notice = raw(&b, "anna@fb.test", &inbox[0]);
    assert_eq!(
        header(&notice, "X-VerificaSicurezza").as_deref(),
        Some("errore"),
        "a non-accettazione per virus"
    );
    let q = admin_json(&b, &["quarantine", "--json"]);
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["engine"], "clamd");
    assert_eq!(q[0]["sender"], "anna@fb.test");
    assert!(q[0]["threat"].as_str().unwrap().contains("Eicar"), "{q:?}");
    let listing = run_ok(&["admin", "--data", b.data(), "quarantine"]);
    assert!(listing.contains("Eicar"), "{listing}");

    // 2. EICAR inside an envelope from gestore A: B sends a rilevazione-virus to A, and A
    //    an errore-consegna per virus to its sender. Nothing reaches the recipient.
    let infected = mail(
        "mario@fa.test",
        "anna@fb.test",
        "contratto virus",
        "Il contratto firmato.",
        Some(&eicar_attachment()),
    );
    assert!(submit(&a, "mario@fa.test", &["anna@fb.test"], &infected));
    let inbox = a.wait_for("mario@fa.test", "the errore-consegna per virus", |m| {
        count(m, "errore-consegna") == 1
    });
    let failure = inbox
        .iter()
        .find(|m| m["kind"] == "errore-consegna")
        .unwrap();
    let failure = raw(&a, "mario@fa.test", failure);
    assert_eq!(
        header(&failure, "X-VerificaSicurezza").as_deref(),
        Some("errore"),
        "an errore-consegna per virus"
    );
    assert!(
        b.all_messages("anna@fb.test")
            .iter()
            .all(|m| m["subject"].as_str() != Some("contratto virus")),
        "the infected envelope was delivered"
    );
    let service = a.all_messages("posta-certificata@fa.test");
    assert_eq!(count(&service, "rilevazione-virus"), 1, "{service:#?}");
    assert_eq!(
        admin_json(&b, &["quarantine", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // 3. GTUBE in ordinary mail from outside: Junk for anna, deleted for carla (their
    //    settings). In a PEC message, never moved: both get it in INBOX.
    let spam = mail(
        "offerte@ext.test",
        "anna@fb.test",
        "offerta imperdibile",
        daemons::GTUBE,
        None,
    );
    let (ok, err) = send_plain(
        IP_B,
        2525,
        "offerte@ext.test",
        &["anna@fb.test", "carla@fb.test"],
        &spam,
        root.path(),
    );
    assert!(ok, "{err}");
    let anna = b.all_messages("anna@fb.test");
    let junk: Vec<_> = anna
        .iter()
        .filter(|m| m["folder"] == "Junk" && m["kind"] == "anomalia")
        .collect();
    assert_eq!(junk.len(), 1, "{anna:#?}");
    assert!(
        b.all_messages("carla@fb.test").is_empty(),
        "deleted for carla"
    );
    let spam_log: Vec<Value> = b
        .log(None)
        .into_iter()
        .filter(|e| e["event"] == "spam")
        .collect();
    assert!(
        spam_log.iter().any(|e| e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("deleted for carla")),
        "{spam_log:#?}"
    );
    let pec_spam = mail(
        "mario@fa.test",
        "anna@fb.test, carla@fb.test",
        "pec con gtube",
        daemons::GTUBE,
        None,
    );
    assert!(submit(
        &a,
        "mario@fa.test",
        &["anna@fb.test", "carla@fb.test"],
        &pec_spam
    ));
    for who in ["anna@fb.test", "carla@fb.test"] {
        b.wait_for(who, "the PEC with GTUBE in INBOX", |m| {
            !with_subject(m, "posta-certificata", "POSTA CERTIFICATA: pec con gtube").is_empty()
        });
    }

    // 4. Eleven spam submissions within the hour: the mailbox is locked, every session
    //    ends, the reset link reaches the contact address, and the reset unlocks it.
    let mut watcher = imap_session(&b, "luca@fb.test");
    for i in 1..=11 {
        let m = mail(
            "luca@fb.test",
            "anna@fb.test",
            &format!("promo {i}"),
            daemons::GTUBE,
            None,
        );
        let (_, transcript) = submit_as(&b, "luca@fb.test", PASSWORD, &["anna@fb.test"], &m);
        assert!(
            transcript.contains("< 250 2.0.0 Ok: accettato"),
            "spam submission {i} not certified: {transcript}"
        );
    }
    let ended = wait_exit(&mut watcher, Duration::from_secs(15));
    assert!(ended.contains("CLOSED"), "{ended}");
    let (ok, transcript) = submit_as(
        &b,
        "luca@fb.test",
        PASSWORD,
        &["anna@fb.test"],
        &mail(
            "luca@fb.test",
            "anna@fb.test",
            "dopo il blocco",
            "ciao",
            None,
        ),
    );
    assert!(!ok && transcript.contains("< 535"), "{transcript}");
    let boxes = admin_json(&b, &["mailbox", "list", "--json"]);
    let luca = boxes
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "luca@fb.test")
        .unwrap();
    assert_eq!(luca["locked"], true);
    let deadline = Instant::now() + Duration::from_secs(60);
    let reset_mail = loop {
        let got = sink.received.lock().unwrap().clone();
        if let Some((_, m)) = got
            .iter()
            .find(|(r, _)| r.iter().any(|r| r == "owner@ext.test"))
        {
            break String::from_utf8_lossy(m).to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no reset mail reached the contact"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let at = reset_mail.find("token=").unwrap() + 6;
    let token = &reset_mail[at..at + 64];
    assert!(token.bytes().all(|c| c.is_ascii_hexdigit()), "{reset_mail}");
    let https = |args: &[&str]| {
        let o = Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                b.ca().to_str().unwrap(),
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let url = format!("https://{IP_B}:8443/reset");
    let page = https(&[&format!("{url}?token={token}")]);
    assert!(
        page.ends_with("\n200") && page.contains("name=\"password\""),
        "{page}"
    );
    let post = |pw: &str, confirm: &str| {
        https(&[
            &url,
            "--data-urlencode",
            &format!("token={token}"),
            "--data-urlencode",
            &format!("password={pw}"),
            "--data-urlencode",
            &format!("confirm={confirm}"),
        ])
    };
    let differ = post(PASSWORD, "something-else");
    assert!(differ.ends_with("\n400"), "{differ}");
    let done = post(PASSWORD, PASSWORD);
    assert!(
        done.ends_with("\n200") && done.contains("unlocked"),
        "{done}"
    );
    let again = post(PASSWORD, PASSWORD);
    assert!(again.ends_with("\n400"), "a reset link works once: {again}");
    assert!(submit(
        &b,
        "luca@fb.test",
        &["anna@fb.test"],
        &mail("luca@fb.test", "anna@fb.test", "sbloccato", "ciao", None)
    ));

    // 5. A new signature takes effect without a restart (clamd RELOAD).
    let marker = "PEC-PROVA-NUOVA-FIRMA-2026";
    let hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        root.path().join("clamd/db/nuova.ndb"),
        format!("Pec-Test-New-Signature:0:*:{hex}\n"),
    )
    .unwrap();
    let reloaded = run_ok(&["admin", "--data", b.data(), "scanners", "reload"]);
    assert!(reloaded.contains("clamd"), "{reloaded}");
    let mut refused = false;
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        let (ok, transcript) = submit_as(
            &b,
            "anna@fb.test",
            PASSWORD,
            &["mario@fa.test"],
            &mail(
                "anna@fb.test",
                "mario@fa.test",
                &format!("firma {i}"),
                marker,
                None,
            ),
        );
        assert!(ok, "{transcript}");
        if transcript.contains("non accettato") {
            refused = true;
            break;
        }
    }
    assert!(refused, "the reloaded signature never matched");

    // 6. clamd stopped: submissions and envelopes get a 4xx, nothing is lost, and mail
    //    flows again once it is back.
    clamd.stop();
    let later = mail(
        "anna@fb.test",
        "mario@fa.test",
        "durante il guasto",
        "ciao",
        None,
    );
    let (ok, transcript) = submit_as(&b, "anna@fb.test", PASSWORD, &["mario@fa.test"], &later);
    assert!(!ok, "{transcript}");
    assert!(transcript.contains("< 451 4.7.1"), "{transcript}");
    let envelope = mail(
        "mario@fa.test",
        "anna@fb.test",
        "busta durante il guasto",
        "ciao",
        None,
    );
    assert!(submit(&a, "mario@fa.test", &["anna@fb.test"], &envelope));
    // A's relay meets B's 451 and keeps the envelope in its queue.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.server_log().contains("4.7.1") {
        assert!(
            Instant::now() < deadline,
            "A never met the 4xx:\n{}",
            a.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = run_ok(&["admin", "--data", b.data(), "metrics"]);
    assert!(
        metrics.contains("pec_filter_up{engine=\"clamd\"} 0"),
        "{metrics}"
    );
    clamd = daemons::clamd(&root.path().join("clamd"));
    a.advance("60s");
    b.wait_for("anna@fb.test", "the envelope held back by the 4xx", |m| {
        !with_subject(
            m,
            "posta-certificata",
            "POSTA CERTIFICATA: busta durante il guasto",
        )
        .is_empty()
    });
    a.wait_for("mario@fa.test", "its delivery receipt", |m| {
        !with_subject(m, "avvenuta-consegna", "CONSEGNA: busta durante il guasto").is_empty()
    });
    assert!(submit(&b, "anna@fb.test", &["mario@fa.test"], &later));

    // Metrics: health and verdict counts per engine.
    let metrics = run_ok(&["admin", "--data", b.data(), "metrics"]);
    for line in [
        "pec_filter_up{engine=\"clamd\"} 1",
        "pec_filter_up{engine=\"icap\"} 1",
        "pec_filter_up{engine=\"rspamd\"} 1",
        "pec_mailbox_lockouts_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    for (engine, outcome) in [
        ("clamd", "infected"),
        ("clamd", "clean"),
        ("clamd", "error"),
        ("icap", "clean"),
        ("rspamd", "spam"),
        ("rspamd", "ham"),
    ] {
        let prefix =
            format!("pec_filter_verdicts_total{{engine=\"{engine}\",outcome=\"{outcome}\"}} ");
        assert!(metrics.contains(&prefix), "{prefix} missing:\n{metrics}");
    }
    drop(clamd);
}
