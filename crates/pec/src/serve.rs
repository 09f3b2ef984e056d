//! `pec serve`: the composition root. Loads `pec.toml`, opens the store, loads the keys, the
//! trust anchors and the Indice copy, starts the workers, the SMTP listeners and the admin
//! API, and prints where to connect.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use pec_engine::access::Limits;
use pec_engine::receiving::OrdinaryPolicy;
use pec_gestore::{Clock, Gestore, Settings};
use pec_index::Index;
use pec_message::build::Provider;
use pec_message::smime::SoftwareSigner;
use pec_smtp::relay::{Relay, RelayConfig};
use pec_smtp::server::limits::{Limiter, Limits as SmtpLimits};
use pec_smtp::server::listener::{Service, serve as serve_smtp};
use pec_smtp::server::session::{Role, SessionConfig};
use pec_store::{SqliteStore, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub const DEMO_DIR: &str = "pec-data";
pub const DEMO_DOMAIN: &str = "pec.localhost";
const DEMO_USER: &str = "demo@pec.localhost";

pub(crate) fn pem_certs(path: &Path) -> Result<Vec<openssl::x509::X509>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = openssl::x509::X509::stack_from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

fn signer(cfg: &Config) -> Result<SoftwareSigner> {
    let key_pem = std::fs::read(&cfg.signing_key)
        .with_context(|| format!("cannot read {}", cfg.signing_key.display()))?;
    let key = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .with_context(|| format!("{} is not a PEM private key", cfg.signing_key.display()))?;
    let cert = pem_certs(&cfg.signing_cert)?.remove(0).to_der()?;
    let mut chain = Vec::new();
    for p in &cfg.signing_chain {
        for c in pem_certs(p)? {
            chain.push(c.to_der()?);
        }
    }
    SoftwareSigner::from_pkcs8(&key.private_key_to_pkcs8()?, cert, chain)
        .with_context(|| format!("{} cannot sign", cfg.signing_key.display()))
}

/// Trust anchors: the configured CA files.
pub fn anchors(cfg: &Config) -> Result<Vec<openssl::x509::X509>> {
    let mut out = Vec::new();
    for p in &cfg.anchors {
        out.extend(pem_certs(p)?);
    }
    Ok(out)
}

pub fn load_index(path: &Path) -> Result<Index> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Index::from_ldif(&text)
        .with_context(|| format!("{} is not a valid Indice LDIF", path.display()))
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for {what} (is another server using the port?)")
    })
}

pub fn run(data: Option<&Path>) -> Result<()> {
    let (dir, demo) = match data {
        Some(d) => (d.to_path_buf(), false),
        None => (std::path::PathBuf::from(DEMO_DIR), true),
    };
    if demo {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Taken before anything touches DIR (two demo servers started at once would both
    // initialise it), and held until the process ends, whichever way it ends.
    let _lock = if dir.is_dir() {
        Some(lock_data_dir(&dir)?)
    } else {
        None
    };
    let fresh = demo && !dir.join("pec.toml").exists();
    if fresh {
        crate::init::run(&crate::init::InitOptions {
            data: &dir,
            domain: DEMO_DOMAIN,
            name: "PEC Localhost (demo)",
            listen_ip: "127.0.0.1",
            standard_ports: false,
            routes: &[],
            revocation: Default::default(),
            scanners: Default::default(),
        })?;
    }
    let cfg = Config::load(&dir).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg, fresh))
}

/// Takes `DIR/pec.lock` for this process: one `pec serve` per data directory. A second one
/// would release the first one's queue leases at start (so both would relay the same
/// entries) and append the same events to the log files twice.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("pec.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            bail!(
                "another `pec serve` (pid {}) is already running on {}: stop it first, or \
                 give another --data directory",
                pid.trim(),
                dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    f.set_len(0)?;
    f.rewind()?;
    write!(f, "{}", std::process::id())?;
    Ok(f)
}

/// The shortest admin token `pec serve` accepts (`pec init` writes 48 hex characters).
const MIN_ADMIN_TOKEN: usize = 16;

async fn serve(cfg: Config, demo: bool) -> Result<()> {
    let store = Arc::new(
        SqliteStore::open(&cfg.dir.join("store"))
            .await
            .with_context(|| {
                format!(
                    "cannot open the store in {}",
                    cfg.dir.join("store").display()
                )
            })?,
    );
    let signer = signer(&cfg)?;
    let anchors = anchors(&cfg)?;
    let index = load_index(&cfg.index)?;
    let settings = Settings {
        provider: Provider {
            name: cfg.name.clone(),
            service_domain: cfg.domain.clone(),
        },
        domains: cfg.domains.clone(),
        hostname: cfg.hostname.clone(),
        limits: Limits {
            max_size_x_recipients: cfg.max_size_x_recipients,
            max_recipients: cfg.max_recipients,
        },
        ordinary_policy: if cfg.ordinary_mail == "refuse" {
            OrdinaryPolicy::Refuse
        } else {
            OrdinaryPolicy::Anomalia
        },
        data_dir: cfg.dir.clone(),
        index_path: cfg.index.clone(),
        queue_lifetime_secs: cfg.queue_lifetime_hours * 3600,
        public_url: public_url(&cfg),
        crl_refresh_secs: cfg.crl_refresh_secs,
        crl_required: cfg.crl_required,
    };
    let g = Arc::new(
        Gestore::new(
            settings,
            store,
            Box::new(signer),
            anchors,
            index,
            Clock::default(),
        )
        .with_filters(filters(&cfg)?),
    );
    g.ensure_service_mailbox().await?;
    g.load_crl_cache();
    // The embedded store has one user: whatever a crashed predecessor had leased resumes now.
    g.store.release_leases().await?;
    let mut demo_password = None;
    if demo {
        let password = crate::init::token()[..16].to_string();
        g.add_mailbox(DEMO_USER, &password, 0, Default::default())
            .await?;
        crate::init::write_private(
            &cfg.dir.join("demo-password.txt"),
            format!("{password}\n").as_bytes(),
        )?;
        demo_password = Some(password);
    } else if cfg.dir.join("demo-password.txt").exists() {
        demo_password = std::fs::read_to_string(cfg.dir.join("demo-password.txt"))
            .ok()
            .map(|s| s.trim().to_string());
    }

    let relay = Relay::new(RelayConfig {
        helo: cfg.hostname.clone(),
        routes: cfg.routes.clone(),
        resolver: cfg.resolver,
        mx_port: cfg.relay_mx_port,
        tls: pec_smtp::tls::client_config(cfg.tls_verify, &cfg.ca_files)
            .map_err(anyhow::Error::msg)?,
        // RFC 7435: toward ordinary domains any certificate, or none, beats cleartext.
        opportunistic_tls: pec_smtp::tls::client_config(false, &[]).map_err(anyhow::Error::msg)?,
        timeout: Duration::from_secs(cfg.relay_timeout_secs),
        // Outbound mail leaves from the address the gestore listens on, when it has one.
        source: (!cfg.listen_ip.is_unspecified()).then_some(cfg.listen_ip),
    });
    g.spawn_workers(Arc::new(relay));
    // Webhooks of the REST API and CRL fetches trust the same roots as the relay.
    let http = Arc::new(pec_web::poster::HttpPoster::new(
        pec_smtp::tls::client_config(cfg.tls_verify, &cfg.ca_files).map_err(anyhow::Error::msg)?,
    ));
    g.spawn_webhooks(http.clone());
    g.spawn_crl_refresher(http);

    let tls = tokio_rustls::TlsAcceptor::from(
        pec_smtp::tls::server_config(&cfg.tls_cert, &cfg.tls_key).map_err(anyhow::Error::msg)?,
    );
    let limiter = Limiter::new(SmtpLimits {
        max_connections: cfg.max_connections,
        max_connections_per_ip: cfg.max_connections_per_ip,
        messages_per_minute_per_ip: cfg.messages_per_minute_per_ip,
        message_memory_bytes: cfg.message_memory_bytes,
    });
    let template = |role| SessionConfig {
        role,
        hostname: cfg.hostname.clone(),
        max_message_bytes: cfg.max_message_bytes,
        max_recipients: smtp_recipients(role, cfg.max_recipients),
        starttls: true,
        tls: false,
        peer: cfg.listen_ip,
    };
    let ip = cfg.listen_ip;
    let services = [
        (cfg.mx_port, Role::Mx, false, "MX (SMTP, STARTTLS optional)"),
        (
            cfg.submission_port,
            Role::Submission,
            false,
            "submission (SMTP, STARTTLS + AUTH)",
        ),
        (
            cfg.submissions_port,
            Role::Submission,
            true,
            "submission (SMTP over TLS + AUTH)",
        ),
    ];
    let mut lines = Vec::new();
    for (port, role, implicit, what) in services {
        let l = bind((ip, port).into(), what).await?;
        lines.push(format!("  {what:<38} {ip}:{port}"));
        tokio::spawn(serve_smtp(
            g.clone(),
            l,
            Service {
                role,
                implicit_tls: implicit,
                tls: Some(tls.clone()),
                template: template(role),
                limiter: limiter.clone(),
            },
        ));
    }
    for (port, implicit, what) in [
        (cfg.pop3s_port, true, "POP3S (POP3 over TLS)"),
        (cfg.pop3_port, false, "POP3 (STLS required before login)"),
    ] {
        let l = bind((ip, port).into(), what).await?;
        lines.push(format!("  {what:<38} {ip}:{port}"));
        tokio::spawn(pec_pop3::listener::serve(
            g.clone(),
            l,
            pec_pop3::listener::Service {
                hostname: cfg.hostname.clone(),
                implicit_tls: implicit,
                tls: tls.clone(),
                max_connections: cfg.max_connections,
                max_connections_per_ip: cfg.max_connections_per_ip,
            },
        ));
    }
    // Both IMAP listeners share one set of folder indexes.
    let imap_index = std::sync::Arc::new(pec_imap::index_cache::IndexCache::default());
    for (port, implicit, what) in [
        (cfg.imaps_port, true, "IMAPS (IMAP over TLS)"),
        (
            cfg.imap_port,
            false,
            "IMAP (STARTTLS required before login)",
        ),
    ] {
        let l = bind((ip, port).into(), what).await?;
        lines.push(format!("  {what:<38} {ip}:{port}"));
        tokio::spawn(pec_imap::listener::serve(
            g.clone(),
            l,
            pec_imap::listener::Service {
                hostname: cfg.hostname.clone(),
                implicit_tls: implicit,
                tls: tls.clone(),
                max_connections: cfg.max_connections,
                max_connections_per_ip: cfg.max_connections_per_ip,
                index: imap_index.clone(),
            },
        ));
    }
    // The HTTPS listener: webmail, REST API, password reset, mail client autoconfiguration.
    // A gestore on a loopback address is only reachable by that address, which its
    // certificate also names.
    let https = bind((ip, cfg.https_port).into(), "HTTPS").await?;
    lines.push(format!(
        "  {:<38} https://{ip}:{}/",
        "webmail (HTTPS)", cfg.https_port
    ));
    lines.push(format!(
        "  {:<38} https://{ip}:{}/api/openapi.json",
        "REST API (HTTPS, bearer tokens)", cfg.https_port
    ));
    let endpoints = pec_web::autoconfig::Endpoints {
        domain: cfg.domain.clone(),
        name: cfg.name.clone(),
        host: public_host(&cfg),
        imaps: cfg.imaps_port,
        pop3s: cfg.pop3s_port,
        submissions: cfg.submissions_port,
    };
    let https = pec_web::autoconfig::TlsListener::new(https, tls.clone())?;
    let site = pec_web::autoconfig::router(endpoints)
        .merge(pec_web::reset::router(g.clone()))
        .merge(pec_web::webmail::router(g.clone()))
        .merge(pec_web::api::router(g.clone()));
    tokio::spawn(async move {
        // The client address reaches the handlers (login throttling) through `tap_io`.
        use axum::serve::ListenerExt;
        let site = site.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(https.tap_io(|_| {}), site).await {
            tracing::error!("HTTPS listener stopped: {e}");
        }
    });
    let token = std::fs::read_to_string(cfg.dir.join("admin.token"))
        .with_context(|| format!("cannot read {}", cfg.dir.join("admin.token").display()))?
        .trim()
        .to_string();
    // An empty token would match a request that sends none.
    if token.len() < MIN_ADMIN_TOKEN {
        anyhow::bail!(
            "{} holds a token of {} characters; the admin API needs at least {MIN_ADMIN_TOKEN} \
             (write a long random one, e.g. `openssl rand -hex 24`)",
            cfg.dir.join("admin.token").display(),
            token.len()
        );
    }
    let admin = bind(cfg.admin_addr(), "the admin API").await?;
    lines.push(format!(
        "  {:<38} http://{}",
        "admin API (loopback, token)",
        cfg.admin_addr()
    ));
    let router = pec_web::admin::router(g.clone(), token, cfg.clock_control);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin, router).await {
            tracing::error!("admin API stopped: {e}");
        }
    });

    println!(
        "PEC gestore \"{}\" serving {} is running.",
        cfg.name,
        cfg.domains.join(", ")
    );
    for l in &lines {
        println!("{l}");
    }
    println!(
        "  data directory                         {}",
        cfg.dir.display()
    );
    println!(
        "  TLS certificate (development CA)       {}",
        cfg.dir.join("pki/ca.pem").display()
    );
    for l in scanner_status(&g.filters).await {
        println!("{l}");
    }
    if let Some(p) = &demo_password {
        println!("\nDemo mailbox: {DEMO_USER}  password: {p}");
        println!(
            "Configure a mail client with SMTP {ip}:{} (STARTTLS) or {ip}:{} (TLS), user {DEMO_USER}.",
            cfg.submission_port, cfg.submissions_port
        );
        println!(
            "Read mail with: pec admin --data {} messages {DEMO_USER}",
            cfg.dir.display()
        );
    }
    println!(
        "Add mailboxes with: pec admin --data {} mailbox add ADDRESS",
        cfg.dir.display()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("pec: stopping");
    Ok(())
}

/// The host name users reach: a gestore on a loopback address is reachable only by that
/// address, which its certificate also names.
fn public_host(cfg: &Config) -> String {
    if cfg.listen_ip.is_loopback() {
        cfg.listen_ip.to_string()
    } else {
        cfg.hostname.clone()
    }
}

/// `https://host[:port]`, for links in mail (the password-reset link).
fn public_url(cfg: &Config) -> String {
    match cfg.https_port {
        443 => format!("https://{}", public_host(cfg)),
        p => format!("https://{}:{p}", public_host(cfg)),
    }
}

/// The security filters of `[scan]`: the antivirus chain in the order of product.md §4
/// (clamd, then the ICAP engine) and the antispam engine.
pub fn filters(cfg: &Config) -> Result<pec_gestore::Filters> {
    let t = std::time::Duration::from_secs(cfg.scan_timeout_secs);
    let mut chain = pec_filters::ScanChain::default();
    if let Some(a) = &cfg.scan_clamd {
        chain.engines.push(pec_filters::Engine::Clamd(
            pec_filters::clamd::Clamd::new(a, t).map_err(anyhow::Error::msg)?,
        ));
    }
    if let Some(a) = &cfg.scan_icap {
        chain.engines.push(pec_filters::Engine::Icap(
            pec_filters::icap::Icap::new(a, t).map_err(anyhow::Error::msg)?,
        ));
    }
    let antispam = match &cfg.scan_rspamd {
        Some(a) => Some(pec_filters::rspamd::Rspamd::new(a, t).map_err(anyhow::Error::msg)?),
        None => None,
    };
    Ok(pec_gestore::Filters::new(chain, antispam))
}

/// One line per security filter configured in `[scan]`, saying whether it answers now, or
/// a warning when none is.
async fn scanner_status(g: &pec_gestore::Filters) -> Vec<String> {
    let mut out = Vec::new();
    let state = |r: Result<(), pec_filters::FilterError>| match r {
        Ok(()) => "answering".to_string(),
        Err(e) => format!("NOT answering: {e}; mail waits with a 4xx until it does"),
    };
    for e in &g.antivirus.engines {
        let (what, addr) = match e {
            pec_filters::Engine::Clamd(c) => ("antivirus: clamd", c.address.clone()),
            pec_filters::Engine::Icap(i) => ("antivirus: ICAP", i.url.clone()),
        };
        out.push(format!("  {what:<38} {addr} ({})", state(e.health().await)));
    }
    if let Some(r) = &g.antispam {
        out.push(format!(
            "  {:<38} {} ({})",
            "antispam: rspamd",
            r.url,
            state(r.ping().await)
        ));
    }
    if out.is_empty() {
        out.push(
            "  WARNING: no antivirus or antispam engine is configured ([scan] in pec.toml): mail is not scanned"
                .into(),
        );
    }
    out
}

/// The RCPT cap of an SMTP session. pec.md §5.1: too many recipients is a formal check,
/// answered with a non-accettazione, not an SMTP refusal (only a size beyond the hard limit
/// is refused in SMTP); so the submission ports take more RCPTs than `limit` and let the
/// access point refuse them, and only a number far past it (an abuse, not a mistake) gets
/// `452` (RFC 5321 §4.5.3.1.8). The MX keeps `limit`.
fn smtp_recipients(role: Role, limit: usize) -> usize {
    match role {
        Role::Submission => limit.saturating_mul(4).max(1000),
        _ => limit,
    }
}
