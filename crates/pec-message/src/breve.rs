//! The breve transformation (pec.md §2.12, RFC 6109 §3.3.2.2): every MIME part with a `name`
//! or `filename` parameter becomes a `text/plain` part `<filename>.hash` holding the 40-hex
//! SHA-1 of the part's content as transmitted (still encoded). A nested `message/rfc822` is
//! replaced whole. In a `multipart/signed` original only the signed part is walked and the
//! signature stays; an opaque `pkcs7-mime` original cannot be changed, so it stays whole.
//! Every other byte is kept.

use crate::mime::{Entity, decode_words};

/// Returns the breve form of `original`.
pub fn breve(original: &[u8]) -> Vec<u8> {
    let eol: &[u8] = if original.windows(2).any(|w| w == b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    transform(original, eol)
}

/// The SHA-1 of a part's transmitted content, as 40 lower-case hex characters.
pub fn part_hash(content: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        content,
    ))
}

fn transform(raw: &[u8], eol: &[u8]) -> Vec<u8> {
    let entity = Entity::parse(raw);
    let ct = entity.content_type();
    if !ct.is_multipart() {
        return raw.to_vec();
    }
    let (parts, _) = entity.parts();
    let signed = ct.mime_type == "multipart/signed";
    let body = entity.body();
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..entity.body_start]);
    let mut cursor = 0;
    for (i, part) in parts.iter().enumerate() {
        // The signature of a multipart/signed original stays as it is.
        if signed && i > 0 {
            continue;
        }
        let replacement = replace_part(part.raw, eol);
        out.extend_from_slice(&body[cursor..part.offset]);
        out.extend_from_slice(&replacement);
        cursor = part.offset + part.raw.len();
    }
    out.extend_from_slice(&body[cursor..]);
    out
}

fn replace_part(raw: &[u8], eol: &[u8]) -> Vec<u8> {
    let part = Entity::parse(raw);
    let ct = part.content_type();
    let name = part.file_name();
    if ct.is_multipart() && name.is_none() {
        return transform(raw, eol);
    }
    let name = match (name, ct.mime_type.as_str()) {
        // A name written as RFC 2047 words (common, though RFC 2231 is the rule) is
        // decoded, so the hash file is named after the file the user sees.
        // Control characters (a CR or LF that an encoded word can carry) would break out
        // of the header of the signed receipt: they become `_`.
        (Some(n), _) => decode_words(&n)
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect(),
        (None, "message/rfc822") => "messaggio.eml".to_string(),
        (None, _) => return raw.to_vec(),
    };
    let hash = part_hash(part.body());
    let file = format!("{name}.hash");
    let param = if file.is_ascii() {
        format!("=\"{}\"", file.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("*=UTF-8''{}", percent(&file))
    };
    let mut out = Vec::with_capacity(200);
    for line in [
        format!("Content-Type: text/plain; charset=\"us-ascii\"; name{param}"),
        format!("Content-Disposition: attachment; filename{param}"),
        "Content-Transfer-Encoding: 7bit".to_string(),
        String::new(),
    ] {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(hash.as_bytes());
    out
}

/// RFC 2231 percent-encoding of a UTF-8 value.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "From: a@x.it\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nciao\r\n--b1\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n--b1--\r\n";

    #[test]
    fn attachments_and_nested_messages_become_hashes() {
        let out = String::from_utf8(breve(MSG.as_bytes())).expect("utf8");
        assert!(
            out.contains("--b1\r\nContent-Type: text/plain\r\n\r\nciao\r\n--b1\r\n"),
            "{out}"
        );
        assert!(out.contains("name=\"doc.pdf.hash\""));
        assert!(out.contains(&part_hash(b"JVBERi0x")));
        assert!(out.contains("messaggio.eml.hash"));
        assert!(out.contains(&part_hash(b"Subject: inner\r\n\r\nx")));
        assert!(!out.contains("JVBERi0x"));
        assert!(out.ends_with("--b1--\r\n"));
    }

    #[test]
    fn signed_original_keeps_its_signature_and_opaque_stays_whole() {
        let signed = format!(
            "Content-Type: multipart/signed; boundary=\"s\"\r\n\r\n--s\r\n{}\r\n--s\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\r\nSIG\r\n--s--\r\n",
            MSG.split_once("\r\n")
                .map(|(_, rest)| rest.trim_end())
                .unwrap_or("")
        );
        let out = String::from_utf8(breve(signed.as_bytes())).expect("utf8");
        assert!(out.contains("smime.p7s\"\r\n\r\nSIG"));
        assert!(out.contains("doc.pdf.hash"));
        let opaque = b"Content-Type: application/pkcs7-mime; name=\"smime.p7m\"\r\n\r\nAAAA\r\n";
        assert_eq!(breve(opaque), opaque.to_vec());
    }

    #[test]
    fn a_name_in_encoded_words_gives_a_decoded_hash_name() {
        let m = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?cGVyY2jDqS5wZGY=?=\"\r\n\r\nJVBERi0x\r\n--b--\r\n";
        let out = String::from_utf8(breve(m.as_bytes())).expect("utf8");
        assert!(out.contains("name*=UTF-8''perch%C3%A9.pdf.hash"), "{out}");
        assert!(!out.contains("=?UTF-8?"), "{out}");
        // An encoded CR LF cannot end the part's header or the multipart.
        let m = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"=?US-ASCII?Q?x=0D=0A=0D=0A--b--?=\"\r\n\r\nJVBERi0x\r\n--b--\r\n";
        let out = String::from_utf8(breve(m.as_bytes())).expect("utf8");
        assert!(out.contains("name=\"x____--b--.hash\""), "{out}");
        assert_eq!(out.matches("--b--").count(), 3, "{out}");
    }
}
