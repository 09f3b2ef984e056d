//! S/MIME for PEC (pec.md §4): the [`Signer`] abstraction with its software (aws-lc-rs) and
//! PKCS#11 (cryptoki) backends, detached CMS `SignedData` generation, the byte-exact
//! `multipart/signed` wrapper, verification over the exact received bytes (openssl), and the
//! revocation status of a signer against fetched CRLs and OCSP responses.

mod cms_build;
mod crl;
mod ocsp;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod signer;
mod trust;
mod verify;
mod wrap;

pub use cms_build::signed_data;
pub use crl::{
    CrlError, Crls, FetchedCrl, Revocation, RevocationStatus, can_sign_crls, check_revocation,
    distribution_points,
};
pub use ocsp::{FetchedOcsp, NO_NEXT_UPDATE_SECS, OcspError, OcspState, request_url, responder};
#[cfg(feature = "pkcs11")]
pub use pkcs11::Pkcs11Signer;
pub use signer::{SignError, SignatureAlgorithm, Signer, SoftwareSigner};
pub use trust::{TrustCheck, check_trust, parse_certificate};
pub use verify::{
    CmsInfo, SignatureCheck, check_detached, cms_info, verify_detached, verify_opaque,
};
pub use wrap::{SignedParts, sign_entity, split_signed};
