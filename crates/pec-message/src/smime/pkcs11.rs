//! The PKCS#11 signing backend (cryptoki): the provider key stays in the HSM (pec.md §4.1,
//! product.md §7: signatures made by certified HSMs). Tested against SoftHSM2.

use super::signer::{SignError, SignatureAlgorithm, Signer};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::Path;
use std::sync::Mutex;

/// A signer whose private key is an object on a PKCS#11 token. Keep one per module per
/// process: dropping it finalizes the module (`C_Finalize`) for the whole process.
pub struct Pkcs11Signer {
    // Field order matters: the session must close before the context finalizes.
    session: Mutex<Session>,
    key: ObjectHandle,
    algorithm: SignatureAlgorithm,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    _context: Pkcs11,
}

impl Pkcs11Signer {
    /// Opens the module, logs in to the token with this label and finds the private key by its
    /// label. The certificate and chain are given as DER.
    pub fn open(
        module: &Path,
        token_label: &str,
        pin: &str,
        key_label: &str,
        certificate: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, SignError> {
        let op =
            |what: &str, e: cryptoki::error::Error| SignError::Key(format!("PKCS#11 {what}: {e}"));
        let context = Pkcs11::new(module).map_err(|e| op("module load", e))?;
        context
            .initialize(CInitializeArgs::OsThreads)
            .map_err(|e| op("initialize", e))?;
        let slot = context
            .get_slots_with_token()
            .map_err(|e| op("slot list", e))?
            .into_iter()
            .find(|s| {
                context
                    .get_token_info(*s)
                    .map(|t| t.label().trim() == token_label)
                    .unwrap_or(false)
            })
            .ok_or_else(|| SignError::Key(format!("no PKCS#11 token labelled {token_label:?}")))?;
        let session = context
            .open_ro_session(slot)
            .map_err(|e| op("open session", e))?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.to_string())))
            .map_err(|e| op("login", e))?;
        let keys = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| op("find key", e))?;
        let key = *keys.first().ok_or_else(|| {
            SignError::Key(format!(
                "no private key labelled {key_label:?} on the token"
            ))
        })?;
        let key_type = session
            .get_attributes(key, &[AttributeType::KeyType])
            .map_err(|e| op("key type", e))?;
        let algorithm = match key_type.first() {
            Some(Attribute::KeyType(t)) if *t == KeyType::RSA => SignatureAlgorithm::RsaPkcs1Sha256,
            Some(Attribute::KeyType(t)) if *t == KeyType::EC => SignatureAlgorithm::EcdsaP256Sha256,
            other => return Err(SignError::Key(format!("unsupported key type {other:?}"))),
        };
        Ok(Pkcs11Signer {
            session: Mutex::new(session),
            key,
            algorithm,
            certificate,
            chain,
            _context: context,
        })
    }
}

impl Signer for Pkcs11Signer {
    fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let session = self
            .session
            .lock()
            .map_err(|_| SignError::Operation("PKCS#11 session lock poisoned".into()))?;
        match self.algorithm {
            SignatureAlgorithm::RsaPkcs1Sha256 => session
                .sign(&Mechanism::Sha256RsaPkcs, self.key, data)
                .map_err(|e| SignError::Operation(format!("PKCS#11 sign: {e}"))),
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let raw = session
                    .sign(&Mechanism::EcdsaSha256, self.key, data)
                    .map_err(|e| SignError::Operation(format!("PKCS#11 sign: {e}")))?;
                ecdsa_raw_to_der(&raw)
            }
        }
    }
}

/// PKCS#11 returns ECDSA signatures as r || s; CMS wants `ECDSA-Sig-Value` DER (RFC 5753).
fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, SignError> {
    use der::Encode as _;
    if !raw.len().is_multiple_of(2) || raw.is_empty() {
        return Err(SignError::Operation(
            "malformed ECDSA signature from the token".into(),
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let r = der::asn1::UintRef::new(r).map_err(|e| SignError::Encoding(e.to_string()))?;
    let s = der::asn1::UintRef::new(s).map_err(|e| SignError::Encoding(e.to_string()))?;
    let seq: [der::asn1::UintRef<'_>; 2] = [r, s];
    // SEQUENCE { r INTEGER, s INTEGER }
    let mut body = Vec::new();
    for v in seq {
        v.encode_to_vec(&mut body)
            .map_err(|e| SignError::Encoding(e.to_string()))?;
    }
    let mut out = Vec::new();
    der::Header::new(
        der::Tag::Sequence,
        der::Length::try_from(body.len()).map_err(|e| SignError::Encoding(e.to_string()))?,
    )
    .map_err(|e| SignError::Encoding(e.to_string()))?
    .encode_to_vec(&mut out)
    .map_err(|e| SignError::Encoding(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}
