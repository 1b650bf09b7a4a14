//! The storage layer on both backends: migrations up, down and up again,
//! identical schemas, database-enforced uniqueness under concurrency, the
//! change log written with each change, an append-only audit log, and a
//! database that refuses to serve a second node.

use diesel::{Connection, RunQueryDsl};
use rhip_core::{CitizenId, Identifier, PersonDemographics, RegionCode, Sex};
use rhip_store::{NewPerson, Store, StoreError};
use rhip_tests::{both_backends, Backend, TestDb};

struct Opened {
    store: Store,
    url: String,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

fn open(backend: Backend, region: &str) -> Option<Opened> {
    let db = TestDb::new(backend)?;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path().join("rhip.db").display()));
    let store = Store::open(&url, RegionCode::parse(region).unwrap(), &rhip_tests::store_options()).unwrap();
    store.migrate().unwrap();
    store.write(|tx| tx.bind_node_region()).unwrap();
    Some(Opened { store, url, _db: db, _dir: dir })
}

fn new_person(name: &str, sequence: u16) -> NewPerson {
    let region = RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1985, 6, 15).unwrap();
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
                system: "H1".into(),
                value: format!("MRN{sequence}"),
                type_code: Some("MR".into()),
            }],
        },
        home_region: region,
        non_resident: false,
    }
}

fn migrations_go_down_and_up_again(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    let store = &opened.store;
    store.write(|tx| tx.insert_person(&new_person("迁移测试", 1))).unwrap();
    let reverted = store.revert_all_migrations().unwrap();
    assert!(!reverted.is_empty());
    let applied = store.migrate().unwrap();
    assert_eq!(applied.len(), reverted.len());
    assert_eq!(store.read(|tx| tx.counts()).unwrap().persons, 0);
    store.write(|tx| tx.bind_node_region()).unwrap();
}

/// Change payloads went from base64 text to bytes (migration 000014): its
/// down re-encodes them in the text format an older build reads (the same
/// ciphertext), and up again they still open, with no sequence used twice.
fn change_payloads_survive_the_binary_migration_both_ways(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    let store = &opened.store;
    store.write(|tx| tx.insert_person(&new_person("载荷迁移", 3))).unwrap();
    store.write(|tx| tx.insert_person(&new_person("载荷迁移", 4))).unwrap();
    let before = store.read(|tx| tx.changes_after(0, 100)).unwrap();
    assert!(before.len() >= 2, "{before:?}");
    assert!(before.iter().all(|c| c.payload.starts_with('{')), "{before:?}");

    let reverted = store.revert_last_migration().unwrap();
    assert!(reverted.replace('-', "").contains("000014"), "{reverted}");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let text_format = "SELECT count(*) AS n FROM change_log WHERE payload LIKE 'enc1:%'";
    let in_text: Count = match backend {
        Backend::Sqlite => {
            let path = opened.url.trim_start_matches("sqlite://");
            diesel::sql_query(text_format).get_result(&mut diesel::SqliteConnection::establish(path).unwrap())
        }
        Backend::Postgres => {
            diesel::sql_query(text_format).get_result(&mut diesel::PgConnection::establish(&opened.url).unwrap())
        }
    }
    .unwrap();
    assert_eq!(in_text.n, before.len() as i64, "every payload is in the text format after down");

    assert_eq!(store.migrate().unwrap().len(), 1);
    let after = store.read(|tx| tx.changes_after(0, 100)).unwrap();
    assert_eq!(after, before);
    let last = before.iter().map(|c| c.seq).max().unwrap();
    store.write(|tx| tx.insert_person(&new_person("载荷迁移", 5))).unwrap();
    let newer = store.read(|tx| tx.changes_after(last, 100)).unwrap();
    assert!(!newer.is_empty() && newer.iter().all(|c| c.seq > last), "{newer:?}");
}

fn citizen_id_uniqueness_holds_under_concurrency(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = opened.store.clone();
            std::thread::spawn(move || store.write(|tx| tx.insert_person(&new_person("并发测试", 7))))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let created = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count();
    assert_eq!((created, conflicts), (1, 7), "{results:?}");
    let counts = opened.store.read(|tx| tx.counts()).unwrap();
    assert_eq!(counts.persons, 1);
    // The winner's change is in the outbox; the losers left nothing behind.
    assert_eq!(counts.changes, 1);
    // The metrics' estimates are exact for small tables.
    assert_eq!(opened.store.read(|tx| tx.estimated_counts()).unwrap(), counts);
    let changes = opened.store.read(|tx| tx.changes_after(0, 10)).unwrap();
    assert_eq!(changes[0].entity, "person");
    assert_eq!(changes[0].home_region.as_deref(), Some("330106"));
    assert_eq!(changes[0].origin_region, "330106");
}

fn an_identifier_belongs_to_one_person(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    opened.store.write(|tx| tx.insert_person(&new_person("甲", 1))).unwrap();
    let mut other = new_person("乙", 2);
    other.demographics.identifiers[0].value = "MRN1".into();
    let refused = opened.store.write(|tx| tx.insert_person(&other)).unwrap_err();
    assert!(matches!(&refused, StoreError::Conflict(m) if m.contains("H1|MRN1")), "{refused}");
    // The refused person was rolled back with its identifier.
    assert_eq!(opened.store.read(|tx| tx.counts()).unwrap().persons, 1);
}

fn the_audit_log_is_append_only(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    opened
        .store
        .write(|tx| {
            tx.append_audit(&rhip_store::NewAuditEntry {
                actor: "tester".into(),
                action: "read".into(),
                resource_type: "person".into(),
                outcome: "success".into(),
                ..Default::default()
            })
        })
        .unwrap();
    let tamper = |sql: &str| -> Result<usize, diesel::result::Error> {
        if backend == Backend::Postgres {
            let mut conn = diesel::PgConnection::establish(&opened.url).unwrap();
            diesel::sql_query(sql).execute(&mut conn)
        } else {
            let path = opened.url.trim_start_matches("sqlite://");
            let mut conn = diesel::SqliteConnection::establish(path).unwrap();
            diesel::sql_query(sql).execute(&mut conn)
        }
    };
    for sql in ["UPDATE audit_log SET outcome = 'forged'", "DELETE FROM audit_log"] {
        let error = tamper(sql).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    assert_eq!(opened.store.read(|tx| tx.counts()).unwrap().audit_entries, 1);
}

fn a_database_serves_one_node(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    let other = Store::open(&opened.url, RegionCode::parse("330108").unwrap(), &rhip_tests::store_options()).unwrap();
    let refused = other.write(|tx| tx.bind_node_region()).unwrap_err();
    assert!(matches!(refused, StoreError::WrongNode { .. }), "{refused}");
}

fn search_filters_apply_in_sql(backend: Backend) {
    let Some(opened) = open(backend, "330000") else {
        return;
    };
    let store = &opened.store;
    let mut binjiang = new_person("滨江", 3);
    binjiang.home_region = RegionCode::parse("330108").unwrap();
    store.write(|tx| tx.insert_person(&new_person("西湖", 1))).unwrap();
    store.write(|tx| tx.insert_person(&binjiang)).unwrap();
    let query = |scope: rhip_store::Scope, q: rhip_store::PersonQuery| {
        store.read(|tx| tx.find_persons(&scope, &rhip_store::PersonQuery { limit: 100, ..q })).unwrap()
    };
    let region = |code: &str| rhip_store::Scope::Region(RegionCode::parse(code).unwrap());
    assert_eq!(query(region("330000"), Default::default()).len(), 2);
    assert_eq!(query(region("330108"), Default::default())[0].name, "滨江");
    assert_eq!(query(region("440000"), Default::default()).len(), 0);
    let birth = chrono::NaiveDate::from_ymd_opt(1985, 6, 15);
    let by_name = query(
        region("330000"),
        rhip_store::PersonQuery { name: Some("西湖".into()), birth_date: birth, ..Default::default() },
    );
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].identifiers[0].value, "MRN1");
    let expected_sex = CitizenId::generate(
        RegionCode::parse("330106").unwrap(),
        chrono::NaiveDate::from_ymd_opt(1985, 6, 15).unwrap(),
        1,
    )
    .sex();
    assert_eq!(by_name[0].sex, expected_sex.code());
    assert_ne!(expected_sex, Sex::Unknown);
}

/// The two migration histories must build the same tables and columns.
#[test]
fn sqlite_and_postgres_schemas_match() {
    let Some(pg) = open(Backend::Postgres, "330106") else {
        return;
    };
    let sqlite = open(Backend::Sqlite, "330106").unwrap();
    #[derive(diesel::QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        nullable: bool,
    }
    let mut pg_conn = diesel::PgConnection::establish(&pg.url).unwrap();
    let mut pg_columns: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name, (is_nullable = 'YES') AS nullable
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut pg_conn)
    .unwrap();
    let mut sqlite_conn = diesel::SqliteConnection::establish(sqlite.url.trim_start_matches("sqlite://")).unwrap();
    let mut sqlite_columns: Vec<Column> = diesel::sql_query(
        "SELECT m.name AS table_name, p.name AS column_name, (p.\"notnull\" = 0 AND p.pk = 0) AS nullable
         FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'",
    )
    .load(&mut sqlite_conn)
    .unwrap();
    pg_columns.sort();
    sqlite_columns.sort();
    assert!(pg_columns.len() > 100, "{}", pg_columns.len());
    assert_eq!(pg_columns, sqlite_columns);
}

/// Allergies, contacts and insurance are upserted by their unique key: a
/// repeat changes nothing and writes no change-log row, a change updates the
/// row in place with one; reads honour the scope; a merge moves what the
/// survivor lacks and its undoing moves it back.
fn person_details_upsert_and_merge(backend: Backend) {
    use rhip_store::{NewAllergy, NewContact, NewCoverage, Scope, Upserted};
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    let store = &opened.store;
    let (a, b) = store
        .write(|tx| {
            Ok((tx.insert_person(&new_person("详情甲", 11))?.id, tx.insert_person(&new_person("详情乙", 12))?.id))
        })
        .unwrap();
    let allergy = |person: &str, code: &str, severity: &str| NewAllergy {
        person_id: person.to_string(),
        code: code.to_string(),
        code_system: Some("RXNORM".into()),
        display: Some(format!("过敏原 {code}")),
        severity: Some(severity.to_string()),
        reaction: None,
        facility_code: "H1".into(),
        submission_id: None,
        recorded_at: chrono::Utc::now().naive_utc(),
    };
    let changes = |store: &Store| store.read(|tx| tx.changes_after(0, 10_000)).unwrap().len();
    let before = changes(store);
    assert_eq!(store.write(|tx| tx.upsert_allergy(&allergy(&a, "70618", "SV"))).unwrap(), Upserted::Created);
    assert_eq!(store.write(|tx| tx.upsert_allergy(&allergy(&a, "70618", "SV"))).unwrap(), Upserted::Unchanged);
    assert_eq!(changes(store), before + 1);
    assert_eq!(store.write(|tx| tx.upsert_allergy(&allergy(&a, "70618", "MO"))).unwrap(), Upserted::Updated);
    assert_eq!(changes(store), before + 2);
    let stored = store.read(|tx| tx.allergies_of(&Scope::Node, &a)).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].severity.as_deref(), Some("MO"));
    let contact = |person: &str, phone: Option<&str>| NewContact {
        person_id: person.to_string(),
        name: "李娜".into(),
        relationship: None,
        phone: phone.map(str::to_string),
        facility_code: "H1".into(),
        submission_id: None,
    };
    assert_eq!(store.write(|tx| tx.upsert_contact(&contact(&a, None))).unwrap(), Upserted::Created);
    assert_eq!(store.write(|tx| tx.upsert_contact(&contact(&a, None))).unwrap(), Upserted::Unchanged);
    assert_eq!(store.write(|tx| tx.upsert_contact(&contact(&a, Some("13900000000")))).unwrap(), Upserted::Updated);
    let coverage = NewCoverage {
        person_id: a.clone(),
        plan: Some("310".into()),
        company: None,
        member_id: None,
        facility_code: "H1".into(),
        submission_id: None,
    };
    assert_eq!(store.write(|tx| tx.upsert_coverage(&coverage)).unwrap(), Upserted::Created);
    assert_eq!(store.write(|tx| tx.upsert_coverage(&coverage)).unwrap(), Upserted::Unchanged);
    // Scope: another region sees nothing, the person themself sees theirs.
    let elsewhere = Scope::Region(RegionCode::parse("110105").unwrap());
    assert!(store.read(|tx| tx.allergies_of(&elsewhere, &a)).unwrap().is_empty());
    assert!(store.read(|tx| tx.contacts_of(&elsewhere, std::slice::from_ref(&a))).unwrap().is_empty());
    assert_eq!(store.read(|tx| tx.contacts_of(&Scope::Person(a.clone()), &[a.clone(), b.clone()])).unwrap().len(), 1);
    assert_eq!(
        store.read(|tx| tx.coverages_of(&Scope::Facility("H1".into()), std::slice::from_ref(&a))).unwrap().len(),
        1
    );
    // B has the same allergen and one more: merging B into A moves only the new one.
    store.write(|tx| tx.upsert_allergy(&allergy(&b, "70618", "MI"))).unwrap();
    store.write(|tx| tx.upsert_allergy(&allergy(&b, "1191", "SV"))).unwrap();
    store.write(|tx| tx.upsert_contact(&contact(&b, None))).unwrap();
    let merge = store.write(|tx| tx.merge_persons(&a, &b, None, "test")).unwrap();
    let codes = |person: &str| {
        let mut codes: Vec<String> =
            store.read(|tx| tx.allergies_of(&Scope::Node, person)).unwrap().into_iter().map(|r| r.code).collect();
        codes.sort();
        codes
    };
    assert_eq!(codes(&a), ["1191", "70618"]);
    assert_eq!(codes(&b), ["70618"]);
    assert_eq!(store.read(|tx| tx.contacts_of(&Scope::Node, std::slice::from_ref(&a))).unwrap().len(), 1);
    store.write(|tx| tx.unmerge(&merge.id, "test")).unwrap();
    assert_eq!(codes(&a), ["70618"]);
    assert_eq!(codes(&b), ["1191", "70618"]);
}

/// Two processes of one node over PostgreSQL (two stores here): only one
/// holds a job's lock at a time, and dropping it frees it. On SQLite the
/// node is one process and the guard is free.
fn one_process_runs_a_singleton_job(backend: Backend) {
    let Some(opened) = open(backend, "330106") else {
        return;
    };
    let other = Store::open(&opened.url, RegionCode::parse("330106").unwrap(), &rhip_tests::store_options()).unwrap();
    let held = opened.store.try_singleton("rhip:test:job").unwrap();
    assert!(held.is_some());
    let second = other.try_singleton("rhip:test:job").unwrap();
    assert_eq!(second.is_some(), backend == Backend::Sqlite);
    assert!(other.try_singleton("rhip:test:another-job").unwrap().is_some(), "locks are per name");
    drop(second);
    drop(held);
    assert!(other.try_singleton("rhip:test:job").unwrap().is_some(), "released on drop");
}

both_backends! {
    one_process_runs_a_singleton_job => super::one_process_runs_a_singleton_job;
    person_details_upsert_and_merge => super::person_details_upsert_and_merge;
    migrations_go_down_and_up_again => super::migrations_go_down_and_up_again;
    change_payloads_survive_the_binary_migration_both_ways => super::change_payloads_survive_the_binary_migration_both_ways;
    citizen_id_uniqueness_holds_under_concurrency => super::citizen_id_uniqueness_holds_under_concurrency;
    an_identifier_belongs_to_one_person => super::an_identifier_belongs_to_one_person;
    the_audit_log_is_append_only => super::the_audit_log_is_append_only;
    a_database_serves_one_node => super::a_database_serves_one_node;
    search_filters_apply_in_sql => super::search_filters_apply_in_sql;
}

/// Every foreign key has an index starting with its column, so joins and
/// cascades do not scan (checked on SQLite; the schemas are equal).
#[test]
fn every_foreign_key_is_indexed() {
    let opened = open(Backend::Sqlite, "330106").unwrap();
    #[derive(diesel::QueryableByName, Debug)]
    struct Unindexed {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
    }
    let mut conn = diesel::SqliteConnection::establish(opened.url.trim_start_matches("sqlite://")).unwrap();
    let unindexed: Vec<Unindexed> = diesel::sql_query(
        "SELECT m.name AS table_name, f.\"from\" AS column_name
         FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
         WHERE m.type = 'table' AND NOT EXISTS (
             SELECT 1 FROM pragma_index_list(m.name) i JOIN pragma_index_info(i.name) c
             WHERE c.seqno = 0 AND c.name = f.\"from\")",
    )
    .load(&mut conn)
    .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let foreign_keys: Vec<Count> = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
    )
    .load(&mut conn)
    .unwrap();
    assert!(foreign_keys[0].n >= 15, "the check sees the foreign keys: {}", foreign_keys[0].n);
    assert!(
        unindexed.is_empty(),
        "{:?}",
        unindexed.iter().map(|u| format!("{}.{}", u.table_name, u.column_name)).collect::<Vec<_>>()
    );
}
