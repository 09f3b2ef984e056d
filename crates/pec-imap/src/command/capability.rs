//! CAPABILITY (RFC 3501 §6.1.1): what this state offers.

use crate::reply::ok;
use crate::session::{Session, capabilities};
use imap_types::core::Tag;
use imap_types::response::{Data, Status};
use pec_store::Store;

pub(crate) fn run<S: Store>(s: &mut Session<'_, S>, tag: &Tag<'static>) -> Status<'static> {
    let caps = capabilities(s.cfg, s.user.is_some());
    s.data(Data::Capability(caps));
    ok(tag, None, "CAPABILITY completed")
}
