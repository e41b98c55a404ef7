//! What a Fernet token carries, encrypted: who, how they authenticated, the scope,
//! when it expires, and its audit id. Nothing else: roles and the catalog are read
//! afresh at every validation, so a revoked role or a disabled project takes effect
//! at once. Encoded as a MessagePack array with 32-hex-digit ids packed into 16
//! bytes, which keeps tokens around 200 characters.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The payload format; a token with another version is rejected.
const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Unscoped,
    Project(String),
    Domain(String),
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub user_id: String,
    pub methods: Vec<String>,
    pub scope: Scope,
    /// Microseconds since the epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    /// The token's own audit id, then (for a rescoped token) its parent chain's.
    pub audit_ids: Vec<String>,
    pub application_credential_id: Option<String>,
}

/// Authentication methods, as bits.
const METHODS: &[&str] = &["password", "token", "application_credential", "totp", "mapped"];

/// An id: a 32-hex-digit id (Keystone's own) as a zero byte and its 16 bytes,
/// anything else (`default`, say) as its UTF-8 bytes, which never start with zero.
fn pack_id(id: &str) -> ByteBuf {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        if let Ok(u) = uuid::Uuid::parse_str(id) {
            let mut v = Vec::with_capacity(17);
            v.push(0);
            v.extend_from_slice(u.as_bytes());
            return ByteBuf::from(v);
        }
    }
    ByteBuf::from(id.as_bytes().to_vec())
}

fn unpack_id(b: ByteBuf) -> Option<String> {
    match b.split_first() {
        Some((0, rest)) => Some(uuid::Uuid::from_slice(rest).ok()?.simple().to_string()),
        _ => String::from_utf8(b.into_vec()).ok(),
    }
}

/// The wire form: a positional tuple.
#[derive(Serialize, Deserialize)]
struct Wire(u8, ByteBuf, u8, u8, Option<ByteBuf>, i64, i64, Vec<String>, Option<ByteBuf>);

const SCOPE_UNSCOPED: u8 = 0;
const SCOPE_PROJECT: u8 = 1;
const SCOPE_DOMAIN: u8 = 2;
const SCOPE_SYSTEM: u8 = 3;

impl Payload {
    pub fn encode(&self) -> Vec<u8> {
        let methods =
            self.methods.iter().filter_map(|m| METHODS.iter().position(|k| k == m)).fold(0u8, |acc, i| acc | (1 << i));
        let (kind, scope_id) = match &self.scope {
            Scope::Unscoped => (SCOPE_UNSCOPED, None),
            Scope::Project(id) => (SCOPE_PROJECT, Some(pack_id(id))),
            Scope::Domain(id) => (SCOPE_DOMAIN, Some(pack_id(id))),
            Scope::System => (SCOPE_SYSTEM, None),
        };
        let wire = Wire(
            VERSION,
            pack_id(&self.user_id),
            methods,
            kind,
            scope_id,
            self.issued_at,
            self.expires_at,
            self.audit_ids.clone(),
            self.application_credential_id.as_deref().map(pack_id),
        );
        // Serialising plain data into a Vec cannot fail.
        rmp_serde::to_vec(&wire).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Payload> {
        let Wire(version, user, methods, kind, scope_id, issued_at, expires_at, audit_ids, app_cred) =
            rmp_serde::from_slice(bytes).ok()?;
        if version != VERSION {
            return None;
        }
        let scope = match (kind, scope_id) {
            (SCOPE_UNSCOPED, None) => Scope::Unscoped,
            (SCOPE_PROJECT, Some(id)) => Scope::Project(unpack_id(id)?),
            (SCOPE_DOMAIN, Some(id)) => Scope::Domain(unpack_id(id)?),
            (SCOPE_SYSTEM, None) => Scope::System,
            _ => return None,
        };
        let methods =
            METHODS.iter().enumerate().filter(|(i, _)| methods & (1 << i) != 0).map(|(_, m)| m.to_string()).collect();
        Some(Payload {
            user_id: unpack_id(user)?,
            methods,
            scope,
            issued_at,
            expires_at,
            audit_ids,
            application_credential_id: match app_cred {
                Some(b) => Some(unpack_id(b)?),
                None => None,
            },
        })
    }
}

/// A new audit id: 16 random bytes in URL-safe base64 without padding (22 chars),
/// as Keystone makes them.
pub fn new_audit_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(scope: Scope) -> Payload {
        Payload {
            user_id: "0123456789abcdef0123456789abcdef".into(),
            methods: vec!["password".into(), "token".into()],
            scope,
            issued_at: 1_700_000_000_000_001,
            expires_at: 1_700_003_600_000_001,
            audit_ids: vec![new_audit_id()],
            application_credential_id: None,
        }
    }

    #[test]
    fn every_scope_round_trips() {
        for scope in [
            Scope::Unscoped,
            Scope::Project("fedcba9876543210fedcba9876543210".into()),
            Scope::Domain("default".into()),
            Scope::System,
        ] {
            let p = sample(scope);
            assert_eq!(Payload::decode(&p.encode()), Some(p));
        }
        let mut p = sample(Scope::Project("p".into()));
        p.application_credential_id = Some("abcdefabcdefabcdefabcdefabcdefab".into());
        assert_eq!(Payload::decode(&p.encode()), Some(p));
    }

    #[test]
    fn hex_ids_are_packed_and_junk_is_rejected() {
        let p = sample(Scope::Project("fedcba9876543210fedcba9876543210".into()));
        assert!(p.encode().len() < 100, "{}", p.encode().len());
        assert_eq!(Payload::decode(b"\x01\x02junk"), None);
        assert_eq!(new_audit_id().len(), 22);
    }
}
