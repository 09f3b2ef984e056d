//! `pec verify`: reads a message (file or stdin), verifies it with pec-message's report, and
//! prints it as text or as one JSON object. Exit 0 for a well-formed PEC message with a valid
//! signature (and trusted / listed when asked), 1 otherwise, 2 for usage errors.

use anyhow::{Context, Result, bail};
use pec_index::Index;
use pec_message::TimeRef;
use pec_message::report::{Report, VerifyOptions, verify};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(
    json: bool,
    data: Option<&Path>,
    ca: &[PathBuf],
    index: Option<&Path>,
    at: Option<&str>,
    file: &Path,
) -> Result<ExitCode> {
    let raw = if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let mut ca = ca.to_vec();
    let mut index = index.map(Path::to_path_buf);
    let mut crl_required = None;
    if let Some(dir) = data {
        let cfg = crate::config::Config::load(dir).map_err(anyhow::Error::msg)?;
        ca.extend(cfg.anchors.iter().cloned());
        index.get_or_insert(cfg.index.clone());
        crl_required = Some(cfg.crl_required);
    }
    let mut anchors = Vec::new();
    for path in &ca {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let certs = openssl::x509::X509::stack_from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        anchors.extend(certs);
    }
    let index = match index.as_deref() {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(
                Index::from_ldif(&text)
                    .with_context(|| format!("{} is not a valid Indice LDIF", p.display()))?,
            )
        }
        None => None,
    };
    let at = match at {
        Some(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s).with_context(|| {
                format!("--at {s:?} is not an RFC 3339 time such as 2018-11-13T15:39:26Z")
            })?;
            TimeRef::new(t.with_timezone(&chrono::Utc))
        }
        None => TimeRef::new(chrono::Utc::now()),
    };
    if data.is_some()
        && let Some(i) = &index
    {
        // A gestore trusts the provider certificates its Indice copy lists (pec.md §7.3).
        anchors.extend(
            i.records
                .iter()
                .flat_map(|r| r.certificates.iter())
                .filter_map(|d| openssl::x509::X509::from_der(d).ok()),
        );
    }
    // With a data directory, the CRLs that gestore has fetched (pec.md §4.4 step 3).
    let crls = match (data, &index, crl_required) {
        (Some(dir), Some(i), Some(required)) => {
            Some(pec_gestore::crl::load_cached(dir, i, required, &anchors))
        }
        _ => None,
    };
    let opts = VerifyOptions {
        anchors,
        at,
        directory: index
            .as_ref()
            .map(|i| i as &dyn pec_message::report::ProviderDirectory),
        crls: crls.as_ref(),
    };
    let report = verify(&raw, &opts);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_text(r: &Report) {
    println!(
        "kind:          {}{}",
        r.kind,
        if r.virus { " (virus)" } else { "" }
    );
    if let Some(t) = &r.receipt_type {
        println!("receipt type:  {t}");
    }
    let s = &r.signature;
    println!(
        "signature:     {}",
        if !s.present {
            "absent"
        } else if s.valid {
            "valid"
        } else {
            "NOT valid"
        }
    );
    if let Some(d) = &s.digest {
        println!("  digest:      {d}");
    }
    if let Some(t) = &s.signing_time {
        println!("  signed at:   {t}");
    }
    if let Some(x) = &s.signer_subject {
        println!("  signer:      {x}");
    }
    if let Some(h) = &s.signer_sha1 {
        println!("  signer SHA-1 {h}");
    }
    if let Some(t) = r.trusted {
        println!("trusted:       {}", yes_no(t));
    }
    if let Some(v) = &r.revocation {
        let status = serde_json::to_value(v.status)
            .ok()
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "revocation:    {status}{}",
            v.detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    if let Some(i) = r.in_index {
        println!(
            "in Indice:     {}{}",
            yes_no(i),
            r.provider
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        );
    }
    if let Some(d) = &r.daticert {
        println!(
            "daticert.xml:  tipo={} errore={}{}",
            d.tipo,
            d.errore,
            if d.dtd_valid { "" } else { " (not DTD-valid)" }
        );
        println!("  mittente:    {}", d.mittente);
        for dest in &d.destinatari {
            println!("  destinatario {} ({})", dest.address, dest.tipo);
        }
        if let Some(o) = &d.oggetto {
            println!("  oggetto:     {o}");
        }
        println!("  gestore:     {}", d.gestore_emittente);
        println!("  data:        {} {} ({})", d.giorno, d.ora, d.zona);
        println!("  id:          {}", d.identificativo);
        if let Some(m) = &d.msgid {
            println!("  msgid:       {m}");
        }
        if let Some(c) = &d.consegna {
            println!("  consegna:    {c}");
        }
        for c in &d.ricezione {
            println!("  ricezione:   {c}");
        }
        if let Some(e) = &d.errore_esteso {
            println!("  errore:      {e}");
        }
    }
    println!("treat as:      {}", r.treat_as);
    for p in &r.problems {
        println!("problem:       {p}");
    }
    println!("result:        {}", if r.ok { "OK" } else { "NOT OK" });
}
