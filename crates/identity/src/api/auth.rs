//! `/v3/auth`: authenticating (password, token, application credential) into a
//! scope, validating and revoking tokens, and what a token's user may scope to.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::render;
use crate::policy;
use crate::store::{AppCred, AssignmentFilter, Project, ProjectFilter, Store, Target, User};
use crate::token::payload::Scope;
use crate::token::provider::{Authenticated, TokenData, TokenRefused};
use crate::Identity;

const SUBJECT_TOKEN: &str = "x-subject-token";

#[derive(Deserialize)]
pub struct AuthBody {
    auth: AuthSpec,
}

#[derive(Deserialize)]
struct AuthSpec {
    identity: IdentitySpec,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
struct IdentitySpec {
    methods: Vec<String>,
    password: Option<PasswordSpec>,
    token: Option<TokenSpec>,
    application_credential: Option<AppCredSpec>,
}

#[derive(Deserialize)]
struct PasswordSpec {
    user: UserSpec,
}

#[derive(Deserialize)]
struct UserSpec {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NamedRef>,
    password: Option<String>,
}

#[derive(Deserialize, Default)]
struct NamedRef {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct TokenSpec {
    id: String,
}

#[derive(Deserialize)]
struct AppCredSpec {
    id: Option<String>,
    name: Option<String>,
    secret: String,
    user: Option<UserSpec>,
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized("The request you have made requires authentication.")
}

fn forbidden(what: &str) -> ApiError {
    ApiError::forbidden(format!("You are not authorized to perform the requested action: {what}"))
}

/// `POST /v3/auth/tokens`
pub async fn issue(
    State(id): State<Arc<Identity>>,
    Query(q): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody<AuthBody>,
) -> ApiResult<Response> {
    let AuthSpec { identity, scope } = body.auth;
    if identity.methods.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input for field 'identity.methods': at least one method is required",
        ));
    }
    let requested = requested_scope(&id.store, &scope).await?;

    let mut auth: Option<Authenticated> = None;
    for method in &identity.methods {
        let this = match method.as_str() {
            "password" => {
                let spec = identity.password.as_ref().ok_or_else(|| {
                    ApiError::bad_request("Invalid input for field 'identity.password': required by method password")
                })?;
                let user = password_user(&id, &spec.user).await?;
                Authenticated {
                    user_id: user.id,
                    methods: vec![],
                    scope: Scope::Unscoped,
                    expires_at: None,
                    parent_audit_id: None,
                    application_credential_id: None,
                }
            }
            "token" => {
                let spec = identity.token.as_ref().ok_or_else(|| {
                    ApiError::bad_request("Invalid input for field 'identity.token': required by method token")
                })?;
                let parent = id.tokens.validate(&spec.id).await.map_err(|e| match e {
                    TokenRefused::Invalid => ApiError::not_found(format!("Could not find token: {}.", spec.id)),
                    TokenRefused::Internal(e) => e.into(),
                })?;
                if parent.payload.application_credential_id.is_some() {
                    return Err(forbidden("Using a delegated token to create another token is not allowed."));
                }
                if parent.payload.scope == Scope::System && matches!(requested, Scope::Project(_) | Scope::Domain(_)) {
                    return Err(forbidden(
                        "Using a system-scoped token to create a project-scoped or domain-scoped token is not allowed.",
                    ));
                }
                Authenticated {
                    user_id: parent.user.id.clone(),
                    // The token method keeps the methods that made the parent.
                    methods: parent.payload.methods.clone(),
                    scope: Scope::Unscoped,
                    expires_at: Some(parent.payload.expires_at),
                    parent_audit_id: parent.payload.audit_ids.last().cloned(),
                    application_credential_id: None,
                }
            }
            "application_credential" => {
                let spec = identity.application_credential.as_ref().ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid input for field 'identity.application_credential': required by method application_credential",
                    )
                })?;
                if scope.is_some() {
                    return Err(ApiError::unauthorized(
                        "Application credentials cannot request a scope; the credential's own scope is used.",
                    ));
                }
                let cred = app_cred_for(&id, spec).await?;
                let scope = match (&cred.project_id, &cred.system) {
                    (Some(p), _) => Scope::Project(p.clone()),
                    (None, Some(_)) => Scope::System,
                    (None, None) => return Err(unauthorized()),
                };
                Authenticated {
                    user_id: cred.user_id.clone(),
                    methods: vec![],
                    scope,
                    expires_at: None,
                    parent_audit_id: None,
                    application_credential_id: Some(cred.id),
                }
            }
            other => {
                return Err(ApiError::unauthorized(format!(
                    "Attempted to authenticate with an unsupported method: {other}."
                )))
            }
        };
        auth = match auth {
            Some(prev) if prev.user_id != this.user_id => {
                return Err(ApiError::unauthorized("User IDs of the authentication methods do not match."))
            }
            Some(mut prev) => {
                prev.expires_at = prev.expires_at.or(this.expires_at);
                prev.parent_audit_id = prev.parent_audit_id.or(this.parent_audit_id);
                prev.application_credential_id = prev.application_credential_id.or(this.application_credential_id);
                prev.methods.extend(this.methods);
                Some(prev)
            }
            None => Some(this),
        };
    }
    let Some(mut auth) = auth else {
        return Err(unauthorized());
    };
    let mut methods = identity.methods.clone();
    for m in std::mem::take(&mut auth.methods) {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    auth.methods = methods;

    if auth.application_credential_id.is_none() {
        auth.scope = requested;
        // Without a scope, a user with a default project gets a token for it,
        // when they still have a role there.
        if scope.is_none() && auth.scope == Scope::Unscoped {
            auth.scope = default_project_scope(&id.store, &auth.user_id).await?;
        }
    }
    let (token, data) = id.tokens.issue(auth).await?;
    let catalog = catalog_for(&id, &data, &q).await?;
    let mut resp = (StatusCode::CREATED, Json(json!({"token": data.render(catalog)}))).into_response();
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    Ok(resp)
}

/// Finds the user a password method names and checks the password.
async fn password_user(id: &Identity, spec: &UserSpec) -> ApiResult<User> {
    let user = lookup_user(&id.store, spec).await?;
    let password = spec
        .password
        .clone()
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'password.user.password': required"))?;
    let ok = match &user.password_hash {
        Some(hash) => id.hasher.verify_async(password, hash.clone()).await,
        None => false,
    };
    if !ok || !user.enabled {
        return Err(unauthorized());
    }
    domain_enabled(&id.store, &user.domain_id).await?;
    Ok(user)
}

/// A user by id, or by name within a domain given by id or name.
async fn lookup_user(store: &Store, spec: &UserSpec) -> ApiResult<User> {
    let found = if let Some(uid) = &spec.id {
        store.find_user(uid).await?
    } else {
        let name = spec
            .name
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("Invalid input for field 'user': an id or a name is required"))?;
        let domain = spec.domain.as_ref().ok_or_else(|| {
            ApiError::bad_request("Invalid input for field 'user.domain': required when the user is named")
        })?;
        let domain_id = match (&domain.id, &domain.name) {
            (Some(d), _) => d.clone(),
            (None, Some(n)) => match store.get_domain_by_name(n).await {
                Ok(d) => d.id,
                Err(_) => return Err(unauthorized()),
            },
            (None, None) => {
                return Err(ApiError::bad_request("Invalid input for field 'user.domain': an id or a name is required"))
            }
        };
        store.get_user_by_name(name, &domain_id).await.ok()
    };
    found.ok_or_else(unauthorized)
}

async fn domain_enabled(store: &Store, domain_id: &str) -> ApiResult<Project> {
    match store.get_domain(domain_id).await {
        Ok(d) if d.enabled => Ok(d),
        _ => Err(unauthorized()),
    }
}

async fn app_cred_for(id: &Identity, spec: &AppCredSpec) -> ApiResult<AppCred> {
    let cred = if let Some(cid) = &spec.id {
        id.store.find_app_cred(cid).await?
    } else {
        let name = spec.name.as_deref().ok_or_else(|| {
            ApiError::bad_request("Invalid input for field 'application_credential': an id or a name is required")
        })?;
        let user_spec = spec.user.as_ref().ok_or_else(|| {
            ApiError::bad_request("Invalid input for field 'application_credential.user': required with a name")
        })?;
        let user = lookup_user(&id.store, user_spec).await?;
        id.store.list_app_creds(&user.id).await?.into_iter().find(|c| c.name == name)
    };
    let cred = cred.ok_or_else(unauthorized)?;
    let expired = cred.expires_at.is_some_and(|t| t <= common::time::now_micros());
    if expired || !id.hasher.verify_async(spec.secret.clone(), cred.secret_hash.clone()).await {
        return Err(unauthorized());
    }
    Ok(cred)
}

/// The scope a request names: `{"project": …}`, `{"domain": …}`,
/// `{"system": {"all": true}}`, `"unscoped"` or nothing.
async fn requested_scope(store: &Store, scope: &Option<Value>) -> ApiResult<Scope> {
    let Some(scope) = scope else {
        return Ok(Scope::Unscoped);
    };
    if scope.as_str() == Some("unscoped") {
        return Ok(Scope::Unscoped);
    }
    let Some(obj) = scope.as_object() else {
        return Err(ApiError::bad_request("Invalid input for field 'scope': expected an object"));
    };
    let named = |v: &Value, field: &str| -> ApiResult<NamedRef> {
        serde_json::from_value::<NamedRef>(v.clone())
            .map_err(|e| ApiError::bad_request(format!("Invalid input for field 'scope.{field}': {e}")))
    };
    let kinds = ["project", "domain", "system", "OS-TRUST:trust"].iter().filter(|k| obj.contains_key(**k)).count();
    if kinds > 1 {
        return Err(ApiError::bad_request("Invalid input for field 'scope': only one scope may be requested"));
    }
    if let Some(p) = obj.get("project") {
        let p = named(p, "project")?;
        let project = match (&p.id, &p.name) {
            (Some(pid), _) => store.get_project(pid).await.ok(),
            (None, Some(name)) => {
                let d = obj
                    .get("project")
                    .and_then(|p| p.get("domain"))
                    .map(|d| named(d, "project.domain"))
                    .transpose()?
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "Invalid input for field 'scope.project.domain': required with a project name",
                        )
                    })?;
                let domain_id = match (&d.id, &d.name) {
                    (Some(did), _) => Some(did.clone()),
                    (None, Some(dn)) => store.get_domain_by_name(dn).await.ok().map(|d| d.id),
                    (None, None) => None,
                };
                match domain_id {
                    Some(did) => store.get_project_by_name(name, &did).await.ok(),
                    None => None,
                }
            }
            (None, None) => {
                return Err(ApiError::bad_request(
                    "Invalid input for field 'scope.project': an id or a name is required",
                ))
            }
        };
        let project =
            project.ok_or_else(|| ApiError::unauthorized("Could not find the project of the requested scope."))?;
        return Ok(Scope::Project(project.id));
    }
    if let Some(d) = obj.get("domain") {
        let d = named(d, "domain")?;
        let domain = match (&d.id, &d.name) {
            (Some(did), _) => store.get_domain(did).await.ok(),
            (None, Some(n)) => store.get_domain_by_name(n).await.ok(),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "Invalid input for field 'scope.domain': an id or a name is required",
                ))
            }
        };
        let domain =
            domain.ok_or_else(|| ApiError::unauthorized("Could not find the domain of the requested scope."))?;
        return Ok(Scope::Domain(domain.id));
    }
    if let Some(s) = obj.get("system") {
        if s.get("all").and_then(Value::as_bool) == Some(true) {
            return Ok(Scope::System);
        }
        return Err(ApiError::bad_request("Invalid input for field 'scope.system': only {\"all\": true} is supported"));
    }
    if obj.contains_key("OS-TRUST:trust") {
        return Err(ApiError::forbidden("Trusts are not supported by this cloud."));
    }
    if obj.is_empty() {
        return Ok(Scope::Unscoped);
    }
    Err(ApiError::bad_request("Invalid input for field 'scope': expected project, domain or system"))
}

async fn default_project_scope(store: &Store, user_id: &str) -> ApiResult<Scope> {
    let Some(user) = store.find_user(user_id).await? else {
        return Ok(Scope::Unscoped);
    };
    let Some(pid) = user.default_project_id else {
        return Ok(Scope::Unscoped);
    };
    match store.get_project(&pid).await {
        Ok(p) if p.enabled => {
            let roles = store.effective_role_ids(user_id, &Target::Project(pid.clone())).await?;
            Ok(if roles.is_empty() { Scope::Unscoped } else { Scope::Project(pid) })
        }
        _ => Ok(Scope::Unscoped),
    }
}

async fn catalog_for(id: &Identity, data: &TokenData, q: &HashMap<String, String>) -> ApiResult<Option<Value>> {
    if q.contains_key("nocatalog") || data.payload.scope == Scope::Unscoped {
        return Ok(None);
    }
    let project = data.project.as_ref().map(|(p, _)| p.id.as_str());
    Ok(Some(id.store.catalog(project).await?))
}

fn subject_token(headers: &HeaderMap) -> ApiResult<String> {
    headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("Expecting to find X-Subject-Token in the request headers."))
}

async fn validate_subject(id: &Identity, token: &str) -> ApiResult<TokenData> {
    id.tokens.validate(token).await.map_err(|e| match e {
        TokenRefused::Invalid => ApiError::not_found(format!("Could not find token: {token}.")),
        TokenRefused::Internal(e) => e.into(),
    })
}

/// `GET /v3/auth/tokens`
pub async fn validate(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let token = subject_token(&headers)?;
    let data = validate_subject(&id, &token).await?;
    policy::token_subject(&auth, "identity:validate_token", &data.user.id)?;
    let catalog = catalog_for(&id, &data, &q).await?;
    let mut resp = Json(json!({"token": data.render(catalog)})).into_response();
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    Ok(resp)
}

/// `HEAD /v3/auth/tokens`
pub async fn check(State(id): State<Arc<Identity>>, auth: Auth, headers: HeaderMap) -> ApiResult<StatusCode> {
    let token = subject_token(&headers)?;
    let data = validate_subject(&id, &token).await?;
    policy::token_subject(&auth, "identity:check_token", &data.user.id)?;
    Ok(StatusCode::OK)
}

/// `DELETE /v3/auth/tokens`
pub async fn revoke(State(id): State<Arc<Identity>>, auth: Auth, headers: HeaderMap) -> ApiResult<StatusCode> {
    let token = subject_token(&headers)?;
    let data = validate_subject(&id, &token).await?;
    policy::token_subject(&auth, "identity:revoke_token", &data.user.id)?;
    id.tokens.revoke(&data).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/projects`: the enabled projects the caller has a role on.
pub async fn projects(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    let projects = scopable_targets(&id.store, &auth.user_id, false, true).await?;
    let items = projects.iter().map(|p| render::project(&base, p)).collect();
    Ok(Json(render::collection(&base, "projects", "/v3/auth/projects", items)))
}

/// `GET /v3/auth/domains`: the enabled domains the caller has a role on.
pub async fn domains(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    let domains = scopable_targets(&id.store, &auth.user_id, true, true).await?;
    let items = domains.iter().map(|d| render::domain(&base, d)).collect();
    Ok(Json(render::collection(&base, "domains", "/v3/auth/domains", items)))
}

/// `GET /v3/auth/system`
pub async fn system(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    let roles = id.store.effective_role_ids(&auth.user_id, &Target::System).await?;
    let system: Vec<Value> = if roles.is_empty() { vec![] } else { vec![json!({"all": true})] };
    Ok(Json(json!({"system": system, "links": {"self": base.join("/v3/auth/system"), "previous": null, "next": null}})))
}

/// `GET /v3/auth/catalog`
pub async fn catalog(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    policy::authenticated(&auth, "identity:get_auth_catalog")?;
    if auth.project_id.is_none() && auth.domain_id.is_none() && !auth.system_scope {
        return Err(ApiError::forbidden("A scoped token is required to get a catalog."));
    }
    let catalog = id.store.catalog(auth.project_id.as_deref()).await?;
    Ok(Json(
        json!({"catalog": catalog, "links": {"self": base.join("/v3/auth/catalog"), "previous": null, "next": null}}),
    ))
}

/// The projects (or domains) where `user_id` holds a role, directly, via a group,
/// or inherited; only enabled ones when `enabled_only`.
pub async fn scopable_targets(
    store: &Store,
    user_id: &str,
    domains: bool,
    enabled_only: bool,
) -> ApiResult<Vec<Project>> {
    let mut actors = store.group_ids_of_user(user_id).await?;
    actors.push(user_id.to_string());
    let assignments =
        store.list_assignments(&AssignmentFilter { actor_ids: Some(actors), ..Default::default() }).await?;
    let mut ids: Vec<String> = Vec::new();
    let all_projects = store.list_projects(&ProjectFilter { is_domain: Some(false), ..Default::default() }).await?;
    for a in &assignments {
        match (&a.target, a.inherited, domains) {
            (Target::Project(p), false, false) | (Target::Domain(p), false, true) => ids.push(p.clone()),
            (Target::Domain(d), true, false) => {
                ids.extend(all_projects.iter().filter(|p| &p.domain_id == d).map(|p| p.id.clone()))
            }
            (Target::Project(p), true, false) => {
                ids.extend(store.project_descendants(p).await?.into_iter().map(|p| p.id))
            }
            _ => {}
        }
    }
    ids.sort();
    ids.dedup();
    let found = store
        .list_projects(&ProjectFilter {
            is_domain: Some(domains),
            enabled: enabled_only.then_some(true),
            ids: Some(ids),
            ..Default::default()
        })
        .await?;
    Ok(found)
}
