//! OCSP responses for the provider certificates of the Indice copy (pec.md §4.4 step 3: the
//! CRL is required, OCSP "a reasonable addition" [I]). Every certificate of the Indice copy
//! that names an `http(s)` OCSP responder in its authorityInfoAccess, and whose issuer is a
//! configured trust anchor, is asked about on the CRL refresher's schedule; each response is
//! checked when taken ([`FetchedOcsp::check`]), kept in `DATA/ocsp/<sha256 of the
//! certificate>.der` so a restart without network still has it, and handed to the receiving
//! point beside the CRLs. Only the Indice and the anchors choose what is asked and who may
//! answer, never a message.

use crate::Gestore;
use crate::crl::{Attempt, Fetcher, PointStatus, write_atomic};
use openssl::x509::X509;
use pec_index::Index;
use pec_message::smime::{Crls, FetchedOcsp, OcspState, request_url, responder};
use pec_store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One certificate of the Indice copy to ask about.
#[derive(Clone)]
pub struct Target {
    /// The certificate, DER, as the Indice holds it.
    pub der: Vec<u8>,
    /// The same, parsed.
    pub cert: X509,
    /// The trust anchor that issued it: the only key that may answer for it, itself or
    /// through a responder it authorised.
    pub issuer: X509,
    /// The responder its authorityInfoAccess names.
    pub responder: String,
}

impl Target {
    /// The name of its schedule and last attempt beside the distribution points' URLs.
    pub fn key(&self) -> String {
        format!("ocsp:{}", hex::encode(sha256(&self.der)))
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// The certificates of `index` with an `http(s)` OCSP responder and an issuer among
/// `anchors` (same name as the certificate's issuer, and its key verifies the certificate).
pub fn targets(index: &Index, anchors: &[X509]) -> Vec<Target> {
    let mut seen = std::collections::HashSet::new();
    index
        .records
        .iter()
        .flat_map(|r| r.certificates.iter())
        .filter(|der| seen.insert(der.to_vec()))
        .filter_map(|der| {
            let cert = X509::from_der(der).ok()?;
            let responder = responder(&cert)?;
            let issuer = anchors.iter().find(|ca| {
                ca.subject_name()
                    .try_cmp(cert.issuer_name())
                    .is_ok_and(|o| o.is_eq())
                    && ca
                        .public_key()
                        .is_ok_and(|k| cert.verify(&k).unwrap_or(false))
            })?;
            Some(Target {
                der: der.to_vec(),
                issuer: issuer.clone(),
                cert,
                responder,
            })
        })
        .collect()
}

/// Where the response about the certificate `der` is kept.
pub fn cache_file(data_dir: &Path, der: &[u8]) -> PathBuf {
    data_dir
        .join("ocsp")
        .join(format!("{}.der", hex::encode(sha256(der))))
}

/// Adds to `crls` the responses kept in `data_dir` about the certificates of `index`, checked
/// again now; a file that is no longer a valid, current response is skipped.
pub fn load_cached(data_dir: &Path, index: &Index, anchors: &[X509], crls: &mut Crls) {
    let now = chrono::Utc::now().timestamp();
    for t in targets(index, anchors) {
        let path = cache_file(data_dir, &t.der);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match FetchedOcsp::check(&bytes, &t.responder, &t.cert, &t.issuer, now) {
            Ok(f) => crls.insert_ocsp(t.der, Arc::new(f)),
            Err(e) => tracing::warn!("cached OCSP response {} skipped: {e}", path.display()),
        }
    }
}

impl<S: Store> Gestore<S> {
    /// Asks the responder of `t` once, checks the answer and keeps it unless the one held is
    /// more recent; returns until when it counts, or why it was not taken.
    pub async fn refresh_ocsp(&self, fetcher: &dyn Fetcher, t: &Target) -> Result<i64, String> {
        let url = request_url(&t.responder, &t.cert, &t.issuer).map_err(|e| e.to_string())?;
        let bytes = tokio::time::timeout(Duration::from_secs(60), fetcher.get(&url))
            .await
            .map_err(|_| "no answer within 60 s".to_string())??;
        let now = self.clock.now().utc().timestamp();
        let f = FetchedOcsp::check(&bytes, &t.responder, &t.cert, &t.issuer, now)
            .map_err(|e| e.to_string())?;
        let until = f.valid_until();
        if let Some(held) = self.crls().ocsp(&t.der)
            && held.this_update > f.this_update
        {
            return Err("the response is older than the one already held".into());
        }
        write_atomic(&cache_file(&self.settings.data_dir, &t.der), &bytes)
            .map_err(|e| format!("cannot keep the OCSP response: {e}"))?;
        tracing::info!(
            responder = %t.responder,
            status = state_name(f.state),
            "OCSP response taken"
        );
        let mut g = self.crls.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**g).clone();
        next.insert_ocsp(t.der.clone(), Arc::new(f));
        *g = Arc::new(next);
        Ok(until)
    }
}

fn state_name(s: OcspState) -> &'static str {
    match s {
        OcspState::Good => "good",
        OcspState::Revoked(_) => "revoked",
        OcspState::Unknown => "unknown",
    }
}

/// Each of `targets` with the response held about it and its last attempt, at `now`.
pub(crate) fn status(
    targets: &[Target],
    crls: &Crls,
    attempts: &HashMap<String, Attempt>,
    now: i64,
) -> Vec<PointStatus> {
    targets
        .iter()
        .map(|t| {
            let held = crls.ocsp(&t.der);
            let attempt = attempts.get(&t.key());
            PointStatus {
                kind: "ocsp",
                url: t.responder.clone(),
                certificate: Some(pec_message::pki::name_string(t.cert.subject_name())),
                state: match held {
                    None => "missing",
                    Some(o) if o.valid_until() <= now => "expired",
                    Some(_) => "current",
                },
                issuer: held.map(|_| pec_message::pki::name_string(t.issuer.subject_name())),
                this_update: held.map(|o| o.this_update),
                next_update: held.map(|o| o.valid_until()),
                revoked: held.map(|o| usize::from(matches!(o.state, OcspState::Revoked(_)))),
                cert_status: held.map(|o| state_name(o.state)),
                last_attempt: attempt.map(|a| a.at),
                last_error: attempt.and_then(|a| a.error.clone()),
                next_attempt: attempt.map(|a| a.next),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pec_index::ProviderRecord;
    use pec_message::pki;

    /// Only certificates naming a responder and issued by a configured anchor are asked
    /// about, with that anchor as the only key that may answer.
    #[test]
    fn certificates_are_asked_about_only_with_their_issuer_among_the_anchors() {
        let t0 = 1_700_000_000;
        let ca = pki::make_ca("CA A", t0, 30).unwrap();
        let other = pki::make_ca("CA B", t0, 30).unwrap();
        let issue = |ocsp: Option<&str>, domain: &str| {
            let points = pki::RevocationPoints { crl: None, ocsp };
            pki::issue_signing_cert_with_points(&ca, "A", domain, None, t0, 10, points)
                .unwrap()
                .cert_der()
                .unwrap()
        };
        let named = issue(Some("http://ocsp.test/a"), "a.test");
        let silent = issue(None, "b.test");
        let index = Index {
            records: vec![
                ProviderRecord::new("A", named.clone(), "r@a.test", &["a.test"]),
                ProviderRecord::new("B", silent, "r@b.test", &["b.test"]),
            ],
        };
        let t = targets(&index, std::slice::from_ref(&ca.cert));
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].der, named);
        assert_eq!(t[0].responder, "http://ocsp.test/a");
        assert_eq!(t[0].issuer.to_der().unwrap(), ca.cert.to_der().unwrap());
        assert!(t[0].key().starts_with("ocsp:"));
        assert!(targets(&index, std::slice::from_ref(&other.cert)).is_empty());
        assert!(targets(&index, &[]).is_empty());
    }
}
