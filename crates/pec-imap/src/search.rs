//! SEARCH criteria (RFC 3501 §6.4.4) evaluated against the folder index and, only when a key
//! looks inside the message, its bytes. String keys match substrings ignoring case, on the
//! decoded header value (RFC 2047) or the decoded text of the body parts.

use crate::sequence::resolve;
use chrono::NaiveDate;
use imap_types::core::AString;
use imap_types::search::SearchKey;
use pec_message::mime::Entity;
use pec_store::{IndexEntry, Portion};

/// How much of each message evaluating `key` needs: nothing (the index has it), the header
/// block (header keys), or the whole message (BODY, TEXT).
pub(crate) fn needs(key: &SearchKey<'_>) -> Option<Portion> {
    use SearchKey::*;
    let most = |a: Option<Portion>, b: Option<Portion>| match (a, b) {
        (Some(Portion::Whole), _) | (_, Some(Portion::Whole)) => Some(Portion::Whole),
        (a, b) => a.or(b),
    };
    match key {
        And(v) => v.as_ref().iter().map(needs).fold(None, most),
        Not(k) => needs(k),
        Or(a, b) => most(needs(a), needs(b)),
        Body(_) | Text(_) => Some(Portion::Whole),
        Bcc(_) | Cc(_) | From(_) | Header(..) | Subject(_) | To(_) | SentBefore(_) | SentOn(_)
        | SentSince(_) => Some(Portion::Header),
        _ => None,
    }
}

/// What a key is evaluated against.
pub(crate) struct Candidate<'a> {
    /// Index into the folder (sequence number − 1).
    pub index: usize,
    /// The index entry.
    pub entry: &'a IndexEntry,
    /// The message, when a key needs it.
    pub message: Option<&'a Entity<'a>>,
}

fn has_flag(e: &IndexEntry, f: &str) -> bool {
    e.has_flag(f)
}

fn text(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

/// Words that must appear in a message's raw header block (ASCII case ignored) for `key` to
/// match it: the ASCII words of the header keys that every match needs. Header values are
/// compared after unfolding, which never joins or splits a word, so a message without one
/// of these words cannot match and need not be parsed. Only all-ASCII bytes are filtered
/// this way ([`has_words`]): some other characters lower-case to ASCII letters.
pub(crate) fn required_words(key: &SearchKey<'_>) -> Vec<Vec<u8>> {
    use SearchKey::*;
    match key {
        And(v) => v.as_ref().iter().flat_map(required_words).collect(),
        Bcc(s) | Cc(s) | From(s) | Subject(s) | To(s) | Header(_, s) => {
            String::from_utf8_lossy(s.as_ref())
                .split_whitespace()
                .filter(|w| w.is_ascii())
                .map(|w| w.to_ascii_lowercase().into_bytes())
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether `raw` may match: it is not all ASCII, or it contains every word of `words`
/// (lower-case ASCII) ignoring ASCII case.
pub(crate) fn has_words(raw: &[u8], words: &[Vec<u8>]) -> bool {
    if words.is_empty() || !raw.is_ascii() {
        return true;
    }
    // All ASCII, so valid UTF-8 once lower-cased: the standard substring search applies.
    let lower = raw.to_ascii_lowercase();
    let Ok(hay) = std::str::from_utf8(&lower) else {
        return true;
    };
    words
        .iter()
        .all(|w| std::str::from_utf8(w).map_or(true, |w| hay.contains(w)))
}

/// Deepest MIME nesting searched.
const MAX_DEPTH: usize = 16;

/// Appends the searchable text of `m`'s body to `out`: every `text/*` part with its transfer
/// encoding undone (base64, quoted-printable) and Latin-1 converted; the parts of a
/// multipart and the body of an attached message in turn, without their own headers.
/// Other parts (attachments such as daticert.xml or smime.p7s) are not text to search.
/// RFC 3501 §6.4.4 leaves "the body" to the server; this is what Dovecot searches too.
fn body_text(m: &Entity<'_>, out: &mut String, depth: usize) {
    let ct = m.content_type();
    if ct.is_multipart() {
        if depth < MAX_DEPTH {
            for p in m.parts().0 {
                body_text(&Entity::parse(p.raw), out, depth + 1);
            }
        }
        return;
    }
    if ct.mime_type == "message/rfc822" && depth < MAX_DEPTH {
        body_text(&Entity::parse(m.body()), out, depth + 1);
        return;
    }
    if !ct.mime_type.starts_with("text/") {
        return;
    }
    let data = m.decoded_body();
    let latin1 = ct.param("charset").is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c == "iso-8859-1" || c == "latin1" || c == "iso-8859-15" || c == "windows-1252"
    });
    if latin1 {
        out.extend(data.iter().map(|&b| char::from(b)));
    } else {
        out.push_str(&String::from_utf8_lossy(&data));
    }
    out.push('\n');
}

fn body_has(m: Option<&Entity<'_>>, needle: &str, with_header: bool) -> bool {
    let Some(m) = m else { return false };
    let mut hay = String::new();
    if with_header {
        hay.push_str(&String::from_utf8_lossy(m.header_block));
        hay.push('\n');
    }
    body_text(m, &mut hay, 0);
    contains(&hay, needle)
}

fn header_has(m: Option<&Entity<'_>>, name: &str, needle: &str) -> bool {
    let Some(m) = m else { return false };
    m.headers_named(name)
        .any(|h| needle.is_empty() || contains(&h.value(), needle))
}

fn internal_day(t: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .date_naive()
}

fn sent_day(m: Option<&Entity<'_>>) -> Option<NaiveDate> {
    let v = m?.header_value("Date")?;
    chrono::DateTime::parse_from_rfc2822(v.trim())
        .ok()
        .map(|d| d.date_naive())
}

/// The sequence sets of a search key, each resolved once against the folder (by the set's
/// address in the key, which lives as long as the search): a set re-resolved for every
/// message made a search cost the set's length times the folder.
pub(crate) struct Sets(std::collections::HashMap<usize, Vec<usize>>);

impl Sets {
    /// Resolves every `SequenceSet` and `Uid` key inside `key` against `uids`.
    pub(crate) fn of(key: &SearchKey<'_>, uids: &[u32]) -> Sets {
        fn walk(
            k: &SearchKey<'_>,
            uids: &[u32],
            out: &mut std::collections::HashMap<usize, Vec<usize>>,
        ) {
            use SearchKey::*;
            match k {
                And(v) => v.as_ref().iter().for_each(|k| walk(k, uids, out)),
                Not(k) => walk(k, uids, out),
                Or(a, b) => {
                    walk(a, uids, out);
                    walk(b, uids, out);
                }
                SequenceSet(s) => {
                    out.insert(std::ptr::from_ref(s) as usize, resolve(s, uids, false));
                }
                Uid(s) => {
                    out.insert(std::ptr::from_ref(s) as usize, resolve(s, uids, true));
                }
                _ => {}
            }
        }
        let mut out = std::collections::HashMap::new();
        walk(key, uids, &mut out);
        Sets(out)
    }

    fn contains(&self, s: &imap_types::sequence::SequenceSet, index: usize) -> bool {
        self.0
            .get(&(std::ptr::from_ref(s) as usize))
            .is_some_and(|v| v.binary_search(&index).is_ok())
    }
}

/// Whether candidate `c` matches `key`; `sets` are its sequence sets resolved ([`Sets::of`]).
pub(crate) fn matches(key: &SearchKey<'_>, c: &Candidate<'_>, sets: &Sets) -> bool {
    use SearchKey::*;
    let e = c.entry;
    let m = c.message;
    match key {
        And(v) => v.as_ref().iter().all(|k| matches(k, c, sets)),
        SequenceSet(s) | Uid(s) => sets.contains(s, c.index),
        All => true,
        Answered => has_flag(e, "\\Answered"),
        Deleted => has_flag(e, "\\Deleted"),
        Draft => has_flag(e, "\\Draft"),
        Flagged => has_flag(e, "\\Flagged"),
        Seen => has_flag(e, "\\Seen"),
        Unanswered => !has_flag(e, "\\Answered"),
        Undeleted => !has_flag(e, "\\Deleted"),
        Undraft => !has_flag(e, "\\Draft"),
        Unflagged => !has_flag(e, "\\Flagged"),
        Unseen => !has_flag(e, "\\Seen"),
        Keyword(k) => has_flag(e, k.as_ref()),
        Unkeyword(k) => !has_flag(e, k.as_ref()),
        // This server keeps no \Recent state (RFC 9051 dropped it): nothing is recent.
        New | Recent => false,
        Old => true,
        Larger(n) => e.size > u64::from(*n),
        Smaller(n) => e.size < u64::from(*n),
        Before(d) => internal_day(e.date) < *d.as_ref(),
        On(d) => internal_day(e.date) == *d.as_ref(),
        Since(d) => internal_day(e.date) >= *d.as_ref(),
        SentBefore(d) => sent_day(m).is_some_and(|s| s < *d.as_ref()),
        SentOn(d) => sent_day(m).is_some_and(|s| s == *d.as_ref()),
        SentSince(d) => sent_day(m).is_some_and(|s| s >= *d.as_ref()),
        From(s) => header_has(m, "From", &text(s)),
        To(s) => header_has(m, "To", &text(s)),
        Cc(s) => header_has(m, "Cc", &text(s)),
        Bcc(s) => header_has(m, "Bcc", &text(s)),
        Subject(s) => header_has(m, "Subject", &text(s)),
        Header(name, s) => header_has(m, &String::from_utf8_lossy(name.as_ref()), &text(s)),
        Body(s) => body_has(m, &text(s), false),
        Text(s) => body_has(m, &text(s), true),
        Not(k) => !matches(k, c, sets),
        Or(a, b) => matches(a, c, sets) || matches(b, c, sets),
        ModSequence { modseq, .. } => e.modseq >= *modseq,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// Whether `key` uses MODSEQ (RFC 7162 §3.1.5: the response then carries `(MODSEQ n)`).
pub(crate) fn uses_modseq(key: &SearchKey<'_>) -> bool {
    use SearchKey::*;
    match key {
        And(v) => v.as_ref().iter().any(uses_modseq),
        Not(k) => uses_modseq(k),
        Or(a, b) => uses_modseq(a) || uses_modseq(b),
        ModSequence { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"Subject: prova\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Citt=E0 di Roma\r\n\
--b\r\nContent-Type: text/xml\r\nContent-Transfer-Encoding: base64\r\n\r\n\
PGZhdHR1cmEvPg==\r\n\
--b\r\nContent-Type: application/xml\r\n\r\n<ricevuta/>\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n\
X-Nascosto: intestazione\r\n\r\ntesto allegato\r\n\
--b--\r\n";

    #[test]
    fn body_searches_decoded_parts_and_not_their_headers() {
        let m = Entity::parse(MESSAGE);
        let has = |needle: &str| body_has(Some(&m), needle, false);
        assert!(has("città"), "quoted-printable Latin-1 is decoded");
        assert!(has("<fattura/>"), "base64 is decoded");
        assert!(!has("ricevuta"), "non-text parts are not searched");
        assert!(
            has("testo allegato"),
            "an attached message's body is searched"
        );
        assert!(
            !has("intestazione"),
            "an attached message's header is not body"
        );
        assert!(!has("content-type"), "MIME headers are not body");
        assert!(!has("prova"), "the message header is not body");
        assert!(
            body_has(Some(&m), "prova", true),
            "TEXT includes the header"
        );
    }

    #[test]
    fn header_words_filter_messages_that_cannot_match() {
        let raw = b"Subject: POSTA CERTIFICATA:\r\n Pratica 4242\r\nFrom: a@b\r\n\r\n";
        assert!(has_words(raw, &[b"pratica".to_vec(), b"4242".to_vec()]));
        assert!(!has_words(raw, &[b"4243".to_vec()]));
        assert!(has_words(raw, &[]));
        assert!(!has_words(b"x", &[b"lungo".to_vec()]));
        // The Kelvin sign lower-cases to "k": bytes that are not ASCII are not filtered.
        assert!(has_words(
            "Subject: \u{212A}\r\n".as_bytes(),
            &[b"k".to_vec()]
        ));
        let key = SearchKey::Subject(AString::try_from("Pratica  4242").unwrap());
        assert_eq!(
            required_words(&key),
            [b"pratica".to_vec(), b"4242".to_vec()]
        );
        let citta = SearchKey::Subject(AString::try_from("città").unwrap());
        assert!(
            required_words(&citta).is_empty(),
            "only ASCII words are checked on bytes"
        );
        let not = SearchKey::Not(Box::new(key));
        assert!(required_words(&not).is_empty());
    }
}
