//! The webmail in Debian's Chromium through chromedriver (issue "Webmail and REST API"):
//! tests/clients/browser.py logs in, sends a PEC, follows its timeline, opens the envelope,
//! downloads the attachment and tries XSS; screenshots at 1280 and 360 px are kept under
//! target/test-artifacts/webmail.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::web::*;
use gestori::*;
use serde_json::json;
use std::process::Command;

#[test]
fn webmail_in_chromium() {
    require("curl");
    require("chromium");
    require("chromedriver");
    let python = "/usr/bin/python3";
    let ok = Command::new(python)
        .args(["-c", "import selenium"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3-selenium is required by the browser tests (scripts/test installs it)"
    );
    let root = tempfile::tempdir().unwrap();
    let mut g = Gestore::init(
        root.path(),
        "browser.test",
        "Gestore Browser",
        "127.0.0.24",
        &[],
    );
    g.start();
    g.add_mailbox("mario@browser.test", &["--quota", "2000000000"]);
    g.add_mailbox("anna@browser.test", &[]);

    // Markup in a PEC's subject, text and attachment name, and an HTML ordinary mail.
    let xss = "<img src=x onerror=alert(1)> Fattura";
    let api_token = token(&g, "mario@browser.test");
    let body = json!({
        "to": ["anna@browser.test"],
        "subject": xss,
        "body": "<script>window.__xss = 1; alert(2)</script> onerror",
        "attachments": [{"name": "\"><svg onload=alert(3)>.txt", "content_base64": "eA=="}]
    });
    let (s, v) = api(&g, "POST", "/api/v1/messages", &api_token, Some(&body));
    assert_eq!(s, 201, "{v}");
    let html = "From: promo@shop.example\r\nTo: anna@browser.test\r\nSubject: Newsletter HTML\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <html><body><h1 onclick=\"alert(4)\">Offerta</h1><script>window.__xss=2;alert(5)</script>\
        <img src=\"https://tracker.example/p.gif\" onerror=\"alert(6)\"><iframe src=\"https://evil.example\"></iframe>\
        <form action=\"https://evil.example\"><input name=p></form><style>h1{color:red}</style></body></html>\r\n";
    let (ok, t) = send_plain(
        &g.ip,
        2525,
        "promo@shop.example",
        &["anna@browser.test"],
        html.as_bytes(),
        root.path(),
    );
    assert!(ok, "{t}");
    g.wait_for("anna@browser.test", "the two messages", |m| m.len() >= 2);

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-artifacts/webmail");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/browser.py");
    let o = Command::new(python)
        .args([
            script,
            &format!("https://{}:8443", g.ip),
            out.to_str().unwrap(),
            "mario@browser.test",
            "anna@browser.test",
            PASSWORD,
            xss,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "browser checks failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        g.server_log()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    for shot in ["inbox", "timeline", "envelope", "xss"] {
        for w in [1280, 360] {
            assert!(
                out.join(format!("{shot}-{w}.png")).exists(),
                "{shot}-{w}.png"
            );
        }
    }
}
