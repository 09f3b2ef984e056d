//! The `multipart/signed` wrapper (RFC 1847, RFC 5751 §3.4.3), built byte-exact with CRLF, and
//! its inverse: locating the signed bytes and the signature in a received message.

use super::cms_build::signed_data;
use super::signer::{SignError, Signer};
use crate::TimeRef;
use crate::mime::{Entity, base64_lines};

/// Wraps a MIME entity (`Content-Type` header, blank line, body; CRLF; no trailing line break)
/// in a signed `multipart/signed` message. `header_block` holds the outer header fields, each
/// ending in CRLF. `boundary` must not occur in `entity`.
pub fn sign_entity(
    header_block: &[u8],
    entity: &[u8],
    boundary: &str,
    signer: &dyn Signer,
    at: TimeRef,
) -> Result<Vec<u8>, SignError> {
    let p7s = signed_data(signer, entity, at)?;
    let sig_b64 = base64_lines(&p7s);
    let mut out = Vec::with_capacity(entity.len() + sig_b64.len() + 1024);
    out.extend_from_slice(header_block);
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=\"sha-256\";\r\n\tboundary=\"{boundary}\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"This is an S/MIME signed message\r\n\r\n");
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(entity);
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n",
    );
    out.extend_from_slice(&sig_b64);
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// The two halves of a received `multipart/signed` message.
#[derive(Debug, Clone)]
pub struct SignedParts<'a> {
    /// The first part exactly as received (what was signed, before CRLF canonicalisation).
    pub signed: &'a [u8],
    /// The decoded signature (DER) if a second part exists, or why it could not be decoded.
    pub signature: Option<Result<Vec<u8>, String>>,
    /// The `protocol` parameter.
    pub protocol: Option<String>,
    /// The `micalg` parameter.
    pub micalg: Option<String>,
    /// Whether the closing boundary was present.
    pub closed: bool,
}

/// Finds the signed part and the signature of a `multipart/signed` message; `None` when the
/// message is not `multipart/signed`.
pub fn split_signed<'a>(message: &Entity<'a>) -> Option<SignedParts<'a>> {
    let ct = message.content_type();
    if ct.mime_type != "multipart/signed" {
        return None;
    }
    let (parts, closed) = message.parts();
    let first = parts.first()?;
    let signature = parts
        .get(1)
        .map(|p| decode_signature(&Entity::parse(p.raw)));
    Some(SignedParts {
        signed: first.raw,
        signature,
        protocol: ct.param("protocol").map(str::to_string),
        micalg: ct.param("micalg").map(str::to_string),
        closed,
    })
}

/// Decodes the signature part strictly: a placeholder or damaged base64 body is an error, not
/// a guess.
fn decode_signature(part: &Entity<'_>) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    match part.transfer_encoding().as_str() {
        "base64" => {
            let clean: Vec<u8> = part
                .body()
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&clean)
                .map_err(|e| format!("the signature part is not valid base64 ({e})"))
        }
        _ => Ok(part.body().to_vec()),
    }
}
