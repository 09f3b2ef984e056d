//! `pec.toml`: one file configures a gestore. [`Config::load`] reports every problem at once,
//! each with its key path, and never stops at the first. Relative paths are relative to the
//! directory holding the file. The reference is docs/config.md.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub name: String,
    pub domain: String,
    pub domains: Vec<String>,
    pub hostname: String,
    pub listen_ip: IpAddr,
    pub mx_port: u16,
    pub submission_port: u16,
    pub submissions_port: u16,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub pop3_port: u16,
    pub pop3s_port: u16,
    pub https_port: u16,
    pub admin_port: u16,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub signing_cert: PathBuf,
    pub signing_key: PathBuf,
    pub signing_chain: Vec<PathBuf>,
    pub anchors: Vec<PathBuf>,
    pub index: PathBuf,
    /// `trust.crl_refresh_secs`: how often each CRL is fetched again, at most.
    pub crl_refresh_secs: i64,
    /// `trust.crl_required`: refuse a signer whose CRL is not at hand.
    pub crl_required: bool,
    pub max_message_bytes: u64,
    pub max_size_x_recipients: u64,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub messages_per_minute_per_ip: u32,
    pub message_memory_bytes: u64,
    pub ordinary_mail: String,
    pub routes: HashMap<String, String>,
    pub resolver: Option<SocketAddr>,
    pub relay_mx_port: u16,
    pub tls_verify: bool,
    pub ca_files: Vec<PathBuf>,
    pub relay_timeout_secs: u64,
    pub queue_lifetime_hours: i64,
    pub clock_control: bool,
    /// `[scan]`: clamd address, ICAP URL, rspamd URL, each validated.
    pub scan_clamd: Option<String>,
    pub scan_icap: Option<String>,
    pub scan_rspamd: Option<String>,
    pub scan_timeout_secs: u64,
}

/// Reads typed values out of a TOML table, collecting errors with their key paths.
struct Reader {
    errors: Vec<String>,
}

impl Reader {
    fn section<'a>(&mut self, root: &'a Table, name: &str, allowed: &[&str]) -> Option<&'a Table> {
        match root.get(name) {
            None => None,
            Some(Value::Table(t)) => {
                for k in t.keys() {
                    if !allowed.contains(&k.as_str()) {
                        self.errors.push(format!(
                            "{name}.{k}: unknown key (allowed: {})",
                            allowed.join(", ")
                        ));
                    }
                }
                Some(t)
            }
            Some(_) => {
                self.errors.push(format!("{name}: expected a table"));
                None
            }
        }
    }

    fn string(&mut self, t: Option<&Table>, path: &str, default: Option<&str>) -> String {
        let key = path.rsplit('.').next().unwrap_or(path);
        match t.and_then(|t| t.get(key)) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::String(_)) => {
                self.errors.push(format!("{path}: must not be empty"));
                String::new()
            }
            Some(_) => {
                self.errors.push(format!("{path}: expected a string"));
                String::new()
            }
            None => match default {
                Some(d) => d.to_string(),
                None => {
                    self.errors.push(format!("{path}: missing (required)"));
                    String::new()
                }
            },
        }
    }

    fn int(
        &mut self,
        t: Option<&Table>,
        path: &str,
        default: i64,
        min: i64,
        max: i64,
        why: &str,
    ) -> i64 {
        let key = path.rsplit('.').next().unwrap_or(path);
        match t.and_then(|t| t.get(key)) {
            None => default,
            Some(Value::Integer(n)) if (min..=max).contains(n) => *n,
            Some(Value::Integer(n)) => {
                self.errors
                    .push(format!("{path}: {n} is out of range {min}..={max}{why}"));
                default
            }
            Some(_) => {
                self.errors.push(format!("{path}: expected an integer"));
                default
            }
        }
    }

    fn boolean(&mut self, t: Option<&Table>, path: &str, default: bool) -> bool {
        let key = path.rsplit('.').next().unwrap_or(path);
        match t.and_then(|t| t.get(key)) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(_) => {
                self.errors.push(format!("{path}: expected true or false"));
                default
            }
        }
    }

    fn strings(&mut self, t: Option<&Table>, path: &str, default: &[&str]) -> Vec<String> {
        let key = path.rsplit('.').next().unwrap_or(path);
        match t.and_then(|t| t.get(key)) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.trim().to_string()),
                    _ => {
                        self.errors.push(format!("{path}[{i}]: expected a string"));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                self.errors
                    .push(format!("{path}: expected a list of strings"));
                Vec::new()
            }
        }
    }

    fn path(&mut self, dir: &Path, t: Option<&Table>, path: &str, default: &str) -> PathBuf {
        let p = self.string(t, path, Some(default));
        dir.join(p)
    }
}

pub fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `host:port` with a port.
pub fn valid_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
}

impl Config {
    /// Loads `dir/pec.toml`; the error lists every problem, one a line.
    pub fn load(dir: &Path) -> Result<Config, String> {
        let file = dir.join("pec.toml");
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "cannot read {}: {e} (create it with `pec init --data {} --domain DOMAIN --name NAME`)",
                file.display(),
                dir.display()
            )
        })?;
        let root: Table = text
            .parse()
            .map_err(|e| format!("{}: not valid TOML: {e}", file.display()))?;
        let mut r = Reader { errors: Vec::new() };
        for k in root.keys() {
            if ![
                "gestore", "listen", "tls", "signing", "trust", "limits", "policy", "relay",
                "scan", "dev",
            ]
            .contains(&k.as_str())
            {
                r.errors.push(format!("{k}: unknown section"));
            }
        }
        let g = r.section(&root, "gestore", &["name", "domain", "domains", "hostname"]);
        if g.is_none() {
            r.errors
                .push("gestore: missing section (name and domain are required)".into());
        }
        let name = r.string(g, "gestore.name", None);
        let domain = r.string(g, "gestore.domain", None).to_ascii_lowercase();
        if !domain.is_empty() && !valid_domain(&domain) {
            r.errors
                .push(format!("gestore.domain: {domain:?} is not a domain name"));
        }
        let domain_ref = domain.clone();
        let mut domains: Vec<String> = r
            .strings(g, "gestore.domains", &[domain_ref.as_str()])
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        for d in &domains {
            if !valid_domain(d) {
                r.errors
                    .push(format!("gestore.domains: {d:?} is not a domain name"));
            }
        }
        if !domains.contains(&domain) {
            domains.insert(0, domain.clone());
        }
        let hostname = r.string(g, "gestore.hostname", Some(&format!("mx.{domain}")));
        if !valid_domain(&hostname.to_ascii_lowercase()) {
            r.errors.push(format!(
                "gestore.hostname: {hostname:?} is not a host name (it is sent in EHLO and \
                 Message-IDs)"
            ));
        }

        let l = r.section(
            &root,
            "listen",
            &[
                "ip",
                "mx",
                "submission",
                "submissions",
                "imap",
                "imaps",
                "pop3",
                "pop3s",
                "https",
                "admin",
            ],
        );
        let ip_text = r.string(l, "listen.ip", Some("127.0.0.1"));
        let listen_ip = ip_text.parse().unwrap_or_else(|_| {
            r.errors
                .push(format!("listen.ip: {ip_text:?} is not an IP address"));
            IpAddr::from([127, 0, 0, 1])
        });
        let port = |r: &mut Reader, key: &str, d: i64| r.int(l, key, d, 1, 65535, "") as u16;
        let mx_port = port(&mut r, "listen.mx", 2525);
        let submission_port = port(&mut r, "listen.submission", 5870);
        let submissions_port = port(&mut r, "listen.submissions", 4650);
        let imap_port = port(&mut r, "listen.imap", 1430);
        let imaps_port = port(&mut r, "listen.imaps", 9930);
        let pop3_port = port(&mut r, "listen.pop3", 1100);
        let pop3s_port = port(&mut r, "listen.pop3s", 9950);
        let https_port = port(&mut r, "listen.https", 8443);
        let admin_port = port(&mut r, "listen.admin", 8025);
        // Every listener binds listen.ip; the admin API binds it too when it is loopback.
        let mut bound = vec![
            ("listen.mx", mx_port),
            ("listen.submission", submission_port),
            ("listen.submissions", submissions_port),
            ("listen.imap", imap_port),
            ("listen.imaps", imaps_port),
            ("listen.pop3", pop3_port),
            ("listen.pop3s", pop3s_port),
            ("listen.https", https_port),
        ];
        if listen_ip.is_loopback() {
            bound.push(("listen.admin", admin_port));
        }
        for (i, (key, p)) in bound.iter().enumerate() {
            if let Some((first, _)) = bound[..i].iter().find(|(_, q)| q == p) {
                r.errors
                    .push(format!("{key}: port {p} is already taken by {first}"));
            }
        }

        let t = r.section(&root, "tls", &["cert", "key"]);
        let tls_cert = r.path(dir, t, "tls.cert", "pki/tls.pem");
        let tls_key = r.path(dir, t, "tls.key", "pki/tls.key");
        let s = r.section(&root, "signing", &["cert", "key", "chain"]);
        let signing_cert = r.path(dir, s, "signing.cert", "pki/signing.pem");
        let signing_key = r.path(dir, s, "signing.key", "pki/signing.key");
        let signing_chain = r
            .strings(s, "signing.chain", &["pki/ca.pem"])
            .into_iter()
            .map(|p| dir.join(p))
            .collect();
        let tr = r.section(
            &root,
            "trust",
            &["anchors", "index", "crl_refresh_secs", "crl_required"],
        );
        let anchors = r
            .strings(tr, "trust.anchors", &["pki/ca.pem"])
            .into_iter()
            .map(|p| dir.join(p))
            .collect();
        let index = r.path(dir, tr, "trust.index", "index.ldif");
        let crl_refresh_secs = r.int(
            tr,
            "trust.crl_refresh_secs",
            4 * 3600,
            1,
            86_400,
            " (pec.md §4.4: often enough to keep the data current)",
        );
        let crl_required = r.boolean(tr, "trust.crl_required", false);

        let li = r.section(
            &root,
            "limits",
            &[
                "max_message_bytes",
                "max_size_x_recipients",
                "max_recipients",
                "max_connections",
                "max_connections_per_ip",
                "messages_per_minute_per_ip",
                "message_memory_bytes",
            ],
        );
        let floor = " (DM art. 12 guarantees at least 30 MB and 50 recipients)";
        let max_message_bytes = r.int(
            li,
            "limits.max_message_bytes",
            100 << 20,
            // A 30 MB message to one recipient is within the guaranteed floor.
            pec_engine::access::MIN_SIZE_X_RECIPIENTS as i64,
            1 << 34,
            floor,
        ) as u64;
        let max_size_x_recipients = r.int(
            li,
            "limits.max_size_x_recipients",
            100 << 20,
            pec_engine::access::MIN_SIZE_X_RECIPIENTS as i64,
            1 << 40,
            floor,
        ) as u64;
        let max_recipients = r.int(
            li,
            "limits.max_recipients",
            100,
            pec_engine::access::MIN_RECIPIENTS as i64,
            100_000,
            floor,
        ) as usize;
        let max_connections = r.int(li, "limits.max_connections", 500, 1, 1_000_000, "") as usize;
        let max_connections_per_ip =
            r.int(li, "limits.max_connections_per_ip", 50, 1, 1_000_000, "") as usize;
        let messages_per_minute_per_ip = r.int(
            li,
            "limits.messages_per_minute_per_ip",
            6000,
            1,
            10_000_000,
            "",
        ) as u32;
        // Room for every message being received at once: at least one of the largest.
        let message_memory_bytes = r.int(
            li,
            "limits.message_memory_bytes",
            (4 * max_message_bytes).min(1 << 40) as i64,
            max_message_bytes as i64,
            1 << 40,
            " (at least limits.max_message_bytes)",
        ) as u64;

        let sc = r.section(&root, "scan", &["clamd", "icap", "rspamd", "timeout_secs"]);
        let scan_timeout_secs = r.int(sc, "scan.timeout_secs", 60, 1, 3600, "") as u64;
        let mut scanner =
            |key: &str, check: &dyn Fn(&str) -> Result<(), pec_filters::FilterError>| {
                let path = format!("scan.{key}");
                let v = r.string(sc, &path, Some(""));
                if v.is_empty() {
                    return None;
                }
                if let Err(e) = check(&v) {
                    r.errors.push(format!("{path}: {e}"));
                }
                Some(v)
            };
        let t = std::time::Duration::from_secs(scan_timeout_secs);
        let scan_clamd = scanner("clamd", &|v| {
            pec_filters::clamd::Clamd::new(v, t).map(|_| ())
        });
        let scan_icap = scanner("icap", &|v| pec_filters::icap::Icap::new(v, t).map(|_| ()));
        let scan_rspamd = scanner("rspamd", &|v| {
            pec_filters::rspamd::Rspamd::new(v, t).map(|_| ())
        });

        let p = r.section(&root, "policy", &["ordinary_mail"]);
        let ordinary_mail = r.string(p, "policy.ordinary_mail", Some("anomalia"));
        if !["anomalia", "refuse"].contains(&ordinary_mail.as_str()) {
            r.errors.push(format!(
                "policy.ordinary_mail: {ordinary_mail:?} must be \"anomalia\" or \"refuse\""
            ));
        }

        let re = r.section(
            &root,
            "relay",
            &[
                "routes",
                "resolver",
                "mx_port",
                "tls_verify",
                "ca_files",
                "timeout_secs",
                "queue_lifetime_hours",
            ],
        );
        let mut routes = HashMap::new();
        match re.and_then(|t| t.get("routes")) {
            None => {}
            Some(Value::Table(t)) => {
                for (d, v) in t {
                    if !valid_domain(&d.to_ascii_lowercase()) {
                        r.errors
                            .push(format!("relay.routes: {d:?} is not a domain name"));
                        continue;
                    }
                    match v {
                        Value::String(hp) if valid_host_port(hp) => {
                            routes.insert(d.to_ascii_lowercase(), hp.clone());
                        }
                        _ => r.errors.push(format!(
                            "relay.routes.{d}: expected \"HOST:PORT\", e.g. \"127.0.0.3:2525\""
                        )),
                    }
                }
            }
            Some(_) => r
                .errors
                .push("relay.routes: expected a table of DOMAIN = \"HOST:PORT\"".into()),
        }
        let resolver = match re.and_then(|t| t.get("resolver")) {
            None => None,
            Some(Value::String(s)) => match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    r.errors.push(format!(
                        "relay.resolver: {s:?} is not IP:PORT, e.g. \"127.0.0.1:53\""
                    ));
                    None
                }
            },
            Some(_) => {
                r.errors.push("relay.resolver: expected a string".into());
                None
            }
        };
        let relay_mx_port = r.int(re, "relay.mx_port", 25, 1, 65535, "") as u16;
        let tls_verify = r.boolean(re, "relay.tls_verify", true);
        let ca_files = r
            .strings(
                re,
                "relay.ca_files",
                &["/etc/ssl/certs/ca-certificates.crt"],
            )
            .into_iter()
            .map(|p| dir.join(p))
            .collect();
        let relay_timeout_secs = r.int(re, "relay.timeout_secs", 30, 1, 3600, "") as u64;
        let queue_lifetime_hours = r.int(
            re,
            "relay.queue_lifetime_hours",
            24,
            1,
            24,
            " (pec.md §5.7: at most 24 hours)",
        );
        let d = r.section(&root, "dev", &["clock_control"]);
        let clock_control = r.boolean(d, "dev.clock_control", false);

        if !r.errors.is_empty() {
            return Err(format!(
                "{} has {} problem(s):\n  {}",
                file.display(),
                r.errors.len(),
                r.errors.join("\n  ")
            ));
        }
        Ok(Config {
            dir: dir.to_path_buf(),
            name,
            domain,
            domains,
            hostname,
            listen_ip,
            mx_port,
            submission_port,
            submissions_port,
            imap_port,
            imaps_port,
            pop3_port,
            pop3s_port,
            https_port,
            admin_port,
            tls_cert,
            tls_key,
            signing_cert,
            signing_key,
            signing_chain,
            anchors,
            index,
            crl_refresh_secs,
            crl_required,
            max_message_bytes,
            max_size_x_recipients,
            max_recipients,
            max_connections,
            max_connections_per_ip,
            messages_per_minute_per_ip,
            message_memory_bytes,
            ordinary_mail,
            routes,
            resolver,
            relay_mx_port,
            tls_verify,
            ca_files,
            relay_timeout_secs,
            queue_lifetime_hours,
            clock_control,
            scan_clamd,
            scan_icap,
            scan_rspamd,
            scan_timeout_secs,
        })
    }

    /// Where the admin API listens: the listen address when it is loopback, else 127.0.0.1.
    pub fn admin_addr(&self) -> SocketAddr {
        let ip = if self.listen_ip.is_loopback() {
            self.listen_ip
        } else {
            IpAddr::from([127, 0, 0, 1])
        };
        SocketAddr::new(ip, self.admin_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pec.toml"),
            "[gestore]\nname = 3\ndomain = \"bad domain\"\nfoo = 1\n[limits]\nmax_recipients = 10\n[relay]\nroutes = { \"b.test\" = \"nohost\" }\n[bogus]\n",
        )
        .unwrap();
        let e = Config::load(dir.path()).unwrap_err();
        for needle in [
            "gestore.name: expected a string",
            "gestore.domain: \"bad domain\" is not a domain name",
            "gestore.foo: unknown key",
            "limits.max_recipients: 10 is out of range 50",
            "relay.routes.b.test: expected",
            "bogus: unknown section",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
        }
    }

    /// Two listeners on one port, a host name that cannot go in EHLO and a route for a
    /// malformed domain are reported with their keys, not at bind or relay time.
    #[test]
    fn clashing_ports_and_bad_names_are_reported_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pec.toml"),
            "[gestore]\nname = \"X\"\ndomain = \"pec.example.it\"\nhostname = \"bad host/x\"\n\
             [listen]\nhttps = 8025\nimaps = 2525\n[relay]\nroutes = { \"a..b\" = \"127.0.0.1:25\" }\n",
        )
        .unwrap();
        let e = Config::load(dir.path()).unwrap_err();
        for needle in [
            "gestore.hostname: \"bad host/x\" is not a host name",
            "listen.imaps: port 2525 is already taken by listen.mx",
            "listen.admin: port 8025 is already taken by listen.https",
            "relay.routes: \"a..b\" is not a domain name",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
        }
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pec.toml"),
            "[gestore]\nname = \"X\"\ndomain = \"Pec.Example.IT\"\n",
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.domain, "pec.example.it");
        assert_eq!(c.domains, vec!["pec.example.it"]);
        assert_eq!(c.mx_port, 2525);
        assert_eq!(c.max_recipients, 100);
        assert_eq!(c.index, dir.path().join("index.ldif"));
    }

    #[test]
    fn scanners_are_checked_and_optional() {
        let dir = tempfile::tempdir().unwrap();
        let base = "[gestore]\nname = \"X\"\ndomain = \"pec.example.it\"\n";
        std::fs::write(
            dir.path().join("pec.toml"),
            format!("{base}[scan]\nclamd = \"clamd.local\"\nicap = \"http://x/avscan\"\nrspamd = \"http://127.0.0.1:11333/checkv2\"\ntimeout_secs = 0\n"),
        )
        .unwrap();
        let e = Config::load(dir.path()).unwrap_err();
        for needle in [
            "scan.clamd: bad filter address",
            "scan.icap:",
            "scan.rspamd:",
            "scan.timeout_secs:",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
        }
        std::fs::write(
            dir.path().join("pec.toml"),
            format!("{base}[scan]\nclamd = \"unix:/run/clamav/clamd.ctl\"\nicap = \"icap://127.0.0.1/avscan\"\n"),
        )
        .unwrap();
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.scan_clamd.as_deref(), Some("unix:/run/clamav/clamd.ctl"));
        assert_eq!(c.scan_icap.as_deref(), Some("icap://127.0.0.1/avscan"));
        assert_eq!(c.scan_rspamd, None);
        assert_eq!(c.scan_timeout_secs, 60);
    }
}
