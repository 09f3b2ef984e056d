//! `pec`: the command-line entry point of the PEC provider: `serve` runs a gestore, `init`
//! prepares its data directory, `admin` and `index` manage it, `log verify` audits its message
//! log, and the format tools `samples`, `verify` and `bench` work on single messages.

mod admin;
mod bench;
mod bench_gestori;
mod bench_imap;
mod bench_postfix;
mod bench_scan;
mod bench_web;
mod config;
mod index;
mod init;
mod samples;
mod serve;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pec",
    version,
    about = "A PEC (Posta Elettronica Certificata) provider and its tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write one signed sample message of every PEC kind, the trust anchor and the Indice entry.
    Samples {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Service domain of the sample provider.
        #[arg(long, default_value = "pec.example.it")]
        domain: String,
    },
    /// Verify a message: kind, daticert, signature, trust, Indice, consistency.
    Verify {
        /// Print one JSON object (schema in docs/verify-json.md).
        #[arg(long)]
        json: bool,
        /// Use the trust anchors, the Indice copy and the fetched CRLs of this gestore's data
        /// directory.
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Trust anchor(s), PEM; repeatable.
        #[arg(long = "ca", value_name = "FILE.pem")]
        ca: Vec<PathBuf>,
        /// Indice dei gestori, LDIF.
        #[arg(long, value_name = "FILE.ldif")]
        index: Option<PathBuf>,
        /// Check certificates at this time (RFC 3339) instead of now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// The message file, or - for standard input.
        file: PathBuf,
    },
    /// Create the data directory of a new gestore: pec.toml, development PKI, Indice copy.
    Init {
        /// Data directory to create.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The service domain (also the first mailbox domain).
        #[arg(long)]
        domain: String,
        /// Provider name, as in the Indice and in daticert.xml.
        #[arg(long)]
        name: String,
        /// Address the services listen on.
        #[arg(long, default_value = "127.0.0.1")]
        listen_ip: String,
        /// `dev` (2525, 5870, 4650, 9930, 9950, 8443) or `standard` (25, 587, 465, 993, 995, 443).
        #[arg(long, default_value = "dev", value_parser = ["dev", "standard"])]
        ports: String,
        /// Static relay route, DOMAIN=HOST:PORT; repeatable.
        #[arg(long = "route", value_name = "DOMAIN=HOST:PORT")]
        routes: Vec<String>,
        /// clamd antivirus: HOST:PORT, unix:/PATH or /PATH (written to [scan]).
        #[arg(long, value_name = "ADDR")]
        clamd: Option<String>,
        /// ICAP antivirus service: icap://HOST[:PORT]/SERVICE (written to [scan]).
        #[arg(long, value_name = "URL")]
        icap: Option<String>,
        /// rspamd antispam: http://HOST:PORT (written to [scan]).
        #[arg(long, value_name = "URL")]
        rspamd: Option<String>,
        /// Where peers fetch the development CA's CRL: written into the signing
        /// certificate's cRLDistributionPoints; the first CRL is pki/ca.crl.
        #[arg(long, value_name = "URL")]
        crl_url: Option<String>,
        /// Where peers ask the development CA's OCSP responder: written into the signing
        /// certificate's authorityInfoAccess (the CA key is pki/ca.key).
        #[arg(long, value_name = "URL")]
        ocsp_url: Option<String>,
    },
    /// Run the gestore. Without --data, a demo gestore for pec.localhost in ./pec-data.
    Serve {
        /// Data directory (made by `pec init`).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// The Indice dei gestori copy.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Manage a running gestore through its admin API.
    Admin {
        /// Data directory of the gestore.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The message log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Measure building and signing throughput against OpenSSL's raw RSA-2048 signing rate.
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Append the results to this Markdown file (e.g. BENCHMARKS.md).
        #[arg(long)]
        write: Option<PathBuf>,
        /// Measure two gestori on loopback end to end instead (127.0.0.8 and 127.0.0.9).
        #[arg(long)]
        gestori: bool,
        /// Concurrent submitters (with --gestori).
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Measure the IMAP server against Dovecot on one mailbox instead (127.0.0.16;
        /// needs root and Debian's dovecot-imapd).
        #[arg(long, conflicts_with = "gestori")]
        imap: bool,
        /// Messages in the mailbox (with --imap or --web).
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Measure the REST API's sends per second and webmail page latency over a folder of
        /// --messages messages instead (127.0.0.16).
        #[arg(long, conflicts_with_all = ["gestori", "imap"])]
        web: bool,
        /// Measure the cost of the security filters instead: each engine alone, then two
        /// gestori without and with them (give --clamd, --icap, --rspamd).
        #[arg(long, conflicts_with_all = ["gestori", "imap"])]
        scan: bool,
        /// clamd to measure (with --scan): host:port or unix:/path.
        #[arg(long, requires = "scan")]
        clamd: Option<String>,
        /// ICAP antivirus service to measure (with --scan): icap://host[:port]/service.
        #[arg(long, requires = "scan")]
        icap: Option<String>,
        /// rspamd to measure (with --scan): http://host:port.
        #[arg(long, requires = "scan")]
        rspamd: Option<String>,
    },
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Print this gestore's Indice entry as LDIF.
    Export {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Add or replace peer entries from an LDIF file (validated; a bad file changes nothing).
    Import {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The LDIF file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Mailboxes.
    Mailbox {
        #[command(subcommand)]
        command: MailboxCommand,
    },
    /// List the messages of a mailbox.
    Messages {
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// Write the raw bytes of one message to standard output.
    Message {
        address: String,
        uid: u32,
        /// The folder the UID belongs to.
        #[arg(long, default_value = "INBOX")]
        folder: String,
    },
    /// Show the message log.
    Log {
        #[arg(long)]
        json: bool,
        /// Only the events of this transaction.
        #[arg(long, value_name = "IDENTIFICATIVO")]
        id: Option<String>,
    },
    /// List the virus store: infected messages kept for 30 months (pec.md §8.4).
    Quarantine {
        #[arg(long)]
        json: bool,
        /// Only entries stored in the last DAYS days.
        #[arg(long, value_name = "DAYS")]
        days: Option<u32>,
    },
    /// Print the metrics (Prometheus text): filter health and verdicts, sessions, queue.
    Metrics,
    /// The CRL distribution points of the Indice copy: the CRL held for each, its dates,
    /// and the last fetch (pec.md §4.4).
    Crl {
        #[arg(long)]
        json: bool,
        /// Fetch every point again now, whatever its schedule, then show the result.
        #[arg(long)]
        refresh: bool,
    },
    /// REST API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The antivirus engines.
    Scanners {
        #[command(subcommand)]
        command: ScannersCommand,
    },
    /// Move the server clock forward (needs dev.clock_control = true), e.g. 12h, 90m, 30s.
    Clock { advance: String },
    /// Queue length, clock, domains.
    Status,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token for the REST API acting for one mailbox; it is printed once.
    Create {
        address: String,
        /// A note to recognise the token by (e.g. the integration using it).
        #[arg(long, default_value = "")]
        label: String,
    },
}

#[derive(Subcommand)]
enum MailboxCommand {
    /// Create a mailbox; the password is read from --password-file, or generated and printed.
    Add {
        address: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Quota in bytes (0 = none).
        #[arg(long, default_value_t = 0)]
        quota: u64,
        /// What ordinary (non-PEC) mail to this mailbox becomes: an anomaly envelope, or a
        /// refusal; the gestore's policy.ordinary_mail when not given.
        #[arg(long, value_parser = ["anomalia", "refuse"])]
        ordinary_mail: Option<String>,
        /// What ordinary mail classed as spam becomes: moved to Junk, or deleted.
        #[arg(long, value_parser = ["junk", "delete"])]
        spam: Option<String>,
        /// The owner's contact address, where a password-reset link goes after a lockout.
        #[arg(long, value_name = "ADDRESS")]
        contact: Option<String>,
    },
    /// Change the settings of a mailbox (only those given).
    Set {
        address: String,
        #[arg(long, value_parser = ["anomalia", "refuse", "default"])]
        ordinary_mail: Option<String>,
        #[arg(long, value_parser = ["junk", "delete"])]
        spam: Option<String>,
        /// The owner's contact address ("" removes it).
        #[arg(long, value_name = "ADDRESS")]
        contact: Option<String>,
    },
    /// Set a new password (read from --password-file, or generated and printed); this also
    /// unlocks a mailbox locked for sending spam.
    Password {
        address: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List mailboxes.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ScannersCommand {
    /// Make every clamd reload its signature database now (after freshclam or a local
    /// signature file changed); no restart needed.
    Reload,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Check the hash chain and the daily seals of the log files, and the files against the
    /// store's copy of the events.
    Verify {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        /// Events committed this recently may not be in the files yet (a running gestore
        /// writes them within a second); 0 when the gestore is stopped.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        grace: i64,
        /// Check the seals against these trust anchors (PEM, repeatable) instead of the data
        /// directory's own, e.g. the provider CA certificate obtained independently.
        #[arg(long = "ca", value_name = "FILE.pem")]
        ca: Vec<PathBuf>,
    },
}

fn duration_secs(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (n, mult) = match s.chars().last() {
        Some('h') => (&s[..s.len() - 1], 3600),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('s') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    let n: i64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a duration such as 12h, 90m or 30s"))?;
    n.checked_mul(mult)
        .ok_or_else(|| anyhow::anyhow!("{s:?} is too long a duration"))
}

fn admin_run(data: &std::path::Path, command: AdminCommand) -> anyhow::Result<ExitCode> {
    use serde_json::json;
    let c = admin::Client::new(data)?;
    match command {
        AdminCommand::Mailbox {
            command:
                MailboxCommand::Add {
                    address,
                    password_file,
                    quota,
                    ordinary_mail,
                    spam,
                    contact,
                },
        } => {
            let (password, generated) = admin::password(password_file.as_deref())?;
            c.json(
                "POST",
                "/v1/mailboxes",
                Some(&json!({
                    "address": address,
                    "password": password,
                    "quota_bytes": quota,
                    "ordinary_mail": ordinary_mail,
                    "spam": spam,
                    "contact": contact,
                })),
            )?;
            if generated {
                println!("{address} created; password: {password}");
            } else {
                println!("{address} created");
            }
        }
        AdminCommand::Mailbox {
            command:
                MailboxCommand::Set {
                    address,
                    ordinary_mail,
                    spam,
                    contact,
                },
        } => {
            let mut body = serde_json::Map::new();
            for (k, v) in [
                ("ordinary_mail", ordinary_mail),
                ("spam", spam),
                ("contact", contact),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), v.into());
                }
            }
            if body.is_empty() {
                anyhow::bail!("nothing to change: give --ordinary-mail, --spam or --contact");
            }
            let v = c.json(
                "PATCH",
                &format!("/v1/mailboxes/{}", admin::segment(&address)),
                Some(&serde_json::Value::Object(body)),
            )?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        AdminCommand::Mailbox {
            command:
                MailboxCommand::Password {
                    address,
                    password_file,
                },
        } => {
            let (password, generated) = admin::password(password_file.as_deref())?;
            c.json(
                "PUT",
                &format!("/v1/mailboxes/{}/password", admin::segment(&address)),
                Some(&json!({ "password": password })),
            )?;
            if generated {
                println!("{address}: new password {password}; the mailbox is unlocked");
            } else {
                println!("{address}: password set; the mailbox is unlocked");
            }
        }
        AdminCommand::Quarantine { json, days } => {
            let since = days
                .map(|d| chrono::Utc::now().timestamp() - i64::from(d) * 86_400)
                .unwrap_or(0);
            let v = c.json("GET", &format!("/v1/quarantine?since={since}"), None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                admin::print_quarantine(&v);
            }
        }
        AdminCommand::Scanners {
            command: ScannersCommand::Reload,
        } => {
            let v = c.json("POST", "/v1/scanners/reload", None)?;
            println!("signatures reloaded by: {}", v["reloaded"]);
        }
        AdminCommand::Token {
            command: TokenCommand::Create { address, label },
        } => {
            let v = c.json(
                "POST",
                "/v1/tokens",
                Some(&serde_json::json!({ "address": address, "label": label })),
            )?;
            println!("{}", v["token"].as_str().unwrap_or_default());
        }
        AdminCommand::Metrics => {
            let r = c.request("GET", "/metrics", None)?;
            if r.status != 200 {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                anyhow::bail!("{}", v["error"].as_str().unwrap_or("the admin API refused"));
            }
            use std::io::Write as _;
            std::io::stdout().write_all(&r.body)?;
        }
        AdminCommand::Mailbox {
            command: MailboxCommand::List { json },
        } => {
            let v = c.json("GET", "/v1/mailboxes", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for m in v.as_array().into_iter().flatten() {
                    println!(
                        "{:<40} {:>6} messages {:>12} bytes{}",
                        m["address"].as_str().unwrap_or(""),
                        m["messages"],
                        m["used_bytes"],
                        if m["service"].as_bool() == Some(true) {
                            "  (service mailbox)"
                        } else if m["locked"].as_bool() == Some(true) {
                            "  LOCKED (sent spam)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        AdminCommand::Messages { address, json } => {
            let v = c.json(
                "GET",
                &format!("/v1/mailboxes/{}/messages", admin::segment(&address)),
                None,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                admin::print_messages(&v);
            }
        }
        AdminCommand::Message {
            address,
            uid,
            folder,
        } => {
            let r = c.request(
                "GET",
                &format!(
                    "/v1/mailboxes/{}/messages/{uid}?folder={}",
                    admin::segment(&address),
                    admin::segment(&folder)
                ),
                None,
            )?;
            if r.status != 200 {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                anyhow::bail!("{}", v["error"].as_str().unwrap_or("the admin API refused"));
            }
            use std::io::Write as _;
            std::io::stdout().write_all(&r.body)?;
        }
        AdminCommand::Log { json, id } => {
            let path = match &id {
                Some(i) => format!("/v1/log?id={}", admin::segment(i)),
                None => "/v1/log".into(),
            };
            let v = c.json("GET", &path, None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                admin::print_log(&v);
            }
        }
        AdminCommand::Crl { json, refresh } => {
            let v = if refresh {
                c.json("POST", "/v1/crl/refresh", None)?
            } else {
                c.json("GET", "/v1/crl", None)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                admin::print_crl(&v);
            }
        }
        AdminCommand::Clock { advance } => {
            let secs = duration_secs(&advance)?;
            let v = c.json("POST", "/v1/clock/advance", Some(&json!({"seconds": secs})))?;
            println!("clock offset now {} s", v["clock_offset_seconds"]);
        }
        AdminCommand::Status => {
            let v = c.json("GET", "/v1/status", None)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn log_verify(
    data: &std::path::Path,
    json: bool,
    grace: i64,
    ca: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let cfg = config::Config::load(data).map_err(anyhow::Error::msg)?;
    // Anchors from outside the directory under audit, when given: whoever can rewrite the
    // log could also replace the directory's own CA file.
    let anchors = if ca.is_empty() {
        serve::anchors(&cfg)?
    } else {
        let mut all = Vec::new();
        for f in ca {
            all.extend(serve::pem_certs(f)?);
        }
        all
    };
    let own = format!("posta-certificata@{}", cfg.domain);
    let store_dir = data.join("store");
    let store = |after: i64, limit: usize| {
        pec_store::SqliteStore::events_offline(&store_dir, after, limit).map_err(|e| e.to_string())
    };
    let report = pec_gestore::eventlog::verify_dir(
        &data.join("log"),
        &pec_gestore::eventlog::Verify {
            anchors: &anchors,
            own_address: Some(&own),
            store: Some(&store),
            now: chrono::Utc::now().timestamp(),
            grace: grace.max(0),
        },
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} entries in {} day file(s), {} sealed day(s), {} entries compared with the store",
            report.entries,
            report.days,
            report.sealed_days,
            report.store_entries.unwrap_or(0)
        );
        for p in &report.problems {
            println!("PROBLEM: {p}");
        }
        println!(
            "{}",
            if report.problems.is_empty() {
                "log intact"
            } else {
                "log NOT intact"
            }
        );
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PEC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Samples { out, domain } => samples::run(&out, &domain).map(|()| ExitCode::SUCCESS),
        Command::Verify {
            json,
            data,
            ca,
            index,
            at,
            file,
        } => verify::run(
            json,
            data.as_deref(),
            &ca,
            index.as_deref(),
            at.as_deref(),
            &file,
        ),
        Command::Init {
            data,
            domain,
            name,
            listen_ip,
            ports,
            routes,
            clamd,
            icap,
            rspamd,
            crl_url,
            ocsp_url,
        } => init::run(&init::InitOptions {
            data: &data,
            domain: &domain,
            name: &name,
            listen_ip: &listen_ip,
            standard_ports: ports == "standard",
            routes: &routes,
            revocation: pec_message::pki::RevocationPoints {
                crl: crl_url.as_deref(),
                ocsp: ocsp_url.as_deref(),
            },
            scanners: init::Scanners {
                clamd,
                icap,
                rspamd,
            },
        })
        .map(|()| ExitCode::SUCCESS),
        Command::Serve { data } => serve::run(data.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Index {
            command: IndexCommand::Export { data },
        } => index::export(&data).map(|()| ExitCode::SUCCESS),
        Command::Index {
            command: IndexCommand::Import { data, file },
        } => index::import(&data, &file).map(|()| ExitCode::SUCCESS),
        Command::Admin { data, command } => admin_run(&data, command),
        Command::Log {
            command:
                LogCommand::Verify {
                    data,
                    json,
                    grace,
                    ca,
                },
        } => log_verify(&data, json, grace, &ca),
        Command::Bench {
            seconds,
            write,
            clients,
            messages,
            web: true,
            ..
        } => {
            bench_web::run(seconds, clients, messages, write.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench {
            write,
            imap: true,
            messages,
            ..
        } => bench_imap::run(messages, write.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Bench {
            seconds,
            write,
            clients,
            scan: true,
            clamd,
            icap,
            rspamd,
            ..
        } => bench_scan::run(
            seconds,
            clients,
            init::Scanners {
                clamd,
                icap,
                rspamd,
            },
            write.as_deref(),
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Bench {
            seconds,
            write,
            gestori: false,
            ..
        } => bench::run(seconds, write.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Bench {
            seconds,
            write,
            clients,
            ..
        } => bench_gestori::run(seconds, clients, write.as_deref()).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pec: {e:#}");
            ExitCode::from(2)
        }
    }
}
