//! Residents' passwords: argon2id hashes in PHC strings, and the strength
//! rule a new password must pass.
//!
//! Hashing is deliberately slow (tens of milliseconds); callers run it off
//! the async executor. A login for an unknown citizen ID still verifies
//! against a fixed hash ([`verify_nothing`]) so the answer takes as long as a
//! wrong password and says nothing about which citizen IDs have accounts.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::OnceLock;

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Most characters a password may have (bounds the work one login costs).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

/// The argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| PasswordError("no random salt".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`; a malformed hash
/// matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification and matches nothing: for logins
/// whose citizen ID has no account.
pub fn verify_nothing(password: &str) {
    static FIXED: OnceLock<String> = OnceLock::new();
    let hash = FIXED.get_or_init(|| hash_password("a fixed password nobody has").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// Checks a new password: length within bounds, not built on the
/// resident's own data (`personal`: citizen ID, birth date, name, ...), and
/// hard to guess (zxcvbn score 3 of 4 or better). The error lists every
/// reason, in words a resident can act on.
pub fn check_strength(password: &str, personal: &[&str]) -> Result<(), Vec<String>> {
    let chars = password.chars().count();
    let mut problems = Vec::new();
    if chars < MIN_PASSWORD_CHARS {
        problems.push(format!("must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        problems.push(format!("must have at most {MAX_PASSWORD_CHARS} characters"));
        return Err(problems);
    }
    let lowered = password.to_lowercase();
    for value in personal.iter().map(|v| v.trim().to_lowercase()).filter(|v| v.chars().count() >= 4) {
        // The last eight characters of a citizen ID are the birth date and serial.
        let tail = (value.is_ascii() && value.len() >= 8).then(|| &value[value.len() - 8..]);
        if lowered.contains(&value) || tail.is_some_and(|tail| lowered.contains(tail)) {
            problems.push("must not contain your citizen ID, birth date or name".to_string());
            break;
        }
    }
    if problems.is_empty() {
        let estimate = zxcvbn::zxcvbn(password, personal);
        if estimate.score() < zxcvbn::Score::Three {
            let mut reason = "is too easy to guess".to_string();
            if let Some(feedback) = estimate.feedback() {
                if let Some(warning) = feedback.warning() {
                    reason.push_str(&format!(": {warning}"));
                }
                if let Some(suggestion) = feedback.suggestions().first() {
                    reason.push_str(&format!(" ({suggestion})"));
                }
            }
            problems.push(reason);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery staple", &hash));
        assert!(!verify_password("correct horse battery stapl", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert_ne!(hash, hash_password("correct horse battery staple").unwrap(), "salts differ");
        verify_nothing("anything");
    }

    #[test]
    fn weak_or_personal_passwords_are_refused_with_reasons() {
        assert!(check_strength("Glacier-Otter-47-Lantern", &["330106199001011234"]).is_ok());
        let short = check_strength("Ab1!", &[]).unwrap_err();
        assert!(short[0].contains("at least 10"), "{short:?}");
        let guessable = check_strength("password123", &[]).unwrap_err();
        assert!(guessable[0].contains("too easy to guess"), "{guessable:?}");
        let personal = check_strength("x330106199001011234y", &["330106199001011234"]).unwrap_err();
        assert!(personal[0].contains("citizen ID"), "{personal:?}");
        let birth = check_strength("Mx19900101-tiger-Q", &["19900101", "张三丰"]).unwrap_err();
        assert!(birth[0].contains("birth date"), "{birth:?}");
        let long = "a".repeat(MAX_PASSWORD_CHARS + 1);
        assert!(check_strength(&long, &[]).unwrap_err()[0].contains("at most"));
    }
}
