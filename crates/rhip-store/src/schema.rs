//! Diesel table definitions shared by SQLite and PostgreSQL.
//!
//! Written by hand to the types both backends share (ids as text, UTC
//! timestamps, payloads as text or binary); `migrations/sqlite` and
//! `migrations/postgres` must produce exactly these tables, which a test checks.
#![allow(missing_docs)]

diesel::table! {
    /// Facts about the node this database belongs to (its region, schema notes).
    node_meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    /// Facility registry: who may submit records to this node.
    facilities (code) {
        code -> Text,
        name -> Text,
        kind -> Text,
        region -> Text,
        status -> Text,
        hlc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// DID households (户).
    households (id) {
        id -> Text,
        region -> Text,
        address_line -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// DID persons; `id` is the federation-wide EMPI id. `name`, `id_number`,
    /// `phone` and `address_line` hold sealed values (see `crypt`);
    /// `id_number_index` (unique) and `name_index` are their blind indexes.
    persons (id) {
        id -> Text,
        home_region -> Text,
        name -> Text,
        sex -> Text,
        birth_date -> Nullable<Date>,
        id_number -> Nullable<Text>,
        ethnicity -> Nullable<Text>,
        marital_status -> Nullable<Text>,
        phone -> Nullable<Text>,
        address_region -> Nullable<Text>,
        address_line -> Nullable<Text>,
        household_id -> Nullable<Text>,
        household_relation -> Nullable<Text>,
        non_resident -> Bool,
        status -> Text,
        merged_into -> Nullable<Text>,
        origin_region -> Text,
        hlc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        primary_facility -> Nullable<Text>,
        primary_provider -> Nullable<Text>,
        demographics_hlc -> Nullable<Text>,
        demographics_origin -> Nullable<Text>,
        id_number_index -> Nullable<Text>,
        name_index -> Nullable<Text>,
    }
}

diesel::table! {
    /// DID identifier cross-reference (PIX): local identifiers to EMPI ids.
    person_identifiers (id) {
        id -> Text,
        person_id -> Text,
        system -> Text,
        value -> Text,
        type_code -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// EMRD encounters (visits and stays) at a facility.
    encounters (id) {
        id -> Text,
        person_id -> Text,
        facility_code -> Text,
        visit_number -> Text,
        encounter_type -> Text,
        status -> Text,
        admitted_at -> Nullable<Timestamp>,
        discharged_at -> Nullable<Timestamp>,
        department -> Nullable<Text>,
        location -> Nullable<Text>,
        attending -> Nullable<Text>,
        source_region -> Text,
        prior_location -> Nullable<Text>,
        hlc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        admit_reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// EMRD diagnoses of an encounter.
    diagnoses (id) {
        id -> Text,
        encounter_id -> Nullable<Text>,
        person_id -> Text,
        code_system -> Text,
        code -> Text,
        display -> Nullable<Text>,
        diagnosis_type -> Nullable<Text>,
        diagnosed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        document_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// EMRD documents with their original bytes.
    documents (id) {
        id -> Text,
        person_id -> Nullable<Text>,
        encounter_id -> Nullable<Text>,
        type_code -> Text,
        title -> Text,
        effective_at -> Timestamp,
        author_facility -> Nullable<Text>,
        custodian -> Nullable<Text>,
        confidentiality -> Text,
        content_type -> Text,
        sha256 -> Text,
        size_bytes -> BigInt,
        content -> Nullable<Binary>,
        supersedes -> Nullable<Text>,
        status -> Text,
        source_region -> Text,
        hlc -> Text,
        created_at -> Timestamp,
        cda_id -> Nullable<Text>,
        set_id -> Nullable<Text>,
        version_number -> Nullable<BigInt>,
        type_system -> Nullable<Text>,
        kind -> Text,
        holder_region -> Nullable<Text>,
    }
}

diesel::table! {
    /// EMRD observations (lab and exam results).
    observations (id) {
        id -> Text,
        person_id -> Text,
        encounter_id -> Nullable<Text>,
        report_id -> Nullable<Text>,
        code_system -> Text,
        code -> Text,
        display -> Nullable<Text>,
        value -> Nullable<Text>,
        value_type -> Nullable<Text>,
        unit -> Nullable<Text>,
        reference_range -> Nullable<Text>,
        abnormal_flag -> Nullable<Text>,
        status -> Text,
        observed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        submission_id -> Nullable<Text>,
        document_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// EHRD index: one entry per thing that happened in a resident's health life.
    ehr_entries (id) {
        id -> Text,
        person_id -> Text,
        kind -> Text,
        occurred_at -> Timestamp,
        facility_code -> Nullable<Text>,
        source_region -> Text,
        summary -> Text,
        encounter_id -> Nullable<Text>,
        document_id -> Nullable<Text>,
        hlc -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Transactional outbox of changes that travel through the federation.
    change_log (seq) {
        seq -> BigInt,
        id -> Text,
        hlc -> Text,
        origin_region -> Text,
        entity -> Text,
        entity_id -> Text,
        op -> Text,
        person_id -> Nullable<Text>,
        home_region -> Nullable<Text>,
        payload -> Binary,
        created_at -> Timestamp,
        received_from -> Nullable<Text>,
    }
}

diesel::table! {
    /// Append-only record of every access to personal data.
    audit_log (seq) {
        seq -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        actor -> Text,
        role -> Nullable<Text>,
        actor_region -> Nullable<Text>,
        facility_code -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        person_id -> Nullable<Text>,
        purpose -> Nullable<Text>,
        outcome -> Text,
        http_status -> Nullable<Integer>,
        request_id -> Nullable<Text>,
        source_ip -> Nullable<Text>,
        detail -> Nullable<Text>,
        origin_region -> Nullable<Text>,
    }
}

diesel::table! {
    /// The audit log's hash chain: each committed `audit_log` entry's place
    /// (`position`, contiguous from 1), its entry hash and the chain hash up
    /// to it. Append-only; rows go only when an archive covers them.
    audit_chain (position) {
        position -> BigInt,
        audit_seq -> BigInt,
        entry_hash -> Text,
        chain_hash -> Text,
        chained_at -> Timestamp,
    }
}

diesel::table! {
    /// Seals: the node's signature (compact JWS) over the chain hash at a
    /// position. Append-only.
    audit_seals (position) {
        position -> BigInt,
        chain_hash -> Text,
        key_id -> Text,
        signature -> Text,
        sealed_at -> Timestamp,
    }
}

diesel::table! {
    /// Chain segments written to archive files and removed from `audit_log`
    /// and `audit_chain`. Append-only.
    audit_archives (id) {
        id -> Text,
        from_position -> BigInt,
        to_position -> BigInt,
        start_prev_hash -> Text,
        end_chain_hash -> Text,
        file_name -> Text,
        file_sha256 -> Text,
        archived_at -> Timestamp,
    }
}

diesel::table! {
    /// Accounts that log in with a password (residents, later staff).
    users (id) {
        id -> Text,
        username -> Text,
        role -> Text,
        region -> Nullable<Text>,
        facility_code -> Nullable<Text>,
        person_id -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    enrolment_codes (code_hash) {
        code_hash -> Text,
        person_id -> Text,
        issued_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_attempts (login_key) {
        login_key -> Text,
        failures -> BigInt,
        locked_until -> Nullable<Timestamp>,
        last_failure_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        token_hash -> Text,
        family_id -> Text,
        user_id -> Text,
        person_id -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
        revoked_at -> Timestamp,
        reason -> Text,
    }
}

diesel::table! {
    /// Archive of every received HL7 message or document, raw, with its answer.
    submissions (id) {
        id -> Text,
        channel -> Text,
        kind -> Text,
        sending_facility -> Text,
        control_id -> Text,
        message_type -> Nullable<Text>,
        version -> Nullable<Text>,
        dedup_key -> Nullable<Text>,
        region -> Nullable<Text>,
        received_at -> Timestamp,
        outcome -> Text,
        errors -> Nullable<Text>,
        person_id -> Nullable<Text>,
        raw -> Binary,
        ack -> Binary,
        z_segments -> Nullable<Text>,
    }
}

diesel::table! {
    /// Keys whose tokens this node accepts: its own and its ancestors'.
    issuer_keys (key_id) {
        key_id -> Text,
        region -> Text,
        public_key -> Text,
        received_from -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    /// Residents' consent, by the home node's EMPI id.
    person_consents (person_id) {
        person_id -> Text,
        home_region -> Text,
        rules -> Text,
        hlc -> Text,
        origin_region -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The ids a consent's person is known by.
    consent_subjects (subject_id) {
        subject_id -> Text,
        person_id -> Text,
    }
}

diesel::table! {
    /// Linking decisions left to a person.
    review_queue (id) {
        id -> Text,
        person_id -> Text,
        candidate_id -> Nullable<Text>,
        reason -> Text,
        submission_id -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Person merges with what moved, so they can be undone.
    person_merges (id) {
        id -> Text,
        survivor_id -> Text,
        merged_id -> Text,
        submission_id -> Nullable<Text>,
        actor -> Text,
        moved -> Text,
        merged_at -> Timestamp,
        undone_at -> Nullable<Timestamp>,
        undone_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// Medications extracted from documents (EMRD).
    medications (id) {
        id -> Text,
        person_id -> Text,
        encounter_id -> Nullable<Text>,
        document_id -> Nullable<Text>,
        code_system -> Nullable<Text>,
        code -> Nullable<Text>,
        name -> Text,
        dose -> Nullable<Text>,
        dose_unit -> Nullable<Text>,
        route -> Nullable<Text>,
        started_at -> Nullable<Timestamp>,
        ended_at -> Nullable<Timestamp>,
        source_region -> Text,
        hlc -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// A person's allergies (HL7 AL1), one row per allergen code.
    allergies (id) {
        id -> Text,
        person_id -> Text,
        code -> Text,
        code_system -> Nullable<Text>,
        display -> Nullable<Text>,
        severity -> Nullable<Text>,
        reaction -> Nullable<Text>,
        facility_code -> Text,
        submission_id -> Nullable<Text>,
        recorded_at -> Timestamp,
        hlc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// A person's contacts (HL7 NK1); `relationship` is '' when not sent;
    /// `name` and `phone` are sealed, `name_index` is the name's blind index
    /// (unique with the person and relationship).
    person_contacts (id) {
        id -> Text,
        person_id -> Text,
        name -> Text,
        relationship -> Text,
        phone -> Nullable<Text>,
        facility_code -> Text,
        submission_id -> Nullable<Text>,
        hlc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        name_index -> Nullable<Text>,
    }
}

diesel::table! {
    /// A person's insurance (HL7 IN1); `plan` and `member_id` are '' when not sent.
    person_coverages (id) {
        id -> Text,
        person_id -> Text,
        plan -> Text,
        company -> Nullable<Text>,
        member_id -> Text,
        facility_code -> Text,
        submission_id -> Nullable<Text>,
        hlc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Federation links: one row per peer with the cut cursor and the acknowledged chain end.
    fed_links (peer_region) {
        peer_region -> Text,
        direction -> Text,
        cut_seq -> BigInt,
        next_seq -> BigInt,
        last_acked_seq -> BigInt,
        last_acked_digest -> Text,
        last_sent_at -> Nullable<Timestamp>,
        last_acked_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        failures -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Batches cut for a peer, kept byte for byte until acknowledged.
    fed_batches_out (peer_region, seq) {
        peer_region -> Text,
        seq -> BigInt,
        batch_id -> Text,
        digest -> Text,
        manifest -> Text,
        payload -> Binary,
        record_count -> BigInt,
        first_change_seq -> BigInt,
        last_change_seq -> BigInt,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        acked_at -> Nullable<Timestamp>,
        receipt -> Nullable<Text>,
        parked_at_peer -> BigInt,
    }
}

diesel::table! {
    /// The end of each peer's batch chain as applied here.
    fed_inbound (peer_region) {
        peer_region -> Text,
        last_seq -> BigInt,
        last_digest -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Applied inbound batches with their receipts (replays are answered from here).
    fed_batches_in (peer_region, seq) {
        peer_region -> Text,
        seq -> BigInt,
        batch_id -> Text,
        digest -> Text,
        receipt -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    /// Remote changes the business rules refused here, kept to retry.
    fed_dead_letters (id) {
        id -> Text,
        change_id -> Text,
        peer_region -> Text,
        entity -> Text,
        op -> Text,
        keep -> Text,
        change -> Text,
        reason -> Text,
        parked_at -> Timestamp,
        attempts -> BigInt,
        last_attempt_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Remote EMPI ids of persons known here under a local id.
    person_aliases (remote_id) {
        remote_id -> Text,
        local_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(fed_batches_out -> fed_links (peer_region));
diesel::joinable!(person_aliases -> persons (local_id));
diesel::joinable!(person_identifiers -> persons (person_id));
diesel::joinable!(allergies -> persons (person_id));
diesel::joinable!(person_contacts -> persons (person_id));
diesel::joinable!(person_coverages -> persons (person_id));
diesel::joinable!(encounters -> persons (person_id));
diesel::joinable!(diagnoses -> encounters (encounter_id));
diesel::joinable!(medications -> persons (person_id));
diesel::joinable!(ehr_entries -> persons (person_id));
diesel::joinable!(persons -> households (household_id));
diesel::joinable!(audit_chain -> audit_log (audit_seq));

diesel::table! {
    /// Published versions of value domains (newest per domain is in force).
    value_domain_versions (domain, version) {
        domain -> Text,
        version -> Text,
        name -> Text,
        entries -> Text,
        published_by -> Text,
        published_at -> Timestamp,
        hlc -> Text,
        received_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    value_domain_versions,
    node_meta,
    facilities,
    households,
    persons,
    person_identifiers,
    encounters,
    diagnoses,
    documents,
    observations,
    ehr_entries,
    change_log,
    audit_log,
    audit_chain,
    audit_seals,
    audit_archives,
    users,
    submissions,
    review_queue,
    person_merges,
    medications,
    allergies,
    person_contacts,
    person_coverages,
    fed_links,
    fed_batches_out,
    fed_inbound,
    fed_batches_in,
    fed_dead_letters,
    person_aliases,
    enrolment_codes,
    login_attempts,
    refresh_tokens,
    revoked_tokens,
    issuer_keys,
    person_consents,
    consent_subjects,
);
