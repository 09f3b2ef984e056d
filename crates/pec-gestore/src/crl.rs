//! The CRL refresher (pec.md §4.4 step 3: check the CRL, "cache allowed, with an update
//! interval short enough to keep the data current"): fetches the CRL of every distribution
//! point named by a provider certificate of the Indice copy, keeps each one in
//! `DATA/crl/<sha256 of the URL>.crl` so a restart without network still has them, and hands
//! the set to the receiving point. A CRL is taken only when it verifies with a configured
//! trust anchor that may sign CRLs and that issued a certificate naming the point (see
//! [`issuers_for`]): the CA of a peer must be in `trust.anchors` for its CRL to count, as AgID
//! CA1 is in production (pec.md §4.3). The same refresher asks the OCSP responders of those
//! certificates ([`crate::ocsp`]). The HTTP client is behind [`Fetcher`] (the binary wires
//! the webhook client in); this module does no I/O of its own but the cache files.

use crate::Gestore;
use openssl::x509::X509;
use pec_index::Index;
use pec_message::smime::{Crls, FetchedCrl, can_sign_crls, distribution_points};
use pec_store::Store;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A fetch in progress: the body of a `200` answer, or a sentence.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;

/// Fetches a CRL over HTTP.
pub trait Fetcher: Send + Sync {
    /// GETs `url` (`http://` or `https://`) and returns the body of a `200` answer.
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

/// The last attempt at one distribution point.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// When (Unix seconds).
    pub at: i64,
    /// Why the CRL fetched was not taken; `None` when it was, or was unchanged.
    pub error: Option<String>,
    /// When the point is due again.
    pub next: i64,
}

/// One distribution point, or one OCSP responder asked about one certificate, as operators
/// see it (`pec admin crl`, the metrics).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PointStatus {
    /// `crl` (a distribution point) or `ocsp` (a responder, about `certificate`).
    pub kind: &'static str,
    /// The URL of the point or of the responder.
    pub url: String,
    /// For `ocsp`: the subject of the certificate asked about.
    pub certificate: Option<String>,
    /// `current` (a CRL within its validity is held), `expired` (the CRL held is past its
    /// nextUpdate: revocation is `unknown` for the certificates naming the point) or
    /// `missing` (none held yet).
    pub state: &'static str,
    /// The issuer of the CRL held.
    pub issuer: Option<String>,
    /// Its thisUpdate and nextUpdate (Unix seconds).
    pub this_update: Option<i64>,
    /// See `this_update`.
    pub next_update: Option<i64>,
    /// Certificates it lists as revoked (for `ocsp`: 1 when the certificate is revoked).
    pub revoked: Option<usize>,
    /// For `ocsp`: what the response says, `good`, `revoked` or `unknown`.
    pub cert_status: Option<&'static str>,
    /// The last attempt (Unix seconds), and why it was not taken if it was not.
    pub last_attempt: Option<i64>,
    /// See `last_attempt`.
    pub last_error: Option<String>,
    /// When the point is due again (Unix seconds).
    pub next_attempt: Option<i64>,
}

/// When a failed fetch, or a CRL past its nextUpdate, is tried again, at the latest.
const RETRY_SECS: i64 = 300;

/// The `http(s)` distribution points of the certificates of `index` (LDAP points are not
/// fetched: providers publish an HTTP point beside them, as AgID CA1 does, pec.md §4.3).
pub fn points(index: &Index) -> BTreeSet<String> {
    index
        .records
        .iter()
        .flat_map(|r| r.certificates.iter())
        .flat_map(|der| distribution_points(der))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .collect()
}

/// Where the CRL fetched from `url` is kept.
pub fn cache_file(data_dir: &Path, url: &str) -> PathBuf {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes());
    data_dir
        .join("crl")
        .join(format!("{}.crl", hex::encode(digest.as_ref())))
}

/// The configured trust anchors that may vouch for a CRL fetched from `url`: CA
/// certificates that may sign CRLs and whose key verifies a certificate of `index` naming
/// `url`, so a CRL is bound to the CA of the certificates that point to it.
pub fn issuers_for(index: &Index, url: &str, anchors: &[X509]) -> Vec<X509> {
    let named: Vec<X509> = index
        .records
        .iter()
        .flat_map(|r| r.certificates.iter())
        .filter(|der| distribution_points(der).iter().any(|u| u == url))
        .filter_map(|der| X509::from_der(der).ok())
        .collect();
    anchors
        .iter()
        .filter(|ca| can_sign_crls(ca))
        .filter(|ca| {
            ca.public_key()
                .is_ok_and(|k| named.iter().any(|c| c.verify(&k).unwrap_or(false)))
        })
        .cloned()
        .collect()
}

/// The CRLs kept in `data_dir` for the distribution points of `index`, checked again with the
/// configured `anchors` (see [`issuers_for`]), and the OCSP responses kept for its
/// certificates ([`crate::ocsp::load_cached`]), with the given policy: what the gestore starts
/// with, and what `pec verify --data` checks against. A file that is not a valid CRL for its
/// point is skipped.
pub fn load_cached(data_dir: &Path, index: &Index, required: bool, anchors: &[X509]) -> Crls {
    let now = chrono::Utc::now().timestamp();
    let mut crls = Crls::new(required);
    for url in points(index) {
        let path = cache_file(data_dir, &url);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match FetchedCrl::check(&bytes, &url, now, &issuers_for(index, &url, anchors)) {
            Ok(f) => crls.insert(url, Arc::new(f)),
            Err(e) => tracing::warn!(%url, "cached CRL {} skipped: {e}", path.display()),
        }
    }
    crate::ocsp::load_cached(data_dir, index, anchors, &mut crls);
    crls
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees
/// half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl<S: Store> Gestore<S> {
    /// The CRLs in force.
    pub fn crls(&self) -> Arc<Crls> {
        self.crls
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set_crl(&self, url: &str, crl: Arc<FetchedCrl>) {
        let mut g = self.crls.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**g).clone();
        next.insert(url, crl);
        *g = Arc::new(next);
    }

    /// Loads the CRLs kept in the data directory for the current Indice copy.
    pub fn load_crl_cache(&self) {
        let crls = load_cached(
            &self.settings.data_dir,
            &self.indexed().0,
            self.settings.crl_required,
            &self.anchors,
        );
        let n = crls.len();
        *self.crls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(crls);
        if n > 0 {
            tracing::info!(crls = n, "CRLs loaded from the cache");
        }
    }

    /// Fetches the CRL of `url` once, checks it (see [`FetchedCrl::check`]) and keeps it
    /// unless the one held is as recent; returns its nextUpdate, or why it was not taken.
    pub async fn refresh_crl(&self, fetcher: &dyn Fetcher, url: &str) -> Result<i64, String> {
        let bytes = tokio::time::timeout(Duration::from_secs(60), fetcher.get(url))
            .await
            .map_err(|_| "no answer within 60 s".to_string())??;
        let now = self.clock.now().utc().timestamp();
        let issuers = issuers_for(&self.indexed().0, url, &self.anchors);
        let crl = FetchedCrl::check(&bytes, url, now, &issuers).map_err(|e| e.to_string())?;
        let next = crl.next_update();
        if let Some(held) = self.crls().get(url) {
            if held.this_update() > crl.this_update() {
                return Err("the CRL is older than the one already held".into());
            }
            if held.this_update() == crl.this_update() {
                tracing::debug!(%url, "CRL unchanged");
                return Ok(next);
            }
        }
        write_atomic(&cache_file(&self.settings.data_dir, url), &bytes)
            .map_err(|e| format!("cannot keep the CRL: {e}"))?;
        tracing::info!(
            %url,
            issuer = %crl.issuer(),
            revoked = crl.revoked_count(),
            "CRL fetched"
        );
        self.set_crl(url, Arc::new(crl));
        Ok(next)
    }

    /// Every distribution point of the Indice copy, with the CRL held and the last attempt,
    /// then every OCSP responder asked about one of its certificates, with the response held.
    pub fn crl_status(&self) -> Vec<PointStatus> {
        let attempts = self
            .crl_attempts
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let index = self.indexed();
        let (crls, now) = (self.crls(), self.clock.now().utc().timestamp());
        let mut all = status(points(&index.0), &crls, &attempts, now);
        let targets = crate::ocsp::targets(&index.0, &self.anchors);
        all.extend(crate::ocsp::status(&targets, &crls, &attempts, now));
        all
    }

    fn record_attempt(&self, url: &str, attempt: Attempt) {
        self.crl_attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_string(), attempt);
    }

    /// Fetches every distribution point again now, whatever its schedule, and returns once
    /// the refresher has been through all of them (or after `wait`): for an operator who
    /// knows a CA has just published a CRL. Needs the refresher running.
    pub async fn refresh_crls_now(&self, wait: Duration) -> Vec<PointStatus> {
        let before = self.crl_passes.load(Ordering::SeqCst);
        self.crl_wake.notify_one();
        let deadline = tokio::time::Instant::now() + wait;
        while self.crl_passes.load(Ordering::SeqCst) == before
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.crl_status()
    }

    /// Starts the CRL refresher.
    pub fn spawn_crl_refresher(self: &Arc<Self>, fetcher: Arc<dyn Fetcher>) {
        tokio::spawn(run(self.clone(), fetcher));
    }
}

/// Each of `points` with the CRL held for it in `crls` and its last attempt, at `now`.
fn status(
    points: BTreeSet<String>,
    crls: &Crls,
    attempts: &HashMap<String, Attempt>,
    now: i64,
) -> Vec<PointStatus> {
    points
        .into_iter()
        .map(|url| {
            let held = crls.get(&url);
            let attempt = attempts.get(&url);
            PointStatus {
                kind: "crl",
                certificate: None,
                cert_status: None,
                state: match held {
                    None => "missing",
                    Some(c) if c.next_update() <= now => "expired",
                    Some(_) => "current",
                },
                issuer: held.map(|c| c.issuer()),
                this_update: held.map(|c| c.this_update()),
                next_update: held.map(|c| c.next_update()),
                revoked: held.map(|c| c.revoked_count()),
                last_attempt: attempt.map(|a| a.at),
                last_error: attempt.and_then(|a| a.error.clone()),
                next_attempt: attempt.map(|a| a.next),
                url,
            }
        })
        .collect()
}

/// When `url` is due again after an attempt at `now` that gave `outcome`.
fn next_attempt(now: i64, refresh: i64, outcome: &Result<i64, String>) -> i64 {
    match outcome {
        // A CRL past its nextUpdate: the CA is late; ask again, but not in a loop.
        Ok(next_update) if *next_update <= now => now + refresh.min(RETRY_SECS),
        Ok(next_update) => (now + refresh).min(*next_update),
        Err(_) => now + refresh.min(RETRY_SECS),
    }
}

/// Records the attempt at `key` made at `now` and when it is due again.
fn settle<S: Store>(
    g: &Gestore<S>,
    key: &str,
    now: i64,
    refresh: i64,
    outcome: Result<i64, String>,
    due: &mut HashMap<String, i64>,
) {
    let next = next_attempt(now, refresh, &outcome);
    due.insert(key.to_string(), next);
    g.record_attempt(
        key,
        Attempt {
            at: now,
            error: outcome.err(),
            next,
        },
    );
}

/// Fetches every distribution point, and asks every OCSP responder, when it is due: at
/// start, then every refresh interval or at the CRL's (response's) nextUpdate if sooner, and
/// within [`RETRY_SECS`] after a failure. New points of a reloaded Indice copy are fetched
/// within a second.
async fn run<S: Store>(g: Arc<Gestore<S>>, fetcher: Arc<dyn Fetcher>) {
    let refresh = g.settings.crl_refresh_secs.max(1);
    let mut due: HashMap<String, i64> = HashMap::new();
    // The points of the Indice copy last read; computed again only when it is replaced.
    let mut indexed = g.indexed();
    let mut points = points(&indexed.0);
    let mut targets = crate::ocsp::targets(&indexed.0, &g.anchors);
    // A pass asked for by `refresh_crls_now` is under way.
    let mut forced = false;
    loop {
        let current = g.indexed();
        if !Arc::ptr_eq(&current, &indexed) {
            indexed = current;
            points = self::points(&indexed.0);
            targets = crate::ocsp::targets(&indexed.0, &g.anchors);
            let keys: BTreeSet<String> = targets.iter().map(|t| t.key()).collect();
            due.retain(|key, _| points.contains(key) || keys.contains(key));
        }
        for url in &points {
            let now = g.clock.now().utc().timestamp();
            if due.get(url).is_some_and(|d| *d > now) {
                continue;
            }
            let outcome = g.refresh_crl(fetcher.as_ref(), url).await;
            if let Err(e) = &outcome {
                tracing::warn!(%url, "CRL not taken, keeping the last one: {e}");
            }
            settle(&g, url, now, refresh, outcome, &mut due);
        }
        for t in &targets {
            let key = t.key();
            let now = g.clock.now().utc().timestamp();
            if due.get(&key).is_some_and(|d| *d > now) {
                continue;
            }
            let outcome = g.refresh_ocsp(fetcher.as_ref(), t).await;
            if let Err(e) = &outcome {
                tracing::warn!(responder = %t.responder, "OCSP response not taken: {e}");
            }
            settle(&g, &key, now, refresh, outcome, &mut due);
        }
        if forced {
            forced = false;
            g.crl_passes.fetch_add(1, Ordering::SeqCst);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = g.crl_wake.notified() => {
                // `pec admin crl --refresh`: every point is fetched again now.
                due.clear();
                forced = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pec_index::ProviderRecord;
    use pec_message::pki;

    /// A signing certificate of `ca` naming the distribution point `url`.
    fn leaf_naming(ca: &pki::Issued, url: &str, t0: i64) -> pki::Issued {
        let points = pki::RevocationPoints {
            crl: Some(url),
            ocsp: None,
        };
        pki::issue_signing_cert_with_points(ca, "A", "a.test", None, t0, 10, points).unwrap()
    }

    /// Only the configured CA that issued a certificate naming the point vouches for its CRL:
    /// not another CA, and not the provider certificate pinned by the Indice copy.
    #[test]
    fn a_crl_is_vouched_for_only_by_the_ca_of_the_certificates_naming_it() {
        let url = "http://crl.test/a.crl";
        let t0 = 1_700_000_000;
        let ca = pki::make_ca("CA A", t0, 30).unwrap();
        let other = pki::make_ca("CA B", t0, 30).unwrap();
        let leaf = leaf_naming(&ca, url, t0);
        let der = leaf.cert_der().unwrap();
        let index = Index {
            records: vec![ProviderRecord::new(
                "A",
                der,
                "posta-certificata@a.test",
                &["a.test"],
            )],
        };
        assert_eq!(points(&index).into_iter().collect::<Vec<_>>(), vec![url]);
        let anchors = [other.cert.clone(), leaf.cert.clone(), ca.cert.clone()];
        let found = issuers_for(&index, url, &anchors);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].to_der().unwrap(), ca.cert_der().unwrap());
        assert!(issuers_for(&index, "http://elsewhere/x.crl", &anchors).is_empty());
    }

    /// What `pec admin crl` shows: each point with its state, the CRL held and the last attempt.
    #[test]
    fn each_point_is_reported_with_its_crl_and_last_attempt() {
        let (url, other) = ("http://crl.test/a.crl", "http://crl.test/b.crl");
        let t0 = 1_700_000_000;
        let ca = pki::make_ca("CA A", t0, 30).unwrap();
        let leaf = leaf_naming(&ca, url, t0);
        let crl = pki::make_crl(&ca, &[(&leaf.cert, t0 + 5)], t0 + 10, t0 + 100)
            .unwrap()
            .to_der()
            .unwrap();
        let mut crls = Crls::new(false);
        crls.insert(
            url,
            Arc::new(
                FetchedCrl::check(&crl, url, t0 + 20, std::slice::from_ref(&ca.cert)).unwrap(),
            ),
        );
        let attempts = HashMap::from([(
            other.to_string(),
            Attempt {
                at: t0 + 20,
                error: Some("HTTP 404".into()),
                next: t0 + 320,
            },
        )]);
        let points = BTreeSet::from([url.to_string(), other.to_string()]);
        let at = |now| status(points.clone(), &crls, &attempts, now);
        let now = at(t0 + 50);
        assert_eq!(now[0].url, url);
        assert_eq!(now[0].state, "current");
        assert_eq!(
            (now[0].this_update, now[0].next_update),
            (Some(t0 + 10), Some(t0 + 100))
        );
        assert_eq!(now[0].revoked, Some(1));
        assert!(
            now[0]
                .issuer
                .as_deref()
                .is_some_and(|i| i.ends_with("CN=CA A"))
        );
        assert_eq!(now[0].last_attempt, None);
        assert_eq!(now[1].state, "missing");
        assert_eq!(now[1].last_error.as_deref(), Some("HTTP 404"));
        assert_eq!(now[1].next_attempt, Some(t0 + 320));
        assert_eq!(at(t0 + 100)[0].state, "expired");
    }

    #[test]
    fn attempts_follow_the_refresh_the_next_update_and_failures_without_looping() {
        let (now, hour) = (1_000_000, 3600);
        assert_eq!(next_attempt(now, 4 * hour, &Ok(now + hour)), now + hour);
        assert_eq!(
            next_attempt(now, 4 * hour, &Ok(now + 9 * hour)),
            now + 4 * hour
        );
        // Past its nextUpdate: five minutes, not every second.
        assert_eq!(next_attempt(now, 4 * hour, &Ok(now - 1)), now + 300);
        assert_eq!(next_attempt(now, 4 * hour, &Err("x".into())), now + 300);
        // A refresh shorter than the retry wins.
        assert_eq!(next_attempt(now, 2, &Err("x".into())), now + 2);
    }
}
