//! The clinical vocabulary of synthetic traffic: diagnoses (ICD-10), lab
//! tests (LOINC) with plausible values, vaccines of the national immunization
//! schedule, departments. Small fixed tables: enough variety for the records
//! of a demo to look like a hospital's, not an epidemiological model.

use crate::rng::Rng;

/// A diagnosis: ICD-10 code and its Chinese name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
}

const fn dx(code: &'static str, name: &'static str) -> Diagnosis {
    Diagnosis { code, name }
}

/// Essential hypertension, for chronic follow-ups.
pub(crate) const HYPERTENSION: Diagnosis = dx("I10", "原发性高血压");
/// Type 2 diabetes, for chronic follow-ups.
pub(crate) const DIABETES: Diagnosis = dx("E11", "2型糖尿病");

/// Outpatient problems of children.
const CHILD_OUTPATIENT: [Diagnosis; 4] =
    [dx("J06.9", "急性上呼吸道感染"), dx("J20.9", "急性支气管炎"), dx("A09", "感染性腹泻"), dx("L20.9", "特应性皮炎")];
/// Outpatient problems of adults.
const ADULT_OUTPATIENT: [Diagnosis; 7] = [
    dx("J06.9", "急性上呼吸道感染"),
    dx("K29.7", "胃炎"),
    dx("M54.5", "下背痛"),
    dx("J02.9", "急性咽炎"),
    dx("R51", "头痛"),
    dx("N39.0", "泌尿道感染"),
    dx("H10.9", "结膜炎"),
];
/// Reasons for a stay in hospital (any adult).
const ADULT_INPATIENT: [Diagnosis; 4] =
    [dx("J18.9", "肺炎"), dx("K35.8", "急性阑尾炎"), dx("K80.2", "胆囊结石"), dx("S82.2", "胫骨骨折")];
/// Reasons for a stay in hospital from 60 on.
const ELDERLY_INPATIENT: [Diagnosis; 4] = [
    dx("I63.9", "脑梗死"),
    dx("I25.1", "冠状动脉粥样硬化性心脏病"),
    dx("J44.1", "慢性阻塞性肺病急性加重"),
    dx("S72.0", "股骨颈骨折"),
];
/// Reasons for a child's stay.
const CHILD_INPATIENT: [Diagnosis; 2] = [dx("J18.9", "肺炎"), dx("J21.9", "急性毛细支气管炎")];
/// A birth, for women of 20 to 40.
const CHILDBIRTH: Diagnosis = dx("O80.0", "单胎顺产");

/// An outpatient problem for the age.
pub(crate) fn outpatient_problem(rng: &mut Rng, age: u32) -> Diagnosis {
    let list: &[Diagnosis] = if age < 14 { &CHILD_OUTPATIENT } else { &ADULT_OUTPATIENT };
    rng.pick(list).copied().unwrap_or(dx("J06.9", "急性上呼吸道感染"))
}

/// The reason for a stay for the age and sex.
pub(crate) fn inpatient_problem(rng: &mut Rng, age: u32, female: bool) -> Diagnosis {
    if female && (20..=40).contains(&age) && rng.chance(0.35) {
        return CHILDBIRTH;
    }
    let list: &[Diagnosis] = match age {
        0..=13 => &CHILD_INPATIENT,
        14..=59 => &ADULT_INPATIENT,
        _ => &ELDERLY_INPATIENT,
    };
    rng.pick(list).copied().unwrap_or(dx("J18.9", "肺炎"))
}

/// The department for a diagnosis and age: (name, HL7 PV1-10 service code).
pub(crate) fn department(diagnosis: Diagnosis, age: u32) -> (&'static str, &'static str) {
    if age < 14 {
        return ("儿科", "PED");
    }
    match diagnosis.code.chars().next() {
        Some('I') => ("心血管内科", "CAR"),
        Some('E') => ("内分泌科", "END"),
        Some('K') if diagnosis.code.starts_with("K35") || diagnosis.code.starts_with("K80") => ("普外科", "SUR"),
        Some('S') => ("骨科", "ORT"),
        Some('O') => ("产科", "OBS"),
        Some('J') => ("呼吸内科", "PUL"),
        Some('H') => ("眼科", "OPH"),
        _ => ("内科", "MED"),
    }
}

/// A lab test: LOINC code, name, unit, normal range and the range values are
/// drawn from (a little wider than normal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Test {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) draw_low: f64,
    pub(crate) draw_high: f64,
    pub(crate) decimals: usize,
}

const fn test(
    code: &'static str,
    name: &'static str,
    unit: &'static str,
    normal: (f64, f64),
    draw: (f64, f64),
    decimals: usize,
) -> Test {
    Test { code, name, unit, low: normal.0, high: normal.1, draw_low: draw.0, draw_high: draw.1, decimals }
}

/// A panel: the OBR-4 order code and name, and its tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Panel {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    pub(crate) tests: &'static [Test],
}

/// 血常规.
pub(crate) const BLOOD_COUNT: Panel = Panel {
    code: "58410-2",
    name: "血常规",
    tests: &[
        test("6690-2", "白细胞计数", "10*9/L", (3.5, 9.5), (2.8, 14.0), 1),
        test("718-7", "血红蛋白", "g/L", (115.0, 175.0), (95.0, 180.0), 0),
        test("777-3", "血小板计数", "10*9/L", (125.0, 350.0), (90.0, 420.0), 0),
    ],
};

/// 肝肾功能.
pub(crate) const CHEMISTRY: Panel = Panel {
    code: "24323-8",
    name: "肝肾功能",
    tests: &[
        test("1742-6", "丙氨酸氨基转移酶", "U/L", (9.0, 50.0), (6.0, 90.0), 0),
        test("2160-0", "肌酐", "umol/L", (57.0, 111.0), (45.0, 160.0), 0),
        test("2823-3", "钾", "mmol/L", (3.5, 5.3), (3.1, 5.8), 2),
    ],
};

/// For hypertension follow-ups: 血脂 and 肾功能.
pub(crate) const HYPERTENSION_LABS: Panel = Panel {
    code: "57698-3",
    name: "血脂及肾功能",
    tests: &[
        test("2093-3", "总胆固醇", "mmol/L", (2.8, 5.2), (3.5, 7.2), 2),
        test("13457-7", "低密度脂蛋白胆固醇", "mmol/L", (1.5, 3.4), (1.8, 4.9), 2),
        test("2160-0", "肌酐", "umol/L", (57.0, 111.0), (55.0, 150.0), 0),
        test("2823-3", "钾", "mmol/L", (3.5, 5.3), (3.3, 5.6), 2),
    ],
};

/// For diabetes follow-ups: 血糖 and 糖化血红蛋白.
pub(crate) const DIABETES_LABS: Panel = Panel {
    code: "4548-4",
    name: "血糖及糖化血红蛋白",
    tests: &[
        test("1558-6", "空腹血糖", "mmol/L", (3.9, 6.1), (5.5, 12.5), 1),
        test("4548-4", "糖化血红蛋白", "%", (4.0, 6.0), (5.8, 10.5), 1),
    ],
};

/// One measured value: (value text, abnormal flag `H`, `L` or `N`, range text).
pub(crate) fn measure(rng: &mut Rng, test: &Test) -> (String, &'static str, String) {
    let value = test.draw_low + rng.unit() * (test.draw_high - test.draw_low);
    let text = format!("{value:.prec$}", prec = test.decimals);
    let rounded: f64 = text.parse().unwrap_or(value);
    let flag = if rounded < test.low {
        "L"
    } else if rounded > test.high {
        "H"
    } else {
        "N"
    };
    let range = format!("{:.prec$}-{:.prec$}", test.low, test.high, prec = test.decimals);
    (text, flag, range)
}

/// A vaccine of the national immunization programme: due from `days` of age,
/// CVX code, Chinese name, dose in mL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Vaccine {
    pub(crate) days: u32,
    pub(crate) cvx: &'static str,
    pub(crate) name: &'static str,
    pub(crate) dose: &'static str,
}

const fn vaccine(days: u32, cvx: &'static str, name: &'static str, dose: &'static str) -> Vaccine {
    Vaccine { days, cvx, name, dose }
}

/// The schedule, in order of age.
const SCHEDULE: [Vaccine; 16] = [
    vaccine(0, "08", "乙肝疫苗 第1剂", "0.5"),
    vaccine(0, "19", "卡介苗", "0.1"),
    vaccine(30, "08", "乙肝疫苗 第2剂", "0.5"),
    vaccine(60, "10", "脊灰灭活疫苗 第1剂", "0.5"),
    vaccine(90, "10", "脊灰灭活疫苗 第2剂", "0.5"),
    vaccine(90, "20", "百白破疫苗 第1剂", "0.5"),
    vaccine(150, "20", "百白破疫苗 第2剂", "0.5"),
    vaccine(180, "08", "乙肝疫苗 第3剂", "0.5"),
    vaccine(180, "167", "A群流脑多糖疫苗 第1剂", "0.5"),
    vaccine(240, "03", "麻腮风疫苗 第1剂", "0.5"),
    vaccine(240, "134", "乙脑减毒活疫苗 第1剂", "0.5"),
    vaccine(540, "20", "百白破疫苗 第4剂", "0.5"),
    vaccine(540, "03", "麻腮风疫苗 第2剂", "0.5"),
    vaccine(540, "83", "甲肝减毒活疫苗", "1.0"),
    vaccine(730, "134", "乙脑减毒活疫苗 第2剂", "0.5"),
    vaccine(2190, "28", "白破疫苗", "0.5"),
];

/// The vaccines last due at `age_days` (those sharing the latest due age
/// reached), one or two of them.
pub(crate) fn vaccines_due(age_days: u32) -> Vec<Vaccine> {
    let due = SCHEDULE.iter().filter(|v| v.days <= age_days).map(|v| v.days).max().unwrap_or(0);
    SCHEDULE.iter().filter(|v| v.days == due).copied().collect()
}

/// A chief complaint for a stay, written into discharge documents.
pub(crate) fn complaint(diagnosis: Diagnosis) -> String {
    match diagnosis.code.chars().next() {
        Some('J') => "发热、咳嗽3天".to_owned(),
        Some('I') => "头晕、胸闷1天".to_owned(),
        Some('K') => "腹痛1天".to_owned(),
        Some('S') => "外伤后疼痛、活动受限".to_owned(),
        Some('O') => "停经39周，下腹阵痛".to_owned(),
        _ => format!("{}就诊", diagnosis.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn measurements_carry_consistent_flags() {
        let mut rng = Rng::new(1, Stream::Episode, 1);
        for panel in [BLOOD_COUNT, CHEMISTRY, HYPERTENSION_LABS, DIABETES_LABS] {
            for test in panel.tests {
                for _ in 0..50 {
                    let (value, flag, range) = measure(&mut rng, test);
                    let number: f64 = value.parse().unwrap_or(f64::NAN);
                    assert!(number >= test.draw_low - 1.0 && number <= test.draw_high + 1.0, "{value}");
                    assert_eq!(flag == "N", number >= test.low && number <= test.high, "{value} {flag} {range}");
                }
            }
        }
    }

    #[test]
    fn vaccines_follow_the_schedule() {
        assert_eq!(vaccines_due(0).len(), 2);
        assert_eq!(vaccines_due(45).first().map(|v| v.name), Some("乙肝疫苗 第2剂"));
        assert_eq!(vaccines_due(5000).first().map(|v| v.cvx), Some("28"));
    }
}
