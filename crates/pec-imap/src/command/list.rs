//! LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with SPECIAL-USE attributes (RFC 6154 §2) and
//! CHILDREN attributes (RFC 3348). `*` matches any run of characters, `%` any run without
//! the hierarchy separator `/`.

use super::{folder_name, mailbox, store_error};
use crate::reply::ok;
use crate::session::Session;
use imap_types::core::{QuotedChar, Tag};
use imap_types::flag::FlagNameAttribute;
use imap_types::mailbox::{ListMailbox, Mailbox};
use imap_types::response::{Data, Status};
use pec_store::{STANDARD_FOLDERS, Store};

/// Whether `name` matches the LIST pattern `pat`, in time proportional to the product of
/// their lengths whatever the wildcards (a backtracking match is exponential in the number
/// of `*`: `*a*a*a…b` against a long name would hold a worker for ever).
pub(crate) fn matches(pat: &[u8], name: &[u8]) -> bool {
    // at[j]: the pattern read so far matches name[..j].
    let mut at = vec![false; name.len() + 1];
    at[0] = true;
    for &p in pat {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                // A run of any length from a matched position, `%` stopping at `/`.
                let mut open = false;
                for j in 0..=name.len() {
                    if at[j] {
                        open = true;
                    }
                    next[j] = open;
                    if p == b'%' && name.get(j) == Some(&b'/') {
                        open = false;
                    }
                }
            }
            c => {
                for j in 0..name.len() {
                    next[j + 1] = at[j] && name[j] == c;
                }
            }
        }
        at = next;
        if !at.contains(&true) {
            return false;
        }
    }
    at[name.len()]
}

fn attribute(name: &'static str) -> Option<FlagNameAttribute<'static>> {
    imap_types::core::Atom::try_from(name)
        .ok()
        .map(FlagNameAttribute::from)
}

pub(crate) async fn run<S: Store>(
    s: &mut Session<'_, S>,
    tag: &Tag<'static>,
    reference: &Mailbox<'static>,
    pattern: &ListMailbox<'static>,
    lsub: bool,
) -> Status<'static> {
    let command = if lsub { "LSUB" } else { "LIST" };
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        other => folder_name(other),
    };
    let pattern = match pattern {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    };
    let delimiter = QuotedChar::try_from('/').ok();
    if pattern.is_empty() && !lsub {
        // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root.
        if let Ok(root) = Mailbox::try_from("") {
            s.data(Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter,
                mailbox: root,
            });
        }
        return ok(tag, None, format!("{command} completed"));
    }
    let full = format!("{reference}{pattern}");
    let folders = match s.g.store.folders(&s.address()).await {
        Ok(f) => f,
        Err(e) => return store_error(tag, command, e),
    };
    let names: Vec<&str> = folders.iter().map(|f| f.name.as_str()).collect();
    // Parents that exist only through their subfolders (their folder was deleted, RFC 3501
    // §6.3.4) are listed as \Noselect (RFC 3501 §6.3.8); LSUB lists subscribed folders only.
    let mut implied: Vec<&str> = Vec::new();
    if !lsub {
        for n in &names {
            let mut name = *n;
            while let Some((parent, _)) = name.rsplit_once('/') {
                if !names.contains(&parent) && !implied.contains(&parent) {
                    implied.push(parent);
                }
                name = parent;
            }
        }
    }
    let listed = folders
        .iter()
        .filter(|f| !lsub || f.subscribed)
        .map(|f| (f.name.as_str(), true))
        .chain(implied.iter().map(|n| (*n, false)));
    for (name, selectable) in listed {
        let hit = if name == "INBOX" {
            matches(full.to_ascii_uppercase().as_bytes(), b"INBOX")
        } else {
            matches(full.as_bytes(), name.as_bytes())
        };
        if !hit {
            continue;
        }
        let mut items = Vec::new();
        if !selectable {
            items.push(FlagNameAttribute::Noselect);
        }
        if !lsub {
            // CHILDREN (RFC 3348) applies to LIST.
            let prefix = format!("{name}/");
            let children = names.iter().any(|n| n.starts_with(&prefix));
            items.extend(attribute(if children {
                "HasChildren"
            } else {
                "HasNoChildren"
            }));
        }
        if let Some((_, Some(special))) = STANDARD_FOLDERS.iter().find(|(n, _)| *n == name) {
            items.extend(attribute(&special[1..]));
        }
        let data = if lsub {
            Data::Lsub {
                items,
                delimiter,
                mailbox: mailbox(name),
            }
        } else {
            Data::List {
                items,
                delimiter,
                mailbox: mailbox(name),
            }
        };
        s.data(data);
    }
    ok(tag, None, format!("{command} completed"))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards_follow_rfc_3501() {
        assert!(matches(b"*", b"Clienti/Rossi"));
        assert!(!matches(b"%", b"Clienti/Rossi"));
        assert!(matches(b"%", b"Clienti"));
        assert!(matches(b"Clienti/%", b"Clienti/Rossi"));
        assert!(matches(b"C*i", b"Clienti/Rossi/Mari"));
        assert!(!matches(b"Sent", b"Sent2"));
        assert!(matches(b"%/%", b"Clienti/Rossi"));
        assert!(!matches(b"%", b"a/"));
        assert!(matches(b"*", b""));
        assert!(matches(b"a%", b"a"));
        // Many wildcards against a long name answer at once.
        let name = vec![b'a'; 255];
        let pat = [b"*a".repeat(30), b"*b".to_vec()].concat();
        assert!(!matches(&pat, &name));
    }
}
