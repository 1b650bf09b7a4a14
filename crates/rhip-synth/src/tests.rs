//! Unit tests of the whole generator: determinism, independence of each
//! resident from the others, validity of everything generated (citizen IDs,
//! codes, households), and that every message is read by `rhip-hl7` the way
//! its label says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};

use rhip_core::{check_against_id, CitizenId, FacilityCode, FamilyRelationship, RegionCode};

use super::*;

fn region(code: &str) -> RegionCode {
    RegionCode::parse(code).unwrap()
}

fn demo_counties() -> Vec<RegionCode> {
    ["330106", "330108", "440106"].into_iter().map(region).collect()
}

fn synth(seed: u64, residents: u64) -> Synth {
    Synth::new(Config::new(seed, residents, &demo_counties())).unwrap()
}

#[test]
fn same_seed_same_population_and_traffic_other_seed_other() {
    let (a, b, c) = (synth(7, 500), synth(7, 500), synth(8, 500));
    let residents = |s: &Synth| s.all_residents().collect::<Vec<_>>();
    assert_eq!(residents(&a), residents(&b));
    assert_ne!(residents(&a), residents(&c));
    let traffic = |s: &Synth| s.traffic().map(|m| m.bytes).collect::<Vec<_>>();
    assert_eq!(traffic(&a), traffic(&b));
    assert_ne!(traffic(&a), traffic(&c));
}

#[test]
fn a_resident_is_computed_from_seed_and_index_alone() {
    let small = synth(11, 300);
    let large = synth(11, 5_000);
    let streamed: Vec<Resident> = large.all_residents().collect();
    assert_eq!(streamed.len(), 5_000);
    for (index, resident) in streamed.iter().enumerate() {
        assert_eq!(resident.index, index as u64);
    }
    // Any index, directly, equals the streamed one, and does not depend on
    // the population's size.
    for index in [0u64, 1, 63, 64, 299, 1_234, 4_999] {
        let direct = large.resident(index).unwrap();
        assert_eq!(&direct, &streamed[index as usize]);
        if index < 300 {
            assert_eq!(small.resident(index), Some(direct));
        }
    }
    assert_eq!(large.resident(5_000), None);
    // The ten-millionth resident costs one block, not ten million residents.
    let huge = synth(11, MAX_RESIDENTS);
    let last = huge.resident(MAX_RESIDENTS - 1).unwrap();
    assert_eq!(last.index, MAX_RESIDENTS - 1);
    assert!(CitizenId::parse_as_of(last.citizen_id.as_str(), default_as_of()).is_ok());
}

#[test]
fn residents_are_valid_and_plausible() {
    let population = synth(3, 4_000);
    let as_of = population.as_of();
    let mut ages = [0u32; 11];
    let mut han = 0;
    let mut born_at_home = 0;
    for resident in population.all_residents() {
        let parsed = CitizenId::parse_as_of(resident.citizen_id.as_str(), as_of).unwrap();
        assert_eq!(parsed.birth_date(), resident.birth_date);
        assert_eq!(parsed.sex(), resident.sex);
        assert_eq!(parsed.region_prefix(), resident.birth_region);
        assert!(check_against_id(&parsed, Some(resident.birth_date), Some(resident.sex)).is_empty());
        assert!(demo_counties().contains(&resident.home_region));
        resident.demographics().validate_as_of(as_of).unwrap();
        let age = resident.age_on(as_of);
        assert!(age <= 100, "{age}");
        ages[(age / 10).min(10) as usize] += 1;
        han += u32::from(resident.ethnicity.code() == "01");
        born_at_home += u32::from(resident.birth_region == resident.home_region);
        let record = resident.import_record();
        assert_eq!(record.home_region, resident.home_region.as_str());
        assert_eq!(record.id_number, resident.citizen_id.as_str());
    }
    // A pyramid, not a block: children, working ages and the old all present.
    assert!(ages[0] > 200 && ages[3] > 300 && ages[5] > 300 && ages[7] > 100, "{ages:?}");
    assert!(ages[0] < 1_200 && ages[9] + ages[10] < 200, "{ages:?}");
    assert!((3_400..3_900).contains(&han), "{han} Han of 4000");
    assert!((2_500..3_100).contains(&born_at_home), "{born_at_home} born at home");
}

#[test]
fn households_are_consistent_families() {
    let population = synth(5, 3_000);
    let mut sizes = HashMap::new();
    let mut seen = 0u64;
    for household in population.households() {
        let size = household.members.len();
        assert!((1..=5).contains(&size));
        *sizes.entry(size).or_insert(0) += 1;
        assert_eq!(household.number, seen);
        seen += size as u64;
        let head = &household.members[0];
        assert_eq!(head.relation, FamilyRelationship::HEAD_OF_HOUSEHOLD);
        for member in &household.members {
            assert_eq!(member.household, household.number);
            assert_eq!(member.address_line, household.address_line);
            assert_eq!(member.home_region, household.region);
            assert!(FamilyRelationship::parse(member.relation.code()).is_ok());
            let code = member.relation.code();
            let head_age = i64::from(head.age_on(population.as_of()));
            let age = i64::from(member.age_on(population.as_of()));
            match code.as_bytes().first() {
                // Children are at least 18 years younger than the head's couple.
                Some(b'2' | b'3') => assert!(head_age - age >= 15, "{code}: head {head_age}, child {age}"),
                Some(b'5') => assert!(age - head_age >= 20, "{code}: head {head_age}, parent {age}"),
                _ => {}
            }
            if age < 16 {
                assert_eq!(member.phone, head.phone, "a child's phone is the head's");
            }
        }
        assert_eq!(population.household(household.number).as_ref(), Some(&household));
        let record = household.record();
        assert_eq!(record.members.len(), size);
    }
    assert_eq!(seen, 3_000);
    assert!(sizes.len() == 5, "{sizes:?}");
}

#[test]
fn citizen_ids_never_repeat() {
    // A contiguous stretch, and residents of every ID class at the same slot.
    let population = synth(9, MAX_RESIDENTS);
    let mut ids = HashSet::new();
    for resident in synth(9, 60_000).all_residents() {
        assert!(ids.insert(resident.citizen_id.as_str().to_owned()), "repeated {}", resident.citizen_id);
    }
    let mut across = HashSet::new();
    for class in 0..(MAX_RESIDENTS / 182_500) {
        for offset in (0..182_500).step_by(9_001) {
            let resident = population.resident(class * 182_500 + offset).unwrap();
            assert!(across.insert(resident.citizen_id.as_str().to_owned()), "repeated {}", resident.citizen_id);
        }
    }
}

#[test]
fn facilities_have_registry_codes_per_county() {
    let population = synth(1, 100);
    assert_eq!(population.facilities().len(), 15);
    for facility in population.facilities() {
        assert_eq!(FacilityCode::parse(facility.code.as_str()).as_ref(), Ok(&facility.code));
        assert!(facility.code.as_str().contains(facility.region.as_str()));
        assert!(facility.name.contains("合成"));
    }
    assert_eq!(population.facilities()[0].code.as_str(), "H330106001");
}

#[test]
fn configurations_are_checked() {
    let counties = demo_counties();
    assert_eq!(Synth::new(Config::new(1, 0, &counties)).err(), Some(SynthError::NoResidents));
    assert!(matches!(
        Synth::new(Config::new(1, MAX_RESIDENTS + 1, &counties)),
        Err(SynthError::TooManyResidents { .. })
    ));
    assert_eq!(Synth::new(Config::new(1, 10, &[])).err(), Some(SynthError::NoCounties));
    assert_eq!(
        Synth::new(Config::new(1, 10, &[region("330100")])).err(),
        Some(SynthError::NotACounty("330100".into()))
    );
    assert_eq!(
        Synth::new(Config::new(1, 10, &[region("330106"), region("330106")])).err(),
        Some(SynthError::DuplicateCounty("330106".into()))
    );
}

/// What `rhip_hl7::receive` makes of a message: `AA`, `AE` or `AR` before any
/// registry check, and the control id it read.
fn parse_outcome(bytes: &[u8], today: chrono::NaiveDate) -> (&'static str, String, String) {
    match rhip_hl7::receive(bytes, today) {
        rhip_hl7::Received::Accepted { header, .. } => ("AA", header.control_id, header.sending_facility),
        rhip_hl7::Received::Invalid { header, .. } => ("AE", header.control_id, header.sending_facility),
        rhip_hl7::Received::Rejected { header, .. } => {
            let header = header.unwrap();
            ("AR", header.control_id, header.sending_facility)
        }
    }
}

#[test]
fn every_message_reads_as_labelled() {
    let population = synth(21, 2_000);
    let today = population.as_of();
    let mut scenarios = HashSet::new();
    let mut kinds = HashMap::new();
    let mut outside = 0;
    let mut documents = 0;
    for submission in population.traffic() {
        scenarios.insert((submission.county, submission.scenario.name()));
        *kinds.entry(submission.kind.clone()).or_insert(0) += 1;
        outside += u32::from(submission.outside_home_province);
        let resident = population.resident(submission.resident).unwrap();
        assert_eq!(submission.outside_home_province, resident.home_region.province() != submission.county.province());
        if submission.channel == Channel::Http {
            documents += 1;
            let document = rhip_cda::read(&submission.bytes, &rhip_cda::Limits::default()).unwrap();
            let problems = rhip_cda::validate(&document, today);
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(submission.expected_code(), "201");
            continue;
        }
        let text = String::from_utf8(submission.bytes.clone()).unwrap();
        assert!(text.ends_with('\r') && !text.contains('\n'), "{text}");
        let (parsed, control_id, facility) = parse_outcome(&submission.bytes, today);
        assert_eq!(control_id, submission.control_id);
        assert_eq!(facility, submission.facility);
        // An unknown facility reads fine: the node's registry refuses it.
        let expected = match submission.scenario {
            Scenario::Invalid(Invalid::UnknownFacility) => "AA",
            _ => submission.expected.ack_code(),
        };
        assert_eq!(parsed, expected, "{:?} {}: {text}", submission.scenario, submission.kind);
    }
    // Every county got every scenario.
    for county in demo_counties() {
        for (scenario, _) in super::traffic::tests_script() {
            assert!(scenarios.contains(&(county, scenario.name())), "{county} lacks {}", scenario.name());
        }
    }
    for kind in ["ADT^A01", "ADT^A02", "ADT^A03", "ADT^A04", "ORU^R01", "VXU^V04", "SIU^S12", "CDA C0053"] {
        assert!(kinds.contains_key(kind), "no {kind}: {kinds:?}");
    }
    assert!(outside >= 6 && documents >= 3, "{outside} outside, {documents} documents");
}

#[test]
fn duplicates_are_one_person_four_ways() {
    let population = synth(4, 500);
    let episode = (0..population.episodes())
        .map(|e| population.episode(e))
        .find(|messages| messages.first().is_some_and(|m| m.scenario == Scenario::Duplicates))
        .unwrap();
    assert_eq!(episode.len(), 4);
    assert_eq!(episode[0].bytes, episode[1].bytes, "an exact resend");
    assert_eq!(episode[0].control_id, episode[1].control_id);
    let resident = population.resident(episode[0].resident).unwrap();
    let patient = |bytes: &[u8]| match rhip_hl7::receive(bytes, population.as_of()) {
        rhip_hl7::Received::Accepted { event, .. } => event.patient().clone(),
        other => panic!("{other:?}"),
    };
    let typo = patient(&episode[2].bytes);
    assert_ne!(typo.name, resident.name());
    assert_eq!(typo.citizen_id.as_ref(), Some(&resident.citizen_id));
    let record_number_only = patient(&episode[3].bytes);
    assert_eq!(record_number_only.citizen_id, None);
    assert_eq!(record_number_only.identifiers, patient(&episode[0].bytes).identifiers);
}

#[test]
fn traffic_is_the_episodes_in_order() {
    let population = synth(2, 300);
    let streamed: Vec<Submission> = population.traffic().collect();
    let joined: Vec<Submission> = (0..population.episodes()).flat_map(|e| population.episode(e)).collect();
    assert_eq!(streamed, joined);
    assert!(population.episode(population.episodes()).is_empty());
    let control_ids: HashSet<(String, String)> = streamed
        .iter()
        .filter(|s| s.note.is_none_or(|n| !n.starts_with("resend")))
        .map(|s| (s.facility.clone(), s.control_id.clone()))
        .collect();
    let unique = streamed.iter().filter(|s| s.note.is_none_or(|n| !n.starts_with("resend"))).count();
    assert_eq!(control_ids.len(), unique, "control ids are unique per facility");
}
