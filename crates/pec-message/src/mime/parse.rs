//! The raw entity parser: header fields with their byte ranges, the body, and multipart
//! splitting per RFC 2046 §5.1.1 (the line break before a delimiter belongs to the delimiter).

use std::borrow::Cow;

/// One header field as it appears in the input.
#[derive(Debug, Clone, Copy)]
pub struct HeaderField<'a> {
    /// The field name, as written (compare with [`HeaderField::is`]).
    pub name: &'a str,
    /// The raw value after the colon, still folded, without the final line break.
    pub raw_value: &'a [u8],
    /// The whole field including its final line break, exactly as in the input.
    pub raw: &'a [u8],
}

impl HeaderField<'_> {
    /// Case-insensitive name comparison (RFC 5322 §1.2.2: field names are case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The unfolded value with surrounding whitespace removed, lossily decoded as UTF-8.
    pub fn value(&self) -> String {
        unfold(self.raw_value).trim().to_string()
    }
}

/// A MIME entity (a whole message or one body part) borrowed from its bytes.
#[derive(Debug, Clone)]
pub struct Entity<'a> {
    /// All the bytes of the entity.
    pub raw: &'a [u8],
    /// The header fields in order.
    pub headers: Vec<HeaderField<'a>>,
    /// The raw header block (fields only, without the empty separator line).
    pub header_block: &'a [u8],
    /// Offset of the body inside `raw`.
    pub body_start: usize,
}

/// One part of a multipart body.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// Bytes of the part (headers and body), without the line break that precedes the next
    /// delimiter. For the first part of `multipart/signed` these are the signed bytes.
    pub raw: &'a [u8],
    /// Offset of `raw` inside the body that was split.
    pub offset: usize,
}

/// A parsed `Content-Type` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Lower-cased `type/subtype`.
    pub mime_type: String,
    /// Parameters with lower-cased names, values unquoted.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// The value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `true` for any `multipart/*` type.
    pub fn is_multipart(&self) -> bool {
        self.mime_type.starts_with("multipart/")
    }
}

impl<'a> Entity<'a> {
    /// Splits `raw` into header fields and body. Never fails: a message with no empty line is
    /// all headers, and a line that is not a field ends the header block (as most MTAs do).
    pub fn parse(raw: &'a [u8]) -> Entity<'a> {
        let mut headers = Vec::new();
        let mut pos = 0;
        let mut header_end = raw.len();
        let mut body_start = raw.len();
        while pos < raw.len() {
            let line_end = next_line(raw, pos);
            let line = trim_eol(&raw[pos..line_end]);
            if line.is_empty() {
                header_end = pos;
                body_start = line_end;
                break;
            }
            // A field: name, colon, value; continuation lines start with WSP.
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                header_end = pos;
                body_start = pos;
                break;
            };
            let name = &line[..colon];
            if name.is_empty() || name.iter().any(|&b| b <= b' ' || b >= 0x7f) {
                header_end = pos;
                body_start = pos;
                break;
            }
            let mut end = line_end;
            while end < raw.len() && (raw[end] == b' ' || raw[end] == b'\t') {
                end = next_line(raw, end);
            }
            let field = &raw[pos..end];
            let value = trim_eol(&raw[pos + colon + 1..end]);
            headers.push(HeaderField {
                // Invariant: the name bytes were checked to be printable ASCII above.
                name: std::str::from_utf8(name).unwrap_or(""),
                raw_value: value,
                raw: field,
            });
            pos = end;
        }
        if pos >= raw.len() && header_end == raw.len() {
            body_start = raw.len();
        }
        Entity {
            raw,
            headers,
            header_block: &raw[..header_end],
            body_start,
        }
    }

    /// The line that ended the header block without being an empty line (RFC 5322 §2.1:
    /// the header fields and the body are separated by an empty line), when there is one:
    /// a line without a colon, or a field name that is empty or holds a space or a control
    /// or 8-bit byte (the obsolete `name :` syntax of RFC 5322 §4.5 among them).
    pub fn stray_line(&self) -> Option<&'a [u8]> {
        let end = self.header_block.len();
        (self.body_start == end && end < self.raw.len())
            .then(|| trim_eol(&self.raw[end..next_line(self.raw, end)]))
    }

    /// The body bytes.
    pub fn body(&self) -> &'a [u8] {
        &self.raw[self.body_start..]
    }

    /// The first header field with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&HeaderField<'a>> {
        self.headers.iter().find(|h| h.is(name))
    }

    /// The unfolded, trimmed value of the first field with this name.
    pub fn header_value(&self, name: &str) -> Option<String> {
        self.header(name).map(HeaderField::value)
    }

    /// Every field with this name, in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s HeaderField<'a>> {
        self.headers.iter().filter(move |h| h.is(name))
    }

    /// The parsed `Content-Type`, defaulting to `text/plain` (RFC 2045 §5.2).
    pub fn content_type(&self) -> ContentType {
        match self.header_value("Content-Type") {
            Some(v) => {
                let (ty, params) = v.split_once(';').unwrap_or((v.as_str(), ""));
                ContentType {
                    mime_type: ty.trim().to_ascii_lowercase(),
                    params: parse_params(params),
                }
            }
            None => ContentType {
                mime_type: "text/plain".into(),
                params: Vec::new(),
            },
        }
    }

    /// The lower-cased `Content-Transfer-Encoding`, default `7bit`.
    pub fn transfer_encoding(&self) -> String {
        self.header_value("Content-Transfer-Encoding")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into())
    }

    /// The file name of the part: `filename` of `Content-Disposition`, else `name` of
    /// `Content-Type` (pec.md §2.12, breve rule).
    pub fn file_name(&self) -> Option<String> {
        let from_disposition = self.header_value("Content-Disposition").and_then(|v| {
            let (_, params) = v.split_once(';')?;
            parse_params(params)
                .into_iter()
                .find(|(n, _)| n == "filename")
                .map(|(_, v)| v)
        });
        from_disposition.or_else(|| self.content_type().param("name").map(str::to_string))
    }

    /// The decoded body (base64 and quoted-printable undone; other encodings as they are).
    pub fn decoded_body(&self) -> Cow<'a, [u8]> {
        let body = self.body();
        match self.transfer_encoding().as_str() {
            "base64" => {
                use base64::Engine as _;
                let clean: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                match base64::engine::general_purpose::STANDARD.decode(&clean) {
                    Ok(v) => Cow::Owned(v),
                    Err(_) => base64::engine::GeneralPurpose::new(
                        &base64::alphabet::STANDARD,
                        base64::engine::GeneralPurposeConfig::new()
                            .with_decode_allow_trailing_bits(true)
                            .with_decode_padding_mode(
                                base64::engine::DecodePaddingMode::Indifferent,
                            ),
                    )
                    .decode(&clean)
                    .map(Cow::Owned)
                    .unwrap_or(Cow::Borrowed(body)),
                }
            }
            "quoted-printable" => Cow::Owned(qp_decode(body)),
            _ => Cow::Borrowed(body),
        }
    }

    /// Splits a multipart body on its boundary. Returns the parts and whether the closing
    /// delimiter was found (a cut message has none).
    pub fn parts(&self) -> (Vec<Part<'a>>, bool) {
        let Some(boundary) = self.content_type().param("boundary").map(str::to_string) else {
            return (Vec::new(), false);
        };
        split_multipart(self.body(), boundary.as_bytes())
    }
}

/// Splits `body` on `--boundary` delimiter lines (RFC 2046 §5.1.1).
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> (Vec<Part<'a>>, bool) {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    // Positions of delimiter lines: (start of the line break before it, start of the line after it, closing?).
    let mut marks: Vec<(usize, usize, bool)> = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let line_end = next_line(body, pos);
        let line = &body[pos..line_end];
        if line.starts_with(&delim) {
            let rest = &line[delim.len()..];
            let closing = rest.starts_with(b"--");
            let tail = if closing { &rest[2..] } else { rest };
            if trim_eol(tail).iter().all(|&b| b == b' ' || b == b'\t') {
                // The line break before the delimiter belongs to it.
                let before = if pos >= 2 && &body[pos - 2..pos] == b"\r\n" {
                    pos - 2
                } else if pos >= 1 && body[pos - 1] == b'\n' {
                    pos - 1
                } else {
                    pos
                };
                marks.push((before, line_end, closing));
                if closing {
                    break;
                }
            }
        }
        pos = line_end;
    }
    let mut parts = Vec::new();
    let mut closed = false;
    for (i, &(_, after, closing)) in marks.iter().enumerate() {
        if closing {
            closed = true;
            break;
        }
        let end = marks.get(i + 1).map(|m| m.0).unwrap_or(body.len());
        let end = end.max(after);
        parts.push(Part {
            raw: &body[after..end],
            offset: after,
        });
    }
    (parts, closed)
}

/// Index just past the end of the line that starts at `pos` (after its LF, or the end).
fn next_line(raw: &[u8], pos: usize) -> usize {
    match raw[pos..].iter().position(|&b| b == b'\n') {
        Some(i) => pos + i + 1,
        None => raw.len(),
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Unfolds a header value (RFC 5322 §2.2.3) and decodes it lossily as UTF-8.
pub fn unfold(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `; a=b; c="d"` MIME parameters (RFC 2045 §5.1), lower-casing names. RFC 2231
/// continuations (`name*0=`) are joined; charset-tagged values are percent-decoded as UTF-8.
pub fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b';' || bytes[i].is_ascii_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b';' {
            i += 1;
        }
        let name = s[start..i].trim().to_ascii_lowercase();
        if i >= bytes.len() || bytes[i] == b';' {
            continue;
        }
        i += 1; // '='
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                let ch_len = utf8_len(bytes[i]);
                let end = (i + ch_len).min(bytes.len());
                value.push_str(&String::from_utf8_lossy(&bytes[i..end]));
                i = end;
            }
            i += 1;
        } else {
            let vstart = i;
            while i < bytes.len() && bytes[i] != b';' {
                i += 1;
            }
            value = s[vstart..i].trim().to_string();
        }
        if name.is_empty() {
            continue;
        }
        push_param(&mut out, name, value);
    }
    out
}

fn push_param(out: &mut Vec<(String, String)>, name: String, value: String) {
    // RFC 2231: name*=charset'lang'%XX and name*0=, name*1= continuations.
    if let Some((base, rest)) = name.split_once('*') {
        let extended = rest.ends_with('*') || rest.is_empty();
        let value = if extended {
            rfc2231_decode(&value)
        } else {
            value
        };
        if let Some(existing) = out.iter_mut().find(|(n, _)| *n == base) {
            existing.1.push_str(&value);
        } else {
            out.push((base.to_string(), value));
        }
    } else {
        out.push((name, value));
    }
}

fn rfc2231_decode(v: &str) -> String {
    let payload = match v.splitn(3, '\'').collect::<Vec<_>>().as_slice() {
        [_, _, p] => (*p).to_string(),
        _ => v.to_string(),
    };
    let mut bytes = Vec::new();
    let b = payload.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = [b[i + 1], b[i + 2]];
            if let Some(x) = std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                bytes.push(x);
                i += 3;
                continue;
            }
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Decodes quoted-printable (RFC 2045 §6.7), leniently.
fn qp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'=' {
            if body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if body.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(&h), Some(&l)) = (body.get(i + 1), body.get(i + 2))
                && let (Some(h), Some(l)) = ((h as char).to_digit(16), (l as char).to_digit(16))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Returns the CRLF form of `data`: every bare LF becomes CRLF, existing CRLFs stay. This is
/// the canonicalisation OpenSSL applies to a signed part stored with LF line endings
/// (fixtures/real/README.md, "Line endings").
pub fn canonical_crlf(data: &[u8]) -> Cow<'_, [u8]> {
    let bare_lf = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    if !bare_lf {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_body_with_crlf_and_lf() {
        for sep in ["\r\n", "\n"] {
            let raw = format!("Subject: a{sep} b{sep}x-ricevuta: accettazione{sep}{sep}body{sep}");
            let e = Entity::parse(raw.as_bytes());
            assert_eq!(e.headers.len(), 2);
            assert_eq!(e.header_value("Subject").as_deref(), Some("a b"));
            assert_eq!(
                e.header_value("X-Ricevuta").as_deref(),
                Some("accettazione")
            );
            assert_eq!(e.body(), format!("body{sep}").as_bytes());
        }
    }

    #[test]
    fn multipart_split_excludes_crlf_before_delimiter() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npre\r\n--b\r\nA: 1\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n";
        let e = Entity::parse(raw);
        let (parts, closed) = e.parts();
        assert!(closed);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].raw, b"A: 1\r\n\r\nx");
        assert_eq!(parts[1].raw, b"\r\ny");
    }

    #[test]
    fn unclosed_multipart_is_reported() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n";
        let (parts, closed) = Entity::parse(raw).parts();
        assert!(!closed);
        assert_eq!(parts.len(), 1);
    }

    #[test]
    fn params_quoted_and_rfc2231() {
        let p = parse_params(r#"; name="a \"b\".txt"; filename*=UTF-8''%C3%A8.pdf; x=y"#);
        assert_eq!(p[0], ("name".into(), "a \"b\".txt".into()));
        assert_eq!(p[1], ("filename".into(), "è.pdf".into()));
        assert_eq!(p[2], ("x".into(), "y".into()));
    }

    #[test]
    fn crlf_canonicalisation() {
        assert_eq!(&*canonical_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert!(matches!(canonical_crlf(b"a\r\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn qp_and_base64_bodies_decode() {
        let e = Entity::parse(b"Content-Transfer-Encoding: quoted-printable\r\n\r\nh=E8 =\r\nx");
        assert_eq!(&*e.decoded_body(), b"h\xe8 x");
        let e = Entity::parse(b"Content-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n");
        assert_eq!(&*e.decoded_body(), b"hello");
    }
}
