//! Tokens. A request proves who it is with `X-Auth-Token`; the service asks its
//! [`TokenValidator`] (Keystone in-process, or over HTTP from another host) what the
//! token means, and keeps the answer in a [`TokenCache`] so repeated requests with
//! one token cost a hash lookup. Identity calls [`TokenCache::invalidate_all`] (or
//! announces revocations on the bus) so a revoked token stops working at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const TOKEN_HEADER: &str = "x-auth-token";

/// What a valid token says about its bearer: who they are, the scope they act in,
/// and their roles there (names, implied roles included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    /// Set for a domain-scoped token.
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    /// Set for a system-scoped token.
    pub system_scope: bool,
    pub roles: Vec<String>,
    pub role_ids: Vec<String>,
    /// Microseconds since the epoch.
    pub expires_at: i64,
    pub audit_ids: Vec<String>,
    /// Set when the token came from an application credential.
    pub application_credential_id: Option<String>,
}

impl AuthContext {
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(name))
    }

    /// The legacy rule every OpenStack service's default policy still honours when
    /// scope enforcement is off: the `admin` role on any scope is cloud admin.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    pub fn is_reader(&self) -> bool {
        self.has_role("reader") || self.has_role("member") || self.is_admin()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("The request you have made requires authentication.")]
    Invalid,
    #[error("identity service unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait TokenValidator: Send + Sync + 'static {
    async fn validate(&self, token: &str) -> Result<AuthContext, TokenError>;
}

/// A validator with memory. Entries live until the token expires, `ttl` passes, or
/// [`TokenCache::invalidate_all`] is called.
pub struct TokenCache {
    validator: Arc<dyn TokenValidator>,
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, CacheEntry>>,
}

struct CacheEntry {
    context: AuthContext,
    until: Instant,
    generation: u64,
}

/// Entries kept before the cache starts over; bounds memory under token floods.
const MAX_ENTRIES: usize = 10_000;

impl TokenCache {
    pub fn new(validator: Arc<dyn TokenValidator>, ttl: Duration) -> Self {
        TokenCache { validator, ttl, generation: AtomicU64::new(0), entries: Mutex::new(HashMap::new()) }
    }

    /// A cache that never remembers: every request asks the validator.
    pub fn uncached(validator: Arc<dyn TokenValidator>) -> Self {
        TokenCache::new(validator, Duration::ZERO)
    }

    pub async fn validate(&self, token: &str) -> Result<AuthContext, TokenError> {
        let generation = self.generation.load(Ordering::Acquire);
        if !self.ttl.is_zero() {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.get(token) {
                if e.generation == generation && e.until > Instant::now() {
                    return Ok(e.context.clone());
                }
            }
        }
        let context = self.validator.validate(token).await?;
        if !self.ttl.is_zero() {
            let left = context.expires_at - common::time::now_micros();
            let until = Instant::now() + self.ttl.min(Duration::from_micros(left.max(0) as u64));
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(token.to_string(), CacheEntry { context: context.clone(), until, generation });
        }
        Ok(context)
    }

    /// Forgets every cached answer (a token or role was revoked somewhere).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The authenticated caller of a request. Handlers that need a token take this;
/// the service adds its `Arc<TokenCache>` as an extension.
#[derive(Debug, Clone)]
pub struct Auth {
    pub context: AuthContext,
    /// The token itself, for calls made on the caller's behalf.
    pub token: String,
}

impl std::ops::Deref for Auth {
    type Target = AuthContext;
    fn deref(&self) -> &AuthContext {
        &self.context
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let unauthenticated = || ApiError::unauthorized("The request you have made requires authentication.");
        let token = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthenticated)?
            .to_string();
        let cache = parts
            .extensions
            .get::<Arc<TokenCache>>()
            .cloned()
            .ok_or_else(|| ApiError::internal("token validation is not configured"))?;
        match cache.validate(&token).await {
            Ok(context) => Ok(Auth { context, token }),
            Err(TokenError::Invalid) => Err(unauthenticated()),
            Err(TokenError::Unavailable(why)) => {
                Err(ApiError(common::Fault::new(503, format!("Identity service unavailable: {why}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counting {
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TokenValidator for Counting {
        async fn validate(&self, token: &str) -> Result<AuthContext, TokenError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if token == "good" {
                Ok(AuthContext {
                    user_id: "u".into(),
                    roles: vec!["Admin".into()],
                    expires_at: common::time::now_micros() + 3_600_000_000,
                    ..Default::default()
                })
            } else {
                Err(TokenError::Invalid)
            }
        }
    }

    #[tokio::test]
    async fn cache_asks_once_until_invalidated() {
        let v = Arc::new(Counting { calls: AtomicUsize::new(0) });
        let cache = TokenCache::new(v.clone(), Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(cache.validate("good").await.unwrap().user_id, "u");
        }
        assert_eq!(v.calls.load(Ordering::SeqCst), 1);
        cache.invalidate_all();
        cache.validate("good").await.unwrap();
        assert_eq!(v.calls.load(Ordering::SeqCst), 2);
        // Failures are not cached.
        assert!(cache.validate("bad").await.is_err());
        assert!(cache.validate("bad").await.is_err());
        assert_eq!(v.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn uncached_asks_every_time_and_roles_match_case_insensitively() {
        let v = Arc::new(Counting { calls: AtomicUsize::new(0) });
        let cache = TokenCache::uncached(v.clone());
        let ctx = cache.validate("good").await.unwrap();
        cache.validate("good").await.unwrap();
        assert_eq!(v.calls.load(Ordering::SeqCst), 2);
        assert!(ctx.is_admin() && ctx.is_reader());
    }
}
