//! OCSP (RFC 6960) for provider certificates: pec.md §4.4 step 3 asks for the CRL and names
//! OCSP "a reasonable addition" ([I]); AgID CA1's certificates carry an authorityInfoAccess
//! OCSP address beside their distribution points (pec.md §4.3). A response is asked for each
//! provider certificate of the Indice copy whose issuer is a configured trust anchor, checked
//! once when it is taken ([`FetchedOcsp::check`]), and consulted beside the CRL by
//! [`super::check_revocation`]. As with CRLs, nothing a message carries takes part: the
//! certificate asked about and its issuer come from the Indice copy and the anchors.

use super::crl::date;
use base64::Engine as _;
use openssl::asn1::Asn1GeneralizedTimeRef;
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Ref};

/// Why fetched bytes are not a usable OCSP response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OcspError(String);

impl From<openssl::error::ErrorStack> for OcspError {
    fn from(e: openssl::error::ErrorStack) -> OcspError {
        OcspError(format!("OpenSSL: {e}"))
    }
}

/// How far a response's thisUpdate may lie ahead of the local clock.
const CLOCK_SKEW_SECS: i64 = 3600;

/// How long a response without nextUpdate counts after its thisUpdate (RFC 6960 §4.2.2.1:
/// without nextUpdate "newer revocation information is available all the time").
pub const NO_NEXT_UPDATE_SECS: i64 = 3600;

/// The `http(s)` OCSP responder named in the authorityInfoAccess of `cert` (RFC 5280
/// §4.2.2.1), if any.
pub fn responder(cert: &X509Ref) -> Option<String> {
    cert.ocsp_responders()
        .ok()?
        .iter()
        .map(|s| s.to_string())
        .find(|u| u.starts_with("http://") || u.starts_with("https://"))
}

/// The address that asks `responder` about `cert`, issued by `issuer`, with a GET (RFC 6960
/// appendix A.1: the DER request, base64, URL-encoded, after the responder's address).
pub fn request_url(responder: &str, cert: &X509Ref, issuer: &X509Ref) -> Result<String, OcspError> {
    let mut req = OcspRequest::new()?;
    req.add_id(OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(req.to_der()?);
    let encoded = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    Ok(format!("{}/{encoded}", responder.trim_end_matches('/')))
}

/// What a response says of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspState {
    /// Not revoked.
    Good,
    /// Revoked at this time (Unix seconds).
    Revoked(i64),
    /// The responder does not know the certificate.
    Unknown,
}

/// A response taken from a responder about one certificate.
#[derive(Debug, Clone)]
pub struct FetchedOcsp {
    /// The responder asked.
    pub responder: String,
    /// What it said.
    pub state: OcspState,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds, when the response has one.
    pub next_update: Option<i64>,
}

impl FetchedOcsp {
    /// Reads and checks the answer `bytes` of `responder` about `cert` at `now` (Unix
    /// seconds). It must be a successful basic response, signed by `issuer` or by a
    /// responder certificate `issuer` issued for OCSP signing (RFC 6960 §4.2.2.2), give the
    /// status of `cert`, and be current: thisUpdate not ahead of `now` by more than an hour
    /// of clock skew, nextUpdate (if any) not passed.
    pub fn check(
        bytes: &[u8],
        responder: &str,
        cert: &X509Ref,
        issuer: &X509,
        now: i64,
    ) -> Result<FetchedOcsp, OcspError> {
        let resp = OcspResponse::from_der(bytes)
            .map_err(|_| OcspError("the data is not an OCSP response".into()))?;
        let status = resp.status();
        if status != OcspResponseStatus::SUCCESSFUL {
            return Err(OcspError(format!(
                "the responder answered {} (RFC 6960 §4.2.1)",
                response_status_name(status)
            )));
        }
        let basic = resp
            .basic()
            .map_err(|_| OcspError("the response is not a basic OCSP response".into()))?;
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(issuer.clone())?;
        let mut param = X509VerifyParam::new()?;
        param.set_time(now as _);
        // The anchor may be an intermediate such as AgID CA1 (pec.md §7.3).
        param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        store.set_param(&param)?;
        let store = store.build();
        let mut certs = Stack::new()?;
        certs.push(issuer.clone())?;
        basic
            .verify(&certs, &store, OcspFlag::empty())
            .map_err(|_| {
                OcspError(
                    "the response is not signed by the certificate's CA or by a responder it \
                     authorised (RFC 6960 §4.2.2.2)"
                        .into(),
                )
            })?;
        let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?;
        let st = basic.find_status(&id).ok_or_else(|| {
            OcspError("the response does not give the certificate's status".into())
        })?;
        let this_update = generalized(st.this_update)?;
        if this_update > now + CLOCK_SKEW_SECS {
            return Err(OcspError(format!(
                "the response's thisUpdate {} is in the future",
                date(this_update)
            )));
        }
        let next_update = st.next_update().map(generalized).transpose()?;
        if let Some(next) = next_update
            && next < now
        {
            return Err(OcspError(format!(
                "the response is out of date: its nextUpdate was {}",
                date(next)
            )));
        }
        let state = if st.status == OcspCertStatus::GOOD {
            OcspState::Good
        } else if st.status == OcspCertStatus::REVOKED {
            let when = st
                .revocation_time
                .map(generalized)
                .transpose()?
                .ok_or_else(|| OcspError("a revoked status without a revocation time".into()))?;
            OcspState::Revoked(when)
        } else {
            OcspState::Unknown
        };
        Ok(FetchedOcsp {
            responder: responder.to_string(),
            state,
            this_update,
            next_update,
        })
    }

    /// Until when (Unix seconds) the response counts: its nextUpdate, or
    /// [`NO_NEXT_UPDATE_SECS`] after its thisUpdate.
    pub fn valid_until(&self) -> i64 {
        self.next_update
            .unwrap_or(self.this_update + NO_NEXT_UPDATE_SECS)
    }
}

/// A GeneralizedTime as Unix seconds.
fn generalized(t: &Asn1GeneralizedTimeRef) -> Result<i64, OcspError> {
    // The crate has no accessor for the value: OpenSSL's printed form ("Nov  5 10:00:00
    // 2026 GMT", with fractional seconds when present) is read back.
    let text = t.to_string();
    chrono::NaiveDateTime::parse_from_str(&text, "%b %e %H:%M:%S%.f %Y GMT")
        .map(|d| d.and_utc().timestamp())
        .map_err(|_| OcspError(format!("an unreadable time in the response: {text}")))
}

fn response_status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
        OcspResponseStatus::INTERNAL_ERROR => "internalError",
        OcspResponseStatus::TRY_LATER => "tryLater",
        OcspResponseStatus::SIG_REQUIRED => "sigRequired",
        OcspResponseStatus::UNAUTHORIZED => "unauthorized",
        _ => "an unknown status",
    }
}

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;
