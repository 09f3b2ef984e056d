//! The readable text of generated messages (pec.md §2.1): ISO-8859-1, `text/plain` and a
//! `text/html` alternative carrying the same information, with no references and no active
//! content.

use crate::TimeRef;
use crate::mime::{qp_encode, to_latin1};

/// A title and its lines.
pub(super) struct Text {
    pub title: String,
    pub lines: Vec<String>,
}

impl Text {
    pub fn new(title: &str) -> Self {
        Text {
            title: title.to_string(),
            lines: Vec::new(),
        }
    }

    pub fn line(mut self, l: impl Into<String>) -> Self {
        self.lines.push(l.into());
        self
    }

    /// The two opening lines most notices share: when, and which message from whom
    /// ("Il giorno ... nel messaggio" / "\"<subject>\" proveniente da \"<sender>\"").
    pub fn about_message(self, time: TimeRef, tx: &super::Transaction) -> Self {
        self.line(format!("{} nel messaggio", when(time)))
            .line(format!(
                "\"{}\" proveniente da \"{}\"",
                subject(&tx.subject),
                tx.sender
            ))
    }

    pub fn lines(mut self, ls: impl IntoIterator<Item = String>) -> Self {
        self.lines.extend(ls);
        self
    }

    /// `text/plain` body, quoted-printable ISO-8859-1.
    pub fn plain(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256);
        s.push_str(&self.title);
        s.push('\n');
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        qp_encode(&to_latin1(&s))
    }

    /// `text/html` body, quoted-printable ISO-8859-1, self-contained.
    pub fn html(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512);
        s.push_str("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"><title>");
        s.push_str(&escape(&self.title));
        s.push_str("</title></head>\n<body>\n<h3>");
        s.push_str(&escape(&self.title));
        s.push_str("</h3>\n<p>\n");
        for l in &self.lines {
            s.push_str(&escape(l));
            s.push_str("<br>\n");
        }
        s.push_str("</p>\n</body></html>\n");
        qp_encode(&to_latin1(&s))
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `Il giorno DD/MM/YYYY alle ore HH:MM:SS (+hhmm)` (pec.md Appendix A).
pub(super) fn when(t: TimeRef) -> String {
    format!(
        "Il giorno {} alle ore {} ({})",
        t.giorno(),
        t.ora(),
        t.zona()
    )
}

/// The subject as quoted in the texts.
pub(super) fn subject(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}
