//! Identifiers (pec.md §5.10): the PEC msgid of a transaction and the fresh `Message-ID` of
//! each generated message. Pure: the time and the counter are passed in.

use crate::time::TimeRef;

/// Makes identifiers of the form `opec<node>.<YYYYMMDDhhmmss>.<pid>.<seq>@<service domain>`,
/// ASCII `[A-Za-z0-9.-]` before the `@` (pec.md §9, "Identifier format").
#[derive(Debug, Clone)]
pub struct IdGenerator {
    node: String,
    pid: u32,
    domain: String,
    seq: u64,
}

impl IdGenerator {
    /// A generator for one process (`pid`) on one node, for the provider's service domain.
    /// `start` lets a restarted process continue a persisted counter.
    pub fn new(node: &str, pid: u32, domain: &str, start: u64) -> Self {
        let node: String = node.chars().filter(char::is_ascii_alphanumeric).collect();
        let node = if node.is_empty() {
            "0".to_string()
        } else {
            node
        };
        IdGenerator {
            node,
            pid,
            domain: domain.to_ascii_lowercase(),
            seq: start,
        }
    }

    /// The next identifier, at time `at`.
    pub fn next_id(&mut self, at: TimeRef) -> String {
        self.seq += 1;
        format!(
            "opec{}.{}.{}.{}@{}",
            self.node,
            at.compact(),
            self.pid,
            self.seq,
            self.domain
        )
    }

    /// The counter value of the last identifier made.
    pub fn counter(&self) -> u64 {
        self.seq
    }
}

/// Checks the shape of a PEC msgid (pec.md §5.10): `[alphanumeric string]@[domain]`, where
/// real providers also use `.`, `-`, `_` and `$` on the left.
pub fn is_valid_pec_msgid(id: &str) -> bool {
    let Some((left, right)) = id.rsplit_once('@') else {
        return false;
    };
    !left.is_empty()
        && left
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_$".contains(c))
        && !right.is_empty()
        && right
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// Strips one pair of angle brackets and surrounding whitespace from a `Message-ID` value.
pub fn strip_brackets(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_well_formed_and_dated() {
        let t = TimeRef::from_unix(1733353330).expect("valid");
        let mut g = IdGenerator::new("node-1", 4242, "PEC.Example.IT", 0);
        let a = g.next_id(t);
        let b = g.next_id(t);
        assert_ne!(a, b);
        assert_eq!(a, "opecnode1.20241205000210.4242.1@pec.example.it");
        assert!(is_valid_pec_msgid(&a));
        assert!(is_valid_pec_msgid(
            "E82D9D8F.000073B6.E8F90950.8520A581.posta-certificata@postecert.it"
        ));
        assert!(is_valid_pec_msgid("20181116172041.gfTFvN@emarche.it"));
        assert!(!is_valid_pec_msgid("no at sign"));
        assert!(!is_valid_pec_msgid("a b@x.it"));
    }

    #[test]
    fn brackets() {
        assert_eq!(strip_brackets(" <a@b> "), "a@b");
        assert_eq!(strip_brackets("a@b"), "a@b");
    }
}
