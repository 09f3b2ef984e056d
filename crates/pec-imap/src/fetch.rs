//! FETCH data items (RFC 3501 §6.4.5, §7.4.2): flags, sizes and dates from the folder
//! index; sections, ENVELOPE and BODYSTRUCTURE from the message bytes, which are read only
//! when an item needs them. Sections are byte ranges of the stored message, never
//! re-encoded, so a PEC envelope fetched over IMAP is byte-identical to the one delivered.

use imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_types::core::{AString, IString, Literal, NString, Vec1};
use imap_types::datetime::DateTime;
use imap_types::envelope::{Address, Envelope};
use imap_types::fetch::{MessageDataItem, MessageDataItemName, Part, Section};
use imap_types::flag::{Flag, FlagFetch};
use pec_message::mime::{Entity, unfold};
use pec_store::{IndexEntry, Portion};
use std::num::{NonZeroU32, NonZeroU64};

/// The flags of a stored flag string.
pub(crate) fn flag_list(flags: &str) -> Vec<FlagFetch<'static>> {
    flags
        .split_whitespace()
        .filter_map(|f| {
            Flag::try_from(f)
                .ok()
                .map(|f| FlagFetch::Flag(f.into_static()))
        })
        .collect()
}

use imap_types::IntoStatic;

/// The stored spelling of a flag (system flags in their RFC 3501 case).
pub(crate) fn flag_name(f: &Flag<'_>) -> String {
    f.to_string()
}

/// How much of the message the items need: nothing (the index has it), the header block
/// (ENVELOPE and the top-level header sections), or the whole message.
pub(crate) fn needs(items: &[MessageDataItemName<'_>]) -> Option<Portion> {
    let mut need = None;
    for i in items {
        match i {
            MessageDataItemName::Uid
            | MessageDataItemName::Flags
            | MessageDataItemName::InternalDate
            | MessageDataItemName::Rfc822Size
            | MessageDataItemName::ModSeq => {}
            MessageDataItemName::Envelope | MessageDataItemName::Rfc822Header => {
                need = need.or(Some(Portion::Header));
            }
            MessageDataItemName::BodyExt {
                section:
                    Some(
                        Section::Header(None)
                        | Section::HeaderFields(None, _)
                        | Section::HeaderFieldsNot(None, _),
                    ),
                ..
            } => need = need.or(Some(Portion::Header)),
            _ => return Some(Portion::Whole),
        }
    }
    need
}

/// Whether fetching `items` sets `\Seen` (RFC 3501 §6.4.5: BODY[...] without PEEK,
/// RFC822 and RFC822.TEXT).
pub(crate) fn sets_seen(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|i| match i {
        MessageDataItemName::BodyExt { peek, .. } => !peek,
        MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => true,
        _ => false,
    })
}

fn nstring(b: &[u8]) -> NString<'static> {
    if let Ok(s) = IString::try_from(b.to_vec()) {
        return NString(Some(s));
    }
    // A NUL byte cannot travel in a literal (RFC 3501 §4.3): it is dropped.
    let clean: Vec<u8> = b.iter().copied().filter(|&c| c != 0).collect();
    NString(IString::try_from(clean).ok())
}

fn literal(b: &[u8]) -> NString<'static> {
    let clean: Vec<u8> = if b.contains(&0) {
        b.iter().copied().filter(|&c| c != 0).collect()
    } else {
        b.to_vec()
    };
    match Literal::try_from(clean) {
        Ok(l) => NString(Some(IString::Literal(l))),
        Err(_) => NString(None),
    }
}

fn istring(s: &str) -> IString<'static> {
    IString::try_from(s.to_string())
        .unwrap_or_else(|_| IString::Literal(Literal::unvalidated(Vec::new())))
}

fn nil() -> NString<'static> {
    NString(None)
}

/// INTERNALDATE from Unix seconds, in UTC.
pub(crate) fn internal_date(t: i64) -> DateTime {
    let dt = chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .fixed_offset();
    DateTime::try_from(dt)
        .unwrap_or_else(|_| DateTime::unvalidated(chrono::DateTime::UNIX_EPOCH.fixed_offset()))
}

/// Finds the entity a part path names (RFC 3501 §6.4.5: part 1 of a non-multipart message is
/// its body; a message/rfc822 part's subparts are those of the encapsulated message).
fn part_entity<'a>(top: &Entity<'a>, path: &[NonZeroU32]) -> Option<Entity<'a>> {
    let mut cur = top.clone();
    for n in path {
        let n = n.get() as usize;
        if cur.content_type().mime_type == "message/rfc822" {
            cur = Entity::parse(cur.body());
        }
        if cur.content_type().is_multipart() {
            let (parts, _) = cur.parts();
            let p = parts.get(n - 1)?;
            cur = Entity::parse(p.raw);
        } else if n == 1 {
            // The body of a single-part entity is part 1; keep its headers for MIME.
        } else {
            return None;
        }
    }
    Some(cur)
}

fn header_bytes<'a>(e: &Entity<'a>) -> &'a [u8] {
    &e.raw[..e.body_start]
}

fn header_fields(e: &Entity<'_>, names: &[AString<'_>], not: bool) -> Vec<u8> {
    let wanted = |n: &str| {
        names
            .iter()
            .any(|w| std::str::from_utf8(w.as_ref()).is_ok_and(|w| w.eq_ignore_ascii_case(n)))
    };
    let mut out = Vec::new();
    for h in &e.headers {
        if wanted(h.name) != not {
            out.extend_from_slice(h.raw);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of a section (RFC 3501 §6.4.5 BODY[section]).
fn section_bytes(top: &Entity<'_>, section: &Option<Section<'_>>) -> Vec<u8> {
    let Some(section) = section else {
        return top.raw.to_vec();
    };
    let at = |p: &Option<Part>| -> Option<Entity<'_>> {
        match p {
            None => Some(top.clone()),
            Some(p) => {
                let e = part_entity(top, p.0.as_ref())?;
                // HEADER/TEXT of a part apply to an encapsulated message/rfc822.
                if e.content_type().mime_type == "message/rfc822" {
                    Some(Entity::parse(e.body()))
                } else {
                    Some(e)
                }
            }
        }
    };
    match section {
        Section::Part(p) => match part_entity(top, p.0.as_ref()) {
            Some(e) if p.0.as_ref().len() == 1 && !top.content_type().is_multipart() => {
                // Part 1 of a single-part message: its body.
                e.body().to_vec()
            }
            Some(e) => e.body().to_vec(),
            None => Vec::new(),
        },
        Section::Header(p) => at(p).map(|e| header_bytes(&e).to_vec()).unwrap_or_default(),
        Section::HeaderFields(p, names) => at(p)
            .map(|e| header_fields(&e, names.as_ref(), false))
            .unwrap_or_default(),
        Section::HeaderFieldsNot(p, names) => at(p)
            .map(|e| header_fields(&e, names.as_ref(), true))
            .unwrap_or_default(),
        Section::Text(p) => at(p).map(|e| e.body().to_vec()).unwrap_or_default(),
        Section::Mime(p) => part_entity(top, p.0.as_ref())
            .map(|e| header_bytes(&e).to_vec())
            .unwrap_or_default(),
    }
}

fn partial(bytes: Vec<u8>, range: Option<(u32, NonZeroU32)>) -> (Vec<u8>, Option<u32>) {
    match range {
        None => (bytes, None),
        Some((start, len)) => {
            let s = (start as usize).min(bytes.len());
            let e = (s + len.get() as usize).min(bytes.len());
            (bytes[s..e].to_vec(), Some(start))
        }
    }
}

/// The data items of one message. `bytes` is given when [`needs`] said so (only the header
/// block when it said [`Portion::Header`]);
/// `add_modseq` adds MODSEQ when it was not asked for.
pub(crate) fn items(
    names: &[MessageDataItemName<'_>],
    e: &IndexEntry,
    bytes: Option<&[u8]>,
    add_modseq: bool,
) -> Vec<MessageDataItem<'static>> {
    let entity = bytes.map(Entity::parse);
    let mut out = Vec::with_capacity(names.len() + 2);
    let uid = NonZeroU32::new(e.uid).unwrap_or(NonZeroU32::MIN);
    for n in names {
        let item = match n {
            MessageDataItemName::Uid => MessageDataItem::Uid(uid),
            MessageDataItemName::Flags => MessageDataItem::Flags(flag_list(&e.flags)),
            MessageDataItemName::InternalDate => {
                MessageDataItem::InternalDate(internal_date(e.date))
            }
            MessageDataItemName::Rfc822Size => MessageDataItem::Rfc822Size(e.size as u32),
            MessageDataItemName::ModSeq => {
                MessageDataItem::ModSeq(NonZeroU64::new(e.modseq).unwrap_or(NonZeroU64::MIN))
            }
            other => {
                let Some(m) = &entity else { continue };
                match other {
                    MessageDataItemName::Envelope => MessageDataItem::Envelope(envelope(m)),
                    MessageDataItemName::Body => MessageDataItem::Body(structure(m, false)),
                    MessageDataItemName::BodyStructure => {
                        MessageDataItem::BodyStructure(structure(m, true))
                    }
                    MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(literal(m.raw)),
                    MessageDataItemName::Rfc822Header => {
                        MessageDataItem::Rfc822Header(literal(header_bytes(m)))
                    }
                    MessageDataItemName::Rfc822Text => {
                        MessageDataItem::Rfc822Text(literal(m.body()))
                    }
                    MessageDataItemName::BodyExt {
                        section,
                        partial: range,
                        ..
                    } => {
                        let (data, origin) = partial(section_bytes(m, section), *range);
                        MessageDataItem::BodyExt {
                            section: section.clone().map(IntoStatic::into_static),
                            origin,
                            data: literal(&data),
                        }
                    }
                    // BINARY (RFC 3516) is not advertised.
                    _ => continue,
                }
            }
        };
        out.push(item);
    }
    // UID FETCH always carries UID (RFC 3501 §6.4.8): the caller adds that name.
    if add_modseq
        && !names
            .iter()
            .any(|n| matches!(n, MessageDataItemName::ModSeq))
    {
        out.push(MessageDataItem::ModSeq(
            NonZeroU64::new(e.modseq).unwrap_or(NonZeroU64::MIN),
        ));
    }
    out
}

// ---- ENVELOPE (RFC 3501 §7.4.2) ----

fn header_raw(e: &Entity<'_>, name: &str) -> Option<String> {
    e.header(name)
        .map(|h| unfold(h.raw_value).trim().to_string())
}

fn nheader(e: &Entity<'_>, name: &str) -> NString<'static> {
    match header_raw(e, name) {
        Some(v) => nstring(v.as_bytes()),
        None => nil(),
    }
}

/// Splits an address list on commas outside quotes, comments and angle brackets.
fn split_addresses(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut depth, mut angle) = (String::new(), false, 0i32, false);
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '<' if !quoted && depth == 0 => angle = true,
            '>' if !quoted && depth == 0 => angle = false,
            ',' if !quoted && depth == 0 && !angle => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

fn address(one: &str) -> Option<Address<'static>> {
    let (name, spec) = match (one.rfind('<'), one.rfind('>')) {
        (Some(a), Some(b)) if a < b => (one[..a].trim(), &one[a + 1..b]),
        _ => ("", one),
    };
    let spec = spec.trim();
    let (local, host) = spec.rsplit_once('@').unwrap_or((spec, ""));
    let name = name.trim_matches('"').trim();
    Some(Address {
        name: if name.is_empty() {
            nil()
        } else {
            nstring(name.as_bytes())
        },
        adl: nil(),
        mailbox: nstring(local.as_bytes()),
        host: if host.is_empty() {
            nil()
        } else {
            nstring(host.as_bytes())
        },
    })
}

fn addresses(e: &Entity<'_>, name: &str) -> Vec<Address<'static>> {
    header_raw(e, name)
        .map(|v| {
            split_addresses(&v)
                .iter()
                .filter_map(|a| address(a))
                .collect()
        })
        .unwrap_or_default()
}

/// The ENVELOPE of a message; Sender and Reply-To default to From (RFC 3501 §7.4.2).
pub(crate) fn envelope(e: &Entity<'_>) -> Envelope<'static> {
    let from = addresses(e, "From");
    let sender = match addresses(e, "Sender") {
        v if v.is_empty() => from.clone(),
        v => v,
    };
    let reply_to = match addresses(e, "Reply-To") {
        v if v.is_empty() => from.clone(),
        v => v,
    };
    Envelope {
        date: nheader(e, "Date"),
        subject: nheader(e, "Subject"),
        from,
        sender,
        reply_to,
        to: addresses(e, "To"),
        cc: addresses(e, "Cc"),
        bcc: addresses(e, "Bcc"),
        in_reply_to: nheader(e, "In-Reply-To"),
        message_id: nheader(e, "Message-ID"),
    }
}

// ---- BODY / BODYSTRUCTURE (RFC 3501 §7.4.2) ----

fn params(list: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(k, v)| (istring(&k.to_ascii_lowercase()), istring(v)))
        .collect()
}

fn lines(b: &[u8]) -> u32 {
    b.iter().filter(|&&c| c == b'\n').count() as u32
}

/// The extension data after the MD5 or the parameters: disposition, language and location
/// (RFC 3501 §7.4.2), each NIL when the part has no such header. All of it is written, as
/// Dovecot and Cyrus do, so clients never meet a list cut short.
fn extension_tail(e: &Entity<'_>) -> Disposition<'static> {
    let disposition = header_raw(e, "Content-Disposition").map(|d| {
        let (kind, rest) = d.split_once(';').unwrap_or((&d, ""));
        (
            istring(&kind.trim().to_ascii_lowercase()),
            params(&pec_message::mime::parse_params(rest)),
        )
    });
    let language = header_raw(e, "Content-Language")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(istring)
                .collect()
        })
        .unwrap_or_default();
    Disposition {
        disposition,
        tail: Some(Language {
            language,
            tail: Some(Location {
                location: nheader(e, "Content-Location"),
                extensions: Vec::new(),
            }),
        }),
    }
}

/// BODY (`extended = false`) or BODYSTRUCTURE of an entity.
pub(crate) fn structure(e: &Entity<'_>, extended: bool) -> BodyStructure<'static> {
    let ct = e.content_type();
    if ct.is_multipart() {
        let (parts, _) = e.parts();
        let bodies: Vec<BodyStructure<'static>> = parts
            .iter()
            .map(|p| structure(&Entity::parse(p.raw), extended))
            .collect();
        let subtype = ct
            .mime_type
            .split_once('/')
            .map(|(_, s)| s)
            .unwrap_or("mixed");
        if let Ok(bodies) = Vec1::try_from(bodies) {
            return BodyStructure::Multi {
                bodies,
                subtype: istring(subtype),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: params(&ct.params),
                    tail: Some(extension_tail(e)),
                }),
            };
        }
        // A multipart without parts is described as what it claims, with an empty text part.
    }
    let (t, sub) = ct.mime_type.split_once('/').unwrap_or(("text", "plain"));
    let body = e.body();
    let mut param_list = ct.params.clone();
    if param_list.is_empty() && t == "text" {
        param_list.push(("charset".into(), "us-ascii".into()));
    }
    let enc = e.transfer_encoding();
    let basic = BasicFields {
        parameter_list: params(&param_list),
        id: nheader(e, "Content-ID"),
        description: nheader(e, "Content-Description"),
        content_transfer_encoding: istring(&if enc.is_empty() {
            "7bit".to_string()
        } else {
            enc.to_ascii_lowercase()
        }),
        size: body.len() as u32,
    };
    let specific = if t.eq_ignore_ascii_case("text") {
        SpecificFields::Text {
            subtype: istring(sub),
            number_of_lines: lines(body),
        }
    } else if ct.mime_type == "message/rfc822" {
        let inner = Entity::parse(body);
        SpecificFields::Message {
            envelope: Box::new(envelope(&inner)),
            body_structure: Box::new(structure(&inner, extended)),
            number_of_lines: lines(body),
        }
    } else {
        SpecificFields::Basic {
            r#type: istring(t),
            subtype: istring(sub),
        }
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nil(),
            tail: Some(extension_tail(e)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: \"Mario Rossi\" <mario@a.test>\r\nTo: anna@b.test, \"B, C\" <bc@b.test>\r\nSubject: prova\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nciao\r\n--XX\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--XX--\r\n";

    fn sec(s: &str) -> Option<Section<'static>> {
        use imap_codec::decode::Decoder;
        let cmd = format!("a FETCH 1 BODY[{s}]\r\n");
        let (_, c) = imap_codec::CommandCodec::default()
            .decode(cmd.as_bytes())
            .expect("valid command");
        match c.body {
            imap_types::command::CommandBody::Fetch {
                macro_or_item_names:
                    imap_types::fetch::MacroOrMessageDataItemNames::MessageDataItemNames(v),
                ..
            } => match &v[0] {
                MessageDataItemName::BodyExt { section, .. } => {
                    section.clone().map(IntoStatic::into_static)
                }
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn sections_are_byte_ranges_of_the_message() {
        let e = Entity::parse(MSG);
        assert_eq!(section_bytes(&e, &None), MSG);
        assert_eq!(section_bytes(&e, &sec("1")), b"ciao");
        assert_eq!(section_bytes(&e, &sec("2")), b"QUJD");
        assert!(section_bytes(&e, &sec("HEADER")).ends_with(b"\r\n\r\n"));
        assert_eq!(
            section_bytes(&e, &sec("HEADER.FIELDS (subject)")),
            b"Subject: prova\r\n\r\n"
        );
        assert_eq!(section_bytes(&e, &sec("2.MIME")), b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        assert!(section_bytes(&e, &sec("TEXT")).starts_with(b"--XX"));
        assert_eq!(section_bytes(&e, &sec("3")), b"");
    }

    #[test]
    fn envelope_splits_addresses_outside_quotes() {
        let env = envelope(&Entity::parse(MSG));
        assert_eq!(env.to.len(), 2);
        assert_eq!(env.from.len(), 1);
        assert_eq!(env.sender, env.from);
    }

    #[test]
    fn bodystructure_describes_each_part() {
        match structure(&Entity::parse(MSG), true) {
            BodyStructure::Multi { bodies, .. } => assert_eq!(bodies.as_ref().len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
