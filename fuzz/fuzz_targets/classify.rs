//! Fuzz target: the classifier and the MIME parser on arbitrary bytes, then the breve
//! transformation on the same input. None of them may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = pec_message::classify::classify(data);
    let _ = c.receipt_type();
    let _ = pec_message::breve::breve(data);
    let _ = pec_message::original::OriginalHeaders::parse(data);
});
