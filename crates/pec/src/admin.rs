//! `pec admin`: talks to the running server's admin API (pec-web::admin) over HTTP on
//! loopback with the token from the data directory; it never opens the database.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

pub struct Client {
    addr: std::net::SocketAddr,
    token: String,
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[(eol + 4 + size).min(body.len())..];
    }
}

impl Client {
    pub fn new(data: &Path) -> Result<Client> {
        let cfg = Config::load(data).map_err(anyhow::Error::msg)?;
        let token = std::fs::read_to_string(data.join("admin.token"))
            .with_context(|| format!("cannot read {}", data.join("admin.token").display()))?
            .trim()
            .to_string();
        Ok(Client {
            addr: cfg.admin_addr(),
            token,
        })
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Response> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).with_context(|| {
            format!(
                "cannot reach the admin API at {} (is `pec serve` running for this data directory?)",
                self.addr
            )
        })?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        );
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            bail!("the admin API sent a malformed answer");
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("the admin API sent no status")?;
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = &raw[end + 4..];
        Ok(Response {
            status,
            body: if chunked {
                dechunk(body)
            } else {
                body.to_vec()
            },
        })
    }

    /// A JSON call; a non-2xx answer becomes the API's error sentence.
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let r = self.request(method, path, body)?;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if !(200..300).contains(&r.status) {
            bail!(
                "{}",
                v["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("the admin API answered {}", r.status))
            );
        }
        Ok(v)
    }
}

/// Percent-encodes a path segment.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn print_messages(v: &Value) {
    println!(
        "{:<8} {:>5}  {:<20}  {:<26} {:>8}  {:<50}  subject",
        "folder", "uid", "date", "kind", "size", "identificativo"
    );
    for m in v.as_array().into_iter().flatten() {
        println!(
            "{:<8} {:>5}  {:<20}  {:<26} {:>8}  {:<50}  {}",
            m["folder"].as_str().unwrap_or(""),
            m["uid"],
            m["date"].as_str().unwrap_or(""),
            m["kind"].as_str().unwrap_or(""),
            m["size"],
            m["identificativo"].as_str().unwrap_or("-"),
            m["subject"].as_str().unwrap_or("")
        );
    }
}

pub fn print_log(v: &Value) {
    for e in v.as_array().into_iter().flatten() {
        let list = |k: &str| {
            e[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        println!(
            "{} {}: tipo={}: mittente={}: destinatari={}: oggetto={}: message-id={}: gestore={}{}",
            e["time"].as_str().unwrap_or(""),
            e["identificativo"].as_str().unwrap_or(""),
            e["event"].as_str().unwrap_or(""),
            e["sender"].as_str().unwrap_or(""),
            list("recipients"),
            e["subject"].as_str().unwrap_or(""),
            list("related"),
            e["provider"].as_str().unwrap_or(""),
            e["detail"]
                .as_str()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
}

/// One paragraph per CRL distribution point (`pec admin crl`).
pub fn print_crl(v: &Value) {
    let points = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if points.is_empty() {
        println!(
            "No CRL distribution point or OCSP responder: no certificate of the Indice copy \
             names one."
        );
    }
    let time = |k: &str, e: &Value| {
        e[k].as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".into())
    };
    for e in points {
        let ocsp = e["kind"] == "ocsp";
        println!(
            "{}{}",
            if ocsp { "OCSP " } else { "CRL " },
            e["url"].as_str().unwrap_or("")
        );
        if let Some(c) = e["certificate"].as_str() {
            println!("  certificate:  {c}");
        }
        println!("  state:        {}", e["state"].as_str().unwrap_or(""));
        if let Some(issuer) = e["issuer"].as_str() {
            println!("  issuer:       {issuer}");
            println!("  this update:  {}", time("this_update", e));
            println!("  next update:  {}", time("next_update", e));
            match e["cert_status"].as_str() {
                Some(status) => println!("  status:       {status}"),
                None => println!("  revoked:      {}", e["revoked"]),
            }
        }
        println!("  last attempt: {}", time("last_attempt", e));
        if let Some(err) = e["last_error"].as_str() {
            println!("  last error:   {err}");
        }
        println!("  next attempt: {}", time("next_attempt", e));
    }
}

/// The password from `file` (its first line), or a generated one (`true`).
pub fn password(file: Option<&Path>) -> Result<(String, bool)> {
    Ok(match file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            let first = text.lines().next().unwrap_or_default();
            (first.trim_end_matches('\r').to_string(), false)
        }
        None => (crate::init::token()[..16].to_string(), true),
    })
}

/// The virus store listing, one entry per line.
pub fn print_quarantine(v: &Value) {
    let entries = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.is_empty() {
        println!("the virus store is empty");
        return;
    }
    for q in entries {
        let time = q["time"]
            .as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        println!(
            "{:>5} {time} {} ({}) from {} to {} [{} bytes] {}",
            q["id"],
            q["threat"].as_str().unwrap_or(""),
            q["engine"].as_str().unwrap_or(""),
            q["sender"].as_str().unwrap_or(""),
            q["recipients"]
                .as_array()
                .map(|r| r
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            q["size"],
            q["identificativo"].as_str().unwrap_or("")
        );
    }
}
