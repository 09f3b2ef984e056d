//! Test fixture: two gestori (A serving a.test, B serving b.test) under one development CA,
//! an Indice listing both, a fixed clock and a counting identifier source.

use crate::{Context, Directory, Ids};
use pec_message::TimeRef;
use pec_message::build::Provider;
use pec_message::pki::{
    Issued, RevocationPoints, certificate_sha1, issue_signing_cert, issue_signing_cert_with_points,
    make_ca, make_crl,
};
use pec_message::report::{DirectoryEntry, ProviderDirectory, Report, VerifyOptions, verify};
use pec_message::smime::{Crls, FetchedCrl, SoftwareSigner};
use std::sync::{Arc, OnceLock};

/// The CRL distribution point of gestore A's certificate.
pub(crate) const A_CRL_URL: &str = "http://crl.test/ca.crl";

struct Keys {
    ca: Issued,
    a: Issued,
    b: Issued,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let nb = 1_700_000_000;
        let ca = make_ca("Test CA", nb, 3650).unwrap();
        let a = issue_signing_cert_with_points(
            &ca,
            "Gestore A",
            "a.test",
            None,
            nb,
            3650,
            RevocationPoints {
                crl: Some(A_CRL_URL),
                ocsp: None,
            },
        )
        .unwrap();
        let b = issue_signing_cert(&ca, "Gestore B", "b.test", None, nb, 3650).unwrap();
        Keys { ca, a, b }
    })
}

pub(crate) struct Counter(u64, &'static str);

impl Ids for Counter {
    fn next_id(&mut self, at: TimeRef) -> String {
        self.0 += 1;
        format!("opec1.{}.1.{}@{}", at.compact(), self.0, self.1)
    }
}

pub(crate) struct Dir {
    local: Vec<&'static str>,
}

impl ProviderDirectory for Dir {
    fn by_certificate_hash(&self, sha1_hex: &str) -> Option<DirectoryEntry> {
        let k = keys();
        for (issued, name, domain) in [(&k.a, "Gestore A", "a.test"), (&k.b, "Gestore B", "b.test")]
        {
            let der = issued.cert_der().unwrap();
            if certificate_sha1(&der).eq_ignore_ascii_case(sha1_hex) {
                return Some(DirectoryEntry {
                    provider_name: name.into(),
                    certificates: vec![der],
                    managed_domains: vec![domain.into()],
                    mail_receipt: format!("posta-certificata@{domain}"),
                });
            }
        }
        None
    }
}

impl Directory for Dir {
    fn is_certified_domain(&self, domain: &str) -> bool {
        domain.eq_ignore_ascii_case("a.test") || domain.eq_ignore_ascii_case("b.test")
    }
    fn is_local_domain(&self, domain: &str) -> bool {
        self.local.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

pub(crate) struct Party {
    pub provider: Provider,
    signer: SoftwareSigner,
    ids: Counter,
    dir: Dir,
}

impl Party {
    fn new(issued: &Issued, name: &str, domain: &'static str) -> Party {
        let k = keys();
        Party {
            provider: Provider {
                name: name.into(),
                service_domain: domain.into(),
            },
            signer: SoftwareSigner::from_pkcs8(
                &issued.key_pkcs8_der().unwrap(),
                issued.cert_der().unwrap(),
                vec![k.ca.cert_der().unwrap()],
            )
            .unwrap(),
            ids: Counter(0, domain),
            dir: Dir {
                local: vec![domain],
            },
        }
    }
}

pub(crate) struct Fixture {
    pub now: TimeRef,
    pub a: Party,
    pub b: Party,
    anchors: Vec<openssl::x509::X509>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let k = keys();
        Fixture {
            now: TimeRef::from_unix(1_763_000_000).unwrap(),
            a: Party::new(&k.a, "Gestore A", "a.test"),
            b: Party::new(&k.b, "Gestore B", "b.test"),
            anchors: vec![k.ca.cert.clone()],
        }
    }

    /// Gestore A also serves `domain`, which the Indice does not list.
    pub fn a_serves_also(&mut self, domain: &'static str) {
        self.a.dir.local.push(domain);
    }

    /// The context of gestore A.
    pub fn ctx(&mut self) -> Context<'_> {
        Self::party_ctx(&mut self.a, self.now, &self.anchors)
    }

    /// The context of gestore B.
    pub fn ctx_b(&mut self) -> Context<'_> {
        Self::party_ctx(&mut self.b, self.now, &self.anchors)
    }

    /// The context of gestore B checking revocation against `crls`.
    pub fn ctx_b_with<'a>(&'a mut self, crls: &'a Crls) -> Context<'a> {
        let mut ctx = Self::party_ctx(&mut self.b, self.now, &self.anchors);
        ctx.crls = Some(crls);
        ctx
    }

    /// CRLs with `required` policy holding the CA's current CRL at A's distribution point,
    /// listing A's certificate as revoked an hour ago when `revoke_a`.
    pub fn crls(&self, revoke_a: bool, required: bool) -> Crls {
        let k = keys();
        let now = self.now.utc().timestamp();
        let revoked: Vec<(&openssl::x509::X509Ref, i64)> = if revoke_a {
            vec![(&k.a.cert, now - 3600)]
        } else {
            Vec::new()
        };
        let crl = make_crl(&k.ca, &revoked, now - 3600, now + 86_400).unwrap();
        let mut crls = Crls::new(required);
        crls.insert(
            A_CRL_URL,
            Arc::new(
                FetchedCrl::check(&crl.to_der().unwrap(), A_CRL_URL, now, &self.anchors).unwrap(),
            ),
        );
        crls
    }

    fn party_ctx<'a>(
        p: &'a mut Party,
        now: TimeRef,
        anchors: &'a [openssl::x509::X509],
    ) -> Context<'a> {
        Context {
            now,
            provider: &p.provider,
            signer: &p.signer,
            ids: &mut p.ids,
            directory: &p.dir,
            anchors,
            crls: None,
        }
    }

    pub fn verify(&self, raw: &[u8]) -> Report {
        verify(
            raw,
            &VerifyOptions {
                anchors: self.anchors.clone(),
                at: self.now,
                directory: Some(&self.a.dir),
                crls: None,
            },
        )
    }

    pub fn advance(&mut self, secs: i64) {
        self.now = TimeRef::from_unix(self.now.utc().timestamp() + secs).unwrap();
    }
}
