//! The `daticert.xml` parser. It is tolerant where real providers differ (whitespace, order
//! of attributes, a missing declaration) and reports every departure from daticert.dtd as a
//! plain sentence, so that a verifier can tell "parsed" from "valid".

use super::{Data, Daticert, Destinatario, Errore, RecipientType, Tipo};
use quick_xml::Reader;
use quick_xml::events::Event;

/// Why a `daticert.xml` could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DaticertError {
    /// Not well-formed XML.
    #[error("daticert.xml is not well-formed XML: {0}")]
    Xml(String),
    /// The document is not a `postacert`.
    #[error("daticert.xml has root element <{0}>, expected <postacert>")]
    Root(String),
    /// A value the model cannot do without.
    #[error("daticert.xml lacks {0}")]
    Missing(&'static str),
    /// An enumerated attribute with a value outside the DTD.
    #[error("daticert.xml: {0}")]
    Value(String),
}

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }
}

fn build_tree(xml: &str) -> Result<Node, DaticertError> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    let err = |e: &dyn std::fmt::Display| DaticertError::Xml(e.to_string());
    loop {
        let ev = reader.read_event().map_err(|e| err(&e))?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(s) | Event::Empty(s) => {
                let name = s.name().as_ref().to_string();
                let mut node = Node {
                    name,
                    ..Node::default()
                };
                for a in s.attributes() {
                    let a = a.map_err(|e| err(&e))?;
                    let key = a.key.as_ref().to_string();
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| err(&e))?
                        .into_owned();
                    node.attrs.push((key, value));
                }
                if empty {
                    stack
                        .last_mut()
                        .ok_or(DaticertError::Missing("a root element"))?
                        .children
                        .push(node);
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or(DaticertError::Missing("a root element"))?;
                let parent = stack
                    .last_mut()
                    .ok_or_else(|| DaticertError::Xml("unbalanced end tag".into()))?;
                parent.children.push(node);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                let top = stack
                    .last_mut()
                    .ok_or(DaticertError::Missing("a root element"))?;
                if let Some(c) = r.resolve_char_ref().map_err(|e| err(&e))? {
                    top.text.push(c);
                } else {
                    let name: &str = &r;
                    let c = match name {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(DaticertError::Xml(format!("unknown entity &{other};")));
                        }
                    };
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(DaticertError::Xml("document ends inside an element".into()));
    }
    let mut doc = stack
        .pop()
        .ok_or(DaticertError::Missing("a root element"))?;
    let mut roots: Vec<Node> = doc.children.drain(..).collect();
    if roots.len() != 1 {
        return Err(DaticertError::Xml(format!("{} root elements", roots.len())));
    }
    roots.pop().ok_or(DaticertError::Missing("a root element"))
}

/// Parses `daticert.xml` bytes. Returns the model and the list of DTD violations (empty when
/// the document is valid against daticert.dtd).
pub fn parse(xml: &[u8]) -> Result<(Daticert, Vec<String>), DaticertError> {
    let text = std::str::from_utf8(xml)
        .map_err(|_| DaticertError::Xml("not UTF-8 (pec.md §3.1 requires UTF-8)".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = build_tree(text)?;
    if root.name != "postacert" {
        return Err(DaticertError::Root(root.name));
    }
    let mut problems = Vec::new();
    let tipo: Tipo = root
        .attr("tipo")
        .ok_or(DaticertError::Missing("the tipo attribute of <postacert>"))?
        .parse()
        .map_err(|e: super::UnknownValue| DaticertError::Value(e.to_string()))?;
    let errore: Errore = match root.attr("errore") {
        Some(v) => v
            .parse()
            .map_err(|e: super::UnknownValue| DaticertError::Value(e.to_string()))?,
        None => Errore::Nessuno,
    };
    check_sequence(&root, &["intestazione", "dati"], &[One, One], &mut problems);
    let int = root
        .child("intestazione")
        .ok_or(DaticertError::Missing("<intestazione>"))?;
    let dati = root.child("dati").ok_or(DaticertError::Missing("<dati>"))?;
    check_sequence(
        int,
        &["mittente", "destinatari", "risposte", "oggetto"],
        &[One, OneOrMore, One, Optional],
        &mut problems,
    );
    check_sequence(
        dati,
        &[
            "gestore-emittente",
            "data",
            "identificativo",
            "msgid",
            "ricevuta",
            "consegna",
            "ricezione",
            "errore-esteso",
        ],
        &[
            One, One, One, Optional, Optional, Optional, ZeroOrMore, Optional,
        ],
        &mut problems,
    );
    let mut destinatari = Vec::new();
    for d in int.children.iter().filter(|c| c.name == "destinatari") {
        let tipo = match d.attr("tipo") {
            Some(t) => t
                .parse()
                .map_err(|e: super::UnknownValue| DaticertError::Value(e.to_string()))?,
            None => RecipientType::Certificato,
        };
        destinatari.push(Destinatario {
            address: d.text.trim().to_string(),
            tipo,
        });
    }
    let data_node = dati.child("data").ok_or(DaticertError::Missing("<data>"))?;
    check_sequence(data_node, &["giorno", "ora"], &[One, One], &mut problems);
    let zona = match data_node.attr("zona") {
        Some(z) => z.to_string(),
        None => {
            problems.push("<data> lacks the required zona attribute".into());
            String::new()
        }
    };
    let ricevuta = match dati.child("ricevuta") {
        Some(r) => Some(
            r.attr("tipo")
                .ok_or(DaticertError::Missing("the tipo attribute of <ricevuta>"))?
                .parse()
                .map_err(|e: super::UnknownValue| DaticertError::Value(e.to_string()))?,
        ),
        None => None,
    };
    let d = Daticert {
        tipo,
        errore,
        mittente: int
            .text_of("mittente")
            .unwrap_or_default()
            .trim()
            .to_string(),
        destinatari,
        risposte: int
            .text_of("risposte")
            .unwrap_or_default()
            .trim()
            .to_string(),
        oggetto: int.text_of("oggetto"),
        gestore_emittente: dati.text_of("gestore-emittente").unwrap_or_default(),
        data: Data {
            zona,
            giorno: data_node
                .text_of("giorno")
                .unwrap_or_default()
                .trim()
                .to_string(),
            ora: data_node
                .text_of("ora")
                .unwrap_or_default()
                .trim()
                .to_string(),
        },
        identificativo: dati
            .text_of("identificativo")
            .ok_or(DaticertError::Missing("<identificativo>"))?
            .trim()
            .to_string(),
        msgid: dati.text_of("msgid").map(|m| m.trim().to_string()),
        ricevuta,
        consegna: dati.text_of("consegna").map(|c| c.trim().to_string()),
        ricezione: dati
            .children
            .iter()
            .filter(|c| c.name == "ricezione")
            .map(|c| c.text.trim().to_string())
            .collect(),
        errore_esteso: dati.text_of("errore-esteso"),
    };
    Ok((d, problems))
}

#[derive(Clone, Copy, PartialEq)]
enum Occurs {
    One,
    Optional,
    OneOrMore,
    ZeroOrMore,
}
use Occurs::*;

/// Checks that the children of `node` follow the DTD content model `names` / `occurs` (a plain
/// sequence), and that no text stands between them.
fn check_sequence(node: &Node, names: &[&str], occurs: &[Occurs], problems: &mut Vec<String>) {
    if !node.text.trim().is_empty() {
        problems.push(format!(
            "<{}> contains stray text {:?}, which daticert.dtd does not allow",
            node.name,
            node.text.trim()
        ));
    }
    let mut idx = 0;
    let mut count = 0;
    for child in &node.children {
        let Some(pos) = names.iter().position(|n| *n == child.name) else {
            problems.push(format!(
                "<{}> contains <{}>, which daticert.dtd does not define there",
                node.name, child.name
            ));
            continue;
        };
        if pos < idx || (pos == idx && count >= 1 && matches!(occurs[pos], One | Optional)) {
            problems.push(format!(
                "<{}> in <{}> is out of the order daticert.dtd requires",
                child.name, node.name
            ));
            continue;
        }
        if pos > idx {
            for skipped in idx..pos {
                let seen = if skipped == idx { count } else { 0 };
                if seen == 0 && matches!(occurs[skipped], One | OneOrMore) {
                    problems.push(format!("<{}> lacks <{}>", node.name, names[skipped]));
                }
            }
            idx = pos;
            count = 0;
        }
        count += 1;
    }
    for skipped in idx..names.len() {
        let seen = if skipped == idx { count } else { 0 };
        if seen == 0 && matches!(occurs[skipped], One | OneOrMore) {
            problems.push(format!("<{}> lacks <{}>", node.name, names[skipped]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARUBA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="avvenuta-consegna" errore="nessuno">
    <intestazione>
        <mittente>l.battistini@pec.it</mittente>
        <destinatari tipo="certificato">l.battistini@pec.it</destinatari>
        <risposte>l.battistini@pec.it</risposte>
        <oggetto>IT03339130126_00009.xml</oggetto>
    </intestazione>
    <dati>
        <gestore-emittente>ARUBA PEC S.p.A.</gestore-emittente>
        <data zona="+0100"><giorno>13/11/2018</giorno><ora>16:39:27</ora></data>
        <identificativo>opec288.20181113163926.01838.310.1.63@pec.aruba.it</identificativo>
        <msgid>&lt;1542123565.92@elbati-Vostro-3550&gt;</msgid>
        <ricevuta tipo="completa" />
        <consegna>l.battistini@pec.it</consegna>
    </dati>
</postacert>"#;

    #[test]
    fn parses_a_real_delivery_receipt() {
        let (d, problems) = parse(ARUBA.as_bytes()).expect("parses");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(d.tipo, Tipo::AvvenutaConsegna);
        assert_eq!(
            d.msgid.as_deref(),
            Some("<1542123565.92@elbati-Vostro-3550>")
        );
        assert_eq!(d.ricevuta, Some(super::super::ReceiptType::Completa));
        assert_eq!(d.data.zona, "+0100");
        assert_eq!(d.consegna.as_deref(), Some("l.battistini@pec.it"));
    }

    #[test]
    fn stray_text_is_reported_not_fatal() {
        let xml = ARUBA.replace("</risposte>", "</risposte>a");
        let (_, problems) = parse(xml.as_bytes()).expect("parses");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("stray text"));
    }

    #[test]
    fn order_and_missing_elements_are_reported() {
        let xml = ARUBA.replace("<risposte>l.battistini@pec.it</risposte>", "");
        let (_, problems) = parse(xml.as_bytes()).expect("parses");
        assert!(
            problems.iter().any(|p| p.contains("lacks <risposte>")),
            "{problems:?}"
        );
        let xml = ARUBA.replace(
            "<consegna>l.battistini@pec.it</consegna>",
            "<consegna>a</consegna><msgid>x</msgid>",
        );
        let (_, problems) = parse(xml.as_bytes()).expect("parses");
        assert!(
            problems.iter().any(|p| p.contains("out of the order")),
            "{problems:?}"
        );
    }

    #[test]
    fn hard_errors() {
        assert!(matches!(parse(b"<x/>"), Err(DaticertError::Root(_))));
        assert!(matches!(
            parse(b"<postacert tipo=\"nope\"/>"),
            Err(DaticertError::Value(_))
        ));
        assert!(matches!(parse(b"<postacert"), Err(DaticertError::Xml(_))));
        assert!(parse(b"\xff\xfe").is_err());
    }
}
