//! Stored credentials are encrypted at rest with the credential key repository, as
//! Keystone does, so a copy of the database alone does not reveal EC2 secrets.

use crate::error::{IdentityError, Result};
use crate::fernet_keys::KeyRepository;

pub fn encrypt_blob(keys: &KeyRepository, blob: &str) -> Result<String> {
    Ok(keys.encrypt(blob.as_bytes())?)
}

pub fn decrypt_blob(keys: &KeyRepository, encrypted: &str) -> Result<String> {
    let bytes = keys
        .decrypt(encrypted)
        .ok_or_else(|| IdentityError::validation("credential cannot be decrypted with the current keys"))?;
    String::from_utf8(bytes).map_err(|_| IdentityError::validation("credential blob is not UTF-8"))
}
