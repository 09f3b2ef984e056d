//! Encoders for generated messages: quoted-printable for the ISO-8859-1 texts (pec.md §2.1:
//! non-ASCII content must be 7-bit safe), base64 in 76-column lines, RFC 2047 encoded words.

use base64::Engine as _;

/// Converts text to ISO-8859-1 (pec.md §2.1: the readable text is ISO-8859-1). Characters
/// outside Latin-1 become `?`.
pub fn to_latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if (c as u32) < 256 {
                c as u32 as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Quoted-printable encoding (RFC 2045 §6.7) of text whose line breaks are `\n`; output lines
/// end in CRLF and are at most 76 characters.
pub fn qp_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (b'!'..=b'~').contains(&b) && b != b'=' || (b == b' ' || b == b'\t') && !last;
            let width = if literal { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            col += width;
        }
    }
    out
}

/// Base64 in lines of 76 characters, each ending in CRLF.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Encodes an unstructured header value (RFC 2047 §5 (1)), folded within 78 characters a
/// line where white space allows (RFC 5322 §2.1.1). The leading words that need no encoding
/// stay literal (so `POSTA CERTIFICATA: ` stays readable to any filter, pec.md §9
/// "Subject"); from the first word holding a non-ASCII character or `=?`, or a run too long
/// for any line, the rest becomes UTF-8 `B` encoded words of at most 75 characters.
pub fn encode_word(text: &str) -> String {
    let plain = |c: char| (' '..='~').contains(&c);
    // The literal part ends before the first word that cannot go as it is; an encoded word
    // must stand apart from text by white space (RFC 2047 §5 (1)).
    let mut cut = text.len();
    let mut at = 0;
    for word in text.split(' ') {
        if !word.chars().all(plain) || word.contains("=?") || FIELD_NAME + 1 + word.len() > 998 {
            cut = at;
            break;
        }
        at += word.len() + 1;
    }
    let (literal, rest) = text.split_at(cut.min(text.len()));
    if rest.is_empty() {
        return fold_plain(literal).0;
    }
    let words = encoded_words(rest);
    if literal.is_empty() {
        return words;
    }
    // The literal part keeps its own spaces but the one before the encoded words, which the
    // separator (a space, or a fold) stands for.
    let (folded, col) = fold_plain(&literal[..literal.len() - 1]);
    let first_word = words.split("\r\n").next().unwrap_or_default();
    if col + 1 + first_word.len() > 78 && !folded.ends_with(' ') {
        format!("{folded}\r\n {words}")
    } else {
        format!("{folded} {words}")
    }
}

/// The width of `Subject: `, the field name the folding allows for.
const FIELD_NAME: usize = "Subject: ".len();

/// ASCII text (no word longer than a line may hold) folded at its spaces so that each line
/// stays within 78 characters where a space allows it, and the column its last line ends
/// at. Only a single space between two words becomes a fold: unfolding gives back the same
/// text (RFC 5322 §2.2.3), and readers that squeeze white space at a fold change nothing.
fn fold_plain(text: &str) -> (String, usize) {
    if FIELD_NAME + text.len() <= 78 {
        return (text.to_string(), FIELD_NAME + text.len());
    }
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut col = FIELD_NAME;
    let mut previous_empty = false;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            // The fold replaces the space: only before a word, so no line is all white
            // space (RFC 5322 §3.2.2).
            if !word.is_empty() && !previous_empty && col + 1 + word.len() > 78 && col > 1 {
                out.push_str("\r\n ");
                col = 1;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(word);
        col += word.len();
        previous_empty = word.is_empty();
    }
    (out, col)
}

/// `text` as UTF-8 `B` encoded words of at most 75 characters, folded.
fn encoded_words(text: &str) -> String {
    // Chunk on character boundaries so that each word decodes on its own (RFC 2047 §5 (3)).
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if (chunk.len() + c.len_utf8()).div_ceil(3) * 4 > 75 - 12 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Decodes the RFC 2047 encoded words of a value (`B` and `Q`, in UTF-8, US-ASCII or a
/// Latin-1 family charset), as many clients write a non-ASCII attachment name. White space
/// between two encoded words goes (§6.2); a word that cannot be decoded stays as it is.
pub fn decode_words(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut after_word = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("=?") else {
            out.push_str(rest);
            break;
        };
        let (before, candidate) = rest.split_at(start);
        match decode_one(candidate) {
            Some((text, used)) => {
                if !(after_word && before.chars().all(char::is_whitespace)) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &candidate[used..];
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out
}

/// The longest encoded word looked for. RFC 2047 §2 allows 75 characters; some mailers
/// write longer ones. The bound keeps a value full of `=?` linear to decode.
const MAX_WORD: usize = 256;

/// One encoded word at the start of `s`: its text and its length.
fn decode_one(s: &str) -> Option<(String, usize)> {
    let mut end = s.len().min(MAX_WORD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let body = s[..end].strip_prefix("=?")?;
    let (charset, body) = body.split_once('?')?;
    let (enc, body) = body.split_once('?')?;
    let end = body.find("?=")?;
    let data = &body[..end];
    if data.contains(' ') {
        return None;
    }
    let used = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let bytes = match enc {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(data)
            .ok()?,
        "Q" | "q" => {
            let mut b = Vec::with_capacity(data.len());
            let mut it = data.bytes();
            while let Some(c) = it.next() {
                match c {
                    b'_' => b.push(b' '),
                    b'=' => {
                        let hex = [it.next()?, it.next()?];
                        b.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
                    }
                    c => b.push(c),
                }
            }
            b
        }
        _ => return None,
    };
    // RFC 2231 §5: a language may follow the charset after `*`.
    let charset = charset
        .split('*')
        .next()
        .unwrap_or(charset)
        .to_ascii_lowercase();
    let text = match charset.as_str() {
        "utf-8" | "utf8" | "us-ascii" => String::from_utf8(bytes).ok()?,
        // ISO-8859-15 differs from Latin-1 in eight letters, close enough for a name.
        "iso-8859-1" | "iso-8859-15" | "latin1" => bytes.iter().map(|&b| b as char).collect(),
        _ => return None,
    };
    Some((text, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_escapes_latin1_and_trailing_space() {
        let out = qp_encode(&to_latin1("è ok \nx=y"));
        assert_eq!(out, b"=E8 ok=20\r\nx=3Dy");
    }

    #[test]
    fn qp_lines_stay_short() {
        let long = "é".repeat(100);
        let out = qp_encode(&to_latin1(&long));
        for line in out.split(|&b| b == b'\n') {
            assert!(line.len() <= 77, "{}", line.len());
        }
    }

    #[test]
    fn encoded_words() {
        assert_eq!(encode_word("plain"), "plain");
        let w = encode_word("Però è così");
        assert!(w.starts_with("=?UTF-8?B?"));
        let long = encode_word(&"à".repeat(80));
        assert!(long.split("\r\n ").all(|w| w.len() <= 75));
        // The ASCII words before the first non-ASCII one stay literal.
        let prefixed = encode_word("POSTA CERTIFICATA: Però è così");
        assert!(
            prefixed.starts_with("POSTA CERTIFICATA: =?UTF-8?B?"),
            "{prefixed}"
        );
        assert_eq!(decode_words(&prefixed), "POSTA CERTIFICATA: Però è così");
        let long = encode_word(&format!("ANOMALIA MESSAGGIO: {}", "più ".repeat(30)));
        assert!(
            long.starts_with("ANOMALIA MESSAGGIO:\r\n =?UTF-8?B?"),
            "{long}"
        );
        assert_eq!(
            decode_words(&long.replace("\r\n", "")),
            format!("ANOMALIA MESSAGGIO: {}", "più ".repeat(30))
        );
        // Text that looks like an encoded word is encoded, not left to be misread.
        assert!(encode_word("a =?x?= b").starts_with("a =?UTF-8?B?"));

        // Long ASCII folds at its spaces, within 78 characters, and unfolds to itself.
        let text = format!("POSTA CERTIFICATA: {}", "parola lunga ".repeat(100));
        let text = text.trim_end();
        let folded = encode_word(text);
        assert!(folded.contains("\r\n "));
        assert_eq!(folded.replace("\r\n", ""), text);
        let mut lines = folded.split("\r\n");
        assert!(lines.next().unwrap().len() + FIELD_NAME <= 78);
        for line in lines {
            assert!(
                line.len() <= 78 && line.starts_with(' ') && line.trim() != "",
                "{line:?}"
            );
        }
        // A run with no space that no line could hold becomes encoded words; the prefix
        // before it stays literal.
        let run = format!("CONSEGNA: {}", "x".repeat(2000));
        let encoded = encode_word(&run);
        assert!(
            encoded.starts_with("CONSEGNA:\r\n =?UTF-8?B?"),
            "{}",
            &encoded[..40]
        );
        assert_eq!(decode_words(&encoded.replace("\r\n", "")), run);
        assert!(encoded.split("\r\n").all(|l| l.len() <= 78));
        // A long literal part before a non-ASCII word is folded too.
        let mixed = format!("POSTA CERTIFICATA: {}è", "parola ".repeat(200));
        let encoded = encode_word(&mixed);
        assert!(encoded.split("\r\n").all(|l| l.len() <= 78), "{encoded}");
        assert_eq!(decode_words(&encoded.replace("\r\n", "")), mixed);
        // Runs of spaces are never folded inside.
        let spaced = format!("A{}", "  b".repeat(60));
        let folded = encode_word(&spaced);
        assert!(!folded.contains(" \r\n"), "{folded:?}");
        assert!(folded.split("\r\n").all(|l| l.len() <= 998), "{folded:?}");
        assert_eq!(folded.replace("\r\n", ""), spaced);
    }

    #[test]
    fn encoded_words_decode() {
        assert_eq!(
            decode_words("=?UTF-8?B?Y29udHJhdHRv?=.pdf"),
            "contratto.pdf"
        );
        assert_eq!(
            decode_words("=?ISO-8859-1?Q?fattura_n=B0_1?= =?UTF-8?Q?_=C3=A8?=.xml"),
            "fattura n° 1 è.xml"
        );
        assert_eq!(decode_words("plain =?bad"), "plain =?bad");
        assert_eq!(decode_words("=?KOI8-R?B?8NLJ?="), "=?KOI8-R?B?8NLJ?=");
        // A value full of `=?` without an end is read in linear time.
        let crafted = "=?a".repeat(200_000);
        assert_eq!(decode_words(&crafted), crafted);
    }
}
