//! The classifier (pec.md §2.1, §5.4, Appendix A): what an incoming message claims to be, read
//! from its headers (`X-Ricevuta`, `X-Trasporto`, `X-VerificaSicurezza`, `X-TipoRicevuta`,
//! any case) and its `daticert.xml`, never from the subject; tolerant of part order.

use crate::daticert::{self, Daticert, DaticertError, ReceiptType, Tipo};
use crate::mime::Entity;
use crate::smime::{SignedParts, split_signed};

/// What a message is, by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not a PEC message (no `X-Ricevuta` / `X-Trasporto`).
    Ordinaria,
    /// A transport envelope (`X-Trasporto: posta-certificata`) or a receipt / notice
    /// (`X-Ricevuta: <tipo>`).
    Pec(Tipo),
    /// An anomaly envelope (`X-Trasporto: errore`).
    Anomalia,
}

impl Kind {
    /// The wire name: an `X-Ricevuta` value, `posta-certificata`, `anomalia` or `ordinaria`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ordinaria => "ordinaria",
            Kind::Pec(t) => t.as_str(),
            Kind::Anomalia => "anomalia",
        }
    }
}

/// A message taken apart for classification and verification.
#[derive(Debug)]
pub struct Classified<'a> {
    /// The message entity.
    pub entity: Entity<'a>,
    /// The kind the headers claim.
    pub kind: Kind,
    /// `X-VerificaSicurezza: errore` is present (virus notices, pec.md §2.5, §2.11).
    pub security_error: bool,
    /// `X-TipoRicevuta` (envelopes), parsed leniently; `None` when the header is absent.
    pub requested_receipt: Option<ReceiptType>,
    /// The `multipart/signed` halves, when the message is signed that way.
    pub signed: Option<SignedParts<'a>>,
    /// `daticert.xml`: the model and its DTD problems, or why it could not be read.
    pub daticert: Option<Result<(Daticert, Vec<String>), DaticertError>>,
    /// Number of `daticert.xml` parts found (pec.md §5.4: exactly one).
    pub daticert_parts: usize,
    /// The bytes of the `postacert.eml` (`message/rfc822`) part, if any.
    pub postacert: Option<&'a [u8]>,
    /// Whether a readable text part exists.
    pub has_text: bool,
}

impl Classified<'_> {
    /// The receipt type to report: the issued kind of a delivery receipt (daticert), or the
    /// requested kind of an envelope.
    pub fn receipt_type(&self) -> Option<ReceiptType> {
        let from_xml = match &self.daticert {
            Some(Ok((d, _))) => d.ricevuta,
            _ => None,
        };
        match self.kind {
            Kind::Pec(Tipo::PostaCertificata) => self.requested_receipt.or(from_xml),
            Kind::Pec(Tipo::AvvenutaConsegna) => from_xml,
            _ => None,
        }
    }
}

/// Classifies a message.
pub fn classify(raw: &[u8]) -> Classified<'_> {
    let entity = Entity::parse(raw);
    let value = |name: &str| entity.header_value(name).map(|v| v.to_ascii_lowercase());
    let kind = if let Some(t) = value("X-Trasporto") {
        match t.as_str() {
            "posta-certificata" => Kind::Pec(Tipo::PostaCertificata),
            "errore" => Kind::Anomalia,
            _ => Kind::Ordinaria,
        }
    } else if let Some(r) = value("X-Ricevuta") {
        match r.parse::<Tipo>() {
            Ok(Tipo::PostaCertificata) | Err(_) => Kind::Ordinaria,
            Ok(t) => Kind::Pec(t),
        }
    } else {
        Kind::Ordinaria
    };
    let security_error = value("X-VerificaSicurezza").as_deref() == Some("errore");
    // Absent here, the envelope's daticert `<ricevuta>` says it (`Classified::receipt_type`).
    let requested_receipt = match kind {
        Kind::Pec(Tipo::PostaCertificata) => value("X-TipoRicevuta")
            .as_deref()
            .map(|v| ReceiptType::requested(Some(v))),
        _ => None,
    };
    let signed = split_signed(&entity);
    let mut out = Classified {
        entity: entity.clone(),
        kind,
        security_error,
        requested_receipt,
        signed,
        daticert: None,
        daticert_parts: 0,
        postacert: None,
        has_text: false,
    };
    // The content lives in the signed part, or in the message itself when it is not signed.
    let content: &[u8] = match &out.signed {
        Some(s) => s.signed,
        None => raw,
    };
    walk(content, &mut out, 0);
    out
}

fn walk<'a>(raw: &'a [u8], out: &mut Classified<'a>, depth: usize) {
    let e = Entity::parse(raw);
    let ct = e.content_type();
    if ct.is_multipart() {
        if depth > 3 {
            return;
        }
        for p in e.parts().0 {
            walk(p.raw, out, depth + 1);
        }
        return;
    }
    let name = e.file_name().map(|n| n.to_ascii_lowercase());
    if name.as_deref() == Some("daticert.xml") {
        out.daticert_parts += 1;
        if out.daticert.is_none() {
            out.daticert = Some(daticert::parse(&e.decoded_body()));
        }
    } else if ct.mime_type == "message/rfc822" {
        if out.postacert.is_none() {
            out.postacert = Some(e.body());
        }
    } else if ct.mime_type.starts_with("text/") && name.is_none() {
        out.has_text = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classified_by_headers_in_any_case_never_by_subject() {
        let c = classify(b"x-ricevuta: AVVENUTA-CONSEGNA\r\nSubject: ACCETTAZIONE: x\r\n\r\n");
        assert_eq!(c.kind, Kind::Pec(Tipo::AvvenutaConsegna));
        let c = classify(b"X-TRASPORTO: errore\r\n\r\n");
        assert_eq!(c.kind, Kind::Anomalia);
        let c = classify(b"Subject: POSTA CERTIFICATA: x\r\n\r\n");
        assert_eq!(c.kind, Kind::Ordinaria);
        let c = classify(b"X-Trasporto: posta-certificata\r\nX-Tiporicevuta: breve\r\n\r\n");
        assert_eq!(c.receipt_type(), Some(ReceiptType::Breve));
        let c = classify(b"X-Ricevuta: posta-certificata\r\n\r\n");
        assert_eq!(c.kind, Kind::Ordinaria);
    }
}
