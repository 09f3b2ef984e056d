//! HTTPS helpers of the web tests: curl against a gestore's HTTPS listener (the webmail
//! and the REST API), API tokens from the admin CLI.

use super::{Gestore, run_ok};
use serde_json::Value;
use std::process::Command;

/// An HTTPS exchange through curl: (status, headers, body).
pub fn https(
    g: &Gestore,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    extra: &[&str],
) -> (u16, String, Vec<u8>) {
    let headers = g.dir.join(format!("h-{}.txt", std::process::id()));
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "--cacert",
        g.ca().to_str().unwrap(),
        "-X",
        method,
        "-D",
        headers.to_str().unwrap(),
        "-w",
        "\n%{http_code}",
        &format!("https://{}:8443{path}", g.ip),
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    c.args(extra);
    let out = c.output().unwrap();
    let mut raw = out.stdout;
    let cut = raw.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&raw[cut + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    raw.truncate(cut);
    let h = std::fs::read_to_string(&headers).unwrap_or_default();
    (status, h, raw)
}

pub fn api(
    g: &Gestore,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let b = body.map(|b| b.to_string());
    let (s, _, raw) = https(g, method, path, Some(token), b.as_deref(), &[]);
    (s, serde_json::from_slice(&raw).unwrap_or(Value::Null))
}

pub fn page_csrf(page: &[u8]) -> String {
    let page = String::from_utf8_lossy(page);
    page.split("name=\"csrf\" value=\"").nth(1).unwrap()[..64].to_string()
}

pub fn token(g: &Gestore, address: &str) -> String {
    run_ok(&["admin", "--data", g.data(), "token", "create", address])
        .trim()
        .to_string()
}

pub fn enc(s: &str) -> String {
    s.replace('@', "%40")
}
