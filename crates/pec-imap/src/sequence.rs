//! Message sets (RFC 3501 §9 `sequence-set`) resolved against the selected folder: sequence
//! numbers or UIDs, `*` as the last one, ranges in either order, without expanding a range
//! into every number it spans (`1:4294967295` costs what the folder holds).

use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// Indices (0-based, ascending, without repeats) of the messages `set` names, given the
/// folder's UIDs in ascending order. For sequence numbers, numbers past the end name nothing.
/// Each element becomes an interval of indices and the intervals are merged before any index
/// is listed, so a set repeating `1:*` a million times costs its length, not a million times
/// the folder.
pub(crate) fn resolve(set: &SequenceSet, uids: &[u32], by_uid: bool) -> Vec<usize> {
    if uids.is_empty() {
        return Vec::new();
    }
    let last = if by_uid {
        uids[uids.len() - 1]
    } else {
        uids.len() as u32
    };
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => last,
    };
    // Half-open intervals of indices.
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(set.0.as_ref().len());
    for seq in set.0.as_ref() {
        let (a, b) = match seq {
            Sequence::Single(s) => (value(s), value(s)),
            Sequence::Range(x, y) => {
                let (x, y) = (value(x), value(y));
                (x.min(y), x.max(y))
            }
        };
        let span = if by_uid {
            (
                uids.partition_point(|&u| u < a),
                uids.partition_point(|&u| u <= b),
            )
        } else {
            ((a as usize).max(1) - 1, (b as usize).min(uids.len()))
        };
        if span.0 < span.1 {
            spans.push(span);
        }
    }
    spans.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0;
    for (start, end) in spans {
        let start = start.max(next);
        if start < end {
            out.extend(start..end);
            next = end;
        }
    }
    out
}

/// Whether a sequence-number set names a message past the end (RFC 3501 §9: "a sequence
/// number greater than the number of messages is invalid"), which is a BAD.
pub(crate) fn out_of_range(set: &SequenceSet, count: usize) -> bool {
    set.0.as_ref().iter().any(|s| {
        let over = |v: &SeqOrUid| matches!(v, SeqOrUid::Value(n) if n.get() as usize > count);
        match s {
            Sequence::Single(v) => over(v),
            Sequence::Range(x, y) => over(x) && over(y),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).expect("valid set")
    }

    #[test]
    fn uid_sets_name_what_exists() {
        let uids = [2, 5, 9, 12];
        assert_eq!(resolve(&set("1:*"), &uids, true), vec![0, 1, 2, 3]);
        assert_eq!(resolve(&set("5:9"), &uids, true), vec![1, 2]);
        assert_eq!(resolve(&set("*:10"), &uids, true), vec![3]);
        assert_eq!(
            resolve(&set("13:*"), &uids, true),
            vec![3],
            "n:* names the last"
        );
        assert_eq!(resolve(&set("3,4,100"), &uids, true), Vec::<usize>::new());
        assert_eq!(resolve(&set("1:4294967295"), &uids, true).len(), 4);
        // Overlapping and repeated elements, in any order, name each message once.
        assert_eq!(resolve(&set("9,2:5,1:*,5"), &uids, true), vec![0, 1, 2, 3]);
        let many = vec!["1:*"; 100_000].join(",");
        assert_eq!(resolve(&set(&many), &uids, true), vec![0, 1, 2, 3]);
        assert_eq!(resolve(&set("4,2,3:3"), &uids, false), vec![1, 2, 3]);
    }

    #[test]
    fn sequence_sets_count_from_one() {
        let uids = [2, 5, 9];
        assert_eq!(resolve(&set("1"), &uids, false), vec![0]);
        assert_eq!(resolve(&set("2:*"), &uids, false), vec![1, 2]);
        assert_eq!(resolve(&set("3,1,1"), &uids, false), vec![0, 2]);
        assert!(out_of_range(&set("4"), 3));
        assert!(!out_of_range(&set("3:*"), 3));
    }
}
