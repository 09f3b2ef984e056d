//! The security filters as the runtime applies them (product.md §4): every message is
//! scanned by the antivirus chain and checked by the antispam engine before the PEC engine
//! runs, and what they found becomes engine input ([`pec_engine::Threat`],
//! [`pec_engine::Spam`]). A configured engine that does not answer fails the step with
//! [`GestoreError::Unavailable`]: the client gets a temporary SMTP error and retries, so
//! nothing is lost and nothing passes unscanned. Counts of verdicts and failures are kept
//! for the metrics.

use crate::{Gestore, GestoreError};
use pec_filters::rspamd::{Envelope, Rspamd};
use pec_filters::{FilterError, ScanChain, Verdict};
use pec_store::Store;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The engines configured for this gestore. With none, messages are not scanned (a
/// development set-up; `pec serve` says so when it starts).
#[derive(Debug, Default)]
pub struct Filters {
    /// Antivirus engines, in scanning order.
    pub antivirus: ScanChain,
    /// The antispam engine.
    pub antispam: Option<Rspamd>,
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

/// The SMTP client a message came from, as far as the filters care.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// Its address.
    pub ip: Option<IpAddr>,
    /// Its HELO/EHLO name.
    pub helo: Option<String>,
}

/// What the filters found in one message.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The antivirus chain's finding.
    pub threat: Option<pec_engine::Threat>,
    /// The antispam verdict, when spam.
    pub spam: Option<pec_engine::Spam>,
}

impl Filters {
    /// Filters with these engines.
    pub fn new(antivirus: ScanChain, antispam: Option<Rspamd>) -> Filters {
        Filters {
            antivirus,
            antispam,
            counts: Mutex::default(),
        }
    }

    /// Whether any engine is configured.
    pub fn any(&self) -> bool {
        !self.antivirus.engines.is_empty() || self.antispam.is_some()
    }

    fn count(&self, engine: &str, outcome: &'static str) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry((engine.to_string(), outcome)).or_default() += 1;
    }

    /// Verdict counts so far: (engine, outcome) → count. Outcomes: `clean`, `infected`,
    /// `ham`, `spam`, `error`.
    pub fn counts(&self) -> BTreeMap<(String, &'static str), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed(&self, e: FilterError) -> GestoreError {
        let engine = match &e {
            FilterError::Unavailable { engine, .. } | FilterError::Engine { engine, .. } => {
                engine.clone()
            }
            FilterError::Address { address, .. } => address.clone(),
        };
        self.count(&engine, "error");
        tracing::warn!("message not scanned: {e}");
        GestoreError::Unavailable(e.to_string())
    }

    async fn antivirus(&self, message: &[u8]) -> Result<Option<pec_engine::Threat>, GestoreError> {
        if self.antivirus.engines.is_empty() {
            return Ok(None);
        }
        match self.antivirus.scan(message).await {
            Ok(Verdict::Clean) => {
                for e in &self.antivirus.engines {
                    self.count(e.name(), "clean");
                }
                Ok(None)
            }
            Ok(Verdict::Infected { engine, threat }) => {
                // The engines before the one that found it said clean.
                for e in &self.antivirus.engines {
                    if e.name() == engine {
                        break;
                    }
                    self.count(e.name(), "clean");
                }
                self.count(&engine, "infected");
                Ok(Some(pec_engine::Threat {
                    engine,
                    name: threat,
                }))
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    async fn antispam(
        &self,
        message: &[u8],
        env: &Envelope,
    ) -> Result<Option<pec_engine::Spam>, GestoreError> {
        let Some(r) = &self.antispam else {
            return Ok(None);
        };
        match r.check(message, env).await {
            Ok(v) if v.is_spam() => {
                self.count(&r.name, "spam");
                Ok(Some(pec_engine::Spam {
                    engine: r.name.clone(),
                    detail: format!(
                        "score {:.1}/{:.1}, action {}",
                        v.score, v.required_score, v.action
                    ),
                }))
            }
            Ok(_) => {
                self.count(&r.name, "ham");
                Ok(None)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Tells every clamd of the chain to reload its signature database now (`RELOAD`), so an
    /// update takes effect without a restart; ICAP engines update on their own. Returns
    /// each clamd's name and outcome.
    pub async fn reload(&self) -> Vec<(String, Result<(), FilterError>)> {
        let mut out = Vec::new();
        for e in &self.antivirus.engines {
            if let pec_filters::Engine::Clamd(c) = e {
                out.push((c.name.clone(), c.reload().await));
            }
        }
        out
    }

    /// Scans one message with every engine (product.md §4: antivirus and antispam on all
    /// mail, inbound and outbound); the antivirus chain and the antispam check run at once.
    pub async fn scan(&self, message: &[u8], env: &Envelope) -> Result<Findings, GestoreError> {
        let (threat, spam) = tokio::join!(self.antivirus(message), self.antispam(message, env));
        Ok(Findings {
            threat: threat?,
            spam: spam?,
        })
    }
}

impl<S: Store> Gestore<S> {
    /// The filters' findings on a message from `client`.
    pub(crate) async fn scan(
        &self,
        client: &Client,
        user: Option<&str>,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<Findings, GestoreError> {
        if !self.filters.any() {
            return Ok(Findings::default());
        }
        let env = Envelope {
            ip: client.ip.map(|ip| ip.to_string()),
            helo: client.helo.clone(),
            from: Some(mail_from.to_string()),
            rcpt: rcpt_to.to_vec(),
            user: user.map(str::to_string),
        };
        self.filters.scan(message, &env).await
    }

    /// The metrics in the Prometheus text format: each engine's health (asked now) and
    /// verdict counts, and the queue length.
    pub async fn metrics(&self) -> Result<String, GestoreError> {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP pec_filter_up Whether a security filter engine answers (1) or not (0).\n# TYPE pec_filter_up gauge"
        );
        for (engine, r) in self.filters.antivirus.health().await {
            let _ = writeln!(
                out,
                "pec_filter_up{{engine=\"{engine}\"}} {}",
                u8::from(r.is_ok())
            );
        }
        if let Some(r) = &self.filters.antispam {
            let up = r.ping().await.is_ok();
            let _ = writeln!(
                out,
                "pec_filter_up{{engine=\"{}\"}} {}",
                r.name,
                u8::from(up)
            );
        }
        let _ = writeln!(
            out,
            "# HELP pec_filter_verdicts_total Messages by filter engine and outcome.\n# TYPE pec_filter_verdicts_total counter"
        );
        let counts = self.filters.counts();
        for ((engine, outcome), n) in &counts {
            if engine == "lockout" {
                continue;
            }
            let _ = writeln!(
                out,
                "pec_filter_verdicts_total{{engine=\"{engine}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pec_mailbox_lockouts_total Mailboxes locked for sending spam since start.\n# TYPE pec_mailbox_lockouts_total counter\npec_mailbox_lockouts_total {}",
            counts
                .get(&("lockout".to_string(), "locked"))
                .copied()
                .unwrap_or(0)
        );
        let _ = writeln!(
            out,
            "# HELP pec_crl_points CRL distribution points of the Indice copy by state (current, expired, missing; pec.md §4.4).\n# TYPE pec_crl_points gauge"
        );
        let points = self.crl_status();
        let count = |kind: &str, state: &str| {
            points
                .iter()
                .filter(|p| p.kind == kind && p.state == state)
                .count()
        };
        for state in ["current", "expired", "missing"] {
            let n = count("crl", state);
            let _ = writeln!(out, "pec_crl_points{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP pec_ocsp_responses Certificates of the Indice copy with an OCSP responder, by the state of the response held (current, expired, missing).\n# TYPE pec_ocsp_responses gauge"
        );
        for state in ["current", "expired", "missing"] {
            let n = count("ocsp", state);
            let _ = writeln!(out, "pec_ocsp_responses{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP pec_sessions_logged_in Client sessions logged in now.\n# TYPE pec_sessions_logged_in gauge\npec_sessions_logged_in {}",
            self.sessions.logged_in()
        );
        let _ = writeln!(
            out,
            "# HELP pec_queue_entries Entries in the outbound queue.\n# TYPE pec_queue_entries gauge\npec_queue_entries {}",
            self.store.queue_len().await?
        );
        Ok(out)
    }

    /// Counts a lockout for the metrics.
    pub(crate) fn count_lockout(&self) {
        self.filters.count("lockout", "locked");
    }
}
