//! Byte-exact MIME: a sans-I/O parser that keeps the offsets of every header field and part,
//! and the small encoders (quoted-printable, base64 lines, RFC 2047 words) the builders need.
//!
//! PEC depends on exact bytes (pec.md §5.5: signatures and breve hashes are computed over the
//! data as transmitted), so this parser never re-encodes: every value it returns borrows from
//! the input.

mod encode;
mod parse;

pub use encode::{base64_lines, decode_words, encode_word, qp_encode, to_latin1};
pub use parse::{ContentType, Entity, HeaderField, Part, canonical_crlf, parse_params, unfold};
