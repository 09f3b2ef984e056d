//! What a stored message shows a person or an integrator: for a transport envelope the
//! original inside it (pec.md §2.3: `postacert.eml`), otherwise the message itself; its
//! headers, text, sanitised HTML and attachments; the certification data of `daticert.xml`;
//! and the signature verdict against the Indice. Shared by the webmail and the REST API.

use mail_parser::{MessageParser, MimeHeaders};
use pec_message::classify::classify;
use pec_message::report::{DaticertReport, Report};
use serde::Serialize;

/// One attachment of the shown message.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    /// Index for download links.
    pub index: usize,
    /// File name (decoded), or a made-up one.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
}

/// The signature verdict, as the webmail states it.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureView {
    /// Signed at all.
    pub present: bool,
    /// Valid over the content, chained to an anchor in force and listed in the Indice.
    pub valid: bool,
    /// The provider the Indice names for the signer.
    pub provider: Option<String>,
    /// The signer certificate subject.
    pub signer: Option<String>,
    /// Problems, one sentence each.
    pub problems: Vec<String>,
}

/// A stored message taken apart for display.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// The kind (`posta-certificata`, a receipt kind, `anomalia`, `ordinaria`).
    pub kind: String,
    /// Whether what is shown is the original taken out of a transport envelope.
    pub from_envelope: bool,
    /// `From:` of the shown message (decoded).
    pub from: String,
    /// `To:` addresses.
    pub to: Vec<String>,
    /// `Cc:` addresses.
    pub cc: Vec<String>,
    /// The subject (decoded).
    pub subject: String,
    /// `Date:` as written.
    pub date: Option<String>,
    /// The text, when there is a text part.
    pub text: Option<String>,
    /// The HTML part, sanitised ([`sanitise`]), when there is no text part.
    pub html: Option<String>,
    /// Attachments of the shown message.
    pub attachments: Vec<AttachmentView>,
    /// `daticert.xml` of the message itself (envelopes and receipts).
    pub daticert: Option<DaticertReport>,
    /// The signature verdict (PEC messages only).
    pub signature: Option<SignatureView>,
}

/// Cleans message HTML for display inside the webmail page: no scripts, no event handlers,
/// no styles or forms, links open elsewhere without a referrer, and no remote content (only
/// inline `data:` images survive; the page's CSP blocks the rest as well).
pub fn sanitise(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto", "data"].into())
        .attribute_filter(|element, attribute, value| {
            if element == "img" && attribute == "src" && !value.starts_with("data:image/") {
                return None;
            }
            if attribute == "href" && value.trim_start().to_ascii_lowercase().starts_with("data:") {
                return None;
            }
            Some(value.into())
        })
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string()
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .map(|x| match (x.name(), x.address()) {
                (Some(n), Some(addr)) if n != addr => format!("{n} <{addr}>"),
                (_, Some(addr)) => addr.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// The message to show: the original of a transport or anomaly envelope (pec.md §2.3,
/// §2.10), else the message itself.
pub fn shown(raw: &[u8]) -> (&[u8], bool) {
    let c = classify(raw);
    match (c.kind.as_str(), c.postacert) {
        ("posta-certificata" | "anomalia", Some(inner)) => (inner, true),
        _ => (raw, false),
    }
}

/// The signature part of a signed message is reported in the signature box, not offered as
/// an attachment.
fn is_signature(p: &mail_parser::MessagePart<'_>) -> bool {
    matches!(
        content_type(p).as_str(),
        "application/pkcs7-signature" | "application/x-pkcs7-signature"
    )
}

/// The decoded bytes of attachment `index` of the shown message, with its name and type.
pub fn attachment(raw: &[u8], index: usize) -> Option<(String, String, Vec<u8>)> {
    let (inner, _) = shown(raw);
    let m = MessageParser::default().parse(inner)?;
    let a = m.attachment(index as u32)?;
    Some((
        attachment_name(a, index),
        content_type(a),
        a.contents().to_vec(),
    ))
}

fn content_type(p: &mail_parser::MessagePart<'_>) -> String {
    p.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

fn attachment_name(p: &mail_parser::MessagePart<'_>, index: usize) -> String {
    p.attachment_name().map(str::to_string).unwrap_or_else(|| {
        if content_type(p) == "message/rfc822" {
            format!("allegato-{}.eml", index + 1)
        } else {
            format!("allegato-{}", index + 1)
        }
    })
}

impl MessageView {
    /// Takes `raw` apart; `report` is the verifier's verdict on it.
    pub fn new(raw: &[u8], report: &Report) -> MessageView {
        let (inner, from_envelope) = shown(raw);
        let parsed = MessageParser::default().parse(inner);
        let pec = report.kind != "ordinaria";
        let mut v = MessageView {
            kind: report.kind.clone(),
            from_envelope,
            from: String::new(),
            to: Vec::new(),
            cc: Vec::new(),
            subject: String::new(),
            date: None,
            text: None,
            html: None,
            attachments: Vec::new(),
            daticert: report.daticert.clone(),
            signature: pec.then(|| SignatureView {
                present: report.signature.present,
                valid: report.ok,
                provider: report.provider.clone(),
                signer: report.signature.signer_subject.clone(),
                problems: report.problems.clone(),
            }),
        };
        let Some(m) = parsed else {
            v.text = Some(String::from_utf8_lossy(inner).into_owned());
            return v;
        };
        v.from = addresses(m.from()).join(", ");
        v.to = addresses(m.to());
        v.cc = addresses(m.cc());
        v.subject = m.subject().unwrap_or_default().to_string();
        v.date = m.date().map(|d| d.to_rfc3339());
        let has_text = m.text_body.iter().any(|&i| {
            m.parts
                .get(i as usize)
                .is_some_and(|p| p.is_text() && !p.is_text_html())
        });
        if has_text {
            v.text = m.body_text(0).map(|t| t.into_owned());
        } else if let Some(h) = m.body_html(0) {
            v.html = Some(sanitise(&h));
        }
        v.attachments = m
            .attachments()
            .enumerate()
            .filter(|(_, a)| !is_signature(a))
            .map(|(i, a)| AttachmentView {
                index: i,
                name: attachment_name(a, i),
                content_type: content_type(a),
                size: a.contents().len(),
            })
            .collect();
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scripts_handlers_and_remote_content_are_removed() {
        let dirty = r#"<p onclick="alert(1)">Ciao <b>Mario</b></p><script>alert(2)</script>
            <img src="https://tracker.example/pixel.gif"><img src="data:image/png;base64,AAAA">
            <a href="javascript:alert(3)">x</a><a href="https://example.org/">y</a>
            <style>body{display:none}</style><iframe src="https://evil.example"></iframe>
            <svg onload="alert(4)"></svg><form action="https://evil.example"><input></form>"#;
        let clean = sanitise(dirty);
        for bad in [
            "onclick",
            "<script",
            "alert(2)",
            "tracker.example",
            "javascript:",
            "<style",
            "<iframe",
            "onload",
            "<svg",
            "<form",
            "<input",
        ] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
        assert!(clean.contains("<b>Mario</b>"));
        assert!(clean.contains("data:image/png;base64,AAAA"));
        assert!(clean.contains(r#"href="https://example.org/""#));
        assert!(clean.contains("noopener"));
    }
}
