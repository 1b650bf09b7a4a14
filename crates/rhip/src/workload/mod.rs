//! Synthetic workloads shared by `rhip bench` and the criterion benches
//! (`cargo bench -p rhip`): the same messages, documents and federation
//! links, so an in-process figure and an end-to-end one measure the same
//! input. Everything is made up (names from a short list, generated
//! citizen IDs) and deterministic for its arguments.

pub mod federation;

use rhip_core::{CitizenId, RegionCode};

const FAMILY: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙"];
const GIVEN: [&str; 12] = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰"];

/// One synthetic ADT message (A04 registration, or A01 admission every fifth).
pub fn synthetic_adt(facility: &str, run: &str, n: u64) -> Vec<u8> {
    let region = RegionCode::parse("330106").unwrap_or(RegionCode::NATIONAL);
    let days = i64::try_from(n % 25_000).unwrap_or(0);
    let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default() + chrono::Duration::days(days);
    let id = CitizenId::generate(region, birth, u16::try_from(n % 1000).unwrap_or(0));
    let sex = if id.sex() == rhip_core::Sex::Male { "M" } else { "F" };
    let index = usize::try_from(n % 144).unwrap_or(0);
    let (family, given) = (FAMILY[index % 12], GIVEN[index / 12]);
    let (trigger, class) = if n % 5 == 0 { ("A01", "I") } else { ("A04", "O") };
    format!(
        "MSH|^~\\&|BENCH|{facility}|RHIP|330106|20240301083000||ADT^{trigger}^ADT_A01|{run}-{n}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|{trigger}|20240301083000\r\
         PID|1||B{run}{n:08}^^^{facility}^MR~{id}^^^CHN^NNCHN||{family}^{given}||{birth}|{sex}|||测试路{n}号^^杭州市^浙江省^310000^CHN^H^^330106||139{:08}\r\
         PV1|1|{class}|内科^301^2||||D001^张^医生|||MED|||||||||V{run}{n:08}|||||||||||||||||||||||||20240301080000\r",
        n % 100_000_000,
        birth = birth.format("%Y%m%d"),
    )
    .into_bytes()
}

/// One synthetic discharge summary (C0053) of a synthetic inpatient, authored by `facility`.
pub fn synthetic_document(facility: &str, run: &str, n: u64) -> Vec<u8> {
    use rhip_cda::write::{DiagnosisInput, EncounterDocument, EncounterInput, HeaderInput, PatientInput, ResultInput};
    use rhip_cda::{Code, InstanceId, Organization, Quantity, Timestamp};
    let region = RegionCode::parse("330106").unwrap_or(RegionCode::NATIONAL);
    let days = i64::try_from(n % 25_000).unwrap_or(0);
    let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default() + chrono::Duration::days(days);
    let id = CitizenId::generate(region, birth, u16::try_from(n % 1000).unwrap_or(0));
    let index = usize::try_from(n % 144).unwrap_or(0);
    let at = |text: &str| Timestamp::parse(text).ok();
    let start = at("20240301080000").unwrap_or(Timestamp::from_date(birth));
    let hospital =
        Organization { ids: vec![InstanceId::new("2.16.156.10011.1.5", facility)], name: Some("bench".into()) };
    let document = EncounterDocument {
        header: HeaderInput {
            id: InstanceId::new("2.16.156.10011.1.1", format!("{run}-{n}")),
            effective_time: at("20240305170000").unwrap_or(start),
            custodian: hospital.clone(),
            author_organization: hospital.clone(),
            author_name: Some("张医生".into()),
        },
        patient: PatientInput {
            citizen_id: Some(id.as_str().to_string()),
            other_ids: vec![InstanceId::new("2.16.156.10011.1.13", format!("B{run}{n:08}"))],
            name: format!("{}{}", FAMILY[index % 12], GIVEN[index / 12]),
            sex: id.sex(),
            birth_date: birth,
            county: Some(region),
            street: Some(format!("测试路{n}号")),
        },
        encounter: EncounterInput {
            id: InstanceId::new("2.16.156.10011.1.12", format!("Z{run}{n:08}")),
            kind: rhip_core::EncounterType::Inpatient,
            start,
            end: at("20240305160000"),
            facility: hospital,
        },
        chief_complaint: Some("咳嗽、发热3天".into()),
        diagnoses: vec![DiagnosisInput::icd10("J18.9", "肺炎", Some(start))],
        results: vec![ResultInput {
            code: Code::new("6690-2", "2.16.840.1.113883.6.1", "白细胞计数"),
            value: rhip_cda::write::ResultValue::Quantity(Quantity {
                value: "12.3".into(),
                unit: Some("10*9/L".into()),
            }),
            reference_range: None,
            flag: Some("H".into()),
            time: Some(start),
        }],
        medications: Vec::new(),
    };
    rhip_cda::write::emr_encounter(&document)
}

/// Store options for a benchmark's throwaway database: fresh data keys, so
/// the measurement includes sealing and opening personal fields as a node does.
pub fn bench_store_options() -> anyhow::Result<rhip_store::StoreOptions> {
    use anyhow::Context;
    let (keys, _) = rhip_auth::DataKeys::generate().context("generate data keys")?;
    Ok(rhip_store::StoreOptions::with_cipher(std::sync::Arc::new(rhip_auth::DataKeyRing::fixed(keys))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthetic_messages_are_accepted_by_the_reader() {
        let today = chrono::Utc::now().date_naive();
        for n in [0, 1, 5, 999, 123_456] {
            let message = super::synthetic_adt("H330106001", "T", n);
            let received = rhip_hl7::receive(&message, today);
            assert!(matches!(received, rhip_hl7::Received::Accepted { .. }), "{n}: {received:?}");
        }
    }

    #[test]
    fn synthetic_documents_are_valid() {
        let today = chrono::Utc::now().date_naive();
        for n in [0, 1, 77, 123_456] {
            let document = super::synthetic_document("H330106001", "T", n);
            let read = rhip_cda::read(&document, &rhip_cda::Limits::default()).unwrap();
            assert!(rhip_cda::validate(&read, today).is_empty(), "{n}");
        }
    }
}
