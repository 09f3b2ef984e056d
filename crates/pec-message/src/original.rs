//! What the PEC messages state about an original message: sender, To and Cc recipients,
//! Reply-To, the decoded subject, the client Message-ID and the requested receipt kind
//! (pec.md §2.1, §3.3). Header values are decoded with RFC 2047 and RFC 5322 address rules.

use crate::daticert::ReceiptType;
use crate::mime::Entity;

/// The header facts of an original message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginalHeaders {
    /// Addresses in `From:`.
    pub from: Vec<String>,
    /// Addresses in `To:`.
    pub to: Vec<String>,
    /// Addresses in `Cc:`.
    pub cc: Vec<String>,
    /// Whether a `Bcc:` field with a value is present (pec.md §5.1 check 5).
    pub bcc_has_value: bool,
    /// First address in `Reply-To:`.
    pub reply_to: Option<String>,
    /// The decoded subject.
    pub subject: Option<String>,
    /// The client `Message-ID`, with angle brackets, as written.
    pub message_id: Option<String>,
    /// The raw `X-TipoRicevuta` value (pec.md §2.6, case-insensitive name).
    pub tipo_ricevuta: Option<String>,
    /// The first field that RFC 5322 §3.6 allows at most once and that occurs more often.
    pub repeated: Option<String>,
    /// A line that ends the header block without being an empty line (the start of it, as
    /// text), so that fields after it would be seen by some readers and not by others.
    pub stray_line: Option<String>,
}

/// Whether `address` is a mailbox a PEC may certify: `local@domain` in ASCII (RFC 5321
/// §4.1.2), with a dot-atom or quoted local part of at most 64 characters and a domain of
/// letters, digits and hyphens in dot-separated labels (RFC 1035 §2.3.1), at most 255
/// characters. Internationalised addresses are not foreseen by the PEC rules (pec.md §9).
pub fn is_valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        local[1..local.len() - 1]
            .chars()
            .all(|c| (' '..='~').contains(&c))
    } else {
        local
            .split('.')
            .all(|a| !a.is_empty() && a.chars().all(atext))
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    !local.is_empty()
        && local.len() <= 64
        && local_ok
        && domain.len() <= 255
        && domain.split('.').all(label_ok)
}

/// The fields RFC 5322 §3.6 allows at most once in a message.
const SINGLE_FIELDS: [&str; 11] = [
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
];

impl OriginalHeaders {
    /// Reads the header facts of a message.
    pub fn parse(raw: &[u8]) -> OriginalHeaders {
        let entity = Entity::parse(raw);
        // mail-parser decodes RFC 2047 words and address lists; feed it the header block only.
        let mut block = entity.header_block.to_vec();
        block.extend_from_slice(b"\r\n\r\n");
        let parsed = mail_parser::MessageParser::new().parse_headers(&block);
        let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| x.address())
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
        };
        let (from, to, cc, reply_to, subject) = match &parsed {
            Some(m) => (
                addrs(m.from()),
                addrs(m.to()),
                addrs(m.cc()),
                addrs(m.reply_to()).into_iter().next(),
                m.subject().map(str::to_string),
            ),
            None => Default::default(),
        };
        OriginalHeaders {
            from,
            to,
            cc,
            bcc_has_value: entity.headers_named("Bcc").any(|h| !h.value().is_empty()),
            reply_to,
            subject,
            message_id: entity.header_value("Message-ID").filter(|v| !v.is_empty()),
            tipo_ricevuta: entity.header_value("X-TipoRicevuta"),
            repeated: SINGLE_FIELDS
                .iter()
                .find(|name| entity.headers_named(name).nth(1).is_some())
                .map(|name| name.to_string()),
            stray_line: entity
                .stray_line()
                .map(|l| String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned()),
        }
    }

    /// The receipt kind the sender asked for (absent or unknown: completa).
    pub fn requested_receipt(&self) -> ReceiptType {
        ReceiptType::requested(self.tipo_ricevuta.as_deref())
    }

    /// Every To and Cc address once, To first (pec.md §9: an address in both counts as To).
    pub fn recipients(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in self.to.iter().chain(self.cc.iter()) {
            if !out.iter().any(|b| b.eq_ignore_ascii_case(a)) {
                out.push(a.clone());
            }
        }
        out
    }

    /// Whether `address` is a primary recipient for the receipt kind (pec.md §2.12: in `To:`,
    /// or in neither To nor Cc).
    pub fn is_primary(&self, address: &str) -> bool {
        let in_to = self.to.iter().any(|a| a.eq_ignore_ascii_case(address));
        let in_cc = self.cc.iter().any(|a| a.eq_ignore_ascii_case(address));
        in_to || !in_cc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_subject_and_addresses() {
        let raw = b"From: \"Mario\" <mario@pec.example.it>\r\nTo: a@pec.example.it, \"B\" <b@gmail.com>\r\nCc: c@pec.example.it, a@pec.example.it\r\nSubject: =?UTF-8?Q?Perch=C3=A9?= no\r\nMessage-ID: <x@y>\r\nx-tiporicevuta: breve\r\nBcc:\r\n\r\nbody";
        let h = OriginalHeaders::parse(raw);
        assert_eq!(h.from, vec!["mario@pec.example.it"]);
        assert_eq!(
            h.recipients(),
            vec!["a@pec.example.it", "b@gmail.com", "c@pec.example.it"]
        );
        assert_eq!(h.subject.as_deref(), Some("Perché no"));
        assert_eq!(h.message_id.as_deref(), Some("<x@y>"));
        assert_eq!(h.requested_receipt(), ReceiptType::Breve);
        assert!(!h.bcc_has_value);
        assert!(h.is_primary("A@pec.example.it"));
        assert!(!h.is_primary("c@pec.example.it"));
        assert!(h.is_primary("unknown@x.it"));
        assert_eq!(h.repeated, None);
    }

    /// RFC 5322 §3.6: a second From (or To, Subject...) is found whatever its case.
    #[test]
    fn finds_a_repeated_single_field() {
        let raw =
            b"From: boss@other.test\r\nTo: a@pec.example.it\r\nfrom: mario@pec.example.it\r\n\r\nx";
        assert_eq!(
            OriginalHeaders::parse(raw).repeated.as_deref(),
            Some("From")
        );
        let raw = b"From: m@p.it\r\nTo: a@p.it\r\nSubject: a\r\nSubject: b\r\n\r\nx";
        assert_eq!(
            OriginalHeaders::parse(raw).repeated.as_deref(),
            Some("Subject")
        );
        let raw = b"From: m@p.it\r\nTo: a@p.it\r\nReceived: x\r\nReceived: y\r\n\r\nx";
        assert_eq!(OriginalHeaders::parse(raw).repeated, None);
    }

    #[test]
    fn addresses_a_pec_may_certify() {
        for ok in [
            "anna@b.test",
            "a.b+c@pec.x-y.it",
            "\"anna rossi\"@b.test",
            "x@localhost",
        ] {
            assert!(is_valid_address(ok), "{ok}");
        }
        for bad in [
            "anna@",
            "@b.test",
            "anna",
            "anna@b..test",
            "anna@-b.test",
            "a..b@b.test",
            ".a@b.test",
            "josé@pec.x.it",
            "anna@bé.it",
            "an na@b.test",
            "anna@b.test.",
        ] {
            assert!(!is_valid_address(bad), "{bad}");
        }
    }
}
