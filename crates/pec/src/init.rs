//! `pec init`: makes a data directory for a new gestore: `pec.toml`, a development PKI (a CA
//! that plays AgID CA1, the signing certificate with the pec.md §4.2 profile, a TLS
//! certificate), the Indice copy holding this gestore, and the admin token.

use crate::config::valid_host_port;
use anyhow::{Context, Result, bail};
use pec_index::{Index, ProviderRecord};
use pec_message::pki::{
    RevocationPoints, issue_signing_cert_with_points, issue_tls_cert, make_ca, make_crl,
};
use std::fmt::Write as _;
use std::path::Path;

/// What `pec init` was asked for.
pub struct InitOptions<'a> {
    pub data: &'a Path,
    pub domain: &'a str,
    pub name: &'a str,
    pub listen_ip: &'a str,
    pub standard_ports: bool,
    pub routes: &'a [String],
    /// The CRL distribution point and OCSP responder of the signing certificate (pec.md
    /// §4.4 step 3).
    pub revocation: RevocationPoints<'a>,
    pub scanners: Scanners,
}

/// The security filters `pec init` writes to `[scan]` (issue "Security filters", point 1).
#[derive(Debug, Clone, Default)]
pub struct Scanners {
    /// clamd: `host:port`, `unix:/path` or `/path`.
    pub clamd: Option<String>,
    /// An ICAP antivirus service: `icap://host[:port]/service`.
    pub icap: Option<String>,
    /// rspamd's normal worker: `http://host:port`.
    pub rspamd: Option<String>,
}

impl Scanners {
    /// Refuses an address the filter clients cannot use, naming the option.
    fn check(&self) -> Result<()> {
        let d = std::time::Duration::from_secs(1);
        if let Some(a) = &self.clamd {
            pec_filters::clamd::Clamd::new(a, d).map_err(|e| anyhow::anyhow!("--clamd: {e}"))?;
        }
        if let Some(a) = &self.icap {
            pec_filters::icap::Icap::new(a, d).map_err(|e| anyhow::anyhow!("--icap: {e}"))?;
        }
        if let Some(a) = &self.rspamd {
            pec_filters::rspamd::Rspamd::new(a, d).map_err(|e| anyhow::anyhow!("--rspamd: {e}"))?;
        }
        Ok(())
    }
}

/// Writes a file only its owner may read, created so from the start (no window in which the
/// umask's mode applies).
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(data)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What `pec init` writes or `pec serve` keeps in a data directory: any of them present means
/// the directory holds a gestore, and initialising it again would replace its keys.
const GESTORE_FILES: [&str; 6] = [
    "pec.toml",
    "pki",
    "store",
    "log",
    "index.ldif",
    "admin.token",
];

/// Creates the data directory, readable by its owner only: it holds the keys, the store with
/// every mailbox and the event log.
fn create_data_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// A random token, hex.
pub fn token() -> String {
    let mut b = [0u8; 24];
    rand_bytes(&mut b);
    hex::encode(b)
}

fn rand_bytes(b: &mut [u8]) {
    // openssl's CSPRNG; it cannot fail once the library is initialised.
    if openssl::rand::rand_bytes(b).is_err() {
        b.iter_mut().for_each(|x| *x = 0);
    }
}

pub fn run(o: &InitOptions<'_>) -> Result<()> {
    let domain = o.domain.trim().to_ascii_lowercase();
    if !domain.contains('.') || !crate::config::valid_domain(&domain) {
        bail!(
            "--domain {domain:?} is not a domain name such as pec.example.it (letters, digits \
             and hyphens, labels joined by dots)"
        );
    }
    if o.name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let ip: std::net::IpAddr = o
        .listen_ip
        .parse()
        .with_context(|| format!("--listen-ip {:?} is not an IP address", o.listen_ip))?;
    let mut routes = Vec::new();
    for r in o.routes {
        let Some((d, hp)) = r.split_once('=') else {
            bail!("--route {r:?} must be DOMAIN=HOST:PORT");
        };
        if !crate::config::valid_domain(&d.to_ascii_lowercase()) || !valid_host_port(hp) {
            bail!("--route {r:?} must be DOMAIN=HOST:PORT, e.g. b.test=127.0.0.3:2525");
        }
        routes.push((d.to_ascii_lowercase(), hp.to_string()));
    }
    o.scanners.check()?;
    for (flag, url) in [
        ("--crl-url", o.revocation.crl),
        ("--ocsp-url", o.revocation.ocsp),
    ] {
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("{flag} {url:?} must be an http:// or https:// URL");
        }
    }
    let toml_path = o.data.join("pec.toml");
    if toml_path.exists() {
        bail!(
            "{} exists already: this data directory is initialised",
            toml_path.display()
        );
    }
    let present: Vec<&str> = GESTORE_FILES
        .into_iter()
        .filter(|f| o.data.join(f).exists())
        .collect();
    if !present.is_empty() {
        bail!(
            "{} already holds {} but no pec.toml: it looks like a gestore's data directory, \
             and initialising it again would replace its keys and Indice copy. Restore its \
             pec.toml, or choose an empty directory",
            o.data.display(),
            present.join(", ")
        );
    }
    create_data_dir(o.data)?;
    let pki = o.data.join("pki");
    std::fs::create_dir_all(&pki).with_context(|| format!("cannot create {}", pki.display()))?;

    let now = chrono::Utc::now().timestamp() - 3600;
    let ca = make_ca(&format!("{} CA (sviluppo)", o.name), now, 3650)?;
    let signing =
        issue_signing_cert_with_points(&ca, o.name, &domain, None, now, 825, o.revocation)?;
    let hostname = format!("mx.{domain}");
    let ip_text = ip.to_string();
    let tls = issue_tls_cert(
        &ca,
        &hostname,
        &[&hostname, &domain, "localhost"],
        &[&ip_text],
        now,
        825,
    )?;
    std::fs::write(pki.join("ca.pem"), ca.cert.to_pem()?)?;
    write_private(&pki.join("ca.key"), &ca.key.private_key_to_pem_pkcs8()?)?;
    if o.revocation.crl.is_some() {
        // The CA's first CRL, empty, due again when the certificate expires: publish it at
        // --crl-url (a development CA has no one to issue a fresh CRL every few days).
        let crl = make_crl(&ca, &[], now, now + 825 * 86_400)?;
        std::fs::write(pki.join("ca.crl"), crl.to_der()?)?;
    }
    std::fs::write(pki.join("signing.pem"), signing.cert.to_pem()?)?;
    write_private(
        &pki.join("signing.key"),
        &signing.key.private_key_to_pem_pkcs8()?,
    )?;
    let mut chain = tls.cert.to_pem()?;
    chain.extend_from_slice(&ca.cert.to_pem()?);
    std::fs::write(pki.join("tls.pem"), chain)?;
    write_private(&pki.join("tls.key"), &tls.key.private_key_to_pem_pkcs8()?)?;

    let record = ProviderRecord::new(
        o.name,
        signing.cert_der()?,
        &format!("posta-certificata@{domain}"),
        &[&domain],
    );
    std::fs::write(
        o.data.join("index.ldif"),
        Index {
            records: vec![record],
        }
        .to_ldif(),
    )?;
    write_private(&o.data.join("admin.token"), token().as_bytes())?;

    let (mx, sub, subs, imap, imaps, pop3, pop3s, https) = if o.standard_ports {
        (25, 587, 465, 143, 993, 110, 995, 443)
    } else {
        (2525, 5870, 4650, 1430, 9930, 1100, 9950, 8443)
    };
    let mut t = String::new();
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    writeln!(
        t,
        "# PEC gestore configuration (reference: docs/config.md)."
    )?;
    writeln!(t, "[gestore]")?;
    writeln!(t, "name = {}", q(o.name))?;
    writeln!(t, "domain = {}", q(&domain))?;
    writeln!(t, "domains = [{}]", q(&domain))?;
    writeln!(t, "hostname = {}", q(&hostname))?;
    writeln!(t, "\n[listen]\nip = {}", q(&ip_text))?;
    writeln!(
        t,
        "mx = {mx}\nsubmission = {sub}\nsubmissions = {subs}\nimap = {imap}\nimaps = {imaps}\npop3 = {pop3}\npop3s = {pop3s}\nhttps = {https}\nadmin = 8025"
    )?;
    writeln!(t, "\n[tls]\ncert = \"pki/tls.pem\"\nkey = \"pki/tls.key\"")?;
    writeln!(
        t,
        "\n[signing]\ncert = \"pki/signing.pem\"\nkey = \"pki/signing.key\"\nchain = [\"pki/ca.pem\"]"
    )?;
    writeln!(
        t,
        "\n[trust]\nanchors = [\"pki/ca.pem\"]\nindex = \"index.ldif\"\n\
         # CRLs of the Indice certificates are fetched again this often (seconds) at most.\n\
         crl_refresh_secs = 14400\n\
         # true: mail signed by a certificate whose CRL cannot be had is not trusted.\n\
         crl_required = false"
    )?;
    writeln!(t, "\n[policy]\nordinary_mail = \"anomalia\"")?;
    writeln!(t, "\n[relay]")?;
    if o.standard_ports {
        writeln!(t, "tls_verify = true")?;
    } else {
        writeln!(
            t,
            "# Development peers use private CAs: encrypt without checking their TLS certificates.\ntls_verify = false"
        )?;
    }
    if !routes.is_empty() {
        writeln!(t, "\n[relay.routes]")?;
        for (d, hp) in &routes {
            writeln!(t, "{} = {}", q(d), q(hp))?;
        }
    }
    writeln!(
        t,
        "\n[scan]\n# Antivirus engines run in this order: clamd, then ICAP; rspamd checks for spam."
    )?;
    let scanner = |t: &mut String, key: &str, v: &Option<String>, example: &str| match v {
        Some(v) => writeln!(t, "{key} = {}", q(v)),
        None => writeln!(t, "# {key} = {}", q(example)),
    };
    scanner(&mut t, "clamd", &o.scanners.clamd, "127.0.0.1:3310")?;
    scanner(
        &mut t,
        "icap",
        &o.scanners.icap,
        "icap://127.0.0.1:1344/avscan",
    )?;
    scanner(
        &mut t,
        "rspamd",
        &o.scanners.rspamd,
        "http://127.0.0.1:11333",
    )?;
    writeln!(t, "timeout_secs = 60")?;
    std::fs::write(&toml_path, t)?;
    println!(
        "Initialised {} for {domain} ({}).\n  configuration: {}\n  Indice entry:  pec index export --data {}",
        o.data.display(),
        o.name,
        toml_path.display(),
        o.data.display()
    );
    Ok(())
}
