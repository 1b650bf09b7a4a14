//! Synthetic fixtures shared by the integration tests: a message builder and realistic
//! messages about made-up persons (citizen IDs from `CitizenId::generate`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, NaiveDateTime};
use rhip_core::{CitizenId, RegionCode};

/// The "today" every test reads messages as of.
pub fn today() -> NaiveDate {
    date(2025, 12, 1)
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

pub fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(h, mi, s).expect("valid time")
}

pub fn region(code: &str) -> RegionCode {
    RegionCode::parse(code).expect("current region code")
}

/// A synthetic male citizen of 西湖区 born 1990-03-07 (sequence 123: odd, male).
pub fn zhang_wei_id() -> CitizenId {
    CitizenId::generate(region("330106"), date(1990, 3, 7), 123)
}

/// A synthetic female citizen of 西湖区 born 1985-11-02 (sequence 246: even, female).
pub fn li_na_id() -> CitizenId {
    CitizenId::generate(region("330106"), date(1985, 11, 2), 246)
}

/// The same number with a wrong check character.
pub fn with_bad_checksum(id: &CitizenId) -> String {
    let text = id.as_str();
    let last = text.chars().last().expect("18 characters");
    let replacement = if last == '0' { '1' } else { '0' };
    format!("{}{}", &text[..17], replacement)
}

/// A message as segments of fields, editable by position (standard delimiters).
#[derive(Clone, Debug)]
pub struct Msg {
    /// (segment ID, fields from field 1); for MSH, field 1 is MSH-2.
    segments: Vec<(String, Vec<String>)>,
}

impl Msg {
    /// Parses `|`-separated lines (one per segment).
    pub fn from_lines(lines: &[&str]) -> Msg {
        let segments = lines
            .iter()
            .map(|line| {
                let mut parts = line.split('|');
                let name = parts.next().unwrap_or_default().to_owned();
                (name, parts.map(str::to_owned).collect())
            })
            .collect();
        Msg { segments }
    }

    fn index_of(name: &str, field: usize) -> usize {
        if name == "MSH" {
            field - 2
        } else {
            field - 1
        }
    }

    /// Sets a field of the `occurrence`-th (1-based) segment with this ID.
    pub fn set_nth(mut self, name: &str, occurrence: usize, field: usize, value: &str) -> Msg {
        let index = Msg::index_of(name, field);
        let segment = self
            .segments
            .iter_mut()
            .filter(|(id, _)| id == name)
            .nth(occurrence - 1)
            .unwrap_or_else(|| panic!("no {name}[{occurrence}]"));
        if segment.1.len() <= index {
            segment.1.resize(index + 1, String::new());
        }
        segment.1[index] = value.to_owned();
        self
    }

    /// Sets a field of the first segment with this ID.
    pub fn set(self, name: &str, field: usize, value: &str) -> Msg {
        self.set_nth(name, 1, field, value)
    }

    /// Removes every segment with this ID.
    pub fn without(mut self, name: &str) -> Msg {
        self.segments.retain(|(id, _)| id != name);
        self
    }

    /// Appends a segment line.
    pub fn with(mut self, line: &str) -> Msg {
        self.segments.extend(Msg::from_lines(&[line]).segments);
        self
    }

    /// Inserts a segment line before the first segment with this ID.
    pub fn insert_before(mut self, name: &str, line: &str) -> Msg {
        let position = self.segments.iter().position(|(id, _)| id == name).unwrap_or(self.segments.len());
        let new = Msg::from_lines(&[line]).segments;
        for (offset, segment) in new.into_iter().enumerate() {
            self.segments.insert(position + offset, segment);
        }
        self
    }

    /// The message type and trigger (MSH-9).
    pub fn typed(self, message_type: &str) -> Msg {
        self.set("MSH", 9, message_type)
    }

    /// Segments joined with `sep`.
    pub fn joined(&self, sep: &str) -> String {
        let line = |(name, fields): &(String, Vec<String>)| {
            if fields.is_empty() {
                name.clone()
            } else {
                format!("{name}|{}", fields.join("|"))
            }
        };
        self.segments.iter().map(line).collect::<Vec<_>>().join(sep)
    }

    /// The message with CR separators.
    pub fn text(&self) -> String {
        self.joined("\r")
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.text().into_bytes()
    }
}

pub const MSH: &str =
    "MSH|^~\\&|HIS|330106001^浙江省立同德医院|RHIP|330106|20251120083000||ADT^A01^ADT_A01|MSG00001|P|2.5|||AL|NE|CHN|UNICODE UTF-8";

/// PID of 张伟 (synthetic): MRN, NNCHN citizen ID, home address in 西湖区.
pub fn with_pid_zhang_wei(msg: Msg) -> Msg {
    msg.with("PID|1")
        .set("PID", 3, &format!("MRN0001^^^330106001^MR~{}^^^CHN^NNCHN", zhang_wei_id()))
        .set("PID", 5, "张^伟^^^^^L")
        .set("PID", 7, "19900307")
        .set("PID", 8, "M")
        .set(
            "PID",
            11,
            "文三路90号^3幢201室^杭州市^浙江省^310012^CHN^H^^330106~西溪路1号^^杭州市^浙江省^310013^CHN^O^^330106",
        )
        .set("PID", 13, "13800000000^PRN^PH")
        .set("PID", 16, "20^已婚^GB/T 2261.2")
        .set("PID", 22, "01^汉族^GB3304")
}

/// An inpatient admission of 张伟 with everything a visit can carry.
pub fn admit() -> Msg {
    let msg = Msg::from_lines(&[MSH, "EVN|A01|20251120083000|||D001^王^芳|20251120082500"]);
    with_pid_zhang_wei(msg)
        .with("NK1|1|李^娜|SPO^配偶^HL70063|文三路90号^^杭州市|13900000000")
        .with("PV1|1|I")
        .set("PV1", 3, "5病区^501^02^330106001")
        .set("PV1", 7, "D1001^李^明^^^主任医师")
        .set("PV1", 10, "心内科")
        .set("PV1", 19, "V20251120001")
        .set("PV1", 44, "20251120080000")
        .with("PV2|||I20.0^不稳定型心绞痛^ICD10")
        .with("AL1|1|DA|70618^青霉素^RXNORM|SV|皮疹")
        .with("DG1|1||I10^特发性（原发性）高血压^ICD10||20251120081000|A")
        .with("DG1|2||I20.0^不稳定型心绞痛^ICD10||20251120081500|W")
        .with("IN1|1|310^城镇职工基本医疗保险|330100|杭州市医疗保障局")
        .set("IN1", 36, "YB330106123")
}

/// A discharge of 张伟.
pub fn discharge() -> Msg {
    admit().typed("ADT^A03^ADT_A03").set("EVN", 1, "A03").set("PV1", 45, "20251128100000")
}

/// Lab results for 李娜 (female, ID in PID-19).
pub fn results() -> Msg {
    Msg::from_lines(&[&MSH.replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01"), "PID|1"])
        .set("PID", 3, "LIS0042^^^330106001^MR")
        .set("PID", 5, "李^娜")
        .set("PID", 7, "19851102")
        .set("PID", 8, "F")
        .set("PID", 19, li_na_id().as_str())
        .with("PV1|1|O|内分泌科门诊")
        .set("PV1", 10, "内分泌科")
        .set("PV1", 19, "V20251119007")
        .with("ORC|RE|ORD100|LAB200")
        .with("OBR|1|ORD100|LAB200|24331-1^血脂四项^LN|||20251119090000")
        .set("OBR", 22, "20251119150000")
        .set("OBR", 25, "F")
        .with("OBX|1|NM|2093-3^总胆固醇^LN||5.8|mmol/L^毫摩尔每升^UCUM|3.1-5.7|H|||F|||20251119100000")
        .with("OBX|2|CE|883-9^ABO血型^LN||A^A型^HL70005||||||F")
        .with("OBX|3|SN|2345-7^血糖^LN||>^10|mmol/L|3.9-6.1|H|||F")
        .with("OBX|4|ST|8251-1^检验备注^LN||样本轻度溶血，结果仅供参考||||||F")
        .with("NTE|1||已复核")
}

/// Two vaccinations for a child (synthetic).
pub fn immunizations() -> Msg {
    let child = CitizenId::generate(region("330106"), date(2024, 5, 20), 35);
    Msg::from_lines(&[&MSH.replace("ADT^A01^ADT_A01", "VXU^V04^VXU_V04"), "PID|1"])
        .set("PID", 3, &format!("IMM9001^^^330106001^MR~{child}^^^CHN^NNCHN"))
        .set("PID", 5, "王^小明")
        .set("PID", 7, "20240520")
        .set("PID", 8, "M")
        .with("ORC|RE||IMM-1")
        .with("RXA|0|1|20250520093000|20250520093000|0101^乙肝疫苗^CNVX|10|ug^微克^UCUM")
        .set("RXA", 15, "B202504001")
        .set("RXA", 17, "CNBG^北京生物制品研究所^MVX")
        .set("RXA", 20, "CP")
        .with("RXA|0|1|20251120093000|20251120093000|0301^脊灰灭活疫苗^CNVX|0.5|mL")
        .set_nth("RXA", 2, 15, "P202509002")
        .set_nth("RXA", 2, 17, "SINOVAC^^MVX")
        .set_nth("RXA", 2, 20, "CP")
}

/// A merge: 张伟's survivor record absorbs two old MRNs.
pub fn merge() -> Msg {
    let msg = Msg::from_lines(&[&MSH.replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39"), "EVN|A40|20251120083000"]);
    with_pid_zhang_wei(msg).with("MRG|MRN0999^^^330106001^MR~OLD77^^^330106002^MR")
}

/// A person update (A31): no visit.
pub fn person_update() -> Msg {
    let msg = Msg::from_lines(&[&MSH.replace("ADT^A01^ADT_A01", "ADT^A31^ADT_A05"), "EVN|A31|20251120083000"]);
    with_pid_zhang_wei(msg).with("PV1|1|N")
}

/// The third-party corpus (absent on users' machines: tests skip then).
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/hl7v2");

/// Splits a file into messages: a message starts at a line beginning with `MSH`; FHS,
/// BHS, BTS and FTS lines and comment lines (`/*`, `*`, `//`) are skipped. Lines before
/// the first MSH form a message of their own (which must be refused), and a file with
/// no line at all is read whole. Original bytes and separators are kept.
pub fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut start = 0;
    while start < bytes.len() {
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\r' && bytes[end] != b'\n' {
            end += 1;
        }
        while end < bytes.len() && (bytes[end] == b'\r' || bytes[end] == b'\n') {
            end += 1;
        }
        let line = &bytes[start..end];
        start = end;
        let trimmed = String::from_utf8_lossy(line);
        let trimmed = trimmed.trim_start();
        let envelope = ["FHS", "BHS", "BTS", "FTS"].iter().any(|id| line.starts_with(id.as_bytes()));
        let comment = ["/*", "*", "//"].iter().any(|prefix| trimmed.starts_with(prefix));
        if envelope || comment {
            continue;
        }
        if line.starts_with(b"MSH") {
            if let Some(done) = current.take() {
                messages.push(done);
            }
            current = Some(line.to_vec());
        } else if let Some(message) = current.as_mut() {
            message.extend_from_slice(line);
        } else if !trimmed.trim().is_empty() {
            current = Some(line.to_vec());
        }
    }
    messages.extend(current);
    if messages.is_empty() {
        messages.push(bytes.to_vec());
    }
    messages
}

/// Every message of every corpus file (empty when the corpus is absent).
pub fn corpus_messages() -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(CORPUS)];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                messages.extend(split(&bytes));
            }
        }
    }
    messages
}
