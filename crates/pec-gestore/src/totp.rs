//! The optional second factor of webmail logins: TOTP (RFC 6238) with HMAC-SHA1, 6 digits
//! and 30-second steps, as every authenticator app reads from an `otpauth://` URI; secrets
//! are 160 random bits in base32 (RFC 4648 §6).

use aws_lc_rs::hmac;

/// Seconds per step (RFC 6238 §4.1, X).
pub const STEP: i64 = 30;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 without padding.
pub fn base32(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, spaces and padding ignored); `None` on other characters.
pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| !matches!(c, ' ' | '=')) {
        let v = ALPHABET
            .iter()
            .position(|&a| a as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// A new random secret, in base32.
pub fn new_secret() -> String {
    let mut key = [0u8; 20];
    rand::fill(&mut key);
    base32(&key)
}

/// The code of `key` for step `counter` with `digits` digits (RFC 4226 §5.3).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        &counter.to_be_bytes(),
    );
    let h = tag.as_ref();
    let o = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// Whether `code` is the 6-digit code of `secret` at Unix time `now`, one step either side
/// allowed for clock drift (RFC 6238 §5.2).
pub fn verify(secret: &str, code: &str, now: i64) -> bool {
    matching_step(secret, code, now).is_some()
}

/// The time step whose code `code` is, within one step of `now` (see [`verify`]).
pub fn matching_step(secret: &str, code: &str, now: i64) -> Option<i64> {
    let key = unbase32(secret)?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now.div_euclid(STEP);
    (-1..=1).map(|d| step + d).find(|&c| {
        c >= 0
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                hotp(&key, c as u64, 6).as_bytes(),
                code.as_bytes(),
            )
            .is_ok()
    })
}

/// The `otpauth://` URI an authenticator app imports.
pub fn uri(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 Appendix B, SHA-1 key "12345678901234567890", 8 digits.
        let key = b"12345678901234567890";
        for (t, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(hotp(key, t / 30, 8), code, "t = {t}");
        }
        let secret = base32(key);
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(verify(&secret, "287082", 59));
        assert!(verify(&secret, "287082", 59 + 30), "one step late");
        assert!(!verify(&secret, "287082", 59 + 90), "too late");
        assert!(!verify(&secret, "28708", 59));
        assert!(!verify(&secret, "abcdef", 59));
    }

    #[test]
    fn secrets_round_trip() {
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(base32(&unbase32(&s).unwrap()), s);
        assert_eq!(
            unbase32("jbsw y3dp").unwrap(),
            unbase32("JBSWY3DP").unwrap()
        );
        assert!(unbase32("0189").is_none());
        assert!(
            uri("Gestore A", "mario@a.test", &s)
                .starts_with("otpauth://totp/Gestore%20A:mario@a.test?secret=")
        );
    }
}
