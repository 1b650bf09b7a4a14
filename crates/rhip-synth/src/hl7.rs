//! Writing HL7 v2.5 messages as hospital systems send them to a county node:
//! UTF-8 (`MSH-18 UNICODE UTF-8`), `\r` after every segment, the facility
//! code in MSH-4, China Standard Time without an offset, citizen ID as a
//! PID-3 repetition of type `NNCHN`.
//!
//! Fields are placed by number ([`Segment::set`]) rather than by counting
//! bars in a format string, and free text is escaped, so a generated message
//! says what its builder meant.

use chrono::NaiveDateTime;

/// An HL7 timestamp to the second (`YYYYMMDDHHMMSS`).
pub(crate) fn ts(at: NaiveDateTime) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

/// Escapes the delimiters `|^~\&` in a text value (HL7 v2 §2.7).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\E\\"),
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            '\r' | '\n' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

/// Components joined with `^`, each already escaped or built of safe parts.
pub(crate) fn components(parts: &[&str]) -> String {
    let mut joined = parts.join("^");
    while joined.ends_with('^') {
        joined.pop();
    }
    joined
}

/// A segment under construction: fields by their 1-based number.
#[derive(Clone, Debug, Default)]
pub(crate) struct Segment {
    name: &'static str,
    fields: Vec<String>,
}

impl Segment {
    /// An empty segment `name`.
    pub(crate) fn new(name: &'static str) -> Segment {
        Segment { name, fields: Vec::new() }
    }

    /// Sets field `number` (1-based) to `value`, written as given (escape
    /// text before).
    pub(crate) fn set(mut self, number: usize, value: impl Into<String>) -> Segment {
        if number == 0 {
            return self;
        }
        if self.fields.len() < number {
            self.fields.resize(number, String::new());
        }
        if let Some(field) = self.fields.get_mut(number - 1) {
            *field = value.into();
        }
        self
    }

    /// The segment with its `\r`.
    pub(crate) fn render(&self) -> String {
        let mut line = String::from(self.name);
        for field in &self.fields {
            line.push('|');
            line.push_str(field);
        }
        line.push('\r');
        line
    }
}

/// The MSH segment: sending application `HIS`, facility, receiving `RHIP` at
/// the county, message time, type (`ADT^A04^ADT_A01`), control id.
pub(crate) fn msh(facility: &str, county: &str, at: NaiveDateTime, message_type: &str, control_id: &str) -> String {
    format!(
        "MSH|^~\\&|HIS|{facility}|RHIP|{county}|{}||{message_type}|{control_id}|P|2.5|||AL|NE||UNICODE UTF-8\r",
        ts(at)
    )
}

/// An EVN segment.
pub(crate) fn evn(trigger: &str, at: NaiveDateTime) -> String {
    Segment::new("EVN").set(1, trigger).set(2, ts(at)).render()
}

/// What PID carries about a patient.
#[derive(Clone, Debug)]
pub(crate) struct PidInput<'a> {
    /// The hospital's record number and its assigning facility.
    pub(crate) mrn: Option<(&'a str, &'a str)>,
    /// The citizen ID as sent (possibly deliberately wrong).
    pub(crate) citizen_id: Option<&'a str>,
    pub(crate) family_name: &'a str,
    pub(crate) given_name: &'a str,
    /// `YYYYMMDD`.
    pub(crate) birth_date: String,
    /// `M` or `F`.
    pub(crate) sex: &'a str,
    /// Street line, province name and county code of the home address.
    pub(crate) address: Option<(&'a str, &'a str, &'a str)>,
    pub(crate) phone: Option<&'a str>,
    /// GB/T 2261.2 code.
    pub(crate) marital_status: Option<&'a str>,
    /// GB 3304 code and name.
    pub(crate) ethnicity: Option<(&'a str, &'a str)>,
}

/// The PID segment.
pub(crate) fn pid(input: &PidInput<'_>) -> String {
    let mut identifiers = Vec::new();
    if let Some((mrn, facility)) = input.mrn {
        identifiers.push(format!("{}^^^{facility}^MR", escape(mrn)));
    }
    if let Some(citizen_id) = input.citizen_id {
        identifiers.push(format!("{}^^^CHN^NNCHN", escape(citizen_id)));
    }
    let mut segment = Segment::new("PID")
        .set(1, "1")
        .set(3, identifiers.join("~"))
        .set(5, components(&[&escape(input.family_name), &escape(input.given_name)]))
        .set(7, input.birth_date.clone())
        .set(8, input.sex);
    if let Some((line, province, county)) = input.address {
        segment = segment.set(11, components(&[&escape(line), "", "", &escape(province), "", "CHN", "H", "", county]));
    }
    if let Some(phone) = input.phone {
        segment = segment.set(13, escape(phone));
    }
    if let Some(status) = input.marital_status {
        segment = segment.set(16, status);
    }
    if let Some((code, name)) = input.ethnicity {
        segment = segment.set(22, components(&[code, &escape(name), "GB3304"]));
    }
    segment.render()
}

/// An NK1 segment: a contact with a GB/T 4761 relationship code.
pub(crate) fn nk1(family: &str, given: &str, relation: (&str, &str), phone: &str) -> String {
    Segment::new("NK1")
        .set(1, "1")
        .set(2, components(&[&escape(family), &escape(given)]))
        .set(3, components(&[relation.0, &escape(relation.1), "GB/T 4761"]))
        .set(5, escape(phone))
        .render()
}

/// What PV1 carries about a visit.
#[derive(Clone, Debug)]
pub(crate) struct Pv1Input<'a> {
    /// `O` outpatient, `I` inpatient, `E` emergency.
    pub(crate) class: &'a str,
    /// Point of care, room, bed.
    pub(crate) location: (&'a str, &'a str, &'a str),
    /// The prior location of a transfer.
    pub(crate) prior_location: Option<(&'a str, &'a str, &'a str)>,
    /// Attending doctor: id, family name, given name.
    pub(crate) doctor: (&'a str, &'a str, &'a str),
    /// Department name (PV1-10).
    pub(crate) department: &'a str,
    pub(crate) visit_number: &'a str,
    pub(crate) admitted_at: Option<NaiveDateTime>,
    pub(crate) discharged_at: Option<NaiveDateTime>,
}

/// The PV1 segment.
pub(crate) fn pv1(input: &Pv1Input<'_>) -> String {
    let place = |(point, room, bed): (&str, &str, &str)| components(&[&escape(point), &escape(room), &escape(bed)]);
    let mut segment = Segment::new("PV1")
        .set(1, "1")
        .set(2, input.class)
        .set(3, place(input.location))
        .set(7, components(&[input.doctor.0, &escape(input.doctor.1), &escape(input.doctor.2)]))
        .set(10, escape(input.department))
        .set(19, escape(input.visit_number));
    if let Some(prior) = input.prior_location {
        segment = segment.set(6, place(prior));
    }
    if let Some(at) = input.admitted_at {
        segment = segment.set(44, ts(at));
    }
    if let Some(at) = input.discharged_at {
        segment = segment.set(45, ts(at));
    }
    segment.render()
}

/// A DG1 segment (ICD-10, type `A` admitting, `W` working or `F` final).
pub(crate) fn dg1(set_id: usize, code: &str, name: &str, at: NaiveDateTime, kind: &str) -> String {
    Segment::new("DG1")
        .set(1, set_id.to_string())
        .set(3, components(&[&escape(code), &escape(name), "ICD10"]))
        .set(5, ts(at))
        .set(6, kind)
        .render()
}

/// An OBR segment: placer and filler numbers, the order code, observation
/// and report times, final status.
pub(crate) fn obr(
    set_id: usize,
    placer: &str,
    filler: &str,
    code: (&str, &str),
    observed_at: NaiveDateTime,
    reported_at: NaiveDateTime,
) -> String {
    Segment::new("OBR")
        .set(1, set_id.to_string())
        .set(2, escape(placer))
        .set(3, escape(filler))
        .set(4, components(&[code.0, &escape(code.1), "LN"]))
        .set(7, ts(observed_at))
        .set(22, ts(reported_at))
        .set(25, "F")
        .render()
}

/// An OBX segment with a numeric value.
pub(crate) fn obx(
    set_id: usize,
    code: (&str, &str),
    value: &str,
    unit: &str,
    range: &str,
    flag: &str,
    at: NaiveDateTime,
) -> String {
    Segment::new("OBX")
        .set(1, set_id.to_string())
        .set(2, "NM")
        .set(3, components(&[code.0, &escape(code.1), "LN"]))
        .set(5, escape(value))
        .set(6, escape(unit))
        .set(7, escape(range))
        .set(8, flag)
        .set(11, "F")
        .set(14, ts(at))
        .render()
}

/// An RXA segment: one dose given, completed.
pub(crate) fn rxa(vaccine: (&str, &str), at: NaiveDateTime, dose_ml: &str, lot: &str) -> String {
    Segment::new("RXA")
        .set(1, "0")
        .set(2, "1")
        .set(3, ts(at))
        .set(4, ts(at))
        .set(5, components(&[vaccine.0, &escape(vaccine.1), "CVX"]))
        .set(6, dose_ml)
        .set(7, "mL")
        .set(15, escape(lot))
        .set(17, components(&["SYN", "合成生物制品有限公司", "MVX"]))
        .set(20, "CP")
        .set(21, "A")
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_place_fields_by_number() {
        let line = Segment::new("PV1").set(1, "1").set(3, "A").set(19, "V1").render();
        assert_eq!(line, "PV1|1||A||||||||||||||||V1\r");
        assert_eq!(Segment::new("ZZZ").set(0, "x").render(), "ZZZ\r");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a|b^c~d\\e&f"), "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f");
        assert_eq!(components(&["a", "", ""]), "a");
    }
}
