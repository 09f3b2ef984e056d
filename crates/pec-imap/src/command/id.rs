//! ID (RFC 2971): the server names itself; the client's values are only logged.

use crate::reply::ok;
use crate::session::Session;
use imap_types::core::Tag;
use imap_types::core::{IString, NString};
use imap_types::response::{Data, Status};
use pec_store::Store;

pub(crate) fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    parameters: Option<Vec<(IString<'static>, NString<'static>)>>,
) -> Status<'static> {
    if let Some(p) = &parameters {
        tracing::debug!("IMAP client ID from {}: {p:?}", s.cfg.peer);
    }
    let pair = |k: &'static str, v: &'static str| {
        Some((
            IString::try_from(k).ok()?,
            NString(Some(IString::try_from(v).ok()?)),
        ))
    };
    let ours: Vec<_> = [
        pair("name", "pec"),
        pair("version", env!("CARGO_PKG_VERSION")),
    ]
    .into_iter()
    .flatten()
    .collect();
    s.data(Data::Id {
        parameters: Some(ours),
    });
    ok(tag, None, "ID completed")
}
