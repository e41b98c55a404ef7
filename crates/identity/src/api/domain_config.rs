//! Domain configuration: per-domain identity driver settings
//! (`/v3/domains/{id}/config[/{group}[/{option}]]`) and the defaults
//! (`/v3/domains/config[/{group}[/{option}]]/default`). Only Keystone's
//! whitelisted groups and options are accepted; `ldap.password` is stored but never
//! shown.

use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, JsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::policy;
use crate::store::DomainConfig;
use crate::Identity;

/// Options an operator may set per domain, with Keystone's defaults.
fn defaults() -> Map<String, Value> {
    let identity = json!({"driver": "sql", "list_limit": null});
    let ldap = json!({
        "url": "ldap://localhost", "user": null, "suffix": "cn=example,cn=com", "query_scope": "one",
        "page_size": 0, "alias_dereferencing": "default", "debug_level": null, "chase_referrals": null,
        "user_tree_dn": null, "user_filter": null, "user_objectclass": "inetOrgPerson",
        "user_id_attribute": "cn", "user_name_attribute": "sn", "user_mail_attribute": "mail",
        "user_description_attribute": "description", "user_pass_attribute": "userPassword",
        "user_enabled_attribute": "enabled", "user_enabled_invert": false, "user_enabled_mask": 0,
        "user_enabled_default": "True", "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": null, "user_enabled_emulation": false,
        "user_enabled_emulation_dn": null, "user_enabled_emulation_use_group_config": false,
        "user_additional_attribute_mapping": [], "group_tree_dn": null, "group_filter": null,
        "group_objectclass": "groupOfNames", "group_id_attribute": "cn", "group_name_attribute": "ou",
        "group_members_are_ids": false, "group_member_attribute": "member",
        "group_desc_attribute": "description", "group_attribute_ignore": [],
        "group_additional_attribute_mapping": [], "tls_cacertfile": null, "tls_cacertdir": null,
        "use_tls": false, "tls_req_cert": "demand", "use_pool": true, "pool_size": 10,
        "pool_retry_max": 3, "pool_retry_delay": 0.1, "pool_connection_timeout": -1,
        "pool_connection_lifetime": 600, "use_auth_pool": true, "auth_pool_size": 100,
        "auth_pool_connection_lifetime": 60,
    });
    let mut m = Map::new();
    m.insert("identity".into(), identity);
    m.insert("ldap".into(), ldap);
    m
}

const SENSITIVE: &[&str] = &["ldap.password"];

fn invalid(reason: String) -> ApiError {
    ApiError::forbidden(format!("Invalid domain specific configuration: {reason}."))
}

fn check_option(group: &str, option: Option<&str>) -> ApiResult<()> {
    let d = defaults();
    let Some(options) = d.get(group).and_then(Value::as_object) else {
        return Err(invalid(format!("Group {group} is not supported for domain specific configurations")));
    };
    if let Some(o) = option {
        if !options.contains_key(o) && !SENSITIVE.contains(&format!("{group}.{o}").as_str()) {
            return Err(invalid(format!(
                "Option {o} in group {group} is not supported for domain specific configurations"
            )));
        }
    }
    Ok(())
}

fn take_config(body: Value) -> ApiResult<DomainConfig> {
    let config = match body {
        Value::Object(mut o) => o.remove("config"),
        _ => None,
    };
    let Some(Value::Object(config)) = config else {
        return Err(ApiError::bad_request("Expecting to find config in request body."));
    };
    if config.is_empty() {
        return Err(invalid("No options specified".into()));
    }
    for (group, options) in &config {
        match options.as_object() {
            Some(o) if !o.is_empty() => {
                for option in o.keys() {
                    check_option(group, Some(option))?;
                }
            }
            _ => {
                return Err(invalid(format!(
                    "The value of group {group} specified in the config should be a dictionary of options"
                )))
            }
        }
    }
    Ok(config)
}

fn not_found(domain_id: &str, what: String) -> ApiError {
    ApiError::not_found(format!("Could not find {what} in domain configuration for domain {domain_id}."))
}

async fn existing(id: &Identity, domain_id: &str) -> ApiResult<DomainConfig> {
    id.store.get_domain(domain_id).await?;
    let config = id.store.get_domain_config(domain_id, true).await?;
    if config.is_empty() {
        return Err(not_found(domain_id, "any options".into()));
    }
    Ok(config)
}

fn visible(config: &DomainConfig) -> DomainConfig {
    let mut out = config.clone();
    for s in SENSITIVE {
        if let Some((g, o)) = s.split_once('.') {
            if let Some(Value::Object(group)) = out.get_mut(g) {
                group.remove(o);
            }
        }
    }
    out.retain(|_, v| v.as_object().is_some_and(|o| !o.is_empty()));
    out
}

/// `PUT /v3/domains/{id}/config`: 201 when new, 200 when replacing.
pub async fn put(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(domain_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_domain_config")?;
    id.store.get_domain(&domain_id).await?;
    let config = take_config(body)?;
    let had = !id.store.get_domain_config(&domain_id, true).await?.is_empty();
    id.store.set_domain_config(&domain_id, &config, SENSITIVE).await?;
    let status = if had { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(json!({"config": visible(&config)}))))
}

pub async fn get(State(id): State<Arc<Identity>>, auth: Auth, Path(domain_id): Path<String>) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_domain_config")?;
    let config = existing(&id, &domain_id).await?;
    Ok(Json(json!({"config": visible(&config)})))
}

pub async fn get_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((domain_id, group)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_domain_config")?;
    check_option(&group, None)?;
    let config = visible(&existing(&id, &domain_id).await?);
    let g = config.get(&group).cloned().ok_or_else(|| not_found(&domain_id, format!("group {group}")))?;
    Ok(Json(json!({"config": {group: g}})))
}

pub async fn get_option(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_domain_config")?;
    check_option(&group, Some(&option))?;
    let config = visible(&existing(&id, &domain_id).await?);
    let v = config
        .get(&group)
        .and_then(|g| g.get(&option))
        .cloned()
        .ok_or_else(|| not_found(&domain_id, format!("option {option} in group {group}")))?;
    Ok(Json(json!({"config": {option: v}})))
}

/// Merges `update` into the domain's configuration; when a group (and option)
/// is named, the update must hold exactly that and it must already exist.
async fn patch_config(
    id: &Identity,
    domain_id: &str,
    update: DomainConfig,
    group: Option<&str>,
    option: Option<&str>,
) -> ApiResult<Json<Value>> {
    let mut config = existing(id, domain_id).await?;
    if let Some(g) = group {
        check_option(g, option)?;
        let only = update.len() == 1
            && update.contains_key(g)
            && option.is_none_or(|o| update[g].as_object().is_some_and(|x| x.len() == 1 && x.contains_key(o)));
        if !only {
            return Err(invalid(match option {
                Some(o) => format!("Trying to update option {o} in group {g}, so that, and only that, option must be specified in the config"),
                None => format!("Trying to update group {g}, so that, and only that, group must be specified in the config"),
            }));
        }
        let present = config.get(g).is_some_and(|x| option.is_none_or(|o| x.get(o).is_some()));
        if !present {
            return Err(not_found(
                domain_id,
                match option {
                    Some(o) => format!("option {o} in group {g}"),
                    None => format!("group {g}"),
                },
            ));
        }
    }
    for (g, options) in update {
        let entry = config.entry(g).or_insert_with(|| Value::Object(Map::new()));
        if let (Value::Object(target), Value::Object(new)) = (entry, options) {
            target.extend(new);
        }
    }
    id.store.set_domain_config(domain_id, &config, SENSITIVE).await?;
    Ok(Json(json!({"config": visible(&config)})))
}

pub async fn patch(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(domain_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_domain_config")?;
    patch_config(&id, &domain_id, take_config(body)?, None, None).await
}

pub async fn patch_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((domain_id, group)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_domain_config")?;
    patch_config(&id, &domain_id, take_config(body)?, Some(&group), None).await
}

pub async fn patch_option(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_domain_config")?;
    // The option form's body is `{"config": {option: value}}`.
    let inner = match body {
        Value::Object(mut o) => o.remove("config"),
        _ => None,
    };
    let Some(Value::Object(inner)) = inner else {
        return Err(ApiError::bad_request("Expecting to find config in request body."));
    };
    let mut update = Map::new();
    update.insert(group.clone(), Value::Object(inner));
    take_config(json!({"config": update.clone()}))?;
    patch_config(&id, &domain_id, update, Some(&group), Some(&option)).await
}

pub async fn delete(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(domain_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_domain_config")?;
    existing(&id, &domain_id).await?;
    id.store.delete_domain_config(&domain_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((domain_id, group)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_domain_config")?;
    check_option(&group, None)?;
    let mut config = existing(&id, &domain_id).await?;
    if config.remove(&group).is_none() {
        return Err(not_found(&domain_id, format!("group {group}")));
    }
    id.store.set_domain_config(&domain_id, &config, SENSITIVE).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_option(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_domain_config")?;
    check_option(&group, Some(&option))?;
    let mut config = existing(&id, &domain_id).await?;
    let removed = config.get_mut(&group).and_then(Value::as_object_mut).and_then(|g| g.remove(&option));
    if removed.is_none() {
        return Err(not_found(&domain_id, format!("option {option} in group {group}")));
    }
    config.retain(|_, v| v.as_object().is_some_and(|o| !o.is_empty()));
    id.store.set_domain_config(&domain_id, &config, SENSITIVE).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/domains/config/default`
pub async fn default_all(auth: Auth) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_domain_config_default")?;
    Ok(Json(json!({"config": defaults()})))
}

/// `GET /v3/domains/config/{group}/default`
pub async fn default_group(auth: Auth, Path(group): Path<String>) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_domain_config_default")?;
    check_option(&group, None)?;
    Ok(Json(json!({"config": {group.clone(): defaults()[&group]}})))
}

/// `GET /v3/domains/config/{group}/{option}/default`
pub async fn default_option(auth: Auth, Path((group, option)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_domain_config_default")?;
    check_option(&group, Some(&option))?;
    let v = defaults()[&group].get(&option).cloned().unwrap_or(Value::Null);
    Ok(Json(json!({"config": {option: v}})))
}
