//! HL7 v3 point-in-time values (`TS`, `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+|-ZZzz]`) of any
//! precision, because CDA senders write anything from a year to a fraction of a second and
//! RHIP must keep what was said: the precision and the timezone offset, if one was given.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

/// How much of a timestamp the sender gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
    /// `YYYYMMDDHHMMSS`
    Second,
    /// `YYYYMMDDHHMMSS.S…`
    Fraction,
}

/// A parsed HL7 `TS`: the local date and time (missing parts are the earliest value: month
/// and day 1, time 00:00), how precise it was and the offset from UTC if one was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timestamp {
    /// The date and time as written (local to the sender).
    pub local: NaiveDateTime,
    /// The precision the sender gave.
    pub precision: Precision,
    /// Offset from UTC in seconds, when the value carried one (`+0800` → 28800).
    pub offset_seconds: Option<i32>,
}

impl Timestamp {
    /// Parses an HL7 `TS` value; the error says what was wrong, for a [`crate::Problem`].
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        let (main, offset_seconds) = split_offset(text)?;
        let (digits, fraction) = match main.split_once('.') {
            Some((digits, fraction)) => (digits, Some(fraction)),
            None => (main, None),
        };
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(format!("'{text}' is not an HL7 TS (YYYYMMDDHHMMSS[.S][+ZZZZ])"));
        }
        let precision = match (digits.len(), fraction) {
            (4, None) => Precision::Year,
            (6, None) => Precision::Month,
            (8, None) => Precision::Day,
            (10, None) => Precision::Hour,
            (12, None) => Precision::Minute,
            (14, None) => Precision::Second,
            (14, Some(fraction)) if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) => {
                Precision::Fraction
            }
            _ => return Err(format!("'{text}' is not an HL7 TS (YYYYMMDDHHMMSS[.S][+ZZZZ])")),
        };
        let number = |from: usize, to: usize, default: u32| -> u32 {
            digits.get(from..to).and_then(|part| part.parse().ok()).unwrap_or(default)
        };
        let year = i32::try_from(number(0, 4, 0)).unwrap_or(0);
        let date = NaiveDate::from_ymd_opt(year, number(4, 6, 1), number(6, 8, 1))
            .ok_or_else(|| format!("'{text}' is not a real calendar date"))?;
        let nanos = fraction.map_or(0, |fraction| {
            let padded: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
            padded.parse().unwrap_or(0)
        });
        let time = NaiveTime::from_hms_nano_opt(number(8, 10, 0), number(10, 12, 0), number(12, 14, 0), nanos)
            .ok_or_else(|| format!("'{text}' is not a real time of day"))?;
        Ok(Timestamp { local: date.and_time(time), precision, offset_seconds })
    }

    /// The calendar date (as written, in the sender's local time).
    pub fn date(&self) -> NaiveDate {
        self.local.date()
    }

    /// The instant, when the value carried an offset.
    pub fn with_offset(&self) -> Option<DateTime<FixedOffset>> {
        let offset = FixedOffset::east_opt(self.offset_seconds?)?;
        self.local.and_local_timezone(offset).single()
    }

    /// Writes the value back as an HL7 `TS` at its own precision (fractions as milliseconds).
    pub fn to_hl7(&self) -> String {
        let format = match self.precision {
            Precision::Year => "%Y",
            Precision::Month => "%Y%m",
            Precision::Day => "%Y%m%d",
            Precision::Hour => "%Y%m%d%H",
            Precision::Minute => "%Y%m%d%H%M",
            Precision::Second => "%Y%m%d%H%M%S",
            Precision::Fraction => "%Y%m%d%H%M%S%.3f",
        };
        let mut text = self.local.format(format).to_string();
        if let Some(seconds) = self.offset_seconds {
            let sign = if seconds < 0 { '-' } else { '+' };
            let minutes = seconds.unsigned_abs() / 60;
            text.push_str(&format!("{sign}{:02}{:02}", minutes / 60, minutes % 60));
        }
        text
    }

    /// A day-precision timestamp without offset, e.g. for a birth date.
    pub fn from_date(date: NaiveDate) -> Timestamp {
        Timestamp { local: date.and_time(NaiveTime::MIN), precision: Precision::Day, offset_seconds: None }
    }

    /// A second-precision timestamp with an offset, e.g. for a document's effective time.
    pub fn from_datetime(instant: DateTime<FixedOffset>) -> Timestamp {
        Timestamp {
            local: instant.naive_local(),
            precision: Precision::Second,
            offset_seconds: Some(instant.offset().local_minus_utc()),
        }
    }
}

/// Splits `+ZZzz` / `-ZZzz` (or `+ZZ`) off the end of a TS.
fn split_offset(text: &str) -> Result<(&str, Option<i32>), String> {
    let Some(position) = text.rfind(['+', '-']) else {
        return Ok((text, None));
    };
    let (main, offset) = text.split_at(position);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = &offset[1..];
    let valid = (digits.len() == 4 || digits.len() == 2) && digits.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(format!("'{text}' has a malformed timezone offset (expected +ZZzz)"));
    }
    let hours: i32 = digits[0..2].parse().unwrap_or(0);
    let minutes: i32 = digits.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
    if hours > 14 || minutes > 59 {
        return Err(format!("'{text}' has a timezone offset out of range"));
    }
    Ok((main, Some(sign * (hours * 3600 + minutes * 60))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_precision_parses_and_round_trips() {
        for text in
            ["2024", "202403", "20240315", "2024031508", "202403150830", "20240315083005", "20240315083005+0800"]
        {
            let parsed = Timestamp::parse(text).unwrap();
            assert_eq!(parsed.to_hl7(), text);
        }
        let fraction = Timestamp::parse("20240315083005.123-0500").unwrap();
        assert_eq!(fraction.precision, Precision::Fraction);
        assert_eq!(fraction.offset_seconds, Some(-5 * 3600));
        assert_eq!(fraction.with_offset().unwrap().to_rfc3339(), "2024-03-15T08:30:05.123-05:00");
    }

    #[test]
    fn bad_values_say_why() {
        for text in ["", "2024-03-15", "20240230", "2024031525", "20240315+08", "20240315+0899", "abc", "20240315."] {
            if text == "20240315+08" {
                assert!(Timestamp::parse(text).is_ok());
                continue;
            }
            assert!(Timestamp::parse(text).is_err(), "{text}");
        }
    }
}
