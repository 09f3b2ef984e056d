//! The [`Signer`] trait: one private-key operation plus the certificates that go into the CMS
//! (pec.md §4.1: the signer certificate must be in the CMS; real providers add the issuer).
//! Software keys use aws-lc-rs; never the `rsa` crate (not constant-time, RUSTSEC-2023-0071).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};

/// Why a signature could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key material could not be loaded.
    #[error("cannot load the signing key: {0}")]
    Key(String),
    /// The certificate could not be read.
    #[error("cannot read the signing certificate: {0}")]
    Certificate(String),
    /// The private-key operation failed (HSM unavailable, session lost, ...).
    #[error("the signing operation failed: {0}")]
    Operation(String),
    /// The CMS structure could not be encoded.
    #[error("cannot encode the CMS structure: {0}")]
    Encoding(String),
}

/// The signature algorithm a key produces; the digest is always SHA-256 (pec.md §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// ECDSA P-256 with SHA-256, DER signature.
    EcdsaP256Sha256,
}

/// A provider signing identity: the key and the certificates that accompany its signatures.
pub trait Signer: Send + Sync {
    /// DER of the signer certificate.
    fn certificate(&self) -> &[u8];
    /// DER of further certificates to include (the issuing CA), in order.
    fn chain(&self) -> &[Vec<u8>];
    /// The algorithm of [`Signer::sign`].
    fn algorithm(&self) -> SignatureAlgorithm;
    /// Signs `data` (the DER of the signed attributes) with SHA-256 and the private key.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError>;
}

enum SoftwareKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A signer whose private key is held in memory (PKCS#8 DER), through aws-lc-rs.
pub struct SoftwareSigner {
    key: SoftwareKey,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    rng: SystemRandom,
}

impl SoftwareSigner {
    /// Loads an RSA or ECDSA P-256 key from PKCS#8 DER, with its certificate and chain (DER).
    pub fn from_pkcs8(
        pkcs8: &[u8],
        certificate: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, SignError> {
        let key = match RsaKeyPair::from_pkcs8(pkcs8) {
            Ok(k) => SoftwareKey::Rsa(k),
            Err(rsa_err) => {
                match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8) {
                    Ok(k) => SoftwareKey::Ecdsa(k),
                    Err(_) => {
                        return Err(SignError::Key(format!(
                            "not an RSA or P-256 PKCS#8 key ({rsa_err})"
                        )));
                    }
                }
            }
        };
        Ok(SoftwareSigner {
            key,
            certificate,
            chain,
            rng: SystemRandom::new(),
        })
    }
}

impl Signer for SoftwareSigner {
    fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key {
            SoftwareKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
            SoftwareKey::Ecdsa(_) => SignatureAlgorithm::EcdsaP256Sha256,
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.key {
            SoftwareKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut sig)
                    .map_err(|e| SignError::Operation(e.to_string()))?;
                Ok(sig)
            }
            SoftwareKey::Ecdsa(k) => k
                .sign(&self.rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| SignError::Operation(e.to_string())),
        }
    }
}
