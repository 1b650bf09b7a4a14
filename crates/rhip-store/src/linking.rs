//! Person linking (DID / master patient index) for submissions.
//!
//! Rules, in order: exact on a valid citizen ID; else on a cross-referenced
//! local identifier (assigning authority + value); else a deterministic rule
//! on name + birth date + sex + phone that must match exactly one person.
//! Anything uncertain creates a new person and a review-queue item.
//!
//! Uniqueness is the database's: a new person is inserted inside a savepoint
//! and, when a unique key refuses it because someone else inserted the same
//! person a moment earlier, the savepoint is rolled back and the other row is
//! linked instead. Eight connections submitting one new patient at once end
//! with one person.

use crate::conn::Direct;
use crate::persons::PersonRow;
use crate::schema::{person_identifiers, persons, review_queue};
use crate::{NewPerson, PersonRecord, StoreError, Tx};
use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use rhip_core::{home_region_for, Identifier, PersonDemographics};
use serde::Serialize;

/// Which rule linked a submission to a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRule {
    /// Same citizen ID.
    CitizenId,
    /// Same assigning authority and local identifier.
    LocalIdentifier,
    /// Same name, birth date, sex and phone, and only one such person.
    Demographics,
    /// No match: a new person.
    New,
    /// A possible match that the rules could not confirm: a new person and a review item.
    NewUnderReview,
}

/// How a submission's demographics change a linked person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemographicsChange {
    /// Fill only what the person lacks (admissions, results).
    FillGaps,
    /// Replace with what was sent (updates: A08, A31).
    Replace,
}

/// A linking decision waiting for a person.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = review_queue)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ReviewItem {
    /// Item id.
    pub id: String,
    /// The person created or linked.
    pub person_id: String,
    /// The existing person it may be the same as.
    pub candidate_id: Option<String>,
    /// Why a human should look.
    pub reason: String,
    /// The submission that raised it.
    pub submission_id: Option<String>,
    /// `open` or `resolved`.
    pub status: String,
    /// When it was raised.
    pub created_at: chrono::NaiveDateTime,
}

/// The person a submission is about.
#[derive(Clone, Debug)]
pub struct Linked {
    /// EMPI id of the person.
    pub person_id: String,
    /// The rule that linked it.
    pub rule: LinkRule,
}

impl Tx<'_> {
    /// Runs `work` in a savepoint: its writes are undone if it fails, the
    /// enclosing transaction goes on.
    pub fn savepoint<T, E>(&mut self, work: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        let (inner, memo) = (self.inner, &mut *self.memo);
        self.conn.transaction(|conn| work(&mut Tx { conn, inner, memo }))
    }

    /// Runs a write that a unique key may refuse because of a concurrent
    /// writer: in a savepoint on PostgreSQL; directly on SQLite, where this
    /// transaction already holds the database's only write lock and a refused
    /// statement is undone on its own.
    pub(crate) fn guarded<T>(
        &mut self,
        work: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.conn {
            crate::DbConn::Pg(_) => self.savepoint(work),
            crate::DbConn::Sqlite(_) => work(self),
        }
    }

    /// Finds or creates the person a submission is about, cross-references
    /// its identifiers and applies its demographics.
    pub fn link_person(
        &mut self,
        facts: &PersonDemographics,
        change: DemographicsChange,
        submission_id: Option<&str>,
    ) -> Result<Linked, StoreError> {
        let (mut person_id, mut rule) = (None, LinkRule::New);
        if let Some(id_number) = &facts.id_number {
            person_id = self.person_by_id_number(id_number.as_str())?;
            rule = LinkRule::CitizenId;
        }
        // Owners of the identifiers looked up so far, so cross-referencing need not ask again.
        let mut owners: Vec<Option<Option<String>>> = vec![None; facts.identifiers.len()];
        if person_id.is_none() {
            for (identifier, owner) in facts.identifiers.iter().zip(owners.iter_mut()) {
                let found = self.person_by_identifier(identifier)?;
                *owner = Some(found.clone());
                if let Some(found) = found {
                    person_id = Some(found);
                    rule = LinkRule::LocalIdentifier;
                    break;
                }
            }
        }
        let mut review: Option<(Option<String>, String)> = None;
        if person_id.is_none() {
            let (exact, candidate) = self.demographic_match(facts)?;
            match (exact, candidate) {
                (Some(found), _) => {
                    person_id = Some(found);
                    rule = LinkRule::Demographics;
                }
                (None, Some((candidate, reason))) => review = Some((Some(candidate), reason)),
                (None, None) => {}
            }
        }
        let mut created = false;
        let person_id = match person_id {
            Some(id) => self.follow_merges(id)?,
            None => {
                created = true;
                let (id, raced) = self.create_person(facts)?;
                rule = match (raced, &review) {
                    (Some(raced_rule), _) => raced_rule,
                    (None, Some(_)) => LinkRule::NewUnderReview,
                    (None, None) => LinkRule::New,
                };
                if raced.is_none() {
                    if let Some((candidate, reason)) = review.take() {
                        self.add_review_item(&id, candidate.as_deref(), &reason, submission_id)?;
                    }
                }
                id
            }
        };
        self.cross_reference(&person_id, &facts.identifiers, owners, submission_id)?;
        // A person created from these very facts needs no update.
        if !(created && rule != LinkRule::CitizenId) {
            self.apply_demographics(&person_id, facts, change, submission_id)?;
        }
        Ok(Linked { person_id, rule })
    }

    fn person_by_id_number(&mut self, id_number: &str) -> Result<Option<String>, StoreError> {
        self.person_by_citizen_id(id_number)
    }

    /// The person an identifier is cross-referenced to.
    pub fn person_by_identifier(&mut self, identifier: &Identifier) -> Result<Option<String>, StoreError> {
        Ok(person_identifiers::table
            .filter(person_identifiers::system.eq(&identifier.system))
            .filter(person_identifiers::value.eq(&identifier.value))
            .select(person_identifiers::person_id)
            .fetch_one(self.conn)
            .optional()?)
    }

    /// (exactly one full match, else a possible match with the reason).
    #[expect(clippy::type_complexity, reason = "a private helper's two-part answer")]
    fn demographic_match(
        &mut self,
        facts: &PersonDemographics,
    ) -> Result<(Option<String>, Option<(String, String)>), StoreError> {
        let Some(birth_date) = facts.birth_date else { return Ok((None, None)) };
        let Some(name_index) = self.crypt().name_birth_index(&facts.name, Some(birth_date)) else {
            return Ok((None, None));
        };
        // Found by the name + birth date blind index, then compared opened:
        // the index ignores whitespace and case, the rule wants the exact name.
        // The first 20 are read from the cursor rather than asked for with
        // LIMIT: SQLite recompiles a statement whose LIMIT is a bound
        // parameter every time it runs (once per message, 5 % of ingest).
        type Sealed = (String, String, String, Option<String>, Option<String>);
        let query = persons::table
            .filter(persons::name_index.eq(name_index))
            .filter(persons::birth_date.eq(birth_date))
            .filter(persons::status.eq("active"))
            .select((persons::id, persons::name, persons::sex, persons::phone, persons::id_number));
        let sealed: Vec<Sealed> = match &mut *self.conn {
            crate::DbConn::Sqlite(conn) => {
                query.load_iter::<Sealed, DefaultLoadingMode>(conn)?.take(20).collect::<QueryResult<_>>()?
            }
            crate::DbConn::Pg(conn) => {
                query.load_iter::<Sealed, DefaultLoadingMode>(conn)?.take(20).collect::<QueryResult<_>>()?
            }
        };
        let crypt = self.crypt();
        let mut same_name_and_birth: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
        for (id, name, sex, phone, id_number) in sealed {
            if crypt.open(crate::crypt::PERSON_NAME, &name)? != facts.name {
                continue;
            }
            let phone = crypt.open_opt(crate::crypt::PERSON_PHONE, phone.as_deref())?;
            let id_number = crypt.open_opt(crate::crypt::PERSON_ID_NUMBER, id_number.as_deref())?;
            same_name_and_birth.push((id, sex, phone, id_number));
        }
        // A person with another citizen ID is certainly someone else.
        let same_name_and_birth: Vec<_> = same_name_and_birth
            .into_iter()
            .filter(|(_, _, _, id_number)| match (id_number, &facts.id_number) {
                (Some(theirs), Some(ours)) => theirs == ours.as_str(),
                _ => true,
            })
            .collect();
        let sex = facts.sex.code();
        let full: Vec<&String> = same_name_and_birth
            .iter()
            .filter(|(_, s, phone, id_number)| {
                s == sex
                    && facts.phone.is_some()
                    && phone == &facts.phone
                    && (id_number.is_none() || facts.id_number.is_none())
            })
            .map(|(id, ..)| id)
            .collect();
        if full.len() == 1 && facts.id_number.is_none() {
            return Ok((full.first().map(|id| (*id).clone()), None));
        }
        let candidate = same_name_and_birth.first().map(|(id, ..)| {
            let reason = if full.len() > 1 {
                format!("{} persons share name, birth date, sex and phone", full.len())
            } else {
                "same name and birth date as an existing person, other details differ or are missing".to_string()
            };
            (id.clone(), reason)
        });
        Ok((None, candidate))
    }

    /// Inserts a new person in a savepoint; when a unique key shows that a
    /// concurrent submission created them first, links to that person.
    fn create_person(&mut self, facts: &PersonDemographics) -> Result<(String, Option<LinkRule>), StoreError> {
        let node = self.node_region();
        let home_region = home_region_for(facts.address_region.as_ref(), facts.id_number.as_ref(), &node);
        let new = NewPerson {
            demographics: PersonDemographics { identifiers: Vec::new(), ..facts.clone() },
            non_resident: !node.contains(&home_region),
            home_region,
        };
        match self.guarded(|tx| tx.insert_person(&new)) {
            Ok(record) => Ok((record.id, None)),
            Err(StoreError::Conflict(message)) => {
                if let Some(id_number) = &facts.id_number {
                    if let Some(id) = self.person_by_id_number(id_number.as_str())? {
                        return Ok((id, Some(LinkRule::CitizenId)));
                    }
                }
                Err(StoreError::Conflict(message))
            }
            Err(other) => Err(other),
        }
    }

    /// Adds identifiers the person lacks; one that belongs to someone else is
    /// left there and put up for review.
    fn cross_reference(
        &mut self,
        person_id: &str,
        identifiers: &[Identifier],
        owners: Vec<Option<Option<String>>>,
        submission_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut added = false;
        for (identifier, owner) in identifiers.iter().zip(owners) {
            let owner = match owner {
                Some(owner) => owner,
                None => self.person_by_identifier(identifier)?,
            };
            match owner {
                Some(owner) if owner == person_id => {}
                Some(owner) => {
                    let reason = format!(
                        "identifier {}|{} is cross-referenced to another person",
                        identifier.system, identifier.value
                    );
                    self.add_review_item(person_id, Some(&owner), &reason, submission_id)?;
                }
                None => {
                    let inserted = self.guarded(|tx| {
                        diesel::insert_into(person_identifiers::table)
                            .values((
                                person_identifiers::id.eq(rhip_core::new_id().to_string()),
                                person_identifiers::person_id.eq(person_id),
                                person_identifiers::system.eq(&identifier.system),
                                person_identifiers::value.eq(&identifier.value),
                                person_identifiers::type_code.eq(&identifier.type_code),
                                person_identifiers::created_at.eq(crate::now()),
                            ))
                            .execute(tx.conn)?;
                        Ok(())
                    });
                    match inserted {
                        Ok(()) => added = true,
                        // A concurrent submission attached it first; the next message sees the owner.
                        Err(StoreError::Conflict(_)) => {}
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        if added {
            // Identifiers travel with the person: peers add the ones they lack.
            let record = self.person_record(person_id)?;
            let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let hlc = self.tick().encode();
            self.record_change("person", person_id, "update", Some((person_id, &record.home_region)), &hlc, &payload)?;
        }
        Ok(())
    }

    fn apply_demographics(
        &mut self,
        person_id: &str,
        facts: &PersonDemographics,
        change: DemographicsChange,
        submission_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let row: PersonRow = self.load_person_row(person_id)?;
        self.remember_home_region(person_id, &row.home_region);
        let replace = change == DemographicsChange::Replace;
        let pick = |current: &Option<String>, sent: Option<String>| -> Option<String> {
            match (current, sent) {
                (_, Some(sent)) if replace || current.is_none() => Some(sent),
                (current, _) => current.clone(),
            }
        };
        let name = if replace && !facts.name.is_empty() { facts.name.clone() } else { row.name.clone() };
        let sex = match facts.sex {
            rhip_core::Sex::Unknown | rhip_core::Sex::NotStated if !replace => row.sex.clone(),
            sex if replace || row.sex == rhip_core::Sex::Unknown.code() => sex.code().to_string(),
            _ => row.sex.clone(),
        };
        let birth_date =
            if replace { facts.birth_date.or(row.birth_date) } else { row.birth_date.or(facts.birth_date) };
        let phone = pick(&row.phone, facts.phone.clone());
        let address_line = pick(&row.address_line, facts.address_line.clone());
        let address_region = pick(&row.address_region, facts.address_region.map(|r| r.as_str().to_string()));
        let ethnicity = pick(&row.ethnicity, facts.ethnicity.map(|e| e.code().to_string()));
        let marital_status = pick(&row.marital_status, facts.marital_status.map(|m| m.code().to_string()));
        let id_number = match (&row.id_number, &facts.id_number) {
            (None, Some(sent)) => Some(sent.as_str().to_string()),
            (current, _) => current.clone(),
        };
        let changed = name != row.name
            || sex != row.sex
            || birth_date != row.birth_date
            || phone != row.phone
            || address_line != row.address_line
            || address_region != row.address_region
            || ethnicity != row.ethnicity
            || marital_status != row.marital_status
            || id_number != row.id_number;
        if !changed {
            return Ok(());
        }
        let hlc = self.tick().encode();
        let sealed =
            self.seal_demographics(&name, birth_date, id_number.as_deref(), phone.as_deref(), address_line.as_deref())?;
        let updated = self.guarded(|tx| {
            diesel::update(persons::table.find(person_id))
                .set((
                    sealed,
                    persons::sex.eq(&sex),
                    persons::birth_date.eq(birth_date),
                    persons::address_region.eq(&address_region),
                    persons::ethnicity.eq(&ethnicity),
                    persons::marital_status.eq(&marital_status),
                    persons::hlc.eq(&hlc),
                    persons::demographics_hlc.eq(&hlc),
                    persons::demographics_origin.eq(tx.node_region().as_str()),
                    persons::updated_at.eq(crate::now()),
                ))
                .execute(tx.conn)?;
            Ok(())
        });
        match updated {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // The citizen ID sent belongs to another person: keep ours, ask a human.
                let other =
                    facts.id_number.as_ref().map(|id| self.person_by_id_number(id.as_str())).transpose()?.flatten();
                let reason = "the citizen ID sent for this person belongs to another person".to_string();
                return self.add_review_item(person_id, other.as_deref(), &reason, submission_id);
            }
            Err(other) => return Err(other),
        }
        let record = self.person_record(person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("person", person_id, "update", Some((person_id, &record.home_region)), &hlc, &payload)
    }

    fn follow_merges(&mut self, mut id: String) -> Result<String, StoreError> {
        for _ in 0..16 {
            let merged_into: Option<Option<String>> =
                persons::table.find(&id).select(persons::merged_into).fetch_one(self.conn).optional()?;
            match merged_into.flatten() {
                Some(next) => id = next,
                None => return Ok(id),
            }
        }
        Err(StoreError::Corrupt(format!("merge chain from person {id} does not end")))
    }

    /// Queues a linking decision for a person to look at.
    pub fn add_review_item(
        &mut self,
        person_id: &str,
        candidate_id: Option<&str>,
        reason: &str,
        submission_id: Option<&str>,
    ) -> Result<(), StoreError> {
        diesel::insert_into(review_queue::table)
            .values((
                review_queue::id.eq(rhip_core::new_id().to_string()),
                review_queue::person_id.eq(person_id),
                review_queue::candidate_id.eq(candidate_id),
                review_queue::reason.eq(reason),
                review_queue::submission_id.eq(submission_id),
                review_queue::status.eq("open"),
                review_queue::created_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Open review items about persons within `scope`, oldest first.
    pub fn open_review_items(&mut self, scope: &crate::Scope, limit: i64) -> Result<Vec<ReviewItem>, StoreError> {
        let mut select = review_queue::table.filter(review_queue::status.eq("open")).into_boxed();
        if let crate::Scope::Region(region) = scope {
            select = select.filter(
                review_queue::person_id.eq_any(
                    persons::table
                        .filter(persons::home_region.like(format!("{}%", region.jurisdiction_prefix())))
                        .select(persons::id),
                ),
            );
        }
        Ok(select
            .order((review_queue::created_at.asc(), review_queue::id.asc()))
            .limit(limit.clamp(1, 10_000))
            .select(ReviewItem::as_select())
            .load(self.conn)?)
    }

    pub(crate) fn person_record(&mut self, person_id: &str) -> Result<PersonRecord, StoreError> {
        match self.get_person(&crate::Scope::Node, person_id)? {
            crate::Access::Granted(record) => Ok(record),
            _ => Err(StoreError::NotFound(format!("person {person_id}"))),
        }
    }
}
