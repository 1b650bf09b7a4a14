//! The generalisation rules, one function each, so the header can name them and
//! the tests can hold each one to its word.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use rhip_core::{RegionCode, Sex, Tier};

use crate::kanon::Birth;

/// The oldest age that keeps its birth year: from 90 on, a person is in the
/// age band `90+`.
pub const OLDEST_EXACT_AGE: u32 = 89;

/// Longest text kept as a code (system, code, role); longer is dropped.
const CODE_MAX_CHARS: usize = 40;

/// Age in whole years on `on` of a person born on `birth` (0 for a birth
/// after `on`).
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// The birth year, or the age band `90+` for a person aged 90 or more on
/// `reference`, or unknown without a birth date.
pub fn generalise_birth(birth: Option<NaiveDate>, reference: NaiveDate) -> Birth {
    match birth {
        None => Birth::Unknown,
        Some(date) if age_on(date, reference) > OLDEST_EXACT_AGE => Birth::Band90Plus,
        Some(date) => Birth::Year(date.year()),
    }
}

/// The municipal-level region of `region`: a county's parent (its prefecture
/// `PPCC00`, or its province when it has none, as for `110101` and `429004`);
/// municipal, provincial and national codes stay as they are.
pub fn generalise_region(region: RegionCode) -> RegionCode {
    match region.tier() {
        Tier::County => region.parent().unwrap_or(region),
        Tier::Municipal | Tier::Provincial | Tier::National => region,
    }
}

/// [`generalise_region`] of stored text: a current or retired GB/T 2260 code;
/// text that is neither generalises as `fallback` does (the export's region,
/// which the person was selected by).
pub fn generalise_region_text(text: &str, fallback: RegionCode) -> RegionCode {
    let code = RegionCode::parse(text).or_else(|_| RegionCode::parse_historical(text)).unwrap_or(fallback);
    generalise_region(code)
}

/// The GB/T 2261.1 code of a stored sex; anything else is `0` (not known).
pub fn generalise_sex(stored: &str) -> &'static str {
    Sex::from_code(stored.trim()).or_else(|_| Sex::from_hl7(stored)).unwrap_or(Sex::Unknown).code()
}

/// The month (`YYYY-MM`) of a UTC time, in China Standard Time, as the
/// hospital that recorded it saw it.
pub fn month_of(at: NaiveDateTime) -> String {
    (at + chrono::Duration::hours(8)).format("%Y-%m").to_string()
}

/// Whether `text` looks like a code rather than free text: 1 to 40
/// characters, none of them whitespace or control characters.
pub fn is_code_like(text: &str) -> bool {
    let count = text.chars().count();
    (1..=CODE_MAX_CHARS).contains(&count) && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A trimmed code, or `None` when it is not [`is_code_like`].
pub(crate) fn code(text: &str) -> Option<String> {
    let text = text.trim();
    is_code_like(text).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn region(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    #[test]
    fn ages_count_whole_years() {
        assert_eq!(age_on(date(1980, 5, 6), date(2025, 5, 5)), 44);
        assert_eq!(age_on(date(1980, 5, 6), date(2025, 5, 6)), 45);
        assert_eq!(age_on(date(2000, 2, 29), date(2001, 2, 28)), 0);
        assert_eq!(age_on(date(2030, 1, 1), date(2025, 1, 1)), 0);
    }

    #[test]
    fn birth_dates_become_years_and_the_oldest_a_band() {
        let reference = date(2025, 6, 1);
        assert_eq!(generalise_birth(Some(date(1980, 5, 6)), reference), Birth::Year(1980));
        // 89 on the reference date keeps the year; 90 does not.
        assert_eq!(generalise_birth(Some(date(1935, 6, 2)), reference), Birth::Year(1935));
        assert_eq!(generalise_birth(Some(date(1935, 6, 1)), reference), Birth::Band90Plus);
        assert_eq!(generalise_birth(Some(date(1920, 1, 1)), reference), Birth::Band90Plus);
        assert_eq!(generalise_birth(None, reference), Birth::Unknown);
    }

    #[test]
    fn regions_go_to_municipal_level() {
        assert_eq!(generalise_region(region("330106")), region("330100"));
        assert_eq!(generalise_region(region("330100")), region("330100"));
        assert_eq!(generalise_region(region("330000")), region("330000"));
        assert_eq!(generalise_region(RegionCode::NATIONAL), RegionCode::NATIONAL);
        // No prefecture: the province is the municipal-level unit above.
        assert_eq!(generalise_region(region("110101")), region("110000"));
        assert_eq!(generalise_region(region("429004")), region("420000"));
        // A retired county code generalises like a current one.
        assert_eq!(generalise_region_text("330103", region("330106")), region("330100"));
        assert_eq!(generalise_region_text("garbage", region("330106")), region("330100"));
    }

    #[test]
    fn sexes_are_gb_codes() {
        assert_eq!(generalise_sex("1"), "1");
        assert_eq!(generalise_sex("2"), "2");
        assert_eq!(generalise_sex("F"), "2");
        assert_eq!(generalise_sex("9"), "9");
        assert_eq!(generalise_sex("x"), "0");
    }

    #[test]
    fn months_are_china_time() {
        let late = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().and_hms_opt(21, 0, 0).unwrap();
        assert_eq!(month_of(late), "2024-03");
        let early = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(month_of(early), "2024-03");
    }

    #[test]
    fn only_code_like_text_is_kept() {
        assert_eq!(code(" I10 "), Some("I10".into()));
        assert_eq!(code("718-7"), Some("718-7".into()));
        assert_eq!(code("高血压"), Some("高血压".into()));
        assert_eq!(code("patient said he felt dizzy"), None);
        assert_eq!(code(""), None);
        assert_eq!(code(&"A".repeat(41)), None);
    }

    proptest! {
        #[test]
        fn generalised_regions_are_never_counties_and_contain_the_original(
            original in proptest::sample::select(RegionCode::all_current())
        ) {
            let general = generalise_region(original);
            prop_assert!(general.tier() != Tier::County);
            prop_assert!(general.contains(&original));
            prop_assert_eq!(generalise_region(general), general);
        }

        #[test]
        fn a_year_is_kept_only_below_ninety(days in 0i64..50_000, reference_days in 0i64..3_000) {
            let reference = date(2020, 1, 1) + chrono::Duration::days(reference_days);
            let birth = reference - chrono::Duration::days(days);
            match generalise_birth(Some(birth), reference) {
                Birth::Year(year) => {
                    prop_assert!(age_on(birth, reference) <= OLDEST_EXACT_AGE);
                    prop_assert_eq!(year, birth.year());
                }
                Birth::Band90Plus => prop_assert!(age_on(birth, reference) >= 90),
                Birth::Unknown => prop_assert!(false, "a date gives a year or a band"),
            }
        }
    }
}
