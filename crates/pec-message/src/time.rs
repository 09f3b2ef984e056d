//! The transaction time reference (pec.md §8.5): one instant per transaction, shown in Italian
//! legal time (CET/CEST) as `dd/mm/yyyy`, `hh:mm:ss` and `+hhmm`.

use chrono::{DateTime, Offset, SubsecRound, TimeZone, Utc};
use chrono_tz::Europe::Rome;

/// One time reference, used for every message and log event of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeRef(DateTime<Utc>);

impl TimeRef {
    /// A time reference at this instant, truncated to whole seconds.
    pub fn new(utc: DateTime<Utc>) -> Self {
        TimeRef(utc.trunc_subsecs(0))
    }

    /// A time reference from seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Option<Self> {
        DateTime::from_timestamp(secs, 0).map(TimeRef)
    }

    /// The instant in UTC.
    pub fn utc(&self) -> DateTime<Utc> {
        self.0
    }

    fn local(&self) -> DateTime<chrono_tz::Tz> {
        Rome.from_utc_datetime(&self.0.naive_utc())
    }

    /// `dd/mm/yyyy` in Italian legal time (daticert `<giorno>`).
    pub fn giorno(&self) -> String {
        self.local().format("%d/%m/%Y").to_string()
    }

    /// `hh:mm:ss` in Italian legal time (daticert `<ora>`).
    pub fn ora(&self) -> String {
        self.local().format("%H:%M:%S").to_string()
    }

    /// The UTC offset as `+0100` / `+0200` (daticert `zona`, and the readable text; pec.md §0.2:
    /// no colon).
    pub fn zona(&self) -> String {
        let secs = self.local().offset().fix().local_minus_utc();
        let sign = if secs < 0 { '-' } else { '+' };
        let secs = secs.abs();
        format!("{sign}{:02}{:02}", secs / 3600, (secs % 3600) / 60)
    }

    /// RFC 5322 date in Italian legal time, e.g. `Tue, 13 Nov 2018 16:39:27 +0100`.
    pub fn rfc5322(&self) -> String {
        self.local().format("%a, %-d %b %Y %H:%M:%S %z").to_string()
    }

    /// `YYYYMMDDhhmmss` in Italian legal time, for identifiers (pec.md §5.10).
    pub fn compact(&self) -> String {
        self.local().format("%Y%m%d%H%M%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winter_and_summer_offsets() {
        // 2018-11-13T15:39:27Z is 16:39:27 in Rome (CET).
        let t = TimeRef::from_unix(1542123567).expect("valid");
        assert_eq!(
            (t.giorno().as_str(), t.ora().as_str(), t.zona().as_str()),
            ("13/11/2018", "16:39:27", "+0100")
        );
        assert_eq!(t.rfc5322(), "Tue, 13 Nov 2018 16:39:27 +0100");
        // 2025-06-03T08:11:12Z is 10:11:12 CEST.
        let t = TimeRef::from_unix(1748938272).expect("valid");
        assert_eq!((t.ora().as_str(), t.zona().as_str()), ("10:11:12", "+0200"));
        assert_eq!(t.compact(), "20250603101112");
    }
}
