//! End-to-end: two gestori as real processes on loopback exchange certified mail over SMTP
//! (issue "Gestore core" point 6). Each test uses its own loopback addresses.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::*;
use serde_json::Value;

fn tools() {
    require("curl");
    require("openssl");
}

fn pair(
    root: &std::path::Path,
    ip_a: &str,
    ip_b: &str,
    a: &str,
    b: &str,
    extra_a: &[String],
) -> (Gestore, Gestore) {
    let mut routes_a = vec![format!("{b}={ip_b}:2525")];
    routes_a.extend_from_slice(extra_a);
    let ga = Gestore::init(root, a, "Gestore A", ip_a, &routes_a);
    let gb = Gestore::init(root, b, "Gestore B", ip_b, &[format!("{a}={ip_a}:2525")]);
    ga.peer(&gb);
    gb.peer(&ga);
    (ga, gb)
}

fn original(subject: &str, to: &str, cc: Option<&str>, extra: &str) -> Vec<u8> {
    let cc = cc.map(|c| format!("Cc: {c}\r\n")).unwrap_or_default();
    format!(
        "From: Mario Rossi <mario@a.test>\r\nTo: {to}\r\n{cc}Subject: {subject}\r\nMessage-ID: <{}@client.example>\r\n{extra}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nIn allegato il contratto.\r\n--b1\r\nContent-Type: application/pdf; name=\"contratto.pdf\"\r\nContent-Disposition: attachment; filename=\"contratto.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n--b1--\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

#[test]
fn two_gestori_exchange_certified_mail_with_every_receipt() {
    tools();
    let root = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let (mut a, mut b) = pair(
        root.path(),
        "127.0.0.2",
        "127.0.0.3",
        "a.test",
        "b.test",
        &[format!("ext.test=127.0.0.1:{}", sink.port)],
    );
    a.start();
    b.start();
    a.add_mailbox("mario@a.test", &[]);
    a.add_mailbox("luca@a.test", &[]);
    b.add_mailbox("anna@b.test", &[]);
    b.add_mailbox("carla@b.test", &[]);
    b.add_mailbox("dario@b.test", &["--ordinary-mail", "refuse"]);
    b.add_mailbox("elena@b.test", &[]);

    // One PEC: To anna@b.test and luca@a.test, Cc carla@b.test, plus an external address.
    let msg = original(
        "Contratto firmato",
        "anna@b.test, luca@a.test, x@ext.test",
        Some("carla@b.test"),
        "",
    );
    assert!(submit(
        &a,
        "mario@a.test",
        &["anna@b.test", "luca@a.test", "x@ext.test", "carla@b.test"],
        &msg
    ));
    let subject_receipt = "CONSEGNA: Contratto firmato";
    let mario = a.wait_for("mario@a.test", "acceptance and 3 delivery receipts", |m| {
        count(m, "accettazione") == 1
            && with_subject(m, "avvenuta-consegna", subject_receipt).len() == 3
    });
    let identificativo = mario[0]["identificativo"].as_str().unwrap().to_string();
    let cas = [a.ca(), b.ca()];

    // Receipt kinds: completa for To, sintetica for Cc (pec.md §2.12).
    let mut kinds = Vec::new();
    for m in &mario {
        let raw = a.message("mario@a.test", m["uid"].as_u64().unwrap());
        assert!(
            openssl_verifies(&raw, &cas, root.path()),
            "OpenSSL rejects {}",
            m["kind"]
        );
        if m["kind"] == "avvenuta-consegna" {
            let report = verify_json(&raw, &a);
            assert_eq!(report["ok"], true, "{report}");
            let who = report["daticert"]["consegna"]
                .as_str()
                .unwrap()
                .split('@')
                .next()
                .unwrap()
                .to_string();
            kinds.push((
                who,
                report["receipt_type"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("anna".to_string(), "completa".to_string()),
            ("carla".to_string(), "sintetica".to_string()),
            ("luca".to_string(), "completa".to_string()),
        ]
    );

    // Recipients hold the envelope byte for byte as A sent it (the sink got the same bytes).
    let anna = b.wait_for("anna@b.test", "the envelope", |m| {
        count(m, "posta-certificata") == 1
    });
    let carla = b.wait_for("carla@b.test", "the envelope", |m| {
        count(m, "posta-certificata") == 1
    });
    let luca = a.wait_for("luca@a.test", "the envelope", |m| {
        count(m, "posta-certificata") == 1
    });
    let env_anna = b.message("anna@b.test", anna[0]["uid"].as_u64().unwrap());
    let env_carla = b.message("carla@b.test", carla[0]["uid"].as_u64().unwrap());
    let env_luca = a.message("luca@a.test", luca[0]["uid"].as_u64().unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sink.received.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sent = sink.received.lock().unwrap()[0].clone();
    assert_eq!(sent.0, vec!["x@ext.test".to_string()]);
    assert_eq!(env_anna, sent.1, "anna's envelope differs from what A sent");
    assert_eq!(env_carla, sent.1);
    assert_eq!(env_luca, sent.1);
    assert!(openssl_verifies(&env_anna, &cas, root.path()));
    assert_eq!(
        header(&env_anna, "X-Trasporto").as_deref(),
        Some("posta-certificata")
    );
    assert_eq!(
        header(&env_anna, "Message-ID"),
        Some(format!("<{identificativo}>"))
    );

    // A's service mailbox holds B's presa in carico (and its own, for luca).
    let service = a.wait_for("posta-certificata@a.test", "presa in carico", |m| {
        count(m, "presa-in-carico") == 2
    });
    for m in &service {
        let raw = a.message("posta-certificata@a.test", m["uid"].as_u64().unwrap());
        assert!(openssl_verifies(&raw, &cas, root.path()));
    }

    // The logs hold every event of the transaction.
    let log_a: Vec<String> = a
        .log(Some(&identificativo))
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for ev in [
        "accettazione",
        "busta-trasporto",
        "inoltro",
        "ricevuta-ricevuta",
        "presa-in-carico",
        "avvenuta-consegna",
    ] {
        assert!(
            log_a.contains(&ev.to_string()),
            "A's log lacks {ev}: {log_a:?}"
        );
    }
    let log_b: Vec<Value> = b.log(Some(&identificativo));
    let evs: Vec<&str> = log_b.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        evs.iter().filter(|e| **e == "presa-in-carico").count(),
        1,
        "{evs:?}"
    );
    assert_eq!(
        evs.iter().filter(|e| **e == "avvenuta-consegna").count(),
        2,
        "{evs:?}"
    );
    for e in &log_b {
        assert_eq!(e["sender"], "mario@a.test");
        assert!(e["time"].as_str().is_some() && e["provider"].as_str().is_some());
    }

    // The same envelope twice at once, as a retry overlapping the first attempt: one copy,
    // one presa in carico and one delivery receipt for the new recipient (pec.md §5.9).
    let sends: Vec<_> = (0..2)
        .map(|_| {
            let env = env_anna.clone();
            let dir = root.path().to_path_buf();
            std::thread::spawn(move || {
                send_plain(
                    "127.0.0.3",
                    2525,
                    "mario@a.test",
                    &["elena@b.test"],
                    &env,
                    &dir,
                )
            })
        })
        .collect();
    for s in sends {
        let (ok, err) = s.join().unwrap();
        assert!(ok, "{err}");
    }
    let evs: Vec<String> = b
        .log(Some(&identificativo))
        .iter()
        .filter(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("elena@b.test"))
        })
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for ev in ["presa-in-carico", "avvenuta-consegna"] {
        assert_eq!(evs.iter().filter(|e| *e == ev).count(), 1, "{evs:?}");
    }
    assert_eq!(count(&b.messages("elena@b.test"), "posta-certificata"), 1);

    // X-TipoRicevuta: breve.
    let msg = original(
        "Ricevuta breve",
        "anna@b.test",
        None,
        "X-TipoRicevuta: breve\r\n",
    );
    assert!(submit(&a, "mario@a.test", &["anna@b.test"], &msg));
    let mario = a.wait_for("mario@a.test", "the breve receipt", |m| {
        with_subject(m, "avvenuta-consegna", "CONSEGNA: Ricevuta breve").len() == 1
    });
    let r = with_subject(&mario, "avvenuta-consegna", "CONSEGNA: Ricevuta breve")[0];
    let raw = a.message("mario@a.test", r["uid"].as_u64().unwrap());
    assert_eq!(receipt_type(&raw, &a), "breve");
    assert!(String::from_utf8_lossy(&raw).contains("contratto.pdf.hash"));

    // Ordinary mail from outside: anomaly for anna, refusal for dario (mailbox policy).
    let plain = b"From: someone@ext.test\r\nTo: anna@b.test\r\nSubject: Posta ordinaria\r\nMessage-ID: <ord1@ext.test>\r\n\r\nciao\r\n";
    let (ok, _) = send_plain(
        "127.0.0.3",
        2525,
        "someone@ext.test",
        &["anna@b.test"],
        plain,
        root.path(),
    );
    assert!(ok);
    b.wait_for("anna@b.test", "the anomaly envelope", |m| {
        count(m, "anomalia") == 1
    });
    let plain = b"From: someone@ext.test\r\nTo: dario@b.test\r\nSubject: Posta ordinaria\r\nMessage-ID: <ord2@ext.test>\r\n\r\nciao\r\n";
    let (ok, err) = send_plain(
        "127.0.0.3",
        2525,
        "someone@ext.test",
        &["dario@b.test"],
        plain,
        root.path(),
    );
    assert!(!ok, "ordinary mail to a refusing mailbox was accepted");
    assert!(err.contains("< 550 5.7.1"), "{err}");
    assert!(b.messages("dario@b.test").is_empty());

    // Taken for one mailbox and not for another: the transaction is accepted and the other
    // recipient goes back to the sender in a DSN (pec.md §1.3 PC step 5), here through A's
    // route for ext.test to the sink.
    let plain = b"From: someone@ext.test\r\nTo: luca@a.test, nobody@a.test\r\nSubject: Posta ordinaria\r\nMessage-ID: <ord3@ext.test>\r\n\r\nciao\r\n";
    let (ok, err) = send_plain(
        "127.0.0.2",
        2525,
        "someone@ext.test",
        &["luca@a.test", "nobody@a.test"],
        plain,
        root.path(),
    );
    assert!(ok, "{err}");
    a.wait_for("luca@a.test", "the anomaly envelope", |m| {
        count(m, "anomalia") == 1
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let dsn = loop {
        let found = sink
            .received
            .lock()
            .unwrap()
            .iter()
            .find(|(rcpts, _)| rcpts == &["someone@ext.test".to_string()])
            .cloned();
        if let Some(d) = found {
            break d.1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no DSN reached the sender"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let dsn = String::from_utf8_lossy(&dsn);
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@a.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        !dsn.contains("Final-Recipient: rfc822; luca@a.test"),
        "{dsn}"
    );

    // Bcc: non-accettazione, nothing relayed.
    let bcc = b"From: mario@a.test\r\nTo: anna@b.test\r\nBcc: carla@b.test\r\nSubject: Con Bcc\r\n\r\nx\r\n";
    assert!(submit(
        &a,
        "mario@a.test",
        &["anna@b.test", "carla@b.test"],
        bcc
    ));
    a.wait_for("mario@a.test", "the non-accettazione", |m| {
        count(m, "non-accettazione") == 1
    });

    // More recipients than the limit (100) is a formal check: the submission port takes
    // every RCPT and the access point answers with a non-accettazione (pec.md §5.1).
    let many: Vec<String> = (0..101).map(|i| format!("r{i}@b.test")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let msg = format!(
        "From: mario@a.test\r\nTo: {}\r\nSubject: Troppi destinatari\r\n\r\nx\r\n",
        many.join(", ")
    );
    assert!(submit(&a, "mario@a.test", &refs, msg.as_bytes()));
    a.wait_for("mario@a.test", "the non-accettazione", |m| {
        count(m, "non-accettazione") == 2
    });

    // Unknown recipient at B: errore-consegna no-dest.
    let msg = original("Destinatario ignoto", "nessuno@b.test", None, "");
    assert!(submit(&a, "mario@a.test", &["nessuno@b.test"], &msg));
    let mario = a.wait_for("mario@a.test", "errore-consegna", |m| {
        count(m, "errore-consegna") == 1
    });
    let e = mario
        .iter()
        .find(|m| m["kind"] == "errore-consegna")
        .unwrap();
    let raw = a.message("mario@a.test", e["uid"].as_u64().unwrap());
    let report = verify_json(&raw, &a);
    assert_eq!(report["daticert"]["errore"], "no-dest", "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        count(&b.messages("anna@b.test"), "posta-certificata"),
        2,
        "the Bcc message was relayed"
    );

    // The same envelope again, as a sender whose 250 was lost sends it (pec.md §5.9): one
    // recipient holds its copy, the other was unknown. Accepted, and nothing more happens:
    // no second copy, presa in carico or errore-consegna.
    let msg = original("Ripetuto", "anna@b.test", Some("nessuno2@b.test"), "");
    assert!(submit(
        &a,
        "mario@a.test",
        &["anna@b.test", "nessuno2@b.test"],
        &msg
    ));
    a.wait_for("mario@a.test", "the second errore-consegna", |m| {
        count(m, "errore-consegna") == 2
    });
    let anna = b.wait_for("anna@b.test", "the envelope", |m| {
        with_subject(m, "posta-certificata", "POSTA CERTIFICATA: Ripetuto").len() == 1
    });
    let envelope = b.message(
        "anna@b.test",
        with_subject(&anna, "posta-certificata", "POSTA CERTIFICATA: Ripetuto")[0]["uid"]
            .as_u64()
            .unwrap(),
    );
    let presa = |a: &Gestore| count(&a.messages("posta-certificata@a.test"), "presa-in-carico");
    let before = presa(&a);
    let (ok, err) = send_plain(
        "127.0.0.3",
        2525,
        "mario@a.test",
        &["anna@b.test", "nessuno2@b.test"],
        &envelope,
        root.path(),
    );
    assert!(ok, "the replay was refused: {err}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(presa(&a), before, "a second presa in carico");
    assert_eq!(count(&a.messages("mario@a.test"), "errore-consegna"), 2);
    assert_eq!(
        with_subject(
            &b.messages("anna@b.test"),
            "posta-certificata",
            "POSTA CERTIFICATA: Ripetuto"
        )
        .len(),
        1
    );

    // The log verifies, and stops verifying once a byte changes.
    std::thread::sleep(std::time::Duration::from_millis(800));
    a.kill();
    b.kill();
    let o = run(&["log", "verify", "--grace", "0", "--data", a.data()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let log_dir = a.dir.join("log");
    let file = std::fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let original = std::fs::read(&file).unwrap();
    // The last entry cut off: the files still chain, the store shows the loss.
    let body = &original[..original.len() - 1];
    let cut = &original[..body.iter().rposition(|&b| b == b'\n').unwrap() + 1];
    std::fs::write(&file, cut).unwrap();
    let o = run(&["log", "verify", "--grace", "0", "--data", a.data()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("is not in the log files"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let mut bytes = original;
    let pos = bytes
        .windows(11)
        .position(|w| w == b"Gestore A\",")
        .unwrap();
    bytes[pos + 8] = b'B';
    std::fs::write(&file, bytes).unwrap();
    let o = run(&["log", "verify", "--data", a.data()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("altered"));
}

fn receipt_type(raw: &[u8], g: &Gestore) -> String {
    verify_json(raw, g)["receipt_type"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn unreachable_peer_gets_both_timeout_notices_and_a_dsn() {
    tools();
    let root = tempfile::tempdir().unwrap();
    let (mut a, _b) = pair(
        root.path(),
        "127.0.0.4",
        "127.0.0.5",
        "a4.test",
        "b5.test",
        &[],
    );
    a.start();
    a.add_mailbox("mario@a4.test", &[]);
    let msg = b"From: mario@a4.test\r\nTo: anna@b5.test\r\nSubject: Nessuna risposta\r\nMessage-ID: <late@client>\r\n\r\nx\r\n";
    assert!(submit(&a, "mario@a4.test", &["anna@b5.test"], msg));
    a.wait_for("mario@a4.test", "the acceptance", |m| {
        count(m, "accettazione") == 1
    });
    a.advance("11h");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        count(&a.messages("mario@a4.test"), "preavviso-errore-consegna"),
        0,
        "12h notice before 12h"
    );
    a.advance("61m");
    a.wait_for("mario@a4.test", "the 12h notice", |m| {
        count(m, "preavviso-errore-consegna") == 1
    });
    a.advance("10h");
    a.wait_for("mario@a4.test", "the 24h notice", |m| {
        count(m, "preavviso-errore-consegna") == 2
    });
    let log = a.log(None);
    let details: Vec<&str> = log
        .iter()
        .filter(|e| e["event"] == "preavviso-errore-consegna")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        details.iter().any(|d| d.starts_with("12h"))
            && details.iter().any(|d| d.starts_with("24h")),
        "{details:?}"
    );
    for m in a
        .messages("mario@a4.test")
        .iter()
        .filter(|m| m["kind"] == "preavviso-errore-consegna")
    {
        let raw = a.message("mario@a4.test", m["uid"].as_u64().unwrap());
        assert!(openssl_verifies(&raw, &[a.ca()], root.path()));
    }
    // Past 24 hours the queue gives up and the DSN reaches the sender (as an anomaly: a DSN
    // is ordinary mail, pec.md §2.14).
    a.advance("3h");
    a.wait_for("mario@a4.test", "the DSN", |m| count(m, "anomalia") == 1);
    assert!(a.log(None).iter().any(|e| e["event"] == "mancato-inoltro"));
    assert_eq!(
        count(&a.messages("mario@a4.test"), "preavviso-errore-consegna"),
        2,
        "no third notice"
    );
    // The clock crossed midnight: the finished day is sealed with the provider's signature.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    a.kill();
    let o = run(&["log", "verify", "--json", "--data", a.data()]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success(), "{report}");
    assert!(report["sealed_days"].as_u64().unwrap() >= 1, "{report}");
}

#[test]
fn a_crash_during_a_burst_loses_nothing_and_duplicates_nothing() {
    tools();
    let root = tempfile::tempdir().unwrap();
    let (mut a, mut b) = pair(
        root.path(),
        "127.0.0.6",
        "127.0.0.7",
        "a6.test",
        "b7.test",
        &[],
    );
    a.start();
    b.start();
    a.add_mailbox("mario@a6.test", &[]);
    b.add_mailbox("anna@b7.test", &[]);
    let total = 200;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let a_dir = a.dir.clone();
    let a_shadow = Gestore::shadow(&a_dir, "127.0.0.6", "a6.test");
    std::thread::scope(|s| {
        for t in 0..4 {
            let accepted = accepted.clone();
            let g = &a_shadow;
            s.spawn(move || {
                for i in (t..total).step_by(4) {
                    let msg = format!(
                        "From: mario@a6.test\r\nTo: anna@b7.test\r\nSubject: Burst {i}\r\nMessage-ID: <burst{i}@client>\r\n\r\nmessaggio {i}\r\n"
                    );
                    if submit(g, "mario@a6.test", &["anna@b7.test"], msg.as_bytes()) {
                        accepted.lock().unwrap().push(i);
                    }
                }
            });
        }
        // Kill A once a good part of the burst is in.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while accepted.lock().unwrap().len() < 60 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        a.kill();
        std::thread::sleep(std::time::Duration::from_millis(500));
        a.start();
    });
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 60, "only {} accepted", accepted.len());
    assert!(accepted.len() < total, "the crash interrupted nothing");
    // Every accepted message gets its whole chain.
    let mario = a.wait_for("mario@a6.test", "every receipt chain", |m| {
        accepted.iter().all(|i| {
            with_subject(m, "accettazione", &format!("ACCETTAZIONE: Burst {i}")).len() == 1
                && with_subject(m, "avvenuta-consegna", &format!("CONSEGNA: Burst {i}")).len() == 1
        })
    });
    // Let stragglers (messages committed whose 250 was lost) settle, then count again.
    std::thread::sleep(std::time::Duration::from_secs(3));
    drop(mario);
    let mario = a.messages("mario@a6.test");
    let anna = b.messages("anna@b7.test");
    let service = a.messages("posta-certificata@a6.test");
    for i in 0..total {
        let n_acc = with_subject(&mario, "accettazione", &format!("ACCETTAZIONE: Burst {i}")).len();
        let n_rcv =
            with_subject(&mario, "avvenuta-consegna", &format!("CONSEGNA: Burst {i}")).len();
        let n_env = with_subject(
            &anna,
            "posta-certificata",
            &format!("POSTA CERTIFICATA: Burst {i}"),
        )
        .len();
        let n_pic = with_subject(
            &service,
            "presa-in-carico",
            &format!("PRESA IN CARICO: Burst {i}"),
        )
        .len();
        assert!(
            n_acc <= 1 && n_rcv <= 1 && n_env <= 1 && n_pic <= 1,
            "message {i} duplicated: {n_acc} {n_rcv} {n_env} {n_pic}"
        );
        if accepted.contains(&i) {
            assert_eq!((n_acc, n_env), (1, 1), "message {i}");
        }
    }
    b.kill();
}
