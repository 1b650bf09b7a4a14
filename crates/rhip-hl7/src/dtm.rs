//! HL7 date/time values (DTM, and the first component of TS):
//! `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`.
//!
//! The platform keeps times in UTC. A value with an offset is converted with it; a value
//! without one was written on a Chinese hospital's clock, so China Standard Time (+08:00)
//! is assumed. Dates of birth are calendar dates and are never shifted.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// China Standard Time, in minutes east of UTC, assumed when a value has no offset.
pub const DEFAULT_OFFSET_MINUTES: i32 = 8 * 60;

/// How much of a DTM was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    /// `YYYY`
    Year,
    /// `YYYYMM`
    Month,
    /// `YYYYMMDD`
    Day,
    /// `YYYYMMDDHH`
    Hour,
    /// `YYYYMMDDHHMM`
    Minute,
    /// `YYYYMMDDHHMMSS[.S+]`
    Second,
}

/// A parsed DTM: the wall-clock time as written, its offset if any, and its precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtm {
    /// The time as written (missing parts filled with the first month/day, midnight).
    pub local: NaiveDateTime,
    /// The offset written in the value, in minutes east of UTC.
    pub offset_minutes: Option<i32>,
    /// How much was given.
    pub precision: Precision,
}

impl Dtm {
    /// The instant in UTC (offset applied, or +08:00 when none was written).
    pub fn utc(&self) -> NaiveDateTime {
        let offset = self.offset_minutes.unwrap_or(DEFAULT_OFFSET_MINUTES);
        self.local.checked_sub_signed(Duration::minutes(i64::from(offset))).unwrap_or(self.local)
    }

    /// The calendar date as written, when the value is precise to the day at least.
    pub fn date(&self) -> Option<NaiveDate> {
        (self.precision >= Precision::Day).then(|| self.local.date())
    }
}

/// Parses a DTM. The error says what is wrong, for the problem message.
pub fn parse(text: &str) -> Result<Dtm, String> {
    let text = text.trim();
    let bad = |why: &str| format!("{text:?} is not an HL7 date/time YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]: {why}");
    let (body, offset) = match text.find(['+', '-']) {
        Some(index) => (text.get(..index).unwrap_or_default(), Some(text.get(index..).unwrap_or_default())),
        None => (text, None),
    };
    let (digits, fraction) = match body.split_once('.') {
        Some((digits, fraction)) => (digits, Some(fraction)),
        None => (body, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("non-digit characters"));
    }
    let precision = match digits.len() {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 => Precision::Second,
        _ => return Err(bad("wrong number of digits")),
    };
    let number = |from: usize, to: usize, default: u32| -> u32 {
        digits.get(from..to).and_then(|part| part.parse().ok()).unwrap_or(default)
    };
    let year = i32::try_from(number(0, 4, 0)).unwrap_or(0);
    let date = NaiveDate::from_ymd_opt(year, number(4, 6, 1), number(6, 8, 1)).ok_or_else(|| bad("no such date"))?;
    let mut nanos = 0;
    if let Some(fraction) = fraction {
        if precision != Precision::Second {
            return Err(bad("fractional seconds need all 14 digits before them"));
        }
        if fraction.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("fractional seconds must be 1 to 9 digits"));
        }
        let scale = 10u32.pow(9 - u32::try_from(fraction.len()).unwrap_or(9));
        nanos = fraction.parse::<u32>().unwrap_or(0).saturating_mul(scale);
    }
    let time = NaiveTime::from_hms_nano_opt(number(8, 10, 0), number(10, 12, 0), number(12, 14, 0), nanos)
        .ok_or_else(|| bad("no such time of day"))?;
    let offset_minutes = match offset {
        None => None,
        Some(offset) => Some(parse_offset(offset).ok_or_else(|| bad("the offset must be +HHMM or -HHMM"))?),
    };
    Ok(Dtm { local: date.and_time(time), offset_minutes, precision })
}

/// Parses `+HHMM` / `-HHMM` (at most 14 hours) into minutes east of UTC.
fn parse_offset(offset: &str) -> Option<i32> {
    let (sign, digits) = match offset.split_at_checked(1)? {
        ("+", digits) => (1, digits),
        ("-", digits) => (-1, digits),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = digits.get(2..)?.parse().ok()?;
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).and_then(|date| date.and_hms_opt(h, mi, s)).unwrap_or_default()
    }

    #[test]
    fn valid_values() {
        let cases = [
            ("20250301083000", at(2025, 3, 1, 0, 30, 0), Precision::Second),
            ("20250301083000+0800", at(2025, 3, 1, 0, 30, 0), Precision::Second),
            ("20200214115158.678-0600", at(2020, 2, 14, 17, 51, 58), Precision::Second),
            ("202503010830", at(2025, 3, 1, 0, 30, 0), Precision::Minute),
            ("2025030108", at(2025, 3, 1, 0, 0, 0), Precision::Hour),
            ("20250301", at(2025, 2, 28, 16, 0, 0), Precision::Day),
            ("202503", at(2025, 2, 28, 16, 0, 0), Precision::Month),
            ("2025", at(2024, 12, 31, 16, 0, 0), Precision::Year),
            ("20250301000000+0000", at(2025, 3, 1, 0, 0, 0), Precision::Second),
        ];
        for (text, utc, precision) in cases {
            let Ok(dtm) = parse(text) else { panic!("{text} should parse") };
            assert_eq!(dtm.utc().with_nanosecond_zero(), utc, "{text}");
            assert_eq!(dtm.precision, precision, "{text}");
        }
        let Ok(birth) = parse("19880121190000-0500") else { panic!("birth") };
        assert_eq!(birth.date(), NaiveDate::from_ymd_opt(1988, 1, 21));
        assert_eq!(parse("1983").ok().and_then(|d| d.date()), None);
    }

    trait ZeroNanos {
        fn with_nanosecond_zero(self) -> NaiveDateTime;
    }
    impl ZeroNanos for NaiveDateTime {
        fn with_nanosecond_zero(self) -> NaiveDateTime {
            use chrono::Timelike;
            self.with_nanosecond(0).unwrap_or(self)
        }
    }

    #[test]
    fn invalid_values() {
        for text in [
            "",
            "2025-03-01",
            "20250230",
            "2025130",
            "20251301",
            "20250301250000",
            "20250301086000",
            "2025030108300",
            "20250301.5",
            "20250301083000.",
            "20250301083000+08",
            "20250301083000+2500",
            "20250301083000+08a0",
            "20250301+",
            "abc",
            "２０２５",
        ] {
            assert!(parse(text).is_err(), "{text:?} should fail");
        }
    }
}
