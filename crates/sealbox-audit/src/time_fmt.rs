//! The two time spellings of the audit trail: ISO 8601 to the second (record and digest fields)
//! and the compact form used in file names.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const ISO: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const COMPACT: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// `2026-11-24T06:00:00Z`.
pub fn iso_seconds(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC).format(ISO).unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `20261124T060000Z`, for file names (sortable, no colons).
pub fn compact(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC).format(COMPACT).unwrap_or_else(|_| "19700101T000000Z".to_owned())
}

pub fn parse_iso(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s, ISO).ok().map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_second() {
        let t = OffsetDateTime::from_unix_timestamp(1_795_500_000).unwrap();
        assert_eq!(iso_seconds(t), "2026-11-24T06:00:00Z");
        assert_eq!(compact(t), "20261124T060000Z");
        assert_eq!(parse_iso("2026-11-24T06:00:00Z"), Some(t));
        assert_eq!(parse_iso("2026-11-24T06:00:00+01:00"), None);
    }
}
