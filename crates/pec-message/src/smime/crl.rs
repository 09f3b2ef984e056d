//! Certificate revocation (pec.md §4.4 step 3: "check the CRL (cache allowed, with an update
//! interval short enough to keep the data current)"): the CRLs a gestore has fetched from the
//! cRLDistributionPoints of provider certificates, and the revocation status of a signer
//! certificate against them (RFC 5280 §6.3, for the signer certificate: provider
//! certificates are issued directly by an accredited CA, pec.md §4.3).
//!
//! A CRL is only believed once its signature verifies with the public key of the signer
//! certificate's issuer, and that issuer is only taken from a certificate whose key verifies
//! the signer certificate itself. The issuer may therefore come from the CMS structure of the
//! message (real providers include their CA, pec.md §4.1) as well as from the trust anchors:
//! a forged issuer certificate cannot verify a genuine provider certificate.

use super::trust::{parse_certificate, unix};
use crate::pki::name_string;
use openssl::pkey::{PKey, Public};
use openssl::x509::{CrlStatus, X509, X509Crl, X509NameRef, X509Ref};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why fetched bytes are not a usable CRL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CrlError(String);

/// One CRL as fetched from a distribution point.
pub struct FetchedCrl {
    crl: X509Crl,
    /// When it was fetched (Unix seconds).
    pub fetched: i64,
    /// Public keys (DER) its signature has verified with: a CRL is hashed and checked once
    /// per issuer key, not once per message.
    verified: Mutex<Vec<Vec<u8>>>,
}

impl FetchedCrl {
    /// Reads a CRL in DER (the form of RFC 5280 §4.2.1.13 HTTP distribution points) or PEM.
    pub fn parse(bytes: &[u8], fetched: i64) -> Result<FetchedCrl, CrlError> {
        let crl = X509Crl::from_der(bytes)
            .or_else(|_| X509Crl::from_pem(bytes))
            .map_err(|_| CrlError("the data is not a CRL in DER or PEM form".into()))?;
        if unix(crl.last_update()).is_none() {
            return Err(CrlError("the CRL has an unreadable thisUpdate time".into()));
        }
        Ok(FetchedCrl {
            crl,
            fetched,
            verified: Mutex::default(),
        })
    }

    /// `thisUpdate`, Unix seconds.
    pub fn this_update(&self) -> i64 {
        unix(self.crl.last_update()).unwrap_or(i64::MIN)
    }

    /// `nextUpdate`, Unix seconds, when the CRL has one.
    pub fn next_update(&self) -> Option<i64> {
        self.crl.next_update().and_then(unix)
    }

    /// The issuer, `C=IT, O=..., CN=...`.
    pub fn issuer(&self) -> String {
        name_string(self.crl.issuer_name())
    }

    /// Whether the CRL names `issuer` as its issuer.
    pub fn issued_by(&self, issuer: &X509NameRef) -> bool {
        same_name(self.crl.issuer_name(), issuer)
    }

    /// How many certificates it lists.
    pub fn revoked_count(&self) -> usize {
        self.crl.get_revoked().map_or(0, |r| r.len())
    }

    /// Whether the CRL's signature verifies with `key` (remembered per key).
    fn signed_by(&self, key: &PKey<Public>) -> bool {
        let Ok(der) = key.public_key_to_der() else {
            return false;
        };
        let mut seen = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(&der) {
            return true;
        }
        let ok = self.crl.verify(key).unwrap_or(false);
        if ok {
            seen.push(der);
        }
        ok
    }
}

/// The CRLs in force, by the distribution-point URL they were fetched from, and the policy
/// for a signer certificate whose status cannot be established.
#[derive(Default, Clone)]
pub struct Crls {
    by_url: HashMap<String, Arc<FetchedCrl>>,
    /// When true, a signer certificate that names a distribution point but has no current,
    /// verified CRL there is not trusted. When false (the default), such a certificate is
    /// trusted and the report says its status is unknown; a listed revocation always counts.
    pub required: bool,
}

impl Crls {
    /// An empty set with the given policy.
    pub fn new(required: bool) -> Crls {
        Crls {
            by_url: HashMap::new(),
            required,
        }
    }

    /// Sets the CRL fetched from `url`, replacing an older one.
    pub fn insert(&mut self, url: impl Into<String>, crl: Arc<FetchedCrl>) {
        self.by_url.insert(url.into(), crl);
    }

    /// The CRL fetched from `url`.
    pub fn get(&self, url: &str) -> Option<&Arc<FetchedCrl>> {
        self.by_url.get(url)
    }

    /// Every URL with its CRL.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<FetchedCrl>)> {
        self.by_url.iter().map(|(u, c)| (u.as_str(), c))
    }
}

/// The revocation status of a signer certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationStatus {
    /// A current CRL of its issuer does not list it (or lists it revoked after the time
    /// checked).
    Good,
    /// A CRL of its issuer lists it, revoked at or before the time checked.
    Revoked,
    /// It names a distribution point, but no current CRL verified by its issuer was at hand.
    Unknown,
    /// It names no distribution point: there is nothing to check.
    NotPublished,
}

/// The revocation facts of a report (docs/verify-json.md).
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    /// The status.
    pub status: RevocationStatus,
    /// The distribution point whose CRL decided it.
    pub crl: Option<String>,
    /// A sentence on how it was decided, or why it could not be.
    pub detail: Option<String>,
}

impl Revocation {
    fn new(status: RevocationStatus, crl: Option<&str>, detail: String) -> Revocation {
        Revocation {
            status,
            crl: crl.map(str::to_string),
            detail: Some(detail),
        }
    }
}

/// The URIs of the cRLDistributionPoints of `cert` (every fullName URI, in order; RFC 5280
/// §4.2.1.13).
pub fn distribution_points(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|p| p.distpoint())
        .filter_map(|n| n.fullname())
        .flat_map(|names| names.iter())
        .filter_map(|g| g.uri().map(str::to_string))
        .collect()
}

/// Whether two names are the same (DER comparison: RFC 5280 §7.1 names are matched as
/// encoded by the same CA, which is what a CA's CRL and certificates carry).
fn same_name(a: &X509NameRef, b: &X509NameRef) -> bool {
    match (a.to_der(), b.to_der()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// The public key of the certificate that issued `signer`: the first of `anchors` and then
/// `intermediates` (DER, from the CMS) whose subject is the signer's issuer and whose key
/// verifies the signer certificate.
fn issuer_key(signer: &X509, anchors: &[X509], intermediates: &[Vec<u8>]) -> Option<PKey<Public>> {
    let parsed = intermediates
        .iter()
        .filter_map(|d| parse_certificate(d).ok());
    anchors
        .iter()
        .cloned()
        .chain(parsed)
        .filter(|c| same_name(c.subject_name(), signer.issuer_name()))
        .filter_map(|c| c.public_key().ok())
        .find(|k| signer.verify(k).unwrap_or(false))
}

/// The revocation status of `signer` at `at` (Unix seconds) against `crls`, with its issuer
/// found among `anchors` and `intermediates` (see the module comment). A CRL counts when it
/// was fetched from one of the signer's distribution points, names the signer's issuer and
/// verifies with the issuer's key; a listed revocation at or before `at` is final, and
/// otherwise the CRL must still be current at `at` (its nextUpdate not passed).
pub fn check_revocation(
    signer: &X509,
    anchors: &[X509],
    intermediates: &[Vec<u8>],
    crls: &Crls,
    at: i64,
) -> Revocation {
    let urls = distribution_points(signer);
    if urls.is_empty() {
        return Revocation {
            status: RevocationStatus::NotPublished,
            crl: None,
            detail: None,
        };
    }
    let Some(key) = issuer_key(signer, anchors, intermediates) else {
        return Revocation::new(
            RevocationStatus::Unknown,
            None,
            format!(
                "the certificate of its issuer ({}) is neither in the message nor among the \
                 trust anchors, so no CRL can be verified",
                name_string(signer.issuer_name())
            ),
        );
    };
    let mut why = Vec::new();
    for url in &urls {
        let Some(f) = crls.get(url) else {
            why.push(format!("no CRL has been fetched from {url}"));
            continue;
        };
        if !f.issued_by(signer.issuer_name()) {
            why.push(format!(
                "the CRL from {url} is issued by {}, not by the certificate's issuer",
                f.issuer()
            ));
            continue;
        }
        if !f.signed_by(&key) {
            why.push(format!(
                "the CRL from {url} does not verify with the issuer's key"
            ));
            continue;
        }
        if let CrlStatus::Revoked(r) = f.crl.get_by_cert(signer) {
            let when = unix(r.revocation_date()).unwrap_or(i64::MIN);
            if when <= at {
                return Revocation::new(
                    RevocationStatus::Revoked,
                    Some(url),
                    format!("revoked on {} (CRL from {url})", date(when)),
                );
            }
            return Revocation::new(
                RevocationStatus::Good,
                Some(url),
                format!(
                    "revoked on {}, after the time checked (CRL from {url})",
                    date(when)
                ),
            );
        }
        match f.next_update() {
            Some(next) if next < at => {
                why.push(format!(
                    "the CRL from {url} is out of date: its nextUpdate was {}",
                    date(next)
                ));
            }
            _ => {
                return Revocation::new(
                    RevocationStatus::Good,
                    Some(url),
                    format!(
                        "not listed in the CRL from {url} issued {}",
                        date(f.this_update())
                    ),
                );
            }
        }
    }
    Revocation::new(RevocationStatus::Unknown, None, why.join("; "))
}

#[cfg(test)]
#[path = "crl_tests.rs"]
mod tests;
