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

/// Encodes an unstructured header value (RFC 2047 §5 (1)): ASCII text is returned unchanged,
/// anything else becomes UTF-8 `B` encoded words of at most 75 characters, folded.
pub fn encode_word(text: &str) -> String {
    let printable = text.chars().all(|c| (' '..='~').contains(&c));
    if printable && !text.contains("=?") {
        return text.to_string();
    }
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
    }
}
