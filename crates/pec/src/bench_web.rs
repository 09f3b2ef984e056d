//! `pec bench --web`: the REST API and the webmail of one gestore on loopback (127.0.0.16,
//! the IMAP benchmark's address and mailbox): certified sends per second through
//! `POST /api/v1/messages` with N concurrent clients, each send accepted, enveloped,
//! delivered and receipted on this gestore; then the latency of webmail pages over a folder
//! of 10,000 messages (filled by IMAP APPEND): the first page, a deep page, a subject search
//! and a sender search, each over one keep-alive HTTPS connection.

use crate::admin::Client;
use crate::bench_imap::{IP, Imap, PASSWORD, PEC_IMAPS, USER, messages};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const HTTPS: u16 = 8443;
const SENDER: &str = "sender@imap.bench";
/// Page loads per measured page.
const LOADS: usize = 100;

/// A keep-alive HTTP/1.1 client over TLS.
struct Http {
    io: BufReader<TlsStream<TcpStream>>,
}

impl Http {
    async fn connect() -> Result<Http> {
        let tls = pec_smtp::tls::client_config(false, &[]).map_err(anyhow::Error::msg)?;
        let tcp = TcpStream::connect((IP, HTTPS)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from(IP.to_string())?;
        let s = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        Ok(Http {
            io: BufReader::with_capacity(64 * 1024, s),
        })
    }

    /// One request; returns the status, the `Set-Cookie` value if any, and the body.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<(u16, Option<String>, Vec<u8>)> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {IP}:{HTTPS}\r\nContent-Length: {}\r\n{headers}\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.io.get_mut().write_all(&req).await?;
        let mut status = 0;
        let (mut len, mut cookie) = (0usize, None);
        let mut line = String::new();
        loop {
            line.clear();
            if self.io.read_line(&mut line).await? == 0 {
                bail!("the server closed the connection");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "set-cookie" => cookie = v.trim().split(';').next().map(str::to_string),
                    _ => {}
                }
            }
        }
        let mut out = vec![0; len];
        self.io.read_exact(&mut out).await?;
        Ok((status, cookie, out))
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn sender(token: Arc<String>, until: Instant, done: Arc<AtomicU64>) -> Result<Vec<f64>> {
    let mut c = Http::connect().await?;
    let mut lat = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let body = serde_json::json!({
            "to": [USER],
            "subject": format!("API bench {n}"),
            "body": "Messaggio inviato dal benchmark dell'API.",
            "receipt": "sintetica",
        })
        .to_string();
        let t = Instant::now();
        let (status, _, answer) = c
            .request(
                "POST",
                "/api/v1/messages",
                &format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"),
                body.as_bytes(),
            )
            .await?;
        if status != 201 {
            bail!(
                "send answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(lat)
}

async fn page_latency(cookie: &str, path: &str) -> Result<(f64, f64, usize)> {
    let mut c = Http::connect().await?;
    let headers = format!("Cookie: {cookie}\r\n");
    let (s, _, body) = c.request("GET", path, &headers, b"").await?;
    if s != 200 {
        bail!("{path} answered {s}");
    }
    let mut v = Vec::with_capacity(LOADS);
    for _ in 0..LOADS {
        let t = Instant::now();
        c.request("GET", path, &headers, b"").await?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((
        percentile(&mut v, 0.5),
        percentile(&mut v, 0.99),
        body.len(),
    ))
}

pub fn run(seconds: u64, clients: usize, count: usize, write: Option<&Path>) -> Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("pec");
    crate::init::run(&crate::init::InitOptions {
        data: &data,
        domain: "imap.bench",
        name: "Bench Web",
        listen_ip: IP,
        standard_ports: false,
        routes: &[],
        revocation: Default::default(),
        scanners: Default::default(),
    })?;
    let _pec = crate::bench_gestori::start(&data)?;
    let admin = Client::new(&data)?;
    for who in [USER, SENDER] {
        admin.json(
            "POST",
            "/v1/mailboxes",
            Some(&serde_json::json!({"address": who, "password": PASSWORD, "quota_bytes": 0})),
        )?;
    }
    let token = admin.json(
        "POST",
        "/v1/tokens",
        Some(&serde_json::json!({"address": SENDER, "label": "bench"})),
    )?["token"]
        .as_str()
        .context("no token in the answer")?
        .to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!("measuring openssl speed rsa2048 (3 s)...");
    let openssl = crate::bench::openssl_rsa2048(3)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    eprintln!("API: {clients} clients sending for {seconds} s...");
    let done = Arc::new(AtomicU64::new(0));
    let (sent, mut lat) = rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(seconds);
        let token = Arc::new(token);
        let t = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(sender(token.clone(), until, done.clone())))
            .collect();
        let mut lat = Vec::new();
        for task in tasks {
            lat.extend(task.await??);
        }
        anyhow::Ok((lat.len() as f64 / t.elapsed().as_secs_f64(), lat))
    })?;
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));

    eprintln!("filling the INBOX with {count} messages by IMAP APPEND...");
    let fill = messages(count);
    let (pages, total) = rt.block_on(async {
        let mut imap = Imap::connect(PEC_IMAPS).await?;
        imap.fill(&fill).await?;
        imap.run("LOGOUT").await.ok();
        let mut c = Http::connect().await?;
        let form = format!("address={}&password={PASSWORD}", USER.replace('@', "%40"));
        let (s, cookie, _) = c
            .request(
                "POST",
                "/login",
                "Content-Type: application/x-www-form-urlencoded\r\n",
                form.as_bytes(),
            )
            .await?;
        let cookie = cookie.with_context(|| format!("login answered {s} without a cookie"))?;
        let total = count as u64 + done.load(Ordering::Relaxed);
        let mut out = Vec::new();
        for (name, path) in [
            ("INBOX, first page (50 rows)", "/mail?f=INBOX".to_string()),
            ("INBOX, page 100", "/mail?f=INBOX&page=100".to_string()),
            (
                "search by subject",
                format!("/mail?f=INBOX&subject=pratica+{}", count * 3 / 4),
            ),
            (
                "search by sender",
                "/mail?f=INBOX&from=mittente7%40".to_string(),
            ),
        ] {
            let (p50, p99, size) = page_latency(&cookie, &path).await?;
            eprintln!("  {name}: p50 {p50:.2} ms, p99 {p99:.2} ms ({size} bytes)");
            out.push((name, p50, p99, size));
        }
        anyhow::Ok((out, total))
    })?;
    let ceiling = cores as f64 * openssl / 3.0;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mut report = format!(
        "## REST API and webmail ({date})\n\nMachine: {cpu}, {cores} cores. Command: `pec bench --web --seconds {seconds} --clients {clients} --messages {count}` \
(release build; client and gestore on the same machine, HTTPS on 127.0.0.16).\n\n\
| measurement | figure |\n|---|---:|\n\
| sends accepted through `POST /api/v1/messages` (`201`: acceptance committed, envelope queued), {clients} clients | {sent:.1} /s |\n\
| send latency p50 / p99 | {p50:.1} / {p99:.1} ms |\n\
| `openssl speed rsa2048` sign/s (same run) | {openssl:.0} |\n\
| sends as a share of the signing ceiling (cores × sign/s ÷ 3 signatures: acceptance, envelope, delivery receipt; the deliveries run on the same cores during and after the measurement) | {share:.0}% |\n\n\
Webmail pages of a folder holding {total} messages (one keep-alive connection, {LOADS} loads each):\n\n\
| page | p50 | p99 | HTML size |\n|---|---:|---:|---:|\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        share = sent / ceiling * 100.0,
    );
    for (name, p50, p99, size) in pages {
        report.push_str(&format!(
            "| {name} | {p50:.2} ms | {p99:.2} ms | {:.0} KB |\n",
            size as f64 / 1024.0
        ));
    }
    print!("{report}");
    if let Some(path) = write {
        crate::bench::append_section(path, &format!("\n{report}"))?;
    }
    Ok(())
}
