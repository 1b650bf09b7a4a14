//! Residents' accounts: enrolment codes, password hashes, failed logins,
//! refresh tokens and revoked access tokens.
//!
//! Secrets never reach the database as they are: codes and refresh tokens
//! arrive here as SHA-256 hashes, passwords as argon2id PHC strings, and a
//! login attempt is keyed by the blind index of the citizen ID typed. The
//! policy (how long a code lives, when an account locks) is the caller's;
//! this module only keeps the facts.

use crate::conn::Direct;
use crate::schema::{enrolment_codes, login_attempts, persons, refresh_tokens, revoked_tokens, users};
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Role name of a resident's row in `users`.
const RESIDENT: &str = "resident";

/// A resident's account, as login needs it.
#[derive(Clone, Debug, Queryable)]
pub struct ResidentAccount {
    /// Id of the `users` row.
    pub user_id: String,
    /// The person (EMPI id).
    pub person_id: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `active` or `disabled`.
    pub status: String,
}

/// Why an enrolment was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnrolmentRefusal {
    /// No unused, unexpired code with this hash for this person.
    InvalidCode,
    /// The person already has an account.
    AlreadyEnrolled,
}

/// Where a login key stands after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures in a row.
    pub failures: i64,
    /// Locked until then, if locked.
    pub locked_until: Option<NaiveDateTime>,
}

/// A refresh token to keep (by hash).
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    /// Token id.
    pub id: String,
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// The login this token descends from (rotation keeps the family).
    pub family_id: String,
    /// The `users` row.
    pub user_id: String,
    /// The person.
    pub person_id: String,
    /// Expiry.
    pub expires_at: NaiveDateTime,
}

/// What presenting a refresh token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid: it is now spent; the caller issues the next of the family.
    Valid {
        /// Its family.
        family_id: String,
        /// The `users` row.
        user_id: String,
        /// The person.
        person_id: String,
    },
    /// Already spent or revoked: a copy is being replayed, so the whole
    /// family has now been revoked.
    Replayed {
        /// The person whose tokens were revoked.
        person_id: String,
    },
    /// Unknown or expired.
    Invalid,
}

impl Tx<'_> {
    /// The active person holding this citizen ID here, if any.
    pub fn active_person_by_citizen_id(&mut self, id_number: &str) -> Result<Option<String>, StoreError> {
        let index = self.crypt().citizen_id_index(id_number);
        Ok(persons::table
            .filter(persons::id_number_index.eq(index))
            .filter(persons::status.eq("active"))
            .select(persons::id)
            .first(self.conn)
            .optional()?)
    }

    /// Keeps a new enrolment code (its hash) for a person.
    pub fn issue_enrolment_code(
        &mut self,
        person_id: &str,
        code_hash: &str,
        issued_by: &str,
        expires_at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        diesel::insert_into(enrolment_codes::table)
            .values((
                enrolment_codes::code_hash.eq(code_hash),
                enrolment_codes::person_id.eq(person_id),
                enrolment_codes::issued_by.eq(issued_by),
                enrolment_codes::created_at.eq(crate::now()),
                enrolment_codes::expires_at.eq(expires_at),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Spends an enrolment code and creates the resident's account with
    /// `password_hash`; refused, with nothing changed, when the code is not
    /// valid for the person (checked first, so a caller without a valid code
    /// learns nothing about the account) or the person already has one.
    pub fn enrol_resident(
        &mut self,
        person_id: &str,
        code_hash: &str,
        password_hash: &str,
    ) -> Result<Result<String, EnrolmentRefusal>, StoreError> {
        let now = crate::now();
        // Checks first, writes after: a refusal leaves nothing changed.
        let valid = enrolment_codes::table
            .filter(enrolment_codes::code_hash.eq(code_hash))
            .filter(enrolment_codes::person_id.eq(person_id))
            .filter(enrolment_codes::used_at.is_null())
            .filter(enrolment_codes::expires_at.gt(now));
        let usable: i64 = valid.count().fetch_one(self.conn)?;
        if usable == 0 {
            return Ok(Err(EnrolmentRefusal::InvalidCode));
        }
        let existing: i64 = users::table
            .filter(users::person_id.eq(person_id))
            .filter(users::role.eq(RESIDENT))
            .count()
            .fetch_one(self.conn)?;
        if existing > 0 {
            return Ok(Err(EnrolmentRefusal::AlreadyEnrolled));
        }
        let spent = diesel::update(valid).set(enrolment_codes::used_at.eq(now)).run(self.conn)?;
        if spent == 0 {
            return Ok(Err(EnrolmentRefusal::InvalidCode));
        }
        let user_id = rhip_core::new_id().to_string();
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&user_id),
                users::username.eq(format!("resident:{person_id}")),
                users::role.eq(RESIDENT),
                users::person_id.eq(person_id),
                users::password_hash.eq(password_hash),
                users::status.eq("active"),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .run(self.conn)?;
        Ok(Ok(user_id))
    }

    /// The resident account of a person, if enrolled.
    pub fn resident_account(&mut self, person_id: &str) -> Result<Option<ResidentAccount>, StoreError> {
        let row: Option<(String, Option<String>, Option<String>, String)> = users::table
            .filter(users::person_id.eq(person_id))
            .filter(users::role.eq(RESIDENT))
            .select((users::id, users::person_id, users::password_hash, users::status))
            .first(self.conn)
            .optional()?;
        Ok(row.map(|(user_id, person, hash, status)| ResidentAccount {
            user_id,
            person_id: person.unwrap_or_default(),
            password_hash: hash.unwrap_or_default(),
            status,
        }))
    }

    /// Replaces a resident's password hash.
    pub fn set_password_hash(&mut self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        diesel::update(users::table.find(user_id))
            .set((users::password_hash.eq(password_hash), users::updated_at.eq(crate::now())))
            .run(self.conn)?;
        Ok(())
    }

    /// Failed logins in a row for a login key, and any lock.
    pub fn login_failures(&mut self, login_key: &str) -> Result<LoginFailures, StoreError> {
        let row: Option<(i64, Option<NaiveDateTime>)> = login_attempts::table
            .find(login_key)
            .select((login_attempts::failures, login_attempts::locked_until))
            .first(self.conn)
            .optional()?;
        Ok(row.map_or(LoginFailures { failures: 0, locked_until: None }, |(failures, locked_until)| LoginFailures {
            failures,
            locked_until,
        }))
    }

    /// Counts one more failure; `lock_for(failures)` says how long the key
    /// is then locked (none below the threshold).
    pub fn record_login_failure(
        &mut self,
        login_key: &str,
        lock_for: impl Fn(i64) -> Option<chrono::Duration>,
    ) -> Result<LoginFailures, StoreError> {
        let now = crate::now();
        let failures = self.login_failures(login_key)?.failures + 1;
        let locked_until = lock_for(failures).map(|span| now + span);
        diesel::delete(login_attempts::table.find(login_key)).run(self.conn)?;
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::login_key.eq(login_key),
                login_attempts::failures.eq(failures),
                login_attempts::locked_until.eq(locked_until),
                login_attempts::last_failure_at.eq(now),
            ))
            .run(self.conn)?;
        Ok(LoginFailures { failures, locked_until })
    }

    /// Forgets a key's failures after a successful login and notes the login.
    pub fn record_login(&mut self, login_key: &str, user_id: &str) -> Result<(), StoreError> {
        diesel::delete(login_attempts::table.find(login_key)).run(self.conn)?;
        diesel::update(users::table.find(user_id)).set(users::last_login_at.eq(crate::now())).run(self.conn)?;
        Ok(())
    }

    /// Keeps a refresh token (by hash).
    pub fn store_refresh_token(&mut self, token: &NewRefreshToken) -> Result<(), StoreError> {
        diesel::insert_into(refresh_tokens::table)
            .values((
                refresh_tokens::id.eq(&token.id),
                refresh_tokens::token_hash.eq(&token.token_hash),
                refresh_tokens::family_id.eq(&token.family_id),
                refresh_tokens::user_id.eq(&token.user_id),
                refresh_tokens::person_id.eq(&token.person_id),
                refresh_tokens::issued_at.eq(crate::now()),
                refresh_tokens::expires_at.eq(token.expires_at),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// Spends a refresh token. A token presented a second time (or after
    /// its family was revoked) revokes the whole family: one of the two
    /// presenters holds a stolen copy, and neither can be told apart.
    pub fn use_refresh_token(&mut self, token_hash: &str) -> Result<RefreshUse, StoreError> {
        type Row = (String, String, String, NaiveDateTime, Option<NaiveDateTime>, Option<NaiveDateTime>);
        let row: Option<Row> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((
                refresh_tokens::family_id,
                refresh_tokens::user_id,
                refresh_tokens::person_id,
                refresh_tokens::expires_at,
                refresh_tokens::used_at,
                refresh_tokens::revoked_at,
            ))
            .first(self.conn)
            .optional()?;
        let Some((family_id, user_id, person_id, expires_at, used_at, revoked_at)) = row else {
            return Ok(RefreshUse::Invalid);
        };
        let now = crate::now();
        if used_at.is_some() || revoked_at.is_some() {
            self.revoke_refresh_family(&family_id, "refresh token replayed")?;
            return Ok(RefreshUse::Replayed { person_id });
        }
        if expires_at <= now {
            return Ok(RefreshUse::Invalid);
        }
        diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(token_hash)))
            .set(refresh_tokens::used_at.eq(now))
            .run(self.conn)?;
        Ok(RefreshUse::Valid { family_id, user_id, person_id })
    }

    /// The family and person of a refresh token, if it is known.
    pub fn refresh_token_owner(&mut self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .select((refresh_tokens::family_id, refresh_tokens::person_id))
            .first(self.conn)
            .optional()?)
    }

    /// Revokes every token of a family not yet revoked.
    pub fn revoke_refresh_family(&mut self, family_id: &str, reason: &str) -> Result<usize, StoreError> {
        Ok(diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::family_id.eq(family_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set((refresh_tokens::revoked_at.eq(crate::now()), refresh_tokens::revoked_reason.eq(reason)))
        .run(self.conn)?)
    }

    /// Revokes every live refresh token of an account (a password change
    /// ends every session); returns how many.
    pub fn revoke_user_refresh_tokens(&mut self, user_id: &str, reason: &str) -> Result<usize, StoreError> {
        Ok(diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::user_id.eq(user_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set((refresh_tokens::revoked_at.eq(crate::now()), refresh_tokens::revoked_reason.eq(reason)))
        .run(self.conn)?)
    }

    /// Ids of revoked access tokens that have not expired yet.
    pub fn revoked_access_tokens(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(revoked_tokens::table
            .filter(revoked_tokens::expires_at.gt(crate::now()))
            .select(revoked_tokens::jti)
            .fetch_all(self.conn)?)
    }
}
