//! Property tests: `daticert.xml` round trip (write then parse gives the same model, valid
//! against the DTD) and the breve invariants (structure kept, every named part replaced by the
//! SHA-1 of its transmitted content, every other byte kept).

use pec_message::breve::{breve, part_hash};
use pec_message::daticert::{
    self, Data, Daticert, Destinatario, Errore, ReceiptType, RecipientType, Tipo,
};
use pec_message::mime::Entity;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Any XML-representable text, including markup characters and non-ASCII.
    proptest::string::string_regex("[ -~àèéìòù€<>&\"'\t\n]{0,40}").expect("regex")
}

fn address() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,12}@[a-z0-9-]{1,10}\\.(it|com)"
}

fn daticert_strategy() -> impl Strategy<Value = Daticert> {
    (
        (
            prop::sample::select(Tipo::ALL.to_vec()),
            prop::sample::select(Errore::ALL.to_vec()),
            address(),
        ),
        prop::collection::vec(
            (address(), prop::sample::select(RecipientType::ALL.to_vec())),
            1..5,
        ),
        (address(), proptest::option::of(text()), text()),
        (
            "[A-Za-z0-9.-]{1,30}@[a-z.]{3,20}",
            proptest::option::of("<[a-zA-Z0-9.$_-]{1,20}@[a-z.]{1,12}>"),
        ),
        proptest::option::of(prop::sample::select(ReceiptType::ALL.to_vec())),
        (
            proptest::option::of(address()),
            prop::collection::vec(address(), 0..3),
            proptest::option::of(text()),
        ),
    )
        .prop_map(
            |(
                (tipo, errore, mittente),
                dest,
                (risposte, oggetto, gestore),
                (id, msgid),
                ricevuta,
                (consegna, ricezione, errore_esteso),
            )| Daticert {
                tipo,
                errore,
                mittente,
                destinatari: dest
                    .into_iter()
                    .map(|(address, tipo)| Destinatario { address, tipo })
                    .collect(),
                risposte,
                oggetto,
                gestore_emittente: gestore,
                data: Data {
                    zona: "+0100".into(),
                    giorno: "01/02/2026".into(),
                    ora: "10:11:12".into(),
                },
                identificativo: id,
                msgid,
                ricevuta,
                consegna,
                ricezione,
                errore_esteso,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn daticert_round_trip(d in daticert_strategy()) {
        let xml = daticert::write(&d);
        let (back, problems) = daticert::parse(xml.as_bytes()).expect("own output parses");
        prop_assert!(problems.is_empty(), "{:?}", problems);
        prop_assert_eq!(back, d);
    }

    #[test]
    fn breve_invariants(parts in prop::collection::vec((proptest::option::of("[a-z]{1,8}\\.(pdf|txt)"), "[A-Za-z0-9+/]{0,60}"), 1..6), crlf in any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut msg = format!("From: a@b.it{eol}Content-Type: multipart/mixed; boundary=\"BB\"{eol}{eol}");
        for (name, body) in &parts {
            msg.push_str(&format!("--BB{eol}"));
            match name {
                Some(n) => msg.push_str(&format!("Content-Type: application/octet-stream; name=\"{n}\"{eol}Content-Transfer-Encoding: base64{eol}{eol}{body}{eol}")),
                None => msg.push_str(&format!("Content-Type: text/plain{eol}{eol}{body}{eol}")),
            }
        }
        msg.push_str(&format!("--BB--{eol}"));
        let out = breve(msg.as_bytes());
        let before = Entity::parse(msg.as_bytes());
        let after = Entity::parse(&out);
        prop_assert_eq!(before.header_block, after.header_block);
        let (b_parts, _) = before.parts();
        let (a_parts, closed) = after.parts();
        prop_assert!(closed);
        prop_assert_eq!(b_parts.len(), a_parts.len());
        for ((name, body), (bp, ap)) in parts.iter().zip(b_parts.iter().zip(a_parts.iter())) {
            match name {
                Some(n) => {
                    let a = Entity::parse(ap.raw);
                    prop_assert_eq!(a.file_name(), Some(format!("{n}.hash")));
                    prop_assert_eq!(a.content_type().mime_type, "text/plain");
                    let hash = part_hash(body.as_bytes());
                    prop_assert_eq!(a.body(), hash.as_bytes());
                }
                None => prop_assert_eq!(bp.raw, ap.raw),
            }
        }
    }
}
