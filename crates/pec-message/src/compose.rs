//! Writing an original message from form fields (the webmail's compose page and the REST
//! API's `POST /api/v1/messages`): RFC 5322 headers with RFC 2047 encoded words, a
//! `text/plain` body in quoted-printable, attachments in base64 with RFC 2231 file names,
//! and `X-TipoRicevuta` when a receipt other than `completa` is wanted (pec.md §2.6).

use crate::TimeRef;
use crate::daticert::ReceiptType;
use crate::mime::{base64_lines, encode_word, qp_encode};

/// One attachment.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The file name as the user gave it.
    pub name: String,
    /// Its media type (`application/octet-stream` when unknown).
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What the user wrote.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The sender's address.
    pub from: String,
    /// Primary recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    pub cc: Vec<String>,
    /// The subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// The receipt kind wanted for the recipients (pec.md §2.12).
    pub receipt: ReceiptType,
}

/// Why a draft cannot be sent, as a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DraftError(pub String);

/// Whether `a` is a plain `local@domain` address (no display name, no spaces, no brackets
/// or quotes) that the access point will certify ([`crate::original::is_valid_address`]),
/// in a domain with at least one dot.
pub fn is_plain_address(a: &str) -> bool {
    a.rsplit_once('@').is_some_and(|(_, d)| d.contains('.'))
        && !a.contains('"')
        && crate::original::is_valid_address(a)
}

impl Draft {
    /// Checks the fields a client may get wrong.
    pub fn check(&self) -> Result<(), DraftError> {
        if self.to.is_empty() {
            return Err(DraftError(
                "at least one recipient in To is required".into(),
            ));
        }
        for a in self.to.iter().chain(&self.cc).chain([&self.from]) {
            if !is_plain_address(a) {
                return Err(DraftError(format!("{a:?} is not an e-mail address")));
            }
        }
        for a in &self.attachments {
            if a.name.trim().is_empty() {
                return Err(DraftError("an attachment has no file name".into()));
            }
        }
        Ok(())
    }
}

/// A header value with line breaks and control characters replaced by spaces (no header
/// injection through a subject or a file name).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A `filename` parameter: quoted ASCII, or RFC 2231 `filename*=utf-8''…` otherwise.
fn file_name_param(name: &str) -> String {
    let name = one_line(name);
    if name.chars().all(|c| (' '..='~').contains(&c)) {
        format!(
            "filename=\"{}\"",
            name.replace('\\', "\\\\").replace('"', "\\\"")
        )
    } else {
        let mut enc = String::from("filename*=utf-8''");
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        enc
    }
}

/// Writes the message. `boundary_seed` makes the MIME boundary unique (e.g. random hex);
/// `message_id` is written as given, with angle brackets.
pub fn compose(d: &Draft, at: TimeRef, message_id: &str, boundary_seed: &str) -> Vec<u8> {
    let mut h = String::new();
    h.push_str(&format!("From: {}\r\n", d.from));
    h.push_str(&format!("To: {}\r\n", d.to.join(",\r\n ")));
    if !d.cc.is_empty() {
        h.push_str(&format!("Cc: {}\r\n", d.cc.join(",\r\n ")));
    }
    h.push_str(&format!(
        "Subject: {}\r\n",
        encode_word(&one_line(&d.subject))
    ));
    h.push_str(&format!("Date: {}\r\n", at.rfc5322()));
    h.push_str(&format!("Message-ID: {message_id}\r\n"));
    if d.receipt != ReceiptType::Completa {
        h.push_str(&format!("X-TipoRicevuta: {}\r\n", d.receipt));
    }
    h.push_str("MIME-Version: 1.0\r\n");
    let text = {
        let mut body = d.body.replace("\r\n", "\n").replace('\n', "\r\n");
        if !body.ends_with("\r\n") {
            body.push_str("\r\n");
        }
        qp_encode(body.as_bytes())
    };
    let mut out = Vec::with_capacity(text.len() + 1024);
    if d.attachments.is_empty() {
        h.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        h.push_str("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&text);
        return out;
    }
    let boundary = format!("=_pec_{boundary_seed}");
    h.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&text);
    for a in &d.attachments {
        let ct = one_line(&a.content_type);
        let ct = if ct.contains('/') && !ct.contains(';') && !ct.contains('"') {
            ct
        } else {
            "application/octet-stream".into()
        };
        let param = file_name_param(&a.name);
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment;\r\n {param}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&base64_lines(&a.bytes));
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mime::Entity;
    use crate::original::OriginalHeaders;

    fn draft() -> Draft {
        Draft {
            from: "mario@a.test".into(),
            to: vec!["anna@b.test".into()],
            cc: vec!["luca@b.test".into()],
            subject: "Fattura n. 7 — è pronta\r\nBcc: evil@x.test".into(),
            body: "Buongiorno,\nin allegato.\n".into(),
            attachments: vec![Attachment {
                name: "fattura \"7\" perché.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.4 test".to_vec(),
            }],
            receipt: ReceiptType::Breve,
        }
    }

    fn at() -> TimeRef {
        TimeRef::from_unix(1_700_000_000).unwrap()
    }

    #[test]
    fn a_draft_becomes_a_message_the_access_point_reads_back() {
        let raw = compose(&draft(), at(), "<m1@a.test>", "abc");
        let h = OriginalHeaders::parse(&raw);
        assert_eq!(h.from, vec!["mario@a.test"]);
        assert_eq!(h.to, vec!["anna@b.test"]);
        assert_eq!(h.cc, vec!["luca@b.test"]);
        assert!(!h.bcc_has_value, "no header injection through the subject");
        assert_eq!(
            h.subject.as_deref(),
            Some("Fattura n. 7 — è pronta  Bcc: evil@x.test")
        );
        assert_eq!(h.tipo_ricevuta.as_deref(), Some("breve"));
        let e = Entity::parse(&raw);
        let (parts, _) = e.parts();
        assert_eq!(parts.len(), 2);
        let att = Entity::parse(parts[1].raw);
        assert_eq!(att.file_name().as_deref(), Some("fattura \"7\" perché.pdf"));
        assert_eq!(&att.decoded_body()[..], b"%PDF-1.4 test");
        let text = Entity::parse(parts[0].raw);
        // The line break before a boundary belongs to the boundary (RFC 2046 §5.1.1).
        assert_eq!(&text.decoded_body()[..], b"Buongiorno,\r\nin allegato.");
    }

    #[test]
    fn completa_is_the_default_and_is_not_written() {
        let mut d = draft();
        d.receipt = ReceiptType::Completa;
        d.attachments.clear();
        let raw = compose(&d, at(), "<m2@a.test>", "x");
        assert!(OriginalHeaders::parse(&raw).tipo_ricevuta.is_none());
        assert!(String::from_utf8_lossy(&raw).contains("Content-Type: text/plain"));
    }

    #[test]
    fn bad_fields_are_refused_with_a_sentence() {
        let mut d = draft();
        d.to = vec!["anna@b.test>, x@y.test".into()];
        assert!(d.check().unwrap_err().0.contains("not an e-mail address"));
        d.to.clear();
        assert!(d.check().unwrap_err().0.contains("at least one recipient"));
        assert!(is_plain_address("a.b+c@d.example"));
        assert!(!is_plain_address("a b@d.example"));
        assert!(!is_plain_address("ab@localhost"));
        for bad in ["a..b@x.it", "x@b..it", "x@-b.it", "x@p_q.it", "\"a\"@x.it"] {
            assert!(!is_plain_address(bad), "{bad}");
        }
        assert!(!is_plain_address(&format!("{}@x.it", "a".repeat(65))));
    }
}
