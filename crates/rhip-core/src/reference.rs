//! The reference tables embedded at build time, and the one small CSV reader they share.
//!
//! Every table lives in `schemas/reference/` (see the README there for sources and licences)
//! and is compiled into the binary with `include_str!`, so a node validates codes without
//! touching the file system. Each table is parsed once, lazily, by the module that owns it.
//! The embedded files are known-good (unit tests pin their row counts), so the reader is
//! lenient: a malformed row is skipped rather than turned into a panic at run time.

/// GB/T 2260 county-level-and-above division codes in force on 2024-12-31.
pub(crate) const GBT2260_DIVISIONS_2024: &str = include_str!("../../../schemas/reference/gbt2260_divisions_2024.csv");
/// Every GB/T 2260 code used from 1981 to 2024, with status and successors.
pub(crate) const GBT2260_HISTORY_1981_2024: &str =
    include_str!("../../../schemas/reference/gbt2260_history_1981_2024.csv");
/// GB/T 2261.1-2003 sex codes.
pub(crate) const GBT2261_1_SEX: &str = include_str!("../../../schemas/reference/gbt2261_1_sex.csv");
/// GB/T 2261.2-2003 marital status codes.
pub(crate) const GBT2261_2_MARITAL_STATUS: &str =
    include_str!("../../../schemas/reference/gbt2261_2_marital_status.csv");
/// GB 3304-91 ethnic group codes.
pub(crate) const GB3304_ETHNIC_GROUPS: &str = include_str!("../../../schemas/reference/gb3304_ethnic_groups.csv");
/// GB/T 4761-2008 family relationship codes.
pub(crate) const GBT4761_FAMILY_RELATIONSHIP: &str =
    include_str!("../../../schemas/reference/gbt4761_family_relationship.csv");
/// A hand-checked subset of eight WS 364 value domains.
pub(crate) const WS364_VALUE_DOMAINS_SUBSET: &str =
    include_str!("../../../schemas/reference/ws364_value_domains_subset.csv");
/// The 53 WS/T 500 shared EMR document types.
pub(crate) const WST500_DOCUMENT_TYPES: &str = include_str!("../../../schemas/reference/wst500_document_types.csv");
/// OIDs of the national health arc (2.16.156.10011) used in CDA headers.
pub(crate) const CHINA_HEALTH_OIDS: &str = include_str!("../../../schemas/reference/china_health_oids.csv");

/// Parses an embedded CSV (header row, RFC 4180 quoting) into rows of owned fields.
///
/// Rows that cannot be read are skipped: the data is compiled in and checked by tests.
pub(crate) fn rows(text: &'static str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .filter_map(Result::ok)
        .map(|record| record.iter().map(str::to_owned).collect())
        .collect()
}

/// Returns field `index` of a row, or `""` when the row is short.
pub(crate) fn field(row: &[String], index: usize) -> &str {
    row.get(index).map_or("", String::as_str)
}

/// Returns field `index` of a row, or `None` when it is missing or empty.
pub(crate) fn optional_field(row: &[String], index: usize) -> Option<String> {
    let value = field(row, index);
    (!value.is_empty()).then(|| value.to_owned())
}

/// Gives a string from an embedded table a `'static` lifetime.
///
/// Only called while building a table inside a `LazyLock`, so each string is leaked once
/// and lives exactly as long as the table would have lived anyway (the whole process).
/// This lets public types such as [`crate::DomainEntry`] hand out `&'static str` codes.
pub(crate) fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_documented_row_count() {
        assert_eq!(rows(GBT2260_DIVISIONS_2024).len(), 3213);
        assert_eq!(rows(GBT2260_HISTORY_1981_2024).len(), 6823);
        assert_eq!(rows(GBT2261_1_SEX).len(), 4);
        assert_eq!(rows(GBT2261_2_MARITAL_STATUS).len(), 8);
        assert_eq!(rows(GB3304_ETHNIC_GROUPS).len(), 56);
        assert_eq!(rows(GBT4761_FAMILY_RELATIONSHIP).len(), 84);
        assert_eq!(rows(WS364_VALUE_DOMAINS_SUBSET).len(), 58);
        assert_eq!(rows(WST500_DOCUMENT_TYPES).len(), 53);
        assert_eq!(rows(CHINA_HEALTH_OIDS).len(), 18);
    }

    #[test]
    fn quoted_fields_keep_their_commas() {
        let c0001 = &rows(WST500_DOCUMENT_TYPES)[0];
        assert_eq!(c0001.len(), 5);
        assert!(field(c0001, 4).contains("48765-2 Allergies, adverse reactions, alerts"));
    }

    #[test]
    fn missing_fields_read_as_empty() {
        let row = vec!["a".to_owned(), String::new()];
        assert_eq!(field(&row, 0), "a");
        assert_eq!(field(&row, 5), "");
        assert_eq!(optional_field(&row, 1), None);
        assert_eq!(optional_field(&row, 0), Some("a".to_owned()));
    }
}
