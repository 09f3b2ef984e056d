//! Detached CMS `SignedData` (RFC 5652 §5) as PEC providers make it (pec.md §4.1): SHA-256,
//! signed attributes contentType / signingTime / messageDigest, the signer certificate and its
//! issuer in `certificates`, `issuerAndSerialNumber` as signer identifier.

use super::signer::{SignError, SignatureAlgorithm, Signer};
use crate::TimeRef;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use std::sync::{Arc, Mutex};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

fn enc(e: impl std::fmt::Display) -> SignError {
    SignError::Encoding(e.to_string())
}

fn attribute(oid: const_oid::ObjectIdentifier, value: Any) -> Result<Attribute, SignError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(enc)?,
    })
}

/// What a signer's certificates contribute to every signature: the signer identifier and
/// the `certificates` set.
struct SignerCerts {
    sid: SignerIdentifier,
    set: CertificateSet,
}

/// The signer's certificates decoded, from a small process-wide cache matched on their DER
/// (a gestore signs every receipt with the same certificate, and decoding it per signature
/// was a measurable share of building one).
fn signer_certs(signer: &dyn Signer) -> Result<Arc<SignerCerts>, SignError> {
    type Entry = (Vec<u8>, Vec<Vec<u8>>, Arc<SignerCerts>);
    static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    const MAX: usize = 16;
    let hit = CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(cert, chain, _)| cert == signer.certificate() && chain == signer.chain())
        .map(|(_, _, c)| c.clone());
    if let Some(c) = hit {
        return Ok(c);
    }
    let parse =
        |der: &[u8]| Certificate::from_der(der).map_err(|e| SignError::Certificate(e.to_string()));
    let cert = parse(signer.certificate())?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    let mut certs = vec![CertificateChoices::Certificate(cert)];
    for der in signer.chain() {
        certs.push(CertificateChoices::Certificate(parse(der)?));
    }
    let parsed = Arc::new(SignerCerts {
        sid,
        set: CertificateSet(SetOfVec::try_from(certs).map_err(enc)?),
    });
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= MAX {
        cache.clear();
    }
    cache.push((
        signer.certificate().to_vec(),
        signer.chain().to_vec(),
        parsed.clone(),
    ));
    Ok(parsed)
}

/// Makes the DER `ContentInfo` of a detached signature over `content` (already canonical CRLF),
/// with `signingTime` = `at`.
pub fn signed_data(signer: &dyn Signer, content: &[u8], at: TimeRef) -> Result<Vec<u8>, SignError> {
    let certs = signer_certs(signer)?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, content);
    let sha256 = AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    };

    let signing_time = UtcTime::from_unix_duration(std::time::Duration::from_secs(
        u64::try_from(at.utc().timestamp()).map_err(enc)?,
    ))
    .map_err(enc)?;
    let attrs = vec![
        attribute(
            rfc5911::ID_CONTENT_TYPE,
            Any::encode_from(&rfc5911::ID_DATA).map_err(enc)?,
        )?,
        attribute(
            rfc5911::ID_SIGNING_TIME,
            Any::encode_from(&signing_time).map_err(enc)?,
        )?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.as_ref()).map_err(enc)?).map_err(enc)?,
        )?,
    ];
    let signed_attrs = SetOfVec::try_from(attrs).map_err(enc)?;
    // RFC 5652 §5.4: the signature covers the DER of the attributes with an explicit SET tag.
    let to_sign = signed_attrs.to_der().map_err(enc)?;
    let signature = signer.sign(&to_sign)?;

    let signature_algorithm = match signer.algorithm() {
        SignatureAlgorithm::RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
            oid: rfc5912::RSA_ENCRYPTION,
            parameters: Some(Any::from(der::asn1::Null)),
        },
        SignatureAlgorithm::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
            oid: rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        },
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: certs.sid.clone(),
        digest_alg: sha256.clone(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm,
        signature: OctetString::new(signature).map_err(enc)?,
        unsigned_attrs: None,
    };
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(enc)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(certs.set.clone()),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(enc)?),
    };
    let info = ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(enc)?,
    };
    info.to_der().map_err(enc)
}
