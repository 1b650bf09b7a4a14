//! Checks shared by query parameters of several routes; each problem is
//! collected with the parameter's name so one answer names them all.

use rhip_api_types::FieldProblem;

/// An optional RFC 3339 time, as UTC.
pub fn time(field: &str, value: &Option<String>, errors: &mut Vec<FieldProblem>) -> Option<chrono::NaiveDateTime> {
    let value = value.as_ref()?;
    match chrono::DateTime::parse_from_rfc3339(value) {
        Ok(time) => Some(time.naive_utc()),
        Err(_) => {
            errors.push(FieldProblem { field: field.into(), message: format!("{value:?} is not an RFC 3339 time") });
            None
        }
    }
}

/// A page size within `1..=max`, `default` when absent.
pub fn limit(value: Option<i64>, default: i64, max: i64, errors: &mut Vec<FieldProblem>) -> i64 {
    let limit = value.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        errors.push(FieldProblem { field: "limit".into(), message: format!("{limit} is outside 1 to {max}") });
    }
    limit
}
