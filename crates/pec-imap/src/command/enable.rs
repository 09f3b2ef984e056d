//! ENABLE (RFC 5161): CONDSTORE is the one extension that can be enabled (RFC 7162 §3.1).

use crate::reply::ok;
use crate::session::Session;
use imap_types::core::{Tag, Vec1};
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::response::{Data, Status};
use pec_store::Store;

pub(crate) fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    capabilities: Vec1<CapabilityEnable<'static>>,
) -> Status<'static> {
    let mut enabled = Vec::new();
    for c in capabilities.into_inner() {
        if matches!(c, CapabilityEnable::CondStore) {
            if !s.condstore {
                enabled.push(c);
            }
            s.condstore = true;
        }
    }
    s.data(Data::Enabled {
        capabilities: enabled,
    });
    ok(tag, None, "ENABLE completed")
}
