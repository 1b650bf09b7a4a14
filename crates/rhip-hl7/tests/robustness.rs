//! `receive` never panics: on arbitrary bytes, on HL7-shaped noise, and on real and
//! synthetic messages mutated byte by byte. Every outcome is consistent and can be
//! answered with an ACK that parses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::LazyLock;

use common::*;
use proptest::prelude::*;
use rhip_hl7::{ack_for, receive, AckSender, Received};

/// Seeds for mutation: the corpus (when present) and the synthetic fixtures.
static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let mut seeds = corpus_messages();
    let gb = admit().set("MSH", 18, "GB18030").text();
    seeds.push(encoding_rs::GB18030.encode(&gb).0.into_owned());
    for msg in [admit(), discharge(), results(), immunizations(), merge(), person_update()] {
        seeds.push(msg.bytes());
        seeds.push(msg.joined("\n").into_bytes());
    }
    seeds
});

/// Reads the input and checks the outcome's invariants and its ACK.
fn exercise(input: &[u8]) -> Result<(), TestCaseError> {
    let received = receive(input, today());
    match &received {
        Received::Accepted { header, .. } => prop_assert!(!header.control_id.is_empty()),
        Received::Invalid { problems, .. } => prop_assert!(!problems.is_empty()),
        Received::Rejected { reason, .. } => prop_assert!(!reason.to_string().is_empty()),
    }
    let sender = AckSender { application: "RHIP".into(), facility: "330106".into() };
    let answer = ack_for(&received, &sender, "ACK-1", at(2025, 12, 1, 0, 0, 0));
    let parsed = hl7_parser::Message::parse(&answer);
    prop_assert!(parsed.is_ok(), "ACK does not parse: {:?}", answer);
    if let Ok(parsed) = parsed {
        prop_assert_eq!(parsed.segment_count("MSA"), 1);
        prop_assert_eq!(parsed.segment_count("ERR"), received.problems().len().min(rhip_hl7::MAX_ERR_SEGMENTS));
    }
    Ok(())
}

/// One edit of a message.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
    /// Inserts a delimiter or separator, the bytes most likely to shift structure.
    InsertSpecial(usize, usize),
}

const SPECIAL: &[u8] = b"|^~\\&\r\n\x0b\x1c#\"";

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 0..SPECIAL.len()).prop_map(|(at, which)| Edit::InsertSpecial(at, which)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Replace(at, byte) if len > 0 => bytes[at % len] = byte,
            Edit::Insert(at, byte) => bytes.insert(at % (len + 1), byte),
            Edit::Delete(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            Edit::InsertSpecial(at, which) => bytes.insert(at % (len + 1), SPECIAL[which]),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        exercise(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_after_an_msh_start(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut input = b"MSH|^~\\&|".to_vec();
        input.extend(bytes);
        exercise(&input)?;
    }

    #[test]
    fn hl7_shaped_noise(body in "[A-Z0-9|^~\\\\&\r\n .#\"张X]{0,600}") {
        let input = format!("MSH|^~\\&|HIS|330106001|RHIP|330106|20251120083000||ADT^A01|1|P|2.5\r{body}");
        exercise(input.as_bytes())?;
        let oru = format!("MSH|^~\\&|LIS|330106001|||20251120083000||ORU^R01|1|P|2.5.1\rPID|1||X^^^^MR||A^B\r{body}");
        exercise(oru.as_bytes())?;
    }

    #[test]
    fn mutated_messages(seed in any::<prop::sample::Index>(), edits in proptest::collection::vec(edit(), 1..8)) {
        let original = seed.get(&SEEDS).clone();
        exercise(&apply(original, &edits))?;
    }
}

#[test]
fn seeds_are_loaded() {
    assert!(SEEDS.len() >= 13);
    if SEEDS.len() == 13 {
        println!("skipped: corpus absent, mutating synthetic messages only");
    }
}

#[test]
fn many_broken_segments_cost_linear_time_and_a_bounded_ack() {
    // ~0.5 MB: 40,000 OBX segments without value type or identifier, then 20,000
    // segments of 9,072 distinct IDs that nothing reads.
    let mut text = results().text();
    for n in 0..40_000 {
        text.push_str(&format!("\rOBX|{n}"));
    }
    let alphabet: Vec<char> = ('A'..='Z').chain('0'..='9').collect();
    for n in 0..20_000usize {
        let first = ['J', 'K', 'Q', 'U', 'W', 'X', 'Y'][n % 7];
        let id: String = [first, alphabet[n / 7 % 36], alphabet[n / 7 / 36 % 36]].iter().collect();
        text.push_str(&format!("\r{id}|x"));
    }
    let started = std::time::Instant::now();
    let received = receive(text.as_bytes(), today());
    let Received::Invalid { problems, .. } = &received else { panic!("invalid: {received:?}") };
    assert_eq!(problems.len(), 80_000);
    let sender = AckSender { application: "RHIP".into(), facility: "330106".into() };
    let answer = ack_for(&received, &sender, "ACK-1", at(2025, 12, 1, 0, 0, 0));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    assert_eq!(answer.matches("\rERR|").count(), rhip_hl7::MAX_ERR_SEGMENTS);
    assert!(answer.contains("80000 errors, first: "));
}
