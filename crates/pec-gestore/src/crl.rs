//! The CRL refresher (pec.md §4.4 step 3: check the CRL, "cache allowed, with an update
//! interval short enough to keep the data current"): fetches the CRL of every distribution
//! point named by a provider certificate of the Indice copy, keeps each one in
//! `DATA/crl/<sha256 of the URL>.crl` so a restart without network still has them, and hands
//! the set to the receiving point. The HTTP client is behind [`Fetcher`] (the binary wires
//! the webhook client in); this module does no I/O of its own but the cache files.

use crate::Gestore;
use pec_index::Index;
use pec_message::smime::{Crls, FetchedCrl, distribution_points, parse_certificate};
use pec_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A fetch in progress: the body of a `200` answer, or a sentence.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;

/// Fetches a CRL over HTTP.
pub trait Fetcher: Send + Sync {
    /// GETs `url` (`http://` or `https://`) and returns the body of a `200` answer.
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

/// When a failed fetch is tried again, at the latest.
const RETRY_SECS: i64 = 300;
/// The shortest wait between two fetches of one URL.
const MIN_SECS: i64 = 1;

/// The `http(s)` distribution points of the certificates of `index`, each with the DER
/// issuer names of the certificates that name it (LDAP points are not fetched: providers
/// publish an HTTP point beside them, as AgID CA1 does, pec.md §7.2).
pub fn points(index: &Index) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for der in index.records.iter().flat_map(|r| r.certificates.iter()) {
        let Ok(cert) = parse_certificate(der) else {
            continue;
        };
        let issuer = cert.issuer_name().to_der().unwrap_or_default();
        for url in distribution_points(&cert) {
            let lower = url.to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                let issuers = out.entry(url).or_default();
                if !issuers.contains(&issuer) {
                    issuers.push(issuer.clone());
                }
            }
        }
    }
    out
}

/// Where the CRL fetched from `url` is kept.
pub fn cache_file(data_dir: &Path, url: &str) -> PathBuf {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes());
    data_dir
        .join("crl")
        .join(format!("{}.crl", hex::encode(digest.as_ref())))
}

/// The CRLs kept in `data_dir` for the distribution points of `index`, with the given policy
/// (what the gestore starts with, and what `pec verify --data` checks against). A file that
/// does not read as a CRL is skipped.
pub fn load_cached(data_dir: &Path, index: &Index, required: bool) -> Crls {
    let mut crls = Crls::new(required);
    for url in points(index).into_keys() {
        let path = cache_file(data_dir, &url);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let fetched = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        match FetchedCrl::parse(&bytes, fetched) {
            Ok(f) => crls.insert(url, Arc::new(f)),
            Err(e) => tracing::warn!(%url, "cached CRL {} skipped: {e}", path.display()),
        }
    }
    crls
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees
/// half a CRL.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        );
        let n = crls.iter().count();
        *self.crls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(crls);
        if n > 0 {
            tracing::info!(crls = n, "CRLs loaded from the cache");
        }
    }

    /// Fetches the CRL of `url` once, checks it and keeps it; returns when the CRL says to
    /// fetch it again (its nextUpdate), or why it was not taken.
    pub async fn refresh_crl(
        &self,
        fetcher: &dyn Fetcher,
        url: &str,
        issuers: &[Vec<u8>],
    ) -> Result<Option<i64>, String> {
        let bytes = tokio::time::timeout(Duration::from_secs(60), fetcher.get(url))
            .await
            .map_err(|_| "no answer within 60 s".to_string())??;
        let now = self.clock.now().utc().timestamp();
        let crl = FetchedCrl::parse(&bytes, now).map_err(|e| e.to_string())?;
        // The signature is checked per message against the signer's issuer; here only what
        // keeps a wrong or stale file out of the cache.
        let named = issuers
            .iter()
            .any(|der| openssl::x509::X509Name::from_der(der).is_ok_and(|n| crl.issued_by(&n)));
        if !named {
            return Err(format!(
                "the CRL is issued by {}, not by the issuer of the certificates that name it",
                crl.issuer()
            ));
        }
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

    /// Starts the CRL refresher.
    pub fn spawn_crl_refresher(self: &Arc<Self>, fetcher: Arc<dyn Fetcher>) {
        tokio::spawn(run(self.clone(), fetcher));
    }
}

/// Fetches every distribution point when it is due: at start, then every refresh interval
/// or at the CRL's nextUpdate if sooner, and within [`RETRY_SECS`] after a failure. New
/// points of a reloaded Indice copy are fetched within a second.
async fn run<S: Store>(g: Arc<Gestore<S>>, fetcher: Arc<dyn Fetcher>) {
    let refresh = g.settings.crl_refresh_secs.max(MIN_SECS);
    let mut due: HashMap<String, i64> = HashMap::new();
    loop {
        let points = points(&g.indexed().0);
        due.retain(|url, _| points.contains_key(url));
        for (url, issuers) in &points {
            let now = g.clock.now().utc().timestamp();
            if due.get(url).is_some_and(|d| *d > now) {
                continue;
            }
            let next = match g.refresh_crl(fetcher.as_ref(), url, issuers).await {
                Ok(next_update) => {
                    let by_crl = next_update.map_or(i64::MAX, |n| n.max(now + MIN_SECS));
                    (now + refresh).min(by_crl)
                }
                Err(e) => {
                    tracing::warn!(%url, "CRL not fetched, keeping the last one: {e}");
                    now + refresh.min(RETRY_SECS)
                }
            };
            due.insert(url.clone(), next);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
