#![recursion_limit = "256"]
//! Keystone v3: who is who (domains, projects, users, groups), who may do what
//! (roles, implied roles, assignments), where services are (the catalog), and the
//! Fernet tokens that carry all of it to every other service.
//!
//! Start reading at [`Identity::open`] (what the service owns) and [`api::router`]
//! (what it answers). Tokens: [`token::provider`]. The database: [`store`].

pub mod api;
pub mod bootstrap;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod effective_roles;
pub mod error;
pub mod fernet_keys;
pub mod password;
pub mod policy;
pub mod schema;
pub mod store;
pub mod token;

use std::sync::Arc;

use ::api::auth::{TokenCache, TokenError, TokenValidator};
use ::api::AuthContext;

pub use bootstrap::{bootstrap, Bootstrap, CatalogEntry};
pub use config::IdentityConfig;
use error::Result;
use fernet_keys::KeyRepository;
use password::Hasher;
use store::Store;
use token::provider::{TokenProvider, TokenRefused};

/// The identity service: its database, its keys and its token cache.
pub struct Identity {
    pub store: Store,
    pub tokens: Arc<TokenProvider>,
    pub hasher: Hasher,
    /// Encrypts stored credentials (EC2 secrets and the like).
    pub credential_keys: KeyRepository,
    pub config: IdentityConfig,
    /// Validated tokens, shared with the other services of an all-in-one; any
    /// identity write forgets them all.
    pub token_cache: Arc<TokenCache>,
}

impl Identity {
    /// Opens the database (applying migrations) and the key repositories.
    pub async fn open(config: IdentityConfig) -> Result<Arc<Identity>> {
        let db = Arc::new(config.database.open().await?);
        let store = Store::open(db).await?;
        let keys = KeyRepository::open(&config.key_repository, config.max_active_keys)?;
        let credential_keys = KeyRepository::open(&config.credential_key_repository, config.max_active_keys)?;
        let tokens =
            Arc::new(TokenProvider::new(store.clone(), keys, config.token_expiration, config.token_cache_time));
        // The provider remembers validations itself (and forgets them on every
        // identity write), so the API layer asks it each time.
        let token_cache = Arc::new(TokenCache::uncached(Arc::new(LocalValidator(tokens.clone()))));
        Ok(Arc::new(Identity {
            store,
            tokens,
            hasher: Hasher::new(config.password_hash_rounds),
            credential_keys,
            config,
            token_cache,
        }))
    }
}

/// Validates tokens against this process's own identity database.
pub struct LocalValidator(pub Arc<TokenProvider>);

#[async_trait::async_trait]
impl TokenValidator for LocalValidator {
    async fn validate(&self, token: &str) -> Result<AuthContext, TokenError> {
        match self.0.validate(token).await {
            Ok(data) => Ok(data.context()),
            Err(TokenRefused::Invalid) => Err(TokenError::Invalid),
            Err(TokenRefused::Internal(e)) => Err(TokenError::Unavailable(e.to_string())),
        }
    }
}
