//! NAMESPACE (RFC 2342): one personal namespace with "/" as the hierarchy separator; no
//! other users' or shared folders.

use crate::reply::ok;
use crate::session::Session;
use imap_types::core::{QuotedChar, Tag};
use imap_types::extensions::namespace::Namespace;
use imap_types::response::{Data, Status};
use pec_store::Store;

pub(crate) fn run<S: Store>(s: &mut Session<'_, S>, tag: &Tag<'static>) -> Status<'static> {
    let personal = imap_types::core::IString::try_from("")
        .ok()
        .map(|prefix| Namespace {
            prefix,
            delimiter: QuotedChar::try_from('/').ok(),
            extensions: Vec::new(),
        });
    s.data(Data::Namespace {
        personal: personal.into_iter().collect(),
        other: Vec::new(),
        shared: Vec::new(),
    });
    ok(tag, None, "NAMESPACE completed")
}
