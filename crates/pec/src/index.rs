//! `pec index export | import`: this gestore's own Indice entry as LDIF, and adding peer
//! entries to the local Indice copy (pec.md §7.3). An import is validated whole first; a bad
//! file changes nothing. The running server reloads the copy by itself.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use pec_index::{Index, ProviderRecord};
use pec_message::pki::certificate_sha1;
use std::path::Path;

pub fn export(data: &Path) -> Result<()> {
    print!("{}", own_ldif(data)?);
    Ok(())
}

/// This gestore's Indice entry as LDIF.
pub fn own_ldif(data: &Path) -> Result<String> {
    let cfg = Config::load(data).map_err(anyhow::Error::msg)?;
    let pem = std::fs::read(&cfg.signing_cert)
        .with_context(|| format!("cannot read {}", cfg.signing_cert.display()))?;
    let cert = openssl::x509::X509::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", cfg.signing_cert.display()))?;
    let domains: Vec<&str> = cfg.domains.iter().map(String::as_str).collect();
    let record = ProviderRecord::new(
        &cfg.name,
        cert.to_der()?,
        &format!("posta-certificata@{}", cfg.domain),
        &domains,
    );
    Ok(Index {
        records: vec![record],
    }
    .to_ldif())
}

fn check(r: &ProviderRecord) -> Vec<String> {
    let mut p = Vec::new();
    let who = &r.provider_name;
    if r.certificates.is_empty() {
        p.push(format!("{who}: no providerCertificate"));
    }
    for der in &r.certificates {
        if openssl::x509::X509::from_der(der).is_err() {
            p.push(format!(
                "{who}: a providerCertificate is not a DER X.509 certificate"
            ));
        }
        let h = certificate_sha1(der);
        if !r
            .certificate_hashes
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&h))
        {
            p.push(format!(
                "{who}: providerCertificateHash does not match the certificate ({h})"
            ));
        }
    }
    let addr_ok = r
        .mail_receipt
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    if !addr_ok {
        p.push(format!(
            "{who}: mailReceipt {:?} is not an address",
            r.mail_receipt
        ));
    }
    if r.managed_domains.is_empty() {
        p.push(format!("{who}: no managedDomains"));
    }
    p
}

pub fn import(data: &Path, file: &Path) -> Result<()> {
    let cfg = Config::load(data).map_err(anyhow::Error::msg)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let incoming = Index::from_ldif(&text).with_context(|| {
        format!(
            "{} is not a valid Indice LDIF; nothing was changed",
            file.display()
        )
    })?;
    if incoming.records.is_empty() {
        bail!(
            "{} holds no provider entry; nothing was changed",
            file.display()
        );
    }
    let mut problems: Vec<String> = incoming.records.iter().flat_map(check).collect();
    let mut index = crate::serve::load_index(&cfg.index)?;
    let own_domain = |d: &str| cfg.domains.contains(&d.to_ascii_lowercase());
    // This gestore's own entry: the one managing its domains.
    let is_own = |x: &ProviderRecord| x.managed_domains.iter().any(|d| own_domain(d));
    let own_hashes: Vec<String> = index
        .records
        .iter()
        .filter(|r| is_own(r))
        .flat_map(|r| r.certificate_hashes.clone())
        .collect();
    let same_entry = |a: &ProviderRecord, b: &ProviderRecord| {
        a.provider_name == b.provider_name && a.provider_unit == b.provider_unit
    };
    for (i, r) in incoming.records.iter().enumerate() {
        let who = &r.provider_name;
        let ours = r
            .certificate_hashes
            .iter()
            .any(|h| own_hashes.iter().any(|o| o.eq_ignore_ascii_case(h)));
        if incoming.records[..i].iter().any(|x| same_entry(x, r)) {
            problems.push(format!("{who}: the file holds this entry twice"));
        }
        // An entry replaces the one of the same name (below): never this gestore's own.
        let replaces_own = index.records.iter().any(|x| same_entry(x, r) && is_own(x));
        if replaces_own && !ours {
            problems.push(format!(
                "{who}: this is the name of this gestore's own entry; a peer needs a \
                 providerName (or providerUnit) of its own"
            ));
        }
        for d in &r.managed_domains {
            let lower = d.to_ascii_lowercase();
            if !crate::config::valid_domain(&lower) {
                problems.push(format!("{who}: managedDomains {d:?} is not a domain name"));
            }
            if own_domain(&lower) {
                if !ours {
                    problems.push(format!("{who}: claims {d}, a domain of this gestore"));
                }
                continue;
            }
            // pec.md §7.1: a domain belongs to one provider; by_domain would pick either.
            let held = |x: &ProviderRecord| {
                !same_entry(x, r) && x.managed_domains.iter().any(|m| m.eq_ignore_ascii_case(d))
            };
            if let Some(x) = index
                .records
                .iter()
                .chain(&incoming.records[..i])
                .find(|x| held(x))
            {
                problems.push(format!(
                    "{who}: claims {d}, already managed by {}",
                    x.provider_name
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} was not imported; nothing was changed:\n  {}",
            file.display(),
            problems.join("\n  ")
        );
    }
    let (mut added, mut replaced) = (0, 0);
    for r in incoming.records {
        match index.records.iter_mut().find(|x| same_entry(x, &r)) {
            Some(x) => {
                *x = r;
                replaced += 1;
            }
            None => {
                index.records.push(r);
                added += 1;
            }
        }
    }
    let tmp = cfg.index.with_extension("ldif.tmp");
    std::fs::write(&tmp, index.to_ldif())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &cfg.index)?;
    println!(
        "Indice copy {}: {added} entr{} added, {replaced} replaced ({} in all).",
        cfg.index.display(),
        if added == 1 { "y" } else { "ies" },
        index.records.len()
    );
    Ok(())
}
