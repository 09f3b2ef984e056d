//! The `daticert.xml` writer: DTD element order, four-space indent, self-closed `ricevuta`
//! (pec.md §3.1, §3.3 "XML generation rules").

use super::Daticert;
use std::fmt::Write as _;

/// Writes the XML document, UTF-8, with the XML declaration and no DOCTYPE.
pub fn write(d: &Daticert) -> String {
    let mut x = String::with_capacity(1024);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<postacert tipo=\"{}\" errore=\"{}\">", d.tipo, d.errore);
    x.push_str("    <intestazione>\n");
    elem(&mut x, 2, "mittente", &d.mittente);
    for dest in &d.destinatari {
        let _ = writeln!(
            x,
            "        <destinatari tipo=\"{}\">{}</destinatari>",
            dest.tipo,
            escape(&dest.address)
        );
    }
    elem(&mut x, 2, "risposte", &d.risposte);
    if let Some(o) = &d.oggetto {
        elem(&mut x, 2, "oggetto", o);
    }
    x.push_str("    </intestazione>\n    <dati>\n");
    elem(&mut x, 2, "gestore-emittente", &d.gestore_emittente);
    let _ = writeln!(x, "        <data zona=\"{}\">", escape(&d.data.zona));
    elem(&mut x, 3, "giorno", &d.data.giorno);
    elem(&mut x, 3, "ora", &d.data.ora);
    x.push_str("        </data>\n");
    elem(&mut x, 2, "identificativo", &d.identificativo);
    if let Some(m) = &d.msgid {
        elem(&mut x, 2, "msgid", m);
    }
    if let Some(r) = d.ricevuta {
        let _ = writeln!(x, "        <ricevuta tipo=\"{r}\" />");
    }
    if let Some(c) = &d.consegna {
        elem(&mut x, 2, "consegna", c);
    }
    for r in &d.ricezione {
        elem(&mut x, 2, "ricezione", r);
    }
    if let Some(e) = &d.errore_esteso {
        elem(&mut x, 2, "errore-esteso", e);
    }
    x.push_str("    </dati>\n</postacert>\n");
    x
}

fn elem(x: &mut String, depth: usize, name: &str, text: &str) {
    for _ in 0..depth {
        x.push_str("    ");
    }
    let _ = writeln!(x, "<{name}>{}</{name}>", escape(text));
}

/// Escapes text for element content and attribute values. Characters XML 1.0 cannot carry are
/// dropped; CR is written as a reference so that it survives end-of-line normalisation.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// XML 1.0 `Char` production.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}
