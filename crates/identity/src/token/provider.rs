//! Issuing and validating tokens. A token is a Fernet-encrypted [`Payload`]; its
//! meaning — the user's names, the scope's, the roles, the catalog — is looked up
//! at each validation, and a token whose user, scope or roles no longer hold, or
//! that a revocation event matches, is not valid.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use api::AuthContext;
use serde_json::{json, Value};

use super::payload::{new_audit_id, Payload, Scope};
use crate::error::{IdentityError, Result};
use crate::fernet_keys::KeyRepository;
use crate::store::{AppCred, Project, RevocationEvent, Role, Store, Target, User};

/// Everything a valid token means, read from the database at validation.
#[derive(Debug, Clone)]
pub struct TokenData {
    pub payload: Payload,
    pub user: User,
    pub user_domain: Project,
    /// The project of a project-scoped token, with its domain.
    pub project: Option<(Project, Project)>,
    pub domain: Option<Project>,
    pub roles: Vec<Role>,
    pub app_cred: Option<AppCred>,
}

/// Why a token was refused; the API decides the status (404 when validating a
/// subject token, 401 when authenticating a request).
#[derive(Debug, thiserror::Error)]
pub enum TokenRefused {
    #[error("Failed to validate token")]
    Invalid,
    #[error(transparent)]
    Internal(#[from] IdentityError),
}

pub struct TokenProvider {
    pub store: Store,
    keys: KeyRepository,
    expiration: Duration,
    /// Validations remembered for `cache_time`, all forgotten by
    /// [`TokenProvider::forget_cached`] whenever identity data changes.
    cache: Mutex<HashMap<String, Cached>>,
    cache_time: Duration,
    generation: AtomicU64,
}

struct Cached {
    data: TokenData,
    at: Instant,
    generation: u64,
}

/// Validations kept before the cache starts over; bounds memory under floods.
const CACHE_ENTRIES: usize = 10_000;

/// What a successful authentication established, before a token is minted.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: String,
    pub methods: Vec<String>,
    pub scope: Scope,
    /// Set when rescoping: the parent's expiry and audit chain are kept.
    pub expires_at: Option<i64>,
    pub parent_audit_id: Option<String>,
    pub application_credential_id: Option<String>,
}

impl TokenProvider {
    pub fn new(store: Store, keys: KeyRepository, expiration: Duration, cache_time: Duration) -> Self {
        TokenProvider {
            store,
            keys,
            expiration,
            cache: Mutex::new(HashMap::new()),
            cache_time,
            generation: AtomicU64::new(0),
        }
    }

    /// Forgets every remembered validation: a user, role, project or token
    /// changed, and any token's meaning may have changed with it.
    pub fn forget_cached(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn keys(&self) -> &KeyRepository {
        &self.keys
    }

    /// Mints a token and validates it at once, which checks that the scope is one
    /// the user may have (a project they hold a role on, say).
    pub async fn issue(&self, auth: Authenticated) -> Result<(String, TokenData)> {
        // Taken before reading anything, so a write racing with us makes the
        // remembered validation stale rather than wrong.
        let generation = self.generation.load(Ordering::Acquire);
        let now = common::time::now_micros();
        let mut expires_at = auth.expires_at.unwrap_or(now + self.expiration.as_micros() as i64);
        if let Some(id) = &auth.application_credential_id {
            if let Some(limit) = self.store.find_app_cred(id).await?.and_then(|c| c.expires_at) {
                expires_at = expires_at.min(limit);
            }
        }
        let mut audit_ids = vec![new_audit_id()];
        audit_ids.extend(auth.parent_audit_id);
        let payload = Payload {
            user_id: auth.user_id,
            methods: auth.methods,
            scope: auth.scope,
            issued_at: now,
            expires_at,
            audit_ids,
            application_credential_id: auth.application_credential_id,
        };
        let data = match self.resolve(payload.clone()).await {
            Ok(data) => data,
            Err(TokenRefused::Invalid) => return Err(scope_refusal(&payload)),
            Err(TokenRefused::Internal(e)) => return Err(e),
        };
        let token = self.keys.encrypt(&payload.encode())?;
        // The token's first validation (by the next service it reaches) is free.
        self.remember(&token, &data, generation);
        Ok((token, data))
    }

    pub async fn validate(&self, token: &str) -> Result<TokenData, TokenRefused> {
        let now = common::time::now_micros();
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(c) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(token) {
            let app_cred_expired = c.data.app_cred.as_ref().and_then(|a| a.expires_at).is_some_and(|t| t <= now);
            if c.generation == generation && c.at.elapsed() < self.cache_time && !app_cred_expired {
                return if c.data.payload.expires_at > now { Ok(c.data.clone()) } else { Err(TokenRefused::Invalid) };
            }
        }
        let bytes = self.keys.decrypt(token).ok_or(TokenRefused::Invalid)?;
        let payload = Payload::decode(&bytes).ok_or(TokenRefused::Invalid)?;
        if payload.expires_at <= now {
            return Err(TokenRefused::Invalid);
        }
        let data = self.resolve(payload).await?;
        self.remember(token, &data, generation);
        Ok(data)
    }

    /// Remembers a validation made under `generation` (a write since then makes
    /// it stale at once).
    fn remember(&self, token: &str, data: &TokenData, generation: u64) {
        if self.cache_time.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(token.to_string(), Cached { data: data.clone(), at: Instant::now(), generation });
    }

    /// Revokes one token (and the tokens rescoped from it).
    pub async fn revoke(&self, data: &TokenData) -> Result<()> {
        let now = common::time::now_micros();
        for audit_id in data.payload.audit_ids.iter().take(1) {
            self.store
                .add_revocation(&RevocationEvent {
                    audit_id: Some(audit_id.clone()),
                    issued_before: now,
                    revoked_at: now,
                    ..Default::default()
                })
                .await?;
        }
        Ok(())
    }

    /// Looks up what `payload` means now, refusing it if anything no longer holds.
    async fn resolve(&self, payload: Payload) -> Result<TokenData, TokenRefused> {
        let store = &self.store;
        self.check_revocations(&payload).await?;
        let user = store.find_user(&payload.user_id).await?.ok_or(TokenRefused::Invalid)?;
        if !user.enabled {
            return Err(TokenRefused::Invalid);
        }
        let user_domain = enabled_domain(store, &user.domain_id).await?;

        let app_cred = match &payload.application_credential_id {
            None => None,
            Some(id) => {
                let cred = store.find_app_cred(id).await?.ok_or(TokenRefused::Invalid)?;
                let expired = cred.expires_at.is_some_and(|t| t <= common::time::now_micros());
                if cred.user_id != user.id || expired {
                    return Err(TokenRefused::Invalid);
                }
                Some(cred)
            }
        };

        let (target, project, domain) = match &payload.scope {
            Scope::Unscoped => (None, None, None),
            Scope::System => (Some(Target::System), None, None),
            Scope::Domain(id) => {
                let d = enabled_domain(store, id).await?;
                (Some(Target::Domain(id.clone())), None, Some(d))
            }
            Scope::Project(id) => {
                let p = store.get_project(id).await.map_err(not_found_is_invalid)?;
                if !p.enabled {
                    return Err(TokenRefused::Invalid);
                }
                let d = enabled_domain(store, &p.domain_id).await?;
                // A project whose parents are disabled is disabled too.
                if store.project_ancestors(&p).await?.iter().any(|a| !a.enabled) {
                    return Err(TokenRefused::Invalid);
                }
                (Some(Target::Project(id.clone())), Some((p, d)), None)
            }
        };

        let mut role_ids: BTreeSet<String> = match &target {
            None => BTreeSet::new(),
            Some(t) => store.effective_role_ids(&user.id, t).await?,
        };
        if let Some(cred) = &app_cred {
            // An application credential carries a subset of roles the user must
            // still hold.
            let wanted: BTreeSet<String> = cred.role_ids.iter().cloned().collect();
            let mut delegated: BTreeSet<String> = wanted.intersection(&role_ids).cloned().collect();
            crate::effective_roles::expand_implied(&mut delegated, &store.list_implied_roles().await?);
            role_ids = delegated.intersection(&role_ids).cloned().collect();
        }
        if target.is_some() && role_ids.is_empty() {
            return Err(TokenRefused::Invalid);
        }
        let roles: Vec<Role> = if role_ids.is_empty() {
            Vec::new()
        } else {
            store.list_roles().await?.into_iter().filter(|r| role_ids.contains(&r.id)).collect()
        };
        Ok(TokenData { payload, user, user_domain, project, domain, roles, app_cred })
    }

    async fn check_revocations(&self, p: &Payload) -> Result<(), TokenRefused> {
        let events = self.store.revocations_for(p.issued_at, &p.user_id, &p.audit_ids).await?;
        let (project_id, domain_id) = match &p.scope {
            Scope::Project(id) => (Some(id.as_str()), None),
            Scope::Domain(id) => (None, Some(id.as_str())),
            _ => (None, None),
        };
        let revoked = events.iter().any(|e| {
            p.issued_at <= e.issued_before
                && e.user_id.as_deref().is_none_or(|u| u == p.user_id)
                && e.project_id.as_deref().is_none_or(|x| Some(x) == project_id)
                && e.domain_id.as_deref().is_none_or(|x| Some(x) == domain_id)
                && e.audit_id.as_deref().is_none_or(|a| p.audit_ids.iter().any(|t| t == a))
                // An event with nothing set would revoke everything; never match it.
                && (e.user_id.is_some() || e.project_id.is_some() || e.domain_id.is_some() || e.audit_id.is_some())
        });
        if revoked {
            Err(TokenRefused::Invalid)
        } else {
            Ok(())
        }
    }

    /// Kills every token of `user_id` issued until now (password change, disable).
    pub async fn revoke_user(&self, user_id: &str) -> Result<()> {
        self.revoke_matching(RevocationEvent { user_id: Some(user_id.into()), ..Default::default() }).await
    }

    /// Kills `user_id`'s tokens on one project (a role there was revoked).
    pub async fn revoke_user_project(&self, user_id: &str, project_id: &str) -> Result<()> {
        self.revoke_matching(RevocationEvent {
            user_id: Some(user_id.into()),
            project_id: Some(project_id.into()),
            ..Default::default()
        })
        .await
    }

    pub async fn revoke_matching(&self, mut event: RevocationEvent) -> Result<()> {
        let now = common::time::now_micros();
        event.issued_before = now;
        event.revoked_at = now;
        self.store.add_revocation(&event).await?;
        // Events older than any token's life cannot match a live token.
        let horizon = now - 2 * self.expiration.as_micros() as i64 - 3_600_000_000;
        self.store.prune_revocations(horizon).await?;
        Ok(())
    }
}

fn not_found_is_invalid(e: IdentityError) -> TokenRefused {
    match e {
        IdentityError::NotFound { .. } => TokenRefused::Invalid,
        other => TokenRefused::Internal(other),
    }
}

async fn enabled_domain(store: &Store, id: &str) -> Result<Project, TokenRefused> {
    let d = store.get_domain(id).await.map_err(not_found_is_invalid)?;
    if d.enabled {
        Ok(d)
    } else {
        Err(TokenRefused::Invalid)
    }
}

fn scope_refusal(p: &Payload) -> IdentityError {
    let what = match &p.scope {
        Scope::Project(id) => format!("project {id}"),
        Scope::Domain(id) => format!("domain {id}"),
        Scope::System => "the system".into(),
        Scope::Unscoped => "an unscoped token".into(),
    };
    IdentityError::Unauthorized(format!("User {} has no access to {what}.", p.user_id))
}

impl TokenData {
    pub fn context(&self) -> AuthContext {
        let p = &self.payload;
        AuthContext {
            user_id: self.user.id.clone(),
            user_name: self.user.name.clone(),
            user_domain_id: self.user_domain.id.clone(),
            user_domain_name: self.user_domain.name.clone(),
            project_id: self.project.as_ref().map(|(p, _)| p.id.clone()),
            project_name: self.project.as_ref().map(|(p, _)| p.name.clone()),
            project_domain_id: self.project.as_ref().map(|(_, d)| d.id.clone()),
            project_domain_name: self.project.as_ref().map(|(_, d)| d.name.clone()),
            domain_id: self.domain.as_ref().map(|d| d.id.clone()),
            domain_name: self.domain.as_ref().map(|d| d.name.clone()),
            system_scope: p.scope == Scope::System,
            roles: self.roles.iter().map(|r| r.name.clone()).collect(),
            role_ids: self.roles.iter().map(|r| r.id.clone()).collect(),
            expires_at: p.expires_at,
            audit_ids: p.audit_ids.clone(),
            application_credential_id: p.application_credential_id.clone(),
        }
    }

    /// The `token` object of Keystone's token responses.
    pub fn render(&self, catalog: Option<Value>) -> Value {
        let p = &self.payload;
        let mut t = json!({
            "methods": p.methods,
            "user": {
                "id": self.user.id,
                "name": self.user.name,
                "domain": {"id": self.user_domain.id, "name": self.user_domain.name},
                "password_expires_at": Value::Null,
            },
            "audit_ids": p.audit_ids,
            "issued_at": common::time::keystone_time(p.issued_at),
            "expires_at": common::time::keystone_time(p.expires_at),
        });
        let scoped = p.scope != Scope::Unscoped;
        if let Some((project, domain)) = &self.project {
            t["project"] = json!({
                "id": project.id,
                "name": project.name,
                "domain": {"id": domain.id, "name": domain.name},
            });
            t["is_domain"] = json!(false);
        }
        if let Some(d) = &self.domain {
            t["domain"] = json!({"id": d.id, "name": d.name});
        }
        if p.scope == Scope::System {
            t["system"] = json!({"all": true});
        }
        if scoped {
            t["roles"] = Value::Array(self.roles.iter().map(|r| json!({"id": r.id, "name": r.name})).collect());
            if let Some(c) = catalog {
                t["catalog"] = c;
            }
        }
        if let Some(c) = &self.app_cred {
            t["application_credential"] = json!({"id": c.id, "name": c.name, "restricted": !c.unrestricted});
        }
        t
    }
}
