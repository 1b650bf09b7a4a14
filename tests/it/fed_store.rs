//! The storage side of federation on both backends: changes written by the
//! normal write paths at one node, cut with `changes_for_link` and applied at
//! another keep their ids and apply once; parked changes are retried; persons
//! known under two EMPI ids become aliases; concurrent demographic updates
//! converge whatever the order; batch bookkeeping never moves backwards.

use rhip_core::{CitizenId, EhrEntryKind, EncounterType, FacilityCode, FacilityKind, HlcTimestamp, Identifier};
use rhip_core::{PersonDemographics, RegionCode};
use rhip_store::{
    ApplyOutcome, NewAllergy, NewDocument, NewEhrEntry, NewEncounter, NewFacility, NewOutboundBatch, NewPerson,
    RemoteChange, RemoteKeep, Scope, Store, StoreError, GENESIS_DIGEST,
};
use rhip_tests::{both_backends, Backend, TestDb};

struct Node {
    store: Store,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

fn open(backend: Backend, region: &str) -> Option<Node> {
    let db = TestDb::new(backend)?;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path().join("rhip.db").display()));
    let store = Store::open(&url, RegionCode::parse(region).unwrap(), &rhip_tests::store_options()).unwrap();
    store.migrate().unwrap();
    store.write(|tx| tx.bind_node_region()).unwrap();
    Some(Node { store, _db: db, _dir: dir })
}

fn new_person(name: &str, sequence: u16, mrn_system: &str) -> NewPerson {
    let region = RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1980, 3, 9).unwrap();
    let id = CitizenId::generate(region, birth, sequence);
    NewPerson {
        demographics: PersonDemographics {
            name: name.into(),
            sex: id.sex(),
            birth_date: Some(birth),
            id_number: Some(id),
            ethnicity: None,
            marital_status: None,
            phone: None,
            address_region: Some(region),
            address_line: None,
            identifiers: vec![Identifier {
                system: mrn_system.into(),
                value: format!("MRN{sequence}"),
                type_code: Some("MR".into()),
            }],
        },
        home_region: region,
        non_resident: false,
    }
}

fn encounter(person_id: &str, visit: &str) -> NewEncounter {
    NewEncounter {
        person_id: person_id.to_string(),
        facility_code: "H330106".into(),
        visit_number: visit.into(),
        encounter_type: EncounterType::Outpatient,
        status: "finished".into(),
        admitted_at: Some(chrono::Utc::now().naive_utc()),
        discharged_at: None,
        department: Some("内科".into()),
        location: None,
        prior_location: None,
        attending: None,
        admit_reason: None,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every change of `from` not received from `peer`, as it travels to `peer`.
fn outgoing(from: &Store, peer: &str) -> Vec<RemoteChange> {
    from.read(|tx| tx.changes_for_link(peer, 0, 10_000))
        .unwrap()
        .iter()
        .map(|c| RemoteChange::from_change(c).unwrap())
        .collect()
}

fn apply_all(to: &Store, changes: &[RemoteChange], from_peer: &str, keep: RemoteKeep) -> Vec<ApplyOutcome> {
    to.write(|tx| changes.iter().map(|c| tx.apply_remote_change(c, from_peer, keep)).collect()).unwrap()
}

const DOCUMENT: &[u8] = b"<ClinicalDocument>federated</ClinicalDocument>";

/// Writes one of everything at `store` through the normal write paths.
fn write_records(store: &Store) -> (String, String, String) {
    store
        .write(|tx| {
            tx.insert_facility(&NewFacility {
                code: FacilityCode::parse("H330106").unwrap(),
                name: "西湖医院".into(),
                kind: FacilityKind::Hospital,
                region: RegionCode::parse("330106").unwrap(),
            })?;
            let person = tx.insert_person(&new_person("联邦甲", 21, "H330106"))?;
            tx.upsert_allergy(&NewAllergy {
                person_id: person.id.clone(),
                code: "70618".into(),
                code_system: Some("RXNORM".into()),
                display: Some("青霉素".into()),
                severity: Some("SV".into()),
                reaction: None,
                facility_code: "H330106".into(),
                submission_id: None,
                recorded_at: chrono::Utc::now().naive_utc(),
            })?;
            let visit = tx.insert_encounter(&encounter(&person.id, "V1"))?;
            let document = tx.insert_document(&NewDocument {
                person_id: Some(person.id.clone()),
                encounter_id: Some(visit.id.clone()),
                type_code: "C0001".into(),
                kind: "emr".into(),
                title: "门诊病历".into(),
                effective_at: chrono::Utc::now().naive_utc(),
                confidentiality: "N".into(),
                content_type: "text/xml".into(),
                cda_id: Some(format!("2.16.156|{}", person.id)),
                content: DOCUMENT.to_vec(),
                ..NewDocument::default()
            })?;
            tx.insert_ehr_entry(&NewEhrEntry {
                person_id: person.id.clone(),
                kind: EhrEntryKind::BasicInfo,
                occurred_at: chrono::Utc::now().naive_utc(),
                facility_code: Some("H330106".into()),
                summary: "门诊".into(),
                encounter_id: Some(visit.id.clone()),
                document_id: Some(document.id.clone()),
            })?;
            Ok((person.id, visit.id, document.id))
        })
        .unwrap()
}

/// Changes cut at 330106 apply at 330100 with their ids, once; the receiver
/// keeps them in its change log for forwarding, but never back to 330106.
fn changes_apply_once_and_travel_on(backend: Backend) {
    let (Some(a), Some(b)) = (open(backend, "330106"), open(backend, "330100")) else {
        return;
    };
    let (person, visit, document) = write_records(&a.store);
    let mut changes = outgoing(&a.store, "330100");
    let entities: Vec<&str> = changes.iter().map(|c| c.entity.as_str()).collect();
    assert_eq!(entities, ["facility", "person", "allergy", "encounter", "document", "ehr_entry"]);
    for change in &mut changes {
        if change.entity == "document" {
            change.payload.edit(|p| p["content_base64"] = base64(DOCUMENT).into());
        }
    }
    let outcomes = apply_all(&b.store, &changes, "330106", RemoteKeep::Full);
    assert!(outcomes.iter().all(|o| *o == ApplyOutcome::Applied), "{outcomes:?}");
    let before = b.store.read(|tx| tx.counts()).unwrap();
    // Applying again (a replay, or the same change by another path) writes nothing.
    let again = apply_all(&b.store, &changes, "330106", RemoteKeep::Full);
    assert!(again.iter().all(|o| *o == ApplyOutcome::AlreadyApplied), "{again:?}");
    assert_eq!(b.store.read(|tx| tx.counts()).unwrap(), before);

    b.store
        .read(|tx| {
            let rhip_store::Access::Granted(stored) = tx.get_person(&Scope::Node, &person)? else {
                panic!("person {person} is not at 330100");
            };
            assert_eq!(stored.name, "联邦甲");
            assert_eq!(stored.origin_region, "330106");
            assert_eq!(stored.identifiers.len(), 1);
            assert_eq!(tx.encounters_for(&person)?[0].id, visit);
            assert_eq!(tx.encounters_for(&person)?[0].source_region, "330106");
            assert_eq!(tx.documents_for(&person, 10)?[0].id, document);
            assert_eq!(tx.document_content(&document)?, DOCUMENT);
            assert_eq!(tx.document_holder(&document)?, None);
            assert_eq!(tx.ehr_entries_for(&person, 10)?[0].document_id.as_deref(), Some(document.as_str()));
            assert_eq!(tx.allergies_of(&Scope::Node, &person)?.len(), 1);
            assert_eq!(tx.get_facility("H330106")?.unwrap().name, "西湖医院");
            Ok(())
        })
        .unwrap();

    // The receiver's change log holds them under their ids, from 330106 ...
    let logged = b.store.read(|tx| tx.changes_after(0, 100)).unwrap();
    assert_eq!(logged.len(), changes.len());
    for (logged, sent) in logged.iter().zip(&changes) {
        assert_eq!((&logged.id, &logged.hlc, &logged.origin_region), (&sent.id, &sent.hlc, &sent.origin_region));
        assert_eq!(logged.received_from.as_deref(), Some("330106"));
    }
    // ... so they go on to the parent but never back to where they came from.
    assert!(b.store.read(|tx| tx.changes_for_link("330106", 0, 100)).unwrap().is_empty());
    assert_eq!(b.store.read(|tx| tx.changes_for_link("330000", 0, 100)).unwrap().len(), changes.len());
    assert_eq!(b.store.read(|tx| tx.pending_count("330106")).unwrap(), 0);
    // Content travels on in the payload even from a node that keeps only the index.
    let forwarded = outgoing(&b.store, "330000");
    assert!(forwarded.iter().any(|c| c.payload.to_value().get("content_base64").is_some()));
}

/// An index-only node keeps persons without details and documents without
/// bytes, remembering where the bytes are; `none` keeps only the change log.
fn index_and_none_keep_less(backend: Backend) {
    let (Some(a), Some(b), Some(c)) = (open(backend, "330106"), open(backend, "330100"), open(backend, "330000"))
    else {
        return;
    };
    let (person, _, document) = write_records(&a.store);
    let changes = outgoing(&a.store, "330100");
    let outcomes = apply_all(&b.store, &changes, "330106", RemoteKeep::Index);
    assert!(outcomes.iter().all(|o| *o == ApplyOutcome::Applied), "{outcomes:?}");
    b.store
        .read(|tx| {
            assert_eq!(tx.documents_for(&person, 10)?.len(), 1);
            let refused = tx.document_content(&document).unwrap_err();
            assert!(matches!(&refused, StoreError::NotFound(m) if m.contains("330106")), "{refused}");
            assert_eq!(tx.document_holder(&document)?.as_deref(), Some("330106"));
            assert!(tx.allergies_of(&Scope::Node, &person)?.is_empty());
            assert_eq!(tx.encounters_for(&person)?.len(), 1);
            Ok(())
        })
        .unwrap();
    let outcomes = apply_all(&c.store, &changes, "330100", RemoteKeep::None);
    assert!(outcomes.iter().all(|o| *o == ApplyOutcome::Applied), "{outcomes:?}");
    let counts = c.store.read(|tx| tx.counts()).unwrap();
    assert_eq!((counts.persons, counts.changes), (0, changes.len() as i64));
}

/// A change about a person this node does not know is parked with the
/// reason, travels on all the same, and applies once the person arrives; a
/// change about a person merged away names the survivor.
fn unknown_persons_park_and_retry(backend: Backend) {
    let (Some(a), Some(b)) = (open(backend, "330106"), open(backend, "330100")) else {
        return;
    };
    let (person, visit) = a
        .store
        .write(|tx| {
            let person = tx.insert_person(&new_person("停放", 31, "H330106"))?;
            Ok((person.id.clone(), tx.insert_encounter(&encounter(&person.id, "V31"))?.id))
        })
        .unwrap();
    let changes = outgoing(&a.store, "330100");
    let (person_change, visit_change) = (&changes[0], &changes[1]);
    let outcome = apply_all(&b.store, std::slice::from_ref(visit_change), "330106", RemoteKeep::Full);
    let expected = format!("person {person} is not known at 330100");
    assert_eq!(outcome, [ApplyOutcome::Parked(expected.clone())]);
    assert_eq!(b.store.read(|tx| tx.dead_letter_count()).unwrap(), 1);
    assert_eq!(b.store.read(|tx| tx.changes_for_link("330000", 0, 10)).unwrap().len(), 1);
    // Still parked: the retry counts the attempt.
    let retried = b.store.write(|tx| tx.retry_dead_letters(10)).unwrap();
    assert_eq!(retried[0].1, ApplyOutcome::Parked(expected));
    assert_eq!(b.store.read(|tx| tx.dead_letters(false, 10)).unwrap()[0].attempts, 2);
    // The person arrives; the retry applies the encounter once.
    apply_all(&b.store, std::slice::from_ref(person_change), "330106", RemoteKeep::Full);
    let retried = b.store.write(|tx| tx.retry_dead_letters(10)).unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].1, ApplyOutcome::Applied);
    assert_eq!(b.store.read(|tx| tx.dead_letter_count()).unwrap(), 0);
    assert_eq!(b.store.read(|tx| tx.dead_letters(true, 10)).unwrap().len(), 1);
    assert_eq!(b.store.read(|tx| tx.encounters_for(&person)).unwrap()[0].id, visit);
    assert_eq!(b.store.read(|tx| tx.changes_after(0, 10)).unwrap().len(), 2);
    assert!(apply_all(&b.store, &changes, "330106", RemoteKeep::Full)
        .iter()
        .all(|o| *o == ApplyOutcome::AlreadyApplied));

    // A merge travels; a later change about the merged person names the survivor.
    let (survivor, merged) = a
        .store
        .write(|tx| {
            let survivor = tx.insert_person(&new_person("存续", 32, "H330106"))?.id;
            let merged = tx.insert_person(&new_person("被并", 33, "H330106"))?.id;
            tx.merge_persons(&survivor, &merged, None, "test")?;
            Ok((survivor, merged))
        })
        .unwrap();
    let more: Vec<RemoteChange> = outgoing(&a.store, "330100").into_iter().skip(changes.len()).collect();
    let outcomes = apply_all(&b.store, &more, "330106", RemoteKeep::Full);
    assert!(outcomes.iter().all(|o| *o == ApplyOutcome::Applied), "{outcomes:?}");
    let rhip_store::Access::Granted(stored) = b.store.read(|tx| tx.get_person(&Scope::Node, &merged)).unwrap() else {
        panic!("merged person missing");
    };
    assert_eq!((stored.status.as_str(), stored.merged_into.as_deref()), ("merged", Some(survivor.as_str())));
    let mut late = visit_change.clone();
    late.id = rhip_core::new_id().to_string();
    late.payload.edit(|p| p["id"] = rhip_core::new_id().to_string().into());
    late.payload.edit(|p| p["visit_number"] = "V33".into());
    late.payload.edit(|p| p["person_id"] = merged.clone().into());
    let outcome = apply_all(&b.store, &[late], "330106", RemoteKeep::Full);
    assert_eq!(outcome, [ApplyOutcome::Parked(format!("person {merged} was merged into {survivor}"))]);
}

/// A person registered at both nodes under the same citizen ID: the remote
/// EMPI id becomes an alias of the local one, and later changes follow it.
fn same_citizen_id_becomes_an_alias(backend: Backend) {
    let (Some(a), Some(b)) = (open(backend, "330106"), open(backend, "330100")) else {
        return;
    };
    let remote = a.store.write(|tx| tx.insert_person(&new_person("两地", 41, "H330106"))).unwrap().id;
    a.store.write(|tx| tx.insert_encounter(&encounter(&remote, "V41"))).unwrap();
    let local = b.store.write(|tx| tx.insert_person(&new_person("两地", 41, "H330100"))).unwrap().id;
    assert_ne!(remote, local);
    let outcomes = apply_all(&b.store, &outgoing(&a.store, "330100"), "330106", RemoteKeep::Full);
    assert!(outcomes.iter().all(|o| *o == ApplyOutcome::Applied), "{outcomes:?}");
    assert_eq!(b.store.read(|tx| tx.local_person_id(&remote)).unwrap().as_deref(), Some(local.as_str()));
    assert_eq!(b.store.read(|tx| tx.counts()).unwrap().persons, 1);
    assert_eq!(b.store.read(|tx| tx.encounters_for(&local)).unwrap().len(), 1);
    // The remote identifier was added to the local person.
    let rhip_store::Access::Granted(stored) = b.store.read(|tx| tx.get_person(&Scope::Node, &local)).unwrap() else {
        panic!("local person missing");
    };
    assert_eq!(stored.identifiers.len(), 2);
}

/// Concurrent demographic updates reach the same result in either order:
/// the home county wins, then the later HLC, then the greater origin code.
fn demographics_converge_in_any_order(backend: Backend) {
    let (Some(a), Some(x), Some(y)) = (open(backend, "330106"), open(backend, "330100"), open(backend, "330000"))
    else {
        return;
    };
    let created = a.store.write(|tx| tx.insert_person(&new_person("原名", 51, "H330106"))).unwrap();
    let create = outgoing(&a.store, "330100").remove(0);
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    let update = |origin: &str, ms: u64, name: &str| {
        let mut change = create.clone();
        change.id = rhip_core::new_id().to_string();
        change.op = "update".into();
        change.origin_region = origin.into();
        change.hlc = HlcTimestamp::new(ms, 0).encode();
        change.payload.edit(|p| p["name"] = name.into());
        change
    };
    let name_at = |store: &Store| match store.read(|tx| tx.get_person(&Scope::Node, &created.id)).unwrap() {
        rhip_store::Access::Granted(p) => p.name,
        _ => panic!("person missing"),
    };
    // Home county (earlier) against another county (later): home wins.
    let home = update("330106", now + 1, "家乡改名");
    let away = update("330108", now + 2, "外地改名");
    apply_all(&x.store, &[create.clone(), home.clone(), away.clone()], "330106", RemoteKeep::Full);
    apply_all(&y.store, &[create.clone(), away, home], "330106", RemoteKeep::Full);
    assert_eq!((name_at(&x.store), name_at(&y.store)), ("家乡改名".into(), "家乡改名".into()));
    // Two other counties: the later HLC wins; on equal HLCs the greater origin code.
    let later = update("330108", now + 3, "较晚");
    let earlier = update("330110", now + 2, "较早");
    let (Some(p), Some(q)) = (open(backend, "330100"), open(backend, "330000")) else {
        return;
    };
    let mut away_create = create.clone();
    away_create.origin_region = "330102".into();
    away_create.payload.edit(|p| p["home_region"] = "330106".into());
    apply_all(&p.store, &[away_create.clone(), later.clone(), earlier.clone()], "330106", RemoteKeep::Full);
    apply_all(&q.store, &[away_create.clone(), earlier, later], "330106", RemoteKeep::Full);
    assert_eq!((name_at(&p.store), name_at(&q.store)), ("较晚".into(), "较晚".into()));
    let tie_low = update("330108", now + 4, "小码");
    let tie_high = update("330110", now + 4, "大码");
    apply_all(&p.store, &[tie_low.clone(), tie_high.clone()], "330106", RemoteKeep::Full);
    apply_all(&q.store, &[tie_high, tie_low], "330106", RemoteKeep::Full);
    assert_eq!((name_at(&p.store), name_at(&q.store)), ("大码".into(), "大码".into()));
}

/// Outbound batches: kept until acknowledged, cursors only move forward.
fn outbound_batches_are_kept_until_acknowledged(backend: Backend) {
    let Some(a) = open(backend, "330106") else {
        return;
    };
    let store = &a.store;
    let link = store.write(|tx| tx.ensure_link("330100", "parent")).unwrap();
    assert_eq!((link.cut_seq, link.next_seq, link.last_acked_seq), (0, 1, 0));
    assert_eq!(link.last_acked_digest, GENESIS_DIGEST);
    store.write(|tx| tx.ensure_link("330100", "parent")).unwrap();
    assert_eq!(store.read(|tx| tx.links()).unwrap().len(), 1);
    for sequence in 61..64 {
        store.write(|tx| tx.insert_person(&new_person("批次", sequence, "H330106"))).unwrap();
    }
    assert_eq!(store.read(|tx| tx.pending_count("330100")).unwrap(), 3);
    let batch = |seq: i64, first: i64, last: i64| NewOutboundBatch {
        peer: "330100".into(),
        seq,
        batch_id: rhip_core::new_id().to_string(),
        digest: format!("digest-{seq}"),
        manifest: format!("{{\"seq\":{seq}}}"),
        payload: vec![seq as u8; 16],
        record_count: last - first + 1,
        first_change_seq: first,
        last_change_seq: last,
    };
    store.write(|tx| tx.save_outbound_batch(&batch(1, 1, 2), 2)).unwrap();
    let link = store.read(|tx| tx.link("330100")).unwrap().unwrap();
    assert_eq!((link.cut_seq, link.next_seq), (2, 2));
    assert_eq!(store.read(|tx| tx.pending_count("330100")).unwrap(), 1);
    // A racing cutter with the same sequence is refused, and leaves nothing.
    let refused = store.write(|tx| tx.save_outbound_batch(&batch(1, 3, 3), 3)).unwrap_err();
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused}");
    store.write(|tx| tx.save_outbound_batch(&batch(2, 3, 3), 3)).unwrap();
    store.write(|tx| tx.advance_cut("330100", 1)).unwrap();
    assert_eq!(store.read(|tx| tx.link("330100")).unwrap().unwrap().cut_seq, 3);
    assert_eq!(store.read(|tx| tx.unacked_count("330100")).unwrap(), 2);
    let unacked = store.read(|tx| tx.unacked_batches("330100", 10)).unwrap();
    assert_eq!(unacked.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(unacked[0].payload, vec![1u8; 16]);
    store.write(|tx| tx.mark_batch_sent("330100", 1)).unwrap();
    store.write(|tx| tx.note_link_sent("330100")).unwrap();
    store.write(|tx| tx.note_link_failure("330100", "connection refused")).unwrap();
    store.write(|tx| tx.note_link_failure("330100", "connection refused")).unwrap();
    assert_eq!(store.read(|tx| tx.link("330100")).unwrap().unwrap().failures, 2);
    assert!(store.read(|tx| tx.outbound_batch("330100", 1)).unwrap().unwrap().sent_at.is_some());
    // Acknowledging 2 acknowledges 1 too; a late receipt for 1 moves nothing back.
    assert_eq!(store.write(|tx| tx.ack_batches("330100", 2, "digest-2", "receipt-2")).unwrap(), 2);
    assert_eq!(store.write(|tx| tx.ack_batches("330100", 1, "digest-1", "receipt-1")).unwrap(), 0);
    assert_eq!(store.write(|tx| tx.ack_batches("330100", 2, "digest-2", "receipt-2")).unwrap(), 0);
    let link = store.read(|tx| tx.link("330100")).unwrap().unwrap();
    assert_eq!((link.last_acked_seq, link.last_acked_digest.as_str(), link.failures), (2, "digest-2", 0));
    assert!(link.last_error.is_none());
    assert_eq!(store.read(|tx| tx.unacked_count("330100")).unwrap(), 0);
    assert_eq!(store.read(|tx| tx.outbound_batch("330100", 2)).unwrap().unwrap().receipt.as_deref(), Some("receipt-2"));
    assert_eq!(store.write(|tx| tx.prune_acked_batches("330100", 1)).unwrap(), 1);
    assert!(store.read(|tx| tx.outbound_batch("330100", 1)).unwrap().is_none());
    assert!(store.read(|tx| tx.outbound_batch("330100", 2)).unwrap().is_some());
}

/// The inbound chain takes only the next batch, and answers replays.
fn inbound_chain_refuses_gaps(backend: Backend) {
    let Some(a) = open(backend, "330100") else {
        return;
    };
    let store = &a.store;
    assert_eq!(store.read(|tx| tx.inbound_state("330106")).unwrap(), (0, GENESIS_DIGEST.to_string()));
    let gap = store.write(|tx| tx.record_inbound_batch("330106", 2, "b2", "d2", "r2")).unwrap_err();
    assert!(matches!(gap, StoreError::Conflict(_)), "{gap}");
    store.write(|tx| tx.record_inbound_batch("330106", 1, "b1", "d1", "r1")).unwrap();
    let twice = store.write(|tx| tx.record_inbound_batch("330106", 1, "b1", "d1", "r1")).unwrap_err();
    assert!(matches!(twice, StoreError::Conflict(_)), "{twice}");
    store.write(|tx| tx.record_inbound_batch("330106", 2, "b2", "d2", "r2")).unwrap();
    assert_eq!(store.read(|tx| tx.inbound_state("330106")).unwrap(), (2, "d2".to_string()));
    let receipt = |seq| store.read(|tx| tx.inbound_batch("330106", seq)).unwrap().map(|(_, receipt)| receipt);
    assert_eq!(receipt(1).as_deref(), Some("r1"));
    assert_eq!(receipt(3), None);
    assert_eq!(store.read(|tx| tx.inbound_state("330108")).unwrap().0, 0);
}

/// A whole batch applied at once gives, change for change, what applying
/// its changes one by one gives: one refused change is parked while the
/// others are kept, a repeat is applied once, a replay applies nothing.
fn a_batch_applies_like_its_changes_one_by_one(backend: Backend) {
    let (Some(a), Some(b)) = (open(backend, "330106"), open(backend, "330100")) else {
        return;
    };
    write_records(&a.store);
    let mut batch = outgoing(&a.store, "330100");
    let ordinary = batch.len();
    // An encounter of a person 330100 will not know: its person change is left out.
    let orphan = a
        .store
        .write(|tx| {
            let person = tx.insert_person(&new_person("联邦乙", 23, "H330106"))?;
            tx.insert_encounter(&encounter(&person.id, "V2"))
        })
        .unwrap();
    let orphan_change =
        outgoing(&a.store, "330100").into_iter().find(|c| c.entity == "encounter" && c.entity_id == orphan.id).unwrap();
    batch.insert(1, orphan_change);
    batch.push(batch[0].clone());

    let outcomes = b.store.write(|tx| tx.apply_remote_changes(&batch, "330106", |_| RemoteKeep::Full)).unwrap();
    assert_eq!(outcomes.len(), batch.len());
    assert!(
        matches!(&outcomes[1], ApplyOutcome::Parked(reason) if reason.contains("is not known at 330100")),
        "{outcomes:?}"
    );
    let applied = outcomes.iter().filter(|o| **o == ApplyOutcome::Applied).count();
    assert_eq!(applied, ordinary, "{outcomes:?}");
    assert_eq!(outcomes.last(), Some(&ApplyOutcome::AlreadyApplied), "a change listed twice applies once");
    assert_eq!(b.store.read(|tx| tx.dead_letter_count()).unwrap(), 1);
    let logged = b.store.read(|tx| tx.changes_for_link("440000", 0, 10_000)).unwrap();
    assert_eq!(logged.len(), ordinary + 1, "every change is logged once, the parked one too");

    // A batch without refusals goes the quick way, and a replay applies nothing.
    let (Some(c), _) = (open(backend, "330100"), ()) else { return };
    let clean: Vec<RemoteChange> = batch[..1].iter().chain(&batch[2..=ordinary]).cloned().collect();
    let outcomes = c.store.write(|tx| tx.apply_remote_changes(&clean, "330106", |_| RemoteKeep::Full)).unwrap();
    assert!(outcomes.iter().all(|o| *o == ApplyOutcome::Applied), "{outcomes:?}");
    let again = c.store.write(|tx| tx.apply_remote_changes(&clean, "330106", |_| RemoteKeep::Full)).unwrap();
    assert!(again.iter().all(|o| *o == ApplyOutcome::AlreadyApplied), "{again:?}");
}

/// A node's token key goes down and is kept there; a child cannot hand its
/// parent a key (of its own or one claiming to be from above), and a key
/// arriving from the parent must belong to a node above.
fn issuer_keys_are_taken_from_above_only(backend: Backend) {
    let Some(province) = open(backend, "330000") else { return };
    let Some(city) = open(backend, "330100") else { return };
    let Some(county) = open(backend, "330106") else { return };
    let published = province.store.write(|tx| tx.publish_own_key("0123456789abcdef", "PEM-A")).unwrap();
    assert!(published);
    assert!(!province.store.write(|tx| tx.publish_own_key("0123456789abcdef", "PEM-A")).unwrap(), "published once");
    let keys = outgoing(&province.store, "330100");
    let key_change: Vec<RemoteChange> = keys.into_iter().filter(|c| c.entity == "issuer_key").collect();
    assert_eq!(key_change.len(), 1);

    // Down: the city keeps the province's key and sends it on to the county.
    assert_eq!(apply_all(&city.store, &key_change, "330000", RemoteKeep::Full), [ApplyOutcome::Applied]);
    let at_city = city.store.read(|tx| tx.issuer_keys()).unwrap();
    assert_eq!((at_city.len(), at_city[0].region.as_str()), (1, "330000"));
    let onward = outgoing(&city.store, "330106");
    assert!(onward.iter().any(|c| c.entity == "issuer_key"), "travels on down");
    assert_eq!(apply_all(&county.store, &onward, "330100", RemoteKeep::Full)[0], ApplyOutcome::Applied);

    // Up: the county's own key pushed to the city is parked, not trusted.
    county.store.write(|tx| tx.publish_own_key("fedcba9876543210", "PEM-B")).unwrap();
    let upward: Vec<RemoteChange> =
        outgoing(&county.store, "330100").into_iter().filter(|c| c.entity_id == "fedcba9876543210").collect();
    let refused = apply_all(&city.store, &upward, "330106", RemoteKeep::Full);
    assert!(
        matches!(&refused[0], ApplyOutcome::Parked(reason) if reason.contains("not this node's parent")),
        "{refused:?}"
    );
    // A key of a sibling region, even from the parent, is parked too.
    let Some(sibling) = open(backend, "330108") else { return };
    let mut forged = upward[0].clone();
    forged.id = "0190b6c4-0000-7000-8000-00000000f00d".into();
    let outcome = apply_all(&sibling.store, &[forged], "330100", RemoteKeep::Full);
    assert!(
        matches!(&outcome[0], ApplyOutcome::Parked(reason) if reason.contains("not the key of a node above")),
        "{outcome:?}"
    );
    assert_eq!(city.store.read(|tx| tx.issuer_keys()).unwrap().len(), 1, "only the province's key at the city");
}

both_backends! {
    issuer_keys_are_taken_from_above_only => super::issuer_keys_are_taken_from_above_only;
    a_batch_applies_like_its_changes_one_by_one => super::a_batch_applies_like_its_changes_one_by_one;
    changes_apply_once_and_travel_on => super::changes_apply_once_and_travel_on;
    index_and_none_keep_less => super::index_and_none_keep_less;
    unknown_persons_park_and_retry => super::unknown_persons_park_and_retry;
    same_citizen_id_becomes_an_alias => super::same_citizen_id_becomes_an_alias;
    demographics_converge_in_any_order => super::demographics_converge_in_any_order;
    outbound_batches_are_kept_until_acknowledged => super::outbound_batches_are_kept_until_acknowledged;
    inbound_chain_refuses_gaps => super::inbound_chain_refuses_gaps;
}
