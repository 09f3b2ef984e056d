//! `pec bench --scan`: the cost of the security filters per message (product.md §4). Each
//! engine given (clamd, ICAP, rspamd) is timed alone on a 2 KB and a 100 KB message, one at
//! a time (latency) and with N at once (messages per second); then two gestori on loopback
//! (`pec bench --gestori`) run once without filters and once with them, and the difference
//! in certified transactions per second and in latency is the cost a provider pays.

use crate::bench_gestori::{Figures, measure};
use crate::init::Scanners;
use anyhow::{Context, Result, bail};
use pec_filters::rspamd::{Envelope, Rspamd};
use pec_filters::{Engine, FilterError};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One engine as the gestore calls it.
enum Stage {
    Antivirus(Engine),
    Antispam(Rspamd),
}

impl Stage {
    fn name(&self) -> String {
        match self {
            Stage::Antivirus(Engine::Clamd(_)) => "clamd (INSTREAM)".into(),
            Stage::Antivirus(Engine::Icap(_)) => "ICAP (c-icap RESPMOD)".into(),
            Stage::Antispam(_) => "rspamd (/checkv2)".into(),
        }
    }

    async fn check(&self, message: &[u8]) -> Result<(), FilterError> {
        match self {
            Stage::Antivirus(e) => e.scan(message).await.map(|_| ()),
            Stage::Antispam(r) => {
                let env = Envelope {
                    ip: Some("127.0.0.1".into()),
                    from: Some("s0@a.bench".into()),
                    rcpt: vec!["dest@b.bench".into()],
                    ..Default::default()
                };
                r.check(message, &env).await.map(|_| ())
            }
        }
    }
}

/// Sequential latency (p50, p99 in ms) and concurrent throughput (messages/s).
async fn time_stage(
    stage: &Arc<Stage>,
    message: &Arc<Vec<u8>>,
    clients: usize,
) -> Result<(f64, f64, f64)> {
    for _ in 0..5 {
        stage.check(message).await?;
    }
    let mut lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        stage.check(message).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    let until = Instant::now() + Duration::from_secs(5);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (s, m) = (stage.clone(), message.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    s.check(&m).await?;
                    n += 1;
                }
                Ok::<u64, FilterError>(n)
            })
        })
        .collect();
    let mut n = 0;
    for t in tasks {
        n += t.await.context("a scanning task panicked")??;
    }
    Ok((p(0.5), p(0.99), n as f64 / start.elapsed().as_secs_f64()))
}

pub fn run(seconds: u64, clients: usize, scanners: Scanners, write: Option<&Path>) -> Result<()> {
    let t = Duration::from_secs(60);
    let mut stages = Vec::new();
    if let Some(a) = &scanners.clamd {
        stages.push(Stage::Antivirus(Engine::Clamd(
            pec_filters::clamd::Clamd::new(a, t)?,
        )));
    }
    if let Some(a) = &scanners.icap {
        stages.push(Stage::Antivirus(Engine::Icap(
            pec_filters::icap::Icap::new(a, t)?,
        )));
    }
    if let Some(a) = &scanners.rspamd {
        stages.push(Stage::Antispam(Rspamd::new(a, t)?));
    }
    if stages.is_empty() {
        bail!("give the engines to measure: --clamd ADDR, --icap URL and/or --rspamd URL");
    }
    let small = Arc::new(crate::samples::sample_original("a.bench", 2048));
    let big = Arc::new(crate::samples::sample_original(
        "a.bench",
        100 * 1024 * 3 / 4,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = String::new();
    // p50 per size: the antivirus engines in sequence, and the antispam alongside them.
    let mut antivirus = [0.0f64; 2];
    let mut antispam = [0.0f64; 2];
    for stage in stages.into_iter().map(Arc::new) {
        for (k, (label, m)) in [("2 KB", &small), ("100 KB", &big)].into_iter().enumerate() {
            eprintln!("timing {} on {label} messages...", stage.name());
            let (p50, p99, rate) = rt.block_on(time_stage(&stage, m, clients))?;
            match *stage {
                Stage::Antivirus(_) => antivirus[k] += p50,
                Stage::Antispam(_) => antispam[k] = p50,
            }
            rows.push_str(&format!(
                "| {} | {label} | {p50:.1} ms | {p99:.1} ms | {rate:.0} |\n",
                stage.name()
            ));
        }
    }
    eprintln!("two gestori without filters...");
    let without = measure(seconds, clients, &Scanners::default())?;
    eprintln!("two gestori with the filters...");
    let with = measure(seconds, clients, &scanners)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let row = |what: &str, f: &Figures| {
        format!(
            "| {what} | {:.1} | {:.0} ms | {:.0} ms | {} |\n",
            f.tps, f.p50, f.p99, f.done
        )
    };
    let flags = [
        scanners.clamd.as_ref().map(|a| format!(" --clamd {a}")),
        scanners.icap.as_ref().map(|a| format!(" --icap {a}")),
        scanners.rspamd.as_ref().map(|a| format!(" --rspamd {a}")),
    ]
    .into_iter()
    .flatten()
    .collect::<String>();
    let section = format!(
        "\n## Cost of the security filters ({date})\n\n\
Machine: {cores} cores, the engines on the same machine. Command: `pec bench --scan --seconds {seconds} --clients {clients}{flags}` \
(release build). Engines: clamd with a small offline signature database, c-icap's virus_scan in front of \
that clamd, rspamd whose DNS queries a local dnsmasq answers at once (started by `scripts/scan-engines start`; \
no network here, so real DNS latency for SPF, DMARC and RBL checks is not included). Messages: an original \
with a 2 KB or 100 KB base64 attachment.\n\n\
Each engine alone (latency one message at a time; throughput with {clients} at once for 5 s):\n\n\
| engine | message | p50 | p99 | messages/s |\n|---|---|---:|---:|---:|\n{rows}\n\
Two gestori on loopback, both with the filters (clamd then ICAP, with rspamd at the same time) \
on every message they take in:\n\n\
| gestori | certified tx/s | p50 | p99 | transactions |\n|---|---:|---:|---:|---:|\n{r1}{r2}\n\
Throughput with the filters: {share:.0}% of the throughput without them (the engines share the cores \
with both gestori; a certified transaction is scanned four times: the submission at A, the envelope at B, \
the presa in carico and the delivery receipt back at A). Latency added to each scanned message, from the \
p50s above (antivirus engines one after the other, rspamd at the same time): {add_small:.1} ms for 2 KB, \
{add_big:.1} ms for 100 KB. The latencies in the gestori table are those of a saturated system (queueing), \
not of one message.\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        r1 = row("without filters", &without),
        r2 = row("with clamd + ICAP + rspamd", &with),
        share = with.tps / without.tps.max(f64::MIN_POSITIVE) * 100.0,
        add_small = antivirus[0].max(antispam[0]),
        add_big = antivirus[1].max(antispam[1]),
    );
    print!("{section}");
    if let Some(w) = write {
        crate::bench::append_section(w, &section)?;
    }
    Ok(())
}
