//! Certificate revocation (pec.md §4.4 step 3: "check the CRL (cache allowed, with an update
//! interval short enough to keep the data current)"): CRLs fetched from the
//! cRLDistributionPoints of provider certificates, each checked once when it is taken, and
//! the revocation status of a signer certificate against them (RFC 5280 §6.3, for the signer
//! certificate: provider certificates are issued directly by an accredited CA, pec.md §4.3).
//!
//! A CRL is taken, when fetched, only if its signature verifies with the key of a CA
//! certificate the caller vouches for: the gestore passes its configured trust anchors that
//! may sign CRLs and that issued a provider certificate naming the distribution point
//! ([`can_sign_crls`]). At use it must also be signed by the key that issued the signer.
//! Nothing a message carries takes part: its certificates neither supply the issuer nor
//! change which CRL applies.

use super::ocsp::{FetchedOcsp, OcspState};
use super::trust::unix;
use crate::pki::name_string;
use der::Decode as _;
use openssl::x509::{CrlStatus, X509, X509Crl, X509NameRef};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use x509_cert::ext::pkix::crl::CrlDistributionPoints;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

/// Why fetched bytes are not a usable CRL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CrlError(String);

/// How far a CRL's thisUpdate may lie ahead of the local clock.
const CLOCK_SKEW_SECS: i64 = 3600;

/// A CRL taken from a distribution point, with the certificate whose key verified it.
pub struct FetchedCrl {
    crl: X509Crl,
    issuer: X509,
}

impl FetchedCrl {
    /// Reads and checks a CRL fetched from `url` at `now` (Unix seconds), in DER (the form of
    /// RFC 5280 §4.2.1.13 HTTP distribution points) or PEM. It must be a complete CRL for
    /// that point (no deltaCRLIndicator; an issuingDistributionPoint, if any, naming `url`
    /// and not narrowing the scope to CA certificates, some reasons or other issuers; no
    /// other critical extension), have a nextUpdate (RFC 5280 §5.1.2.5) and a thisUpdate not
    /// ahead of `now` by more than an hour of clock skew, and verify with the key of one of
    /// `issuers` that is named as its issuer and may sign CRLs ([`can_sign_crls`]).
    pub fn check(
        bytes: &[u8],
        url: &str,
        now: i64,
        issuers: &[X509],
    ) -> Result<FetchedCrl, CrlError> {
        let crl = X509Crl::from_der(bytes)
            .or_else(|_| X509Crl::from_pem(bytes))
            .map_err(|_| CrlError("the data is not a CRL in DER or PEM form".into()))?;
        let der = crl
            .to_der()
            .map_err(|e| CrlError(format!("the CRL cannot be encoded: {e}")))?;
        let list = x509_cert::crl::CertificateList::from_der(&der)
            .map_err(|e| CrlError(format!("the CRL cannot be read: {e}")))?;
        scope(&list, url)?;
        let this_update = unix(crl.last_update())
            .ok_or_else(|| CrlError("the CRL has an unreadable thisUpdate".into()))?;
        if this_update > now + CLOCK_SKEW_SECS {
            return Err(CrlError(format!(
                "the CRL's thisUpdate {} is in the future",
                date(this_update)
            )));
        }
        if crl.next_update().and_then(unix).is_none() {
            return Err(CrlError(
                "the CRL has no readable nextUpdate (RFC 5280 §5.1.2.5)".into(),
            ));
        }
        let issuer = issuers
            .iter()
            .filter(|c| same_name(c.subject_name(), crl.issuer_name()) && can_sign_crls(c))
            .find(|c| {
                c.public_key()
                    .is_ok_and(|k| crl.verify(&k).unwrap_or(false))
            })
            .cloned()
            .ok_or_else(|| {
                CrlError(format!(
                    "the CRL does not verify with a trusted CA certificate of its issuer {} \
                     (trust.anchors)",
                    name_string(crl.issuer_name())
                ))
            })?;
        Ok(FetchedCrl { crl, issuer })
    }

    /// `thisUpdate`, Unix seconds.
    pub fn this_update(&self) -> i64 {
        unix(self.crl.last_update()).unwrap_or(i64::MIN)
    }

    /// `nextUpdate`, Unix seconds (always present in a checked CRL).
    pub fn next_update(&self) -> i64 {
        self.crl.next_update().and_then(unix).unwrap_or(i64::MIN)
    }

    /// The issuer, `C=IT, O=..., CN=...`.
    pub fn issuer(&self) -> String {
        name_string(self.crl.issuer_name())
    }

    /// How many certificates it lists.
    pub fn revoked_count(&self) -> usize {
        self.crl.get_revoked().map_or(0, |r| r.len())
    }
}

/// Refuses a CRL whose scope is not the whole population of `url` (RFC 5280 §5.2.4, §5.2.5,
/// §6.3.3 (b)), or that carries a critical extension, of its own or of an entry, that this
/// check does not process (§5.2, §5.3).
fn scope(list: &x509_cert::crl::CertificateList, url: &str) -> Result<(), CrlError> {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS,
        ID_CE_DELTA_CRL_INDICATOR, ID_CE_INVALIDITY_DATE, ID_CE_ISSUING_DISTRIBUTION_POINT,
    };
    for ext in list.tbs_cert_list.crl_extensions.iter().flatten() {
        if ext.extn_id == ID_CE_DELTA_CRL_INDICATOR {
            return Err(CrlError("a delta CRL is not a complete CRL".into()));
        }
        if ext.extn_id == ID_CE_ISSUING_DISTRIBUTION_POINT {
            let idp = IssuingDistributionPoint::from_der(ext.extn_value.as_bytes())
                .map_err(|e| CrlError(format!("unreadable issuingDistributionPoint: {e}")))?;
            if idp.only_contains_ca_certs
                || idp.only_contains_attribute_certs
                || idp.only_some_reasons.is_some()
                || idp.indirect_crl
            {
                return Err(CrlError(
                    "the CRL covers only part of its issuer's certificates (issuingDistributionPoint)"
                        .into(),
                ));
            }
            if let Some(name) = &idp.distribution_point
                && !uris(name).iter().any(|u| u == url)
            {
                return Err(CrlError(format!(
                    "the CRL's issuingDistributionPoint does not name {url}"
                )));
            }
            continue;
        }
        if ext.critical
            && ext.extn_id != ID_CE_CRL_NUMBER
            && ext.extn_id != ID_CE_AUTHORITY_KEY_IDENTIFIER
        {
            return Err(CrlError(format!(
                "the CRL has an unsupported critical extension {}",
                ext.extn_id
            )));
        }
    }
    // RFC 5280 §5.3: a CRL with a critical entry extension the application cannot process
    // must not be used for any certificate. reasonCode and invalidityDate are understood
    // (and never critical in practice); certificateIssuer belongs to indirect CRLs, which
    // this check does not combine.
    for entry in list.tbs_cert_list.revoked_certificates.iter().flatten() {
        for ext in entry.crl_entry_extensions.iter().flatten() {
            if ext.critical
                && ext.extn_id != ID_CE_CRL_REASONS
                && ext.extn_id != ID_CE_INVALIDITY_DATE
            {
                return Err(CrlError(format!(
                    "an entry of the CRL has an unsupported critical extension {} \
                     (RFC 5280 §5.3)",
                    ext.extn_id
                )));
            }
        }
    }
    Ok(())
}

/// The URIs of a distribution point name.
fn uris(name: &DistributionPointName) -> Vec<String> {
    match name {
        DistributionPointName::FullName(names) => names
            .iter()
            .filter_map(|g| match g {
                GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                _ => None,
            })
            .collect(),
        DistributionPointName::NameRelativeToCRLIssuer(_) => Vec::new(),
    }
}

/// The CRLs in force, by the distribution-point URL they were fetched from, the OCSP
/// responses in force, by the DER of the certificate they speak of, and the policy for a
/// signer certificate whose status cannot be established.
#[derive(Default, Clone)]
pub struct Crls {
    by_url: HashMap<String, Arc<FetchedCrl>>,
    ocsp: HashMap<Vec<u8>, Arc<FetchedOcsp>>,
    /// When true, a signer certificate that names a distribution point but has no current
    /// CRL there is not trusted. When false (the default), such a certificate is trusted and
    /// the report says its status is unknown; a listed revocation always counts.
    pub required: bool,
}

impl Crls {
    /// An empty set with the given policy.
    pub fn new(required: bool) -> Crls {
        Crls {
            by_url: HashMap::new(),
            ocsp: HashMap::new(),
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

    /// Sets the OCSP response about the certificate `der`, replacing an older one.
    pub fn insert_ocsp(&mut self, der: Vec<u8>, response: Arc<FetchedOcsp>) {
        self.ocsp.insert(der, response);
    }

    /// The OCSP response held about the certificate `der`.
    pub fn ocsp(&self, der: &[u8]) -> Option<&Arc<FetchedOcsp>> {
        self.ocsp.get(der)
    }

    /// How many distribution points have a CRL.
    pub fn len(&self) -> usize {
        self.by_url.len()
    }

    /// Whether no distribution point has a CRL.
    pub fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }
}

/// Whether `cert` may sign CRLs: a CA certificate (basicConstraints CA:TRUE) whose keyUsage,
/// when present, includes cRLSign (RFC 5280 §4.2.1.3, §4.2.1.9).
pub fn can_sign_crls(cert: &X509) -> bool {
    use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE};
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok(parsed) = x509_cert::Certificate::from_der(&der) else {
        return false;
    };
    let exts: Vec<_> = parsed
        .tbs_certificate
        .extensions
        .into_iter()
        .flatten()
        .collect();
    let ca = exts
        .iter()
        .find(|e| e.extn_id == ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca);
    let usage = match exts.iter().find(|e| e.extn_id == ID_CE_KEY_USAGE) {
        None => true,
        Some(e) => KeyUsage::from_der(e.extn_value.as_bytes())
            .is_ok_and(|k| k.0.contains(KeyUsages::CRLSign)),
    };
    ca && usage
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
    /// It names a distribution point, but no current CRL of its issuer is held there.
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
    /// The OCSP responder whose response decided it.
    pub ocsp: Option<String>,
    /// A sentence on how it was decided, or why it could not be.
    pub detail: Option<String>,
}

impl Revocation {
    fn new(status: RevocationStatus, crl: Option<&str>, detail: String) -> Revocation {
        Revocation {
            status,
            crl: crl.map(str::to_string),
            ocsp: None,
            detail: Some(detail),
        }
    }

    fn by_ocsp(status: RevocationStatus, o: &FetchedOcsp, detail: String) -> Revocation {
        Revocation {
            status,
            crl: None,
            ocsp: Some(o.responder.clone()),
            detail: Some(detail),
        }
    }
}

/// The URIs of the distribution points of the certificate `der` (RFC 5280 §4.2.1.13) that
/// cover every reason and whose CRL its own issuer signs: a point with `reasons` or a
/// `cRLIssuer` is skipped, as this check does not combine partial or indirect CRLs.
pub fn distribution_points(der: &[u8]) -> Vec<String> {
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return Vec::new();
    };
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS)
    else {
        return Vec::new();
    };
    let Ok(points) = CrlDistributionPoints::from_der(ext.extn_value.as_bytes()) else {
        return Vec::new();
    };
    points
        .0
        .iter()
        .filter(|p| p.reasons.is_none() && p.crl_issuer.is_none())
        .filter_map(|p| p.distribution_point.as_ref())
        .flat_map(uris)
        .collect()
}

/// Whether two names are the same (OpenSSL's canonical comparison, RFC 5280 §7.1).
fn same_name(a: &X509NameRef, b: &X509NameRef) -> bool {
    a.try_cmp(b).is_ok_and(|o| o.is_eq())
}

/// `t` (Unix seconds) as `2026-11-25 10:00:00 UTC`.
pub(super) fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// The revocation status of `signer` (whose DER is `der`) at `at` (Unix seconds) against
/// `crls`. A CRL counts when it was fetched from one of the signer's distribution points,
/// names the signer's issuer and was verified with the key that also verifies the signer
/// certificate; a listed revocation at or before `at` is final, and otherwise the CRL must
/// still be current at `at` (its nextUpdate not passed). An OCSP response held about the
/// certificate (checked when taken, [`FetchedOcsp::check`]) counts the same way: a
/// revocation at or before `at` it reports is final whatever the CRL says, and a `good`
/// still current at `at` decides when no CRL does.
pub fn check_revocation(signer: &X509, der: &[u8], crls: &Crls, at: i64) -> Revocation {
    let ocsp = crls.ocsp(der);
    if let Some(o) = ocsp
        && let OcspState::Revoked(when) = o.state
        && when <= at
    {
        return Revocation::by_ocsp(
            RevocationStatus::Revoked,
            o,
            format!(
                "revoked on {} (OCSP response from {})",
                date(when),
                o.responder
            ),
        );
    }
    let by_crl = check_crls(signer, der, crls, at);
    match (by_crl.status, ocsp) {
        (RevocationStatus::Unknown | RevocationStatus::NotPublished, Some(o))
            if o.state != OcspState::Unknown && o.valid_until() >= at =>
        {
            Revocation::by_ocsp(
                RevocationStatus::Good,
                o,
                format!(
                    "good according to the OCSP response from {} of {}",
                    o.responder,
                    date(o.this_update)
                ),
            )
        }
        _ => by_crl,
    }
}

/// [`check_revocation`] with the CRLs alone.
fn check_crls(signer: &X509, der: &[u8], crls: &Crls, at: i64) -> Revocation {
    // Most signers name no point: OpenSSL's parsed extension answers that without decoding
    // the certificate again, which matters once per received message.
    let urls = match signer.crl_distribution_points() {
        Some(_) => distribution_points(der),
        None => Vec::new(),
    };
    if urls.is_empty() {
        return Revocation {
            status: RevocationStatus::NotPublished,
            crl: None,
            ocsp: None,
            detail: None,
        };
    }
    let mut why = Vec::new();
    for url in &urls {
        let Some(f) = crls.get(url) else {
            why.push(format!("no CRL is held from {url}"));
            continue;
        };
        let by_issuer = same_name(f.crl.issuer_name(), signer.issuer_name())
            && f.issuer
                .public_key()
                .is_ok_and(|k| signer.verify(&k).unwrap_or(false));
        if !by_issuer {
            why.push(format!(
                "the CRL from {url} is not signed by the key that issued the certificate"
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
        if f.next_update() < at {
            why.push(format!(
                "the CRL from {url} is out of date: its nextUpdate was {}",
                date(f.next_update())
            ));
            continue;
        }
        return Revocation::new(
            RevocationStatus::Good,
            Some(url),
            format!(
                "not listed in the CRL from {url} issued {}",
                date(f.this_update())
            ),
        );
    }
    Revocation::new(RevocationStatus::Unknown, None, why.join("; "))
}

#[cfg(test)]
#[path = "crl_tests.rs"]
mod tests;
