//! LDIF (RFC 2849) for the Indice: continuation lines, comments, `::` base64 values, the
//! `;binary` option, and the `provider` object class of pec.md §7.2.

use super::{Index, ProviderRecord};
use base64::Engine as _;

/// Why an LDIF file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LdifError {
    /// A line that is not `attr: value`.
    #[error("LDIF line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A provider entry without a required attribute.
    #[error("LDIF entry {dn}: missing required attribute {attribute}")]
    Missing {
        /// The entry.
        dn: String,
        /// The attribute (pec.md §7.2, MUST list of `provider`).
        attribute: &'static str,
    },
    /// An entry with provider attributes whose object classes do not include `provider`.
    #[error(
        "LDIF entry {dn}: it has {attribute} but its objectclass values do not include provider"
    )]
    NotProvider {
        /// The entry.
        dn: String,
        /// The first provider attribute found.
        attribute: &'static str,
    },
}

/// The attributes of the `provider` class (pec.md §7.2) that mark an entry as meant to be one.
const PROVIDER_ATTRIBUTES: [&str; 4] = [
    "providerName",
    "providerCertificate",
    "providerCertificateHash",
    "mailReceipt",
];

struct Entry {
    line: usize,
    attrs: Vec<(String, Vec<u8>)>,
}

pub(super) fn parse(text: &str) -> Result<Index, LdifError> {
    // Unfold: a line starting with one space continues the previous one.
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = line.strip_prefix(' ')
            && let Some((_, last)) = logical.last_mut()
        {
            if !last.starts_with('#') {
                last.push_str(rest);
            }
            continue;
        }
        logical.push((n + 1, line.to_string()));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut current: Option<Entry> = None;
    for (n, line) in logical {
        if line.is_empty() {
            if let Some(e) = current.take() {
                entries.push(e);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let syntax = |message: &str| LdifError::Syntax {
            line: n,
            message: message.to_string(),
        };
        let colon = line
            .find(':')
            .ok_or_else(|| syntax("expected attribute: value"))?;
        let name = line[..colon].trim().to_string();
        let rest = &line[colon + 1..];
        let value = if let Some(b64) = rest.strip_prefix(':') {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| syntax(&format!("invalid base64 value ({e})")))?
        } else if rest.starts_with('<') {
            return Err(syntax("URL values (attr:< url) are not supported"));
        } else {
            rest.trim_start().as_bytes().to_vec()
        };
        if name.eq_ignore_ascii_case("version") && current.is_none() {
            continue;
        }
        // RFC 2849: a record begins with its dn and ends at a blank line; a second dn in the
        // same record means the separator is missing, and merging the two would give one
        // provider the other's certificates and domains.
        if name.eq_ignore_ascii_case("dn") && current.is_some() {
            return Err(syntax(
                "a new entry (dn:) begins before the blank line that ends the previous one",
            ));
        }
        current
            .get_or_insert_with(|| Entry {
                line: n,
                attrs: Vec::new(),
            })
            .attrs
            .push((name, value));
    }
    if let Some(e) = current.take() {
        entries.push(e);
    }
    let mut records = Vec::new();
    for e in entries {
        if let Some(r) = record(&e)? {
            records.push(r);
        }
    }
    Ok(Index { records })
}

fn record(e: &Entry) -> Result<Option<ProviderRecord>, LdifError> {
    let text = |v: &[u8]| String::from_utf8_lossy(v).trim().to_string();
    let values = |name: &str| -> Vec<&Vec<u8>> {
        e.attrs
            .iter()
            .filter(|(n, _)| {
                let base = n.split(';').next().unwrap_or("");
                base.eq_ignore_ascii_case(name)
            })
            .map(|(_, v)| v)
            .collect()
    };
    let dn = values("dn")
        .first()
        .map(|v| text(v))
        .ok_or(LdifError::Syntax {
            line: e.line,
            message: "entry does not start with dn:".into(),
        })?;
    let is_provider = values("objectclass")
        .iter()
        .any(|v| text(v).eq_ignore_ascii_case("provider"));
    if !is_provider {
        // The tree's other nodes (the `o=postacert` base, organisational units) are skipped;
        // an entry carrying provider attributes without the class is a broken provider entry
        // (a misspelt objectclass), not one to drop without a word.
        if let Some(attribute) = PROVIDER_ATTRIBUTES.iter().find(|a| !values(a).is_empty()) {
            return Err(LdifError::NotProvider { dn, attribute });
        }
        return Ok(None);
    }
    let one = |name: &'static str| -> Result<String, LdifError> {
        values(name)
            .first()
            .map(|v| text(v))
            .ok_or(LdifError::Missing {
                dn: dn.clone(),
                attribute: name,
            })
    };
    let r = ProviderRecord {
        provider_name: one("providerName")?,
        provider_unit: values("providerUnit").first().map(|v| text(v)),
        certificate_hashes: values("providerCertificateHash")
            .iter()
            .map(|v| text(v))
            .collect(),
        certificates: values("providerCertificate")
            .iter()
            .map(|v| v.to_vec())
            .collect(),
        mail_receipt: one("mailReceipt")?,
        managed_domains: values("managedDomains").iter().map(|v| text(v)).collect(),
        ldif_location_url: values("LDIFLocationURL").first().map(|v| text(v)),
        description: values("description").first().map(|v| text(v)),
    };
    for (attr, empty) in [
        ("providerCertificateHash", r.certificate_hashes.is_empty()),
        ("providerCertificate", r.certificates.is_empty()),
        ("managedDomains", r.managed_domains.is_empty()),
    ] {
        if empty {
            return Err(LdifError::Missing {
                dn,
                attribute: attr,
            });
        }
    }
    Ok(Some(r))
}

pub(super) fn write(index: &Index) -> String {
    let mut out = String::from(
        "version: 1\n\ndn: o=postacert\nobjectclass: top\nobjectclass: organization\no: postacert\ndescription: Base root for the PEC providers directory\n",
    );
    for r in &index.records {
        out.push('\n');
        attr(&mut out, "dn", r.dn().as_bytes());
        attr(&mut out, "objectclass", b"top");
        attr(&mut out, "objectclass", b"provider");
        if r.ldif_location_url.is_some() {
            attr(&mut out, "objectclass", b"LDIFLocationURLObject");
        }
        attr(&mut out, "providerName", r.provider_name.as_bytes());
        if let Some(u) = &r.provider_unit {
            attr(&mut out, "providerUnit", u.as_bytes());
        }
        for h in &r.certificate_hashes {
            attr(&mut out, "providerCertificateHash", h.as_bytes());
        }
        for c in &r.certificates {
            binary(&mut out, "providerCertificate;binary", c);
        }
        attr(&mut out, "mailReceipt", r.mail_receipt.as_bytes());
        for d in &r.managed_domains {
            attr(&mut out, "managedDomains", d.as_bytes());
        }
        if let Some(u) = &r.ldif_location_url {
            attr(&mut out, "LDIFLocationURL", u.as_bytes());
        }
        if let Some(d) = &r.description {
            attr(&mut out, "description", d.as_bytes());
        }
    }
    out
}

/// RFC 2849 SAFE-STRING: ASCII without NUL, CR, LF, not starting with space, colon or `<`.
fn safe(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b.is_ascii() && b != 0 && b != b'\r' && b != b'\n')
        && !matches!(v.first(), Some(b' ' | b':' | b'<'))
        && !v.ends_with(b" ")
}

fn attr(out: &mut String, name: &str, value: &[u8]) {
    if safe(value) {
        fold(out, &format!("{name}: {}", String::from_utf8_lossy(value)));
    } else {
        binary(out, name, value);
    }
}

fn binary(out: &mut String, name: &str, value: &[u8]) {
    fold(
        out,
        &format!(
            "{name}:: {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        ),
    );
}

/// Folds at 76 columns with one-space continuation lines.
fn fold(out: &mut String, line: &str) {
    let mut rest = line;
    let mut first = true;
    while !rest.is_empty() {
        let width = if first { 76 } else { 75 };
        let mut cut = rest.len().min(width);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if !first {
            out.push(' ');
        }
        out.push_str(&rest[..cut]);
        out.push('\n');
        rest = &rest[cut..];
        first = false;
    }
}
