//! APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315 §3) and LITERAL+ (RFC 7888, handled
//! by the framing). The message is stored as sent, under the mailbox quota.

use super::{folder_name, store_error};
use crate::fetch::flag_name;
use crate::reply::{bad, ok};
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::datetime::DateTime;
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::Flag;
use imap_types::mailbox::Mailbox;
use imap_types::response::{Code, Status};
use pec_store::{Append, FolderRefusal, Store, StoreError};
use std::num::NonZeroU32;

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    mailbox: &Mailbox<'static>,
    flags: Vec<Flag<'static>>,
    date: Option<DateTime>,
    message: LiteralOrLiteral8<'static>,
) -> Status<'static> {
    let bytes = match message {
        LiteralOrLiteral8::Literal(l) => l.into_inner().into_owned(),
        LiteralOrLiteral8::Literal8(l) => l.data.into_owned(),
    };
    if bytes.is_empty() {
        return bad(tag, "an empty message cannot be appended");
    }
    let flags: Vec<String> = flags.iter().map(flag_name).collect();
    let date = date
        .map(|d| d.as_ref().timestamp())
        .unwrap_or_else(|| s.g.clock.now().utc().timestamp());
    let subject = pec_message::original::OriginalHeaders::parse(&bytes).subject;
    let a = Append {
        mailbox: s.address(),
        folder: folder_name(mailbox),
        flags: flags.join(" "),
        date,
        bytes,
        subject,
    };
    match s.g.store.append(a).await {
        Ok((uidvalidity, uid)) => {
            if s.selected
                .as_ref()
                .is_some_and(|f| f.name == folder_name(mailbox))
            {
                s.dirty = true;
            }
            let code = match (NonZeroU32::new(uidvalidity), NonZeroU32::new(uid)) {
                (Some(uid_validity), Some(uid)) => Some(Code::AppendUid { uid_validity, uid }),
                _ => None,
            };
            ok(tag, code, "APPEND completed")
        }
        Err(StoreError::Refused(FolderRefusal::Missing)) => crate::reply::no(
            tag,
            Some(Code::TryCreate),
            "no such folder; create it first",
        ),
        Err(e) => store_error(tag, "APPEND", e),
    }
}
