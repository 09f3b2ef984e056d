//! The REST API and the webmail's protections against a real `pec serve` (issue "Webmail
//! and REST API"): the API driven with curl, tokens of two users kept apart, webhooks
//! received by a local HTTP server and their HMAC checked with OpenSSL; cookies, CSRF,
//! origin, throttle and TOTP of the webmail. The browser tests are in browser.rs.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::web::*;
use gestori::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got: its headers (names in lower case) and body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// A webhook receiver: answers 500 to the first request, then 200; keeps what it got.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(ip: &str) -> Receiver {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<_>>> = Arc::default();
        let seen = got.clone();
        std::thread::spawn(move || {
            let mut first = true;
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (k, v) = l.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let status = if first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                first = false;
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
                seen.lock().unwrap().push((headers, body));
            }
        });
        Receiver { port, got }
    }
}

/// The webmail's password step for `user`@w.test, cookies kept in the jar `jar`.
fn login(g: &Gestore, jar: &str, user: &str) -> (u16, String, Vec<u8>) {
    https(
        g,
        "POST",
        "/login",
        None,
        None,
        &[
            "-c",
            jar,
            "-b",
            jar,
            "--data",
            &format!("address={user}%40w.test&password=password-123"),
        ],
    )
}

/// The webmail's second step: the TOTP `code` for the login waiting in `jar`.
fn otp(g: &Gestore, jar: &str, csrf: &str, code: &str) -> (u16, String, Vec<u8>) {
    https(
        g,
        "POST",
        "/login/otp",
        None,
        None,
        &[
            "-c",
            jar,
            "-b",
            jar,
            "--data",
            &format!("csrf={csrf}&code={code}"),
        ],
    )
}

fn hmac_sha256_hex(key: &str, data: &[u8], dir: &std::path::Path) -> String {
    let f = dir.join("hmac-input");
    std::fs::write(&f, data).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key, "-r", f.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn rest_api_tokens_webhooks_and_webmail_protections() {
    require("curl");
    require("openssl");
    let root = tempfile::tempdir().unwrap();
    let mut g = Gestore::init(root.path(), "w.test", "Gestore W", "127.0.0.23", &[]);
    g.start();
    for m in [
        "mario@w.test",
        "anna@w.test",
        "luisa@w.test",
        "throttle@w.test",
    ] {
        g.add_mailbox(m, &[]);
    }
    let mario = token(&g, "mario@w.test");
    let luisa = token(&g, "luisa@w.test");
    let anna = token(&g, "anna@w.test");
    assert!(mario.starts_with("pec_") && mario.len() == 68);
    let o = run(&[
        "admin",
        "--data",
        g.data(),
        "token",
        "create",
        "nobody@w.test",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no mailbox nobody@w.test"));

    // The OpenAPI document.
    let (s, _, doc) = https(&g, "GET", "/api/openapi.json", None, None, &[]);
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!((s, doc["openapi"].as_str()), (200, Some("3.1.0")));
    assert!(doc["paths"]["/api/v1/messages"]["post"].is_object());

    // Authentication.
    let (s, h, _) = https(&g, "GET", "/api/v1/folders", None, None, &[]);
    assert_eq!(s, 401);
    assert!(h.to_ascii_lowercase().contains("www-authenticate: bearer"));
    let (s, v) = api(
        &g,
        "GET",
        "/api/v1/folders",
        &format!("pec_{}", "0".repeat(64)),
        None,
    );
    assert_eq!(s, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not valid"));

    // The webhook, then a send with an attachment, breve receipts.
    let rx = Receiver::start("127.0.0.23");
    let (s, hook) = api(
        &g,
        "PUT",
        "/api/v1/webhook",
        &mario,
        Some(&json!({"url": "ftp://x"})),
    );
    assert_eq!(s, 400, "{hook}");
    let (s, hook) = api(
        &g,
        "PUT",
        "/api/v1/webhook",
        &mario,
        Some(&json!({"url": format!("http://127.0.0.23:{}/hook", rx.port)})),
    );
    assert_eq!(s, 200, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    let send = json!({
        "to": ["anna@w.test"],
        "subject": "Fattura da API",
        "body": "In allegato.",
        "receipt": "breve",
        "attachments": [{"name": "fattura.xml", "content_type": "application/xml", "content_base64": "PGZhdHR1cmEvPg=="}]
    });
    for (bad, why) in [
        (
            json!({"to": ["anna@w.test"], "bcc": ["x@w.test"]}),
            "unknown field",
        ),
        (
            json!({"to": ["anna@w.test"], "receipt": "lunga"}),
            "completa, breve or sintetica",
        ),
        (
            json!({"to": ["not an address"]}),
            "is not an e-mail address",
        ),
        (json!({"to": []}), "at least one recipient"),
        (
            json!({"to": ["anna@w.test"], "attachments": [{"name": "a", "content_base64": "@@"}]}),
            "not base64",
        ),
    ] {
        let (s, v) = api(&g, "POST", "/api/v1/messages", &mario, Some(&bad));
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v["error"].as_str().unwrap().contains(why), "{bad}: {v}");
    }
    let (s, sent) = api(&g, "POST", "/api/v1/messages", &mario, Some(&send));
    assert_eq!(s, 201, "{sent}");
    let id = sent["identificativo"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let (s, t) = api(
            &g,
            "GET",
            &format!("/api/v1/messages/{}", enc(&id)),
            &mario,
            None,
        );
        assert_eq!(s, 200, "{t}");
        // The presa in carico and the delivery receipt travel as two messages, in either
        // order: wait for both.
        let steps = t["recipients"][0]["steps"].as_array().map_or(0, Vec::len);
        if (t["recipients"][0]["status"] == "consegnato" && steps == 3) || Instant::now() > deadline
        {
            break t;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["acceptance"], "accettato", "{status:#}");
    let anna_line = &status["recipients"][0];
    assert_eq!(anna_line["address"], "anna@w.test");
    assert_eq!(anna_line["status"], "consegnato", "{status:#}");
    let kinds: Vec<&str> = anna_line["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["accettazione", "presa-in-carico", "avvenuta-consegna"]
    );
    assert_eq!(anna_line["steps"][2]["detail"], "breve");

    // Lists and fetches, raw and parsed.
    let (s, page) = api(
        &g,
        "GET",
        "/api/v1/folders/INBOX/messages?limit=10",
        &anna,
        None,
    );
    assert_eq!((s, page["total"].as_u64()), (200, Some(1)), "{page}");
    let envelope = &page["messages"][0];
    assert_eq!(envelope["kind"], "posta-certificata");
    let uid = envelope["uid"].as_u64().unwrap();
    let (s, parsed) = api(
        &g,
        "GET",
        &format!("/api/v1/folders/INBOX/messages/{uid}"),
        &anna,
        None,
    );
    assert_eq!(s, 200);
    let view = &parsed["view"];
    assert_eq!(view["from_envelope"], true, "{parsed:#}");
    assert_eq!(view["subject"], "Fattura da API");
    assert_eq!(view["signature"]["valid"], true, "{parsed:#}");
    assert_eq!(view["signature"]["provider"], "Gestore W");
    assert_eq!(view["daticert"]["tipo"], "posta-certificata");
    assert_eq!(view["attachments"][0]["name"], "fattura.xml");
    let (s, _, bytes) = https(
        &g,
        "GET",
        &format!("/api/v1/folders/INBOX/messages/{uid}/attachments/0"),
        Some(&anna),
        None,
        &[],
    );
    assert_eq!((s, bytes.as_slice()), (200, &b"<fattura/>"[..]));
    let (s, h, raw) = https(
        &g,
        "GET",
        &format!("/api/v1/folders/INBOX/messages/{uid}/raw"),
        Some(&anna),
        None,
        &[],
    );
    assert_eq!(s, 200);
    assert!(h.contains("message/rfc822"));
    assert_eq!(
        raw,
        g.message("anna@w.test", uid),
        "the raw bytes are the stored ones"
    );
    let receipt = status["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "avvenuta-consegna")
        .unwrap();
    let (s, parsed) = api(
        &g,
        "GET",
        &format!("/api/v1/folders/INBOX/messages/{}", receipt["uid"]),
        &mario,
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(parsed["view"]["daticert"]["ricevuta"], "breve");
    assert_eq!(parsed["view"]["daticert"]["consegna"], "anna@w.test");

    // Another user's token sees none of it.
    let (s, _) = api(
        &g,
        "GET",
        &format!("/api/v1/messages/{}", enc(&id)),
        &luisa,
        None,
    );
    assert_eq!(s, 404, "luisa cannot follow mario's transaction");
    let (s, _) = api(
        &g,
        "GET",
        &format!("/api/v1/messages/{}", enc(&id)),
        &anna,
        None,
    );
    assert_eq!(s, 404, "nor can the recipient follow the sender's timeline");
    let (s, p) = api(&g, "GET", "/api/v1/folders/Sent/messages", &luisa, None);
    assert_eq!((s, p["total"].as_u64()), (200, Some(0)));
    let (s, p) = api(&g, "GET", "/api/v1/folders/INBOX/messages", &luisa, None);
    assert_eq!((s, p["total"].as_u64()), (200, Some(0)));
    for path in [
        "/api/v1/folders/Sent/messages/1",
        "/api/v1/folders/Sent/messages/1/raw",
        "/api/v1/folders/Sent/messages/1/attachments/0",
        &format!("/api/v1/folders/INBOX/messages/{uid}"),
    ] {
        let (s, _, body) = https(&g, "GET", path, Some(&luisa), None, &[]);
        assert_eq!(s, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    // A path or query that does not parse gets a 400 in the API's JSON form.
    for path in [
        "/api/v1/folders/INBOX/messages/abc",
        "/api/v1/folders/INBOX/messages/1/attachments/x",
        "/api/v1/folders/INBOX/messages?limit=many",
    ] {
        let (s, v) = api(&g, "GET", path, &luisa, None);
        assert_eq!(s, 400, "{path}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }
    let (s, h) = api(&g, "GET", "/api/v1/webhook", &luisa, None);
    assert_eq!(
        (s, &h["url"]),
        (200, &Value::Null),
        "mario's webhook is not luisa's"
    );

    // Webhooks: the accettazione and the avvenuta-consegna, signed, the first one retried.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = rx.got.lock().unwrap().clone();
        let bodies: Vec<Value> = got
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect();
        let kinds: std::collections::BTreeSet<String> = got
            .iter()
            .skip(1)
            .map(|(_, b)| {
                serde_json::from_slice::<Value>(b).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if kinds.contains("accettazione") && kinds.contains("avvenuta-consegna") {
            for ((headers, body), v) in got.iter().zip(&bodies) {
                assert_eq!(v["identificativo"], id.as_str());
                assert_eq!(v["mailbox"], "mario@w.test");
                let sig = &headers
                    .iter()
                    .find(|(k, _)| k == "x-pec-signature")
                    .unwrap()
                    .1;
                let (t, mac) = sig.strip_prefix("t=").unwrap().split_once(",v1=").unwrap();
                let mut signed = format!("{t}.").into_bytes();
                signed.extend_from_slice(body);
                assert_eq!(
                    mac,
                    hmac_sha256_hex(&secret, &signed, root.path()),
                    "HMAC of {v}"
                );
            }
            let first = &got[0]
                .0
                .iter()
                .find(|(k, _)| k == "x-pec-delivery")
                .unwrap()
                .1;
            let again = got
                .iter()
                .skip(1)
                .filter(|(h, _)| h.iter().any(|(k, v)| k == "x-pec-delivery" && v == first))
                .count();
            assert_eq!(again, 1, "the delivery answered 500 came again");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks received: {bodies:#?}\n{}",
            g.server_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (s, _) = api(&g, "DELETE", "/api/v1/webhook", &mario, None);
    assert_eq!(s, 204);

    // Mario's webmail: search, move to Trash, delete from Trash.
    let mjar = root.path().join("mjar");
    let mj = mjar.to_str().unwrap();
    let (s, _, _) = login(&g, mj, "mario");
    assert_eq!(s, 303);
    let (s, _, page) = https(
        &g,
        "GET",
        "/mail?f=INBOX&subject=fattura+da&from=posta-certificata",
        None,
        None,
        &["-b", mj],
    );
    let page = String::from_utf8_lossy(&page).to_string();
    assert_eq!(s, 200);
    assert!(
        page.contains("CONSEGNA: Fattura da API") && page.contains("(2)"),
        "{page}"
    );
    let (s, _, page) = https(
        &g,
        "GET",
        "/mail?f=INBOX&subject=nessuna",
        None,
        None,
        &["-b", mj],
    );
    assert!(s == 200 && String::from_utf8_lossy(&page).contains("(0)"));
    let (s, _, page) = https(
        &g,
        "GET",
        "/mail?f=INBOX&since=ieri",
        None,
        None,
        &["-b", mj],
    );
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&page).contains("is not a date (YYYY-MM-DD)"));
    let mcsrf = page_csrf(&https(&g, "GET", "/mail?f=INBOX", None, None, &["-b", mj]).2);
    let ruid = receipt["uid"].as_u64().unwrap();
    let (s, _, _) = https(
        &g,
        "POST",
        "/mail/action",
        None,
        None,
        &[
            "-b",
            mj,
            "--data",
            &format!("csrf={mcsrf}&f=INBOX&uid={ruid}&action=delete"),
        ],
    );
    assert_eq!(s, 303);
    let (_, trash) = api(&g, "GET", "/api/v1/folders/Trash/messages", &mario, None);
    assert_eq!(trash["total"], 1, "deleted from INBOX goes to Trash");
    let (_, t) = api(
        &g,
        "GET",
        &format!("/api/v1/messages/{}", enc(&id)),
        &mario,
        None,
    );
    assert!(
        t["recipients"][0]["steps"][2]["receipt"]["folder"] == "Trash",
        "the timeline follows the receipt: {t:#}"
    );
    let tuid = trash["messages"][0]["uid"].as_u64().unwrap();
    let (s, _, _) = https(
        &g,
        "POST",
        "/mail/action",
        None,
        None,
        &[
            "-b",
            mj,
            "--data",
            &format!("csrf={mcsrf}&f=Trash&uid={tuid}&action=delete"),
        ],
    );
    assert_eq!(s, 303);
    let (_, trash) = api(&g, "GET", "/api/v1/folders/Trash/messages", &mario, None);
    assert_eq!(trash["total"], 0, "deleted from Trash is gone");
    let (s, _, page) = https(
        &g,
        "POST",
        "/mail/action",
        None,
        None,
        &[
            "-b",
            mj,
            "--data",
            &format!("csrf={mcsrf}&f=INBOX&action=move&to=Trash"),
        ],
    );
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&page).contains("no message was selected"));

    // Webmail: security headers, CSRF and origin checks, cross-user pages, login throttle.
    let jar = root.path().join("jar");
    let j = jar.to_str().unwrap();
    let (s, h, _) = login(&g, j, "luisa");
    assert_eq!(s, 303);
    assert!(
        h.contains("__Host-pec_session=")
            && h.contains("HttpOnly")
            && h.contains("SameSite=Strict")
            && h.contains("Secure")
    );
    let (s, h, page) = https(&g, "GET", "/mail?f=INBOX", None, None, &["-b", j]);
    assert_eq!(s, 200);
    let lower = h.to_ascii_lowercase();
    assert!(
        lower.contains("content-security-policy: default-src 'none'"),
        "{h}"
    );
    assert!(lower.contains("x-frame-options: deny") && lower.contains("cache-control: no-store"));
    let page = String::from_utf8_lossy(&page);
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap()[..64].to_string();
    let (s, _, _) = https(
        &g,
        "POST",
        "/mail/action",
        None,
        None,
        &["-b", j, "--data", "f=INBOX&uid=1&action=delete&csrf=bad"],
    );
    assert_eq!(s, 403, "a form without the session's token is refused");
    let (s, _, _) = https(
        &g,
        "POST",
        "/mail/action",
        None,
        None,
        &[
            "-b",
            j,
            "-H",
            "Origin: https://evil.example",
            "--data",
            &format!("f=INBOX&uid=1&action=delete&csrf={csrf}"),
        ],
    );
    assert_eq!(s, 403, "a post from another site is refused");
    let (s, _, _) = https(&g, "GET", "/message?f=Sent&uid=1", None, None, &["-b", j]);
    assert_eq!(s, 404, "mario's sent message is not luisa's");
    let (s, _, _) = https(&g, "GET", "/mail?f=INBOX", None, None, &[]);
    assert_eq!(s, 303, "no session, no mail");
    for _ in 0..pec_gestore::throttle::PER_ACCOUNT {
        let (s, _, _) = https(
            &g,
            "POST",
            "/login",
            None,
            None,
            &["--data", "address=throttle%40w.test&password=wrong"],
        );
        assert_eq!(s, 401);
    }
    let (s, _, body) = https(
        &g,
        "POST",
        "/login",
        None,
        None,
        &["--data", "address=throttle%40w.test&password=password-123"],
    );
    assert_eq!(s, 429, "{}", String::from_utf8_lossy(&body));

    // TOTP second factor for luisa.
    let (_, _, page) = https(&g, "GET", "/settings", None, None, &["-b", j]);
    let page = String::from_utf8_lossy(&page);
    let secret = page
        .split("id=\"otp-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let code = |offset: i64| {
        let key = pec_gestore::totp::unbase32(&secret).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + offset;
        pec_gestore::totp::hotp(&key, (now / 30) as u64, 6)
    };
    let enable = || {
        https(
            &g,
            "POST",
            "/settings/otp",
            None,
            None,
            &[
                "-b",
                j,
                "--data",
                &format!("csrf={csrf}&action=enable&secret={secret}&code={}", code(0)),
            ],
        )
    };
    let (s, _, body) = enable();
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&body).contains("Two-step verification is on"));
    // While it is on, another key cannot replace it from the open session.
    assert_eq!(
        enable().0,
        409,
        "a key in use is not replaced without its code"
    );
    let jar2 = root.path().join("jar2");
    let j2 = jar2.to_str().unwrap();
    let (s, _, body) = login(&g, j2, "luisa");
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(s, 200, "the password alone only leads to the code form");
    assert!(body.contains("/login/otp"));
    let (s, _, _) = https(&g, "GET", "/mail?f=INBOX", None, None, &["-b", j2]);
    assert_eq!(s, 303, "not logged in before the code");
    let csrf2 = page_csrf(body.as_bytes());
    let c0 = code(0);
    let (s, _, _) = otp(&g, j2, &csrf2, "000000");
    assert_eq!(s, 401);
    let (s, _, _) = otp(&g, j2, &csrf2, &c0);
    assert_eq!(s, 303);
    let (s, _, _) = https(&g, "GET", "/mail?f=INBOX", None, None, &["-b", j2]);
    assert_eq!(s, 200, "logged in with the code");
    // The same code, overheard, does not open a second session (RFC 6238 §5.2).
    let jar3 = root.path().join("jar3");
    let j3 = jar3.to_str().unwrap();
    let (_, _, body) = login(&g, j3, "luisa");
    let csrf3 = page_csrf(&body);
    let (s, _, _) = otp(&g, j3, &csrf3, &c0);
    assert_eq!(s, 401, "a code is good once");
    let (s, _, _) = https(
        &g,
        "POST",
        "/logout",
        None,
        None,
        &["-c", j2, "-b", j2, "--data", "csrf=wrong"],
    );
    assert_eq!(s, 403);

    // A new password (as after a lockout's reset) ends the sessions opened with the old one.
    let (s, _, _) = https(&g, "GET", "/mail?f=INBOX", None, None, &["-b", j]);
    assert_eq!(s, 200, "luisa's session is still open");
    let pw = root.path().join("new-password.txt");
    std::fs::write(&pw, "another-password-456").unwrap();
    run_ok(&[
        "admin",
        "--data",
        g.data(),
        "mailbox",
        "password",
        "luisa@w.test",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let (s, h, _) = https(&g, "GET", "/mail?f=INBOX", None, None, &["-b", j]);
    assert_eq!(s, 303, "{h}");
    assert!(
        h.contains("location: /login") || h.contains("Location: /login"),
        "{h}"
    );
}
