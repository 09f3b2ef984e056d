//! Indice dei gestori PEC (pec.md §7): the provider record model, LDIF reading and writing
//! (RFC 2849) with the schema of pec.md §7.2, and lookups by managed domain and by signing
//! certificate hash, both case-insensitive (the schema's `caseIgnoreIA5Match`).

mod ldif;

pub use ldif::LdifError;

use pec_message::pki::certificate_sha1;
use pec_message::report::{DirectoryEntry, ProviderDirectory};

/// One provider record (`objectClass: provider`, pec.md §7.1-§7.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderRecord {
    /// `providerName` (single-valued).
    pub provider_name: String,
    /// `providerUnit` of a secondary environment record.
    pub provider_unit: Option<String>,
    /// `providerCertificateHash` values: SHA-1 hex of each certificate.
    pub certificate_hashes: Vec<String>,
    /// `providerCertificate;binary` values (DER).
    pub certificates: Vec<Vec<u8>>,
    /// `mailReceipt`: the service mailbox for presa in carico and virus notices.
    pub mail_receipt: String,
    /// `managedDomains`.
    pub managed_domains: Vec<String>,
    /// `LDIFLocationURL` (main records only).
    pub ldif_location_url: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

impl ProviderRecord {
    /// The record's DN: `providerName=<name>,o=postacert`, or with `providerUnit=` first.
    pub fn dn(&self) -> String {
        let name = escape_dn(&self.provider_name);
        match &self.provider_unit {
            Some(u) => format!(
                "providerUnit={},providerName={name},o=postacert",
                escape_dn(u)
            ),
            None => format!("providerName={name},o=postacert"),
        }
    }

    /// A record for a provider with one signing certificate (hash computed from the DER).
    pub fn new(
        provider_name: &str,
        certificate_der: Vec<u8>,
        mail_receipt: &str,
        domains: &[&str],
    ) -> Self {
        ProviderRecord {
            provider_name: provider_name.to_string(),
            certificate_hashes: vec![certificate_sha1(&certificate_der)],
            certificates: vec![certificate_der],
            mail_receipt: mail_receipt.to_string(),
            managed_domains: domains.iter().map(|d| d.to_string()).collect(),
            ..ProviderRecord::default()
        }
    }
}

/// RFC 4514 escaping of an attribute value in a DN.
fn escape_dn(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        if ",+\"\\<>;=".contains(c) || (i == 0 && (c == ' ' || c == '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.insert(out.len() - 1, '\\');
    }
    out
}

/// The local copy of the Indice (pec.md §7.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// Provider records, in file order.
    pub records: Vec<ProviderRecord>,
}

impl Index {
    /// Reads an LDIF file; the base `o=postacert` entry and unknown object classes are skipped.
    pub fn from_ldif(text: &str) -> Result<Index, LdifError> {
        ldif::parse(text)
    }

    /// Writes the records as LDIF (with the base entry).
    pub fn to_ldif(&self) -> String {
        ldif::write(self)
    }

    /// The record that manages `domain` (exact domain, case-insensitive; pec.md §5.2).
    pub fn by_domain(&self, domain: &str) -> Option<&ProviderRecord> {
        let domain = domain.trim().trim_end_matches('.');
        self.records.iter().find(|r| {
            r.managed_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
        })
    }

    /// The record whose `providerCertificateHash` equals `sha1_hex` (case-insensitive).
    pub fn by_certificate_hash(&self, sha1_hex: &str) -> Option<&ProviderRecord> {
        let h = sha1_hex.trim();
        self.records.iter().find(|r| {
            r.certificate_hashes
                .iter()
                .any(|x| x.eq_ignore_ascii_case(h))
        })
    }

    /// Whether an address is certified (`certificato`): its domain is managed by a provider.
    pub fn is_certified_address(&self, address: &str) -> bool {
        address
            .rsplit_once('@')
            .is_some_and(|(_, d)| self.by_domain(d).is_some())
    }
}

impl ProviderDirectory for Index {
    /// The first record listing the certificate, with the managed domains of every record
    /// that lists it: a provider's units (`providerUnit`, pec.md §7.1) may share one signing
    /// certificate, and it speaks for the domains of all of them.
    fn by_certificate_hash(&self, sha1_hex: &str) -> Option<DirectoryEntry> {
        let first = Index::by_certificate_hash(self, sha1_hex)?;
        let h = sha1_hex.trim();
        let mut managed_domains: Vec<String> = Vec::new();
        for r in self.records.iter().filter(|r| {
            r.certificate_hashes
                .iter()
                .any(|x| x.eq_ignore_ascii_case(h))
        }) {
            for d in &r.managed_domains {
                if !managed_domains.iter().any(|m| m.eq_ignore_ascii_case(d)) {
                    managed_domains.push(d.clone());
                }
            }
        }
        Some(DirectoryEntry {
            provider_name: first.provider_name.clone(),
            certificates: first.certificates.clone(),
            managed_domains,
            mail_receipt: first.mail_receipt.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let mut r = ProviderRecord::new(
            "Anonymous Certified Mail S.p.A.",
            vec![1, 2, 3],
            "ssacceptance@postalser.example.com",
            &["mail.anpocert.example.com", "Cert.Company.example.com"],
        );
        r.ldif_location_url = Some("https://anpocert.example.com/anpocert.ldif.p7m".into());
        r.description = Some("Certified mail services, è per le imprese".into());
        Index { records: vec![r] }
    }

    #[test]
    fn lookups_are_case_insensitive() {
        let idx = sample();
        assert!(idx.by_domain("CERT.company.EXAMPLE.com").is_some());
        assert!(idx.by_domain("company.example.com").is_none());
        let h = idx.records[0].certificate_hashes[0].to_ascii_uppercase();
        assert!(idx.by_certificate_hash(&h).is_some());
        assert!(idx.is_certified_address("x@mail.anpocert.example.com"));
        assert!(!idx.is_certified_address("x@gmail.com"));
    }

    /// Units of one provider sharing its certificate: the verifier's entry for that
    /// certificate speaks for the domains of all of them.
    #[test]
    fn a_shared_certificate_speaks_for_every_record_listing_it() {
        let mut idx = sample();
        let unit = ProviderRecord::new(
            "Anonymous Certified Mail S.p.A. - Unit",
            vec![1, 2, 3],
            "ssacceptance@postalser.example.com",
            &["unit.example.com", "cert.company.example.com"],
        );
        idx.records.push(unit);
        let h = idx.records[0].certificate_hashes[0].clone();
        let e = ProviderDirectory::by_certificate_hash(&idx, &h).unwrap();
        assert_eq!(e.provider_name, "Anonymous Certified Mail S.p.A.");
        assert_eq!(
            e.managed_domains,
            vec![
                "mail.anpocert.example.com",
                "Cert.Company.example.com",
                "unit.example.com"
            ]
        );
    }

    #[test]
    fn ldif_round_trip() {
        let idx = sample();
        let text = idx.to_ldif();
        assert!(text.contains("dn: providerName=Anonymous Certified Mail S.p.A.,o=postacert"));
        assert!(text.contains("providerCertificate;binary:: AQID"));
        assert!(
            text.contains("description:: "),
            "non-ASCII values are base64: {text}"
        );
        assert_eq!(Index::from_ldif(&text).expect("parses"), idx);
    }

    #[test]
    fn rfc_example_parses() {
        let text = "version: 1\n\ndn: o=postacert\nobjectclass: top\nobjectclass: organization\no: postacert\n\n# provider\ndn: providerName=Anonymous Certified Mail S.p.A.,o=postacert\nobjectclass: top\nobjectclass: provider\nproviderName: Anonymous Certified Mail S.p.A.\nproviderCertificateHash: 7E7AEF1059AE0F454F2643A95F69EC3556009239\nproviderCertificate;binary:: MIID\n BjCC\nmailReceipt: ssacceptance@postalser.example.com\nmanagedDomains: mail.anpocert.example.com\nmanagedDomains: cert.company.example.com\n";
        let idx = Index::from_ldif(text).expect("parses");
        assert_eq!(idx.records.len(), 1);
        let r = &idx.records[0];
        assert_eq!(r.certificates[0].len(), 6);
        assert!(
            idx.by_certificate_hash("7e7aef1059ae0f454f2643a95f69ec3556009239")
                .is_some()
        );
        assert_eq!(r.managed_domains.len(), 2);
    }

    #[test]
    fn bad_ldif_is_a_clear_error() {
        let e = Index::from_ldif(
            "dn: providerName=x,o=postacert\nobjectclass: provider\nproviderName: x\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("mailReceipt"), "{e}");
        let e = Index::from_ldif("dn: a\nfoo:: !!!\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    /// Two entries run together (no blank line between them) or a provider entry with a
    /// misspelt object class are errors, not a merged record or a silent skip.
    #[test]
    fn merged_or_misclassed_provider_entries_are_refused() {
        let two = sample().to_ldif();
        let merged = two.replace("\n\ndn: providerName", "\ndn: providerName");
        let e = Index::from_ldif(&merged).unwrap_err();
        assert!(e.to_string().contains("blank line"), "{e}");
        let typo = two.replace("objectclass: provider", "objectclass: provder");
        let e = Index::from_ldif(&typo).unwrap_err();
        assert!(e.to_string().contains("providerName"), "{e}");
        assert!(e.to_string().contains("objectclass"), "{e}");
        // The tree's base entry alone is still skipped quietly.
        let base = "dn: o=postacert\nobjectclass: organization\no: postacert\n";
        assert!(Index::from_ldif(base).expect("parses").records.is_empty());
    }
}
