//! Password and secret hashing with Argon2id. Verification is on every password
//! login, so the cost is a setting (`[identity] password_hash_rounds`); the hashes
//! record their own parameters, so changing it affects only new hashes.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory per hash, KiB: OWASP's minimum recommendation for Argon2id.
const MEMORY_KIB: u32 = 19 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Hasher {
    rounds: u32,
}

impl Hasher {
    pub fn new(rounds: u32) -> Self {
        Hasher { rounds: rounds.max(1) }
    }

    fn argon2(&self) -> Argon2<'static> {
        let params = Params::new(MEMORY_KIB, self.rounds, 1, None).unwrap_or_default();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for `secret`.
    pub fn hash(&self, secret: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        match self.argon2().hash_password(secret.as_bytes(), &salt) {
            Ok(h) => h.to_string(),
            // Only impossible parameters fail; fall back to the library defaults.
            Err(_) => {
                Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
            }
        }
    }

    /// Whether `secret` matches `hash`; a malformed hash matches nothing.
    pub fn verify(&self, secret: &str, hash: &str) -> bool {
        match PasswordHash::new(hash) {
            Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Hashes on a blocking thread: Argon2 takes milliseconds of CPU.
    pub async fn hash_async(self, secret: String) -> String {
        tokio::task::spawn_blocking(move || self.hash(&secret)).await.unwrap_or_default()
    }

    pub async fn verify_async(self, secret: String, hash: String) -> bool {
        tokio::task::spawn_blocking(move || self.verify(&secret, &hash)).await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_secret() {
        let h = Hasher::new(1);
        let hash = h.hash("s3cr3t!@#");
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify("s3cr3t!@#", &hash));
        assert!(!h.verify("s3cr3t", &hash));
        assert!(!h.verify("x", "not a hash"));
        // Different salts each time.
        assert_ne!(hash, h.hash("s3cr3t!@#"));
    }
}
