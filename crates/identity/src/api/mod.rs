//! Keystone's REST API: one file per resource, routed here. Every handler
//! validates its input, applies [`crate::policy`], and goes through the
//! [`crate::store`]; none writes SQL.

mod app_creds;
mod assignments;
pub mod auth;
mod catalog;
mod credentials;
mod domain_config;
mod domains;
mod endpoint_filter;
mod groups;
mod policies;
mod projects;
pub mod render;
mod roles;
mod tags;
mod users;
mod versions;

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult};
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use common::FaultFormat;

use crate::Identity;
use assignments::{DOMAIN, PROJECT, SYSTEM};

/// Keystone's filter booleans (`?enabled=False`): false is 0/f/false/off/n/no,
/// anything else true.
pub(crate) fn parse_bool_filter(q: &HashMap<String, String>, key: &str) -> ApiResult<Option<bool>> {
    Ok(q.get(key).map(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "f" | "false" | "off" | "n" | "no")))
}

/// The whole identity API, with the shared layers (request ids, faults, tokens).
pub fn router(identity: Arc<Identity>) -> Router {
    let cache = identity.token_cache.clone();
    let routes = Router::new()
        .route("/", get(versions::root))
        .route("/v3", get(versions::version))
        .route("/v3/", get(versions::version))
        // Tokens and what they may scope to.
        .route("/v3/auth/tokens", post(auth::issue).get(auth::validate).head(auth::check).delete(auth::revoke))
        .route("/v3/auth/projects", get(auth::projects))
        .route("/v3/auth/domains", get(auth::domains))
        .route("/v3/auth/system", get(auth::system))
        .route("/v3/auth/catalog", get(auth::catalog))
        // Domains and their configuration.
        .route("/v3/domains", get(domains::list).post(domains::create))
        .route("/v3/domains/{id}", get(domains::get).patch(domains::update).delete(domains::delete))
        .route("/v3/domains/config/default", get(domain_config::default_all))
        .route("/v3/domains/config/{group}/default", get(domain_config::default_group))
        .route("/v3/domains/config/{group}/{option}/default", get(domain_config::default_option))
        .route(
            "/v3/domains/{id}/config",
            get(domain_config::get).put(domain_config::put).patch(domain_config::patch).delete(domain_config::delete),
        )
        .route(
            "/v3/domains/{id}/config/{group}",
            get(domain_config::get_group).patch(domain_config::patch_group).delete(domain_config::delete_group),
        )
        .route(
            "/v3/domains/{id}/config/{group}/{option}",
            get(domain_config::get_option).patch(domain_config::patch_option).delete(domain_config::delete_option),
        )
        // Projects and tags.
        .route("/v3/projects", get(projects::list).post(projects::create))
        .route("/v3/projects/{id}", get(projects::get).patch(projects::update).delete(projects::delete))
        .route("/v3/projects/{id}/tags", get(tags::list).put(tags::replace).delete(tags::clear))
        .route("/v3/projects/{id}/tags/{tag}", get(tags::check).head(tags::check).put(tags::add).delete(tags::remove))
        // Users and groups.
        .route("/v3/users", get(users::list).post(users::create))
        .route("/v3/users/{id}", get(users::get).patch(users::update).delete(users::delete))
        .route("/v3/users/{id}/password", post(users::change_password))
        .route("/v3/users/{id}/groups", get(users::groups))
        .route("/v3/users/{id}/projects", get(projects::of_user))
        .route("/v3/users/{id}/application_credentials", get(app_creds::list).post(app_creds::create))
        .route("/v3/users/{id}/application_credentials/{cred}", get(app_creds::get).delete(app_creds::delete))
        .route("/v3/groups", get(groups::list).post(groups::create))
        .route("/v3/groups/{id}", get(groups::get).patch(groups::update).delete(groups::delete))
        .route("/v3/groups/{id}/users", get(groups::users))
        .route(
            "/v3/groups/{id}/users/{user}",
            put(groups::add_user).head(groups::check_user).get(groups::check_user).delete(groups::remove_user),
        )
        // Roles, implied roles and assignments.
        .route("/v3/roles", get(roles::list).post(roles::create))
        .route("/v3/roles/{id}", get(roles::get).patch(roles::update).delete(roles::delete))
        .route("/v3/roles/{id}/implies", get(roles::list_implied))
        .route(
            "/v3/roles/{id}/implies/{implied}",
            put(roles::create_implied).get(roles::get_implied).head(roles::check_implied).delete(roles::delete_implied),
        )
        .route("/v3/role_inferences", get(roles::list_inferences))
        .route("/v3/role_assignments", get(assignments::list))
        // Grants on projects and domains.
        .route("/v3/projects/{id}/users/{user}/roles", get(assignments::list_granted::<PROJECT, false, false>))
        .route(
            "/v3/projects/{id}/users/{user}/roles/{role}",
            put(assignments::put::<PROJECT, false, false>)
                .head(assignments::check::<PROJECT, false, false>)
                .get(assignments::check::<PROJECT, false, false>)
                .delete(assignments::delete::<PROJECT, false, false>),
        )
        .route("/v3/projects/{id}/groups/{group}/roles", get(assignments::list_granted::<PROJECT, true, false>))
        .route(
            "/v3/projects/{id}/groups/{group}/roles/{role}",
            put(assignments::put::<PROJECT, true, false>)
                .head(assignments::check::<PROJECT, true, false>)
                .get(assignments::check::<PROJECT, true, false>)
                .delete(assignments::delete::<PROJECT, true, false>),
        )
        .route("/v3/domains/{id}/users/{user}/roles", get(assignments::list_granted::<DOMAIN, false, false>))
        .route(
            "/v3/domains/{id}/users/{user}/roles/{role}",
            put(assignments::put::<DOMAIN, false, false>)
                .head(assignments::check::<DOMAIN, false, false>)
                .get(assignments::check::<DOMAIN, false, false>)
                .delete(assignments::delete::<DOMAIN, false, false>),
        )
        .route("/v3/domains/{id}/groups/{group}/roles", get(assignments::list_granted::<DOMAIN, true, false>))
        .route(
            "/v3/domains/{id}/groups/{group}/roles/{role}",
            put(assignments::put::<DOMAIN, true, false>)
                .head(assignments::check::<DOMAIN, true, false>)
                .get(assignments::check::<DOMAIN, true, false>)
                .delete(assignments::delete::<DOMAIN, true, false>),
        )
        // Grants on the system; inherited grants (OS-INHERIT).
        .route("/v3/system/users/{user}/roles", get(assignments::list_granted::<SYSTEM, false, false>))
        .route(
            "/v3/system/users/{user}/roles/{role}",
            put(assignments::put::<SYSTEM, false, false>)
                .head(assignments::check::<SYSTEM, false, false>)
                .get(assignments::check::<SYSTEM, false, false>)
                .delete(assignments::delete::<SYSTEM, false, false>),
        )
        .route("/v3/system/groups/{group}/roles", get(assignments::list_granted::<SYSTEM, true, false>))
        .route(
            "/v3/system/groups/{group}/roles/{role}",
            put(assignments::put::<SYSTEM, true, false>)
                .head(assignments::check::<SYSTEM, true, false>)
                .get(assignments::check::<SYSTEM, true, false>)
                .delete(assignments::delete::<SYSTEM, true, false>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{id}/users/{user}/roles/inherited_to_projects",
            get(assignments::list_granted::<DOMAIN, false, true>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{id}/users/{user}/roles/{role}/inherited_to_projects",
            put(assignments::put::<DOMAIN, false, true>)
                .head(assignments::check::<DOMAIN, false, true>)
                .get(assignments::check::<DOMAIN, false, true>)
                .delete(assignments::delete::<DOMAIN, false, true>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{id}/groups/{group}/roles/inherited_to_projects",
            get(assignments::list_granted::<DOMAIN, true, true>),
        )
        .route(
            "/v3/OS-INHERIT/domains/{id}/groups/{group}/roles/{role}/inherited_to_projects",
            put(assignments::put::<DOMAIN, true, true>)
                .head(assignments::check::<DOMAIN, true, true>)
                .get(assignments::check::<DOMAIN, true, true>)
                .delete(assignments::delete::<DOMAIN, true, true>),
        )
        .route(
            "/v3/OS-INHERIT/projects/{id}/users/{user}/roles/inherited_to_projects",
            get(assignments::list_granted::<PROJECT, false, true>),
        )
        .route(
            "/v3/OS-INHERIT/projects/{id}/users/{user}/roles/{role}/inherited_to_projects",
            put(assignments::put::<PROJECT, false, true>)
                .head(assignments::check::<PROJECT, false, true>)
                .get(assignments::check::<PROJECT, false, true>)
                .delete(assignments::delete::<PROJECT, false, true>),
        )
        .route(
            "/v3/OS-INHERIT/projects/{id}/groups/{group}/roles/inherited_to_projects",
            get(assignments::list_granted::<PROJECT, true, true>),
        )
        .route(
            "/v3/OS-INHERIT/projects/{id}/groups/{group}/roles/{role}/inherited_to_projects",
            put(assignments::put::<PROJECT, true, true>)
                .head(assignments::check::<PROJECT, true, true>)
                .get(assignments::check::<PROJECT, true, true>)
                .delete(assignments::delete::<PROJECT, true, true>),
        )
        // The catalog.
        .route("/v3/regions", get(catalog::list_regions).post(catalog::create_region))
        .route(
            "/v3/regions/{id}",
            get(catalog::get_region)
                .put(catalog::put_region)
                .patch(catalog::update_region)
                .delete(catalog::delete_region),
        )
        .route("/v3/services", get(catalog::list_services).post(catalog::create_service))
        .route(
            "/v3/services/{id}",
            get(catalog::get_service).patch(catalog::update_service).delete(catalog::delete_service),
        )
        .route("/v3/endpoints", get(catalog::list_endpoints).post(catalog::create_endpoint))
        .route(
            "/v3/endpoints/{id}",
            get(catalog::get_endpoint).patch(catalog::update_endpoint).delete(catalog::delete_endpoint),
        )
        // OS-EP-FILTER
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups",
            get(endpoint_filter::list_groups).post(endpoint_filter::create_group),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}",
            get(endpoint_filter::get_group)
                .head(endpoint_filter::check_group)
                .patch(endpoint_filter::update_group)
                .delete(endpoint_filter::delete_group),
        )
        .route("/v3/OS-EP-FILTER/endpoint_groups/{id}/endpoints", get(endpoint_filter::group_endpoints))
        .route("/v3/OS-EP-FILTER/endpoint_groups/{id}/projects", get(endpoint_filter::group_projects))
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project}",
            put(endpoint_filter::put_group_project)
                .head(endpoint_filter::check_group_project)
                .get(endpoint_filter::check_group_project)
                .delete(endpoint_filter::delete_group_project),
        )
        .route("/v3/OS-EP-FILTER/projects/{id}/endpoints", get(endpoint_filter::project_endpoints))
        .route(
            "/v3/OS-EP-FILTER/projects/{id}/endpoints/{endpoint}",
            put(endpoint_filter::put_project_endpoint)
                .head(endpoint_filter::check_project_endpoint)
                .get(endpoint_filter::check_project_endpoint)
                .delete(endpoint_filter::delete_project_endpoint),
        )
        .route("/v3/OS-EP-FILTER/endpoints/{id}/projects", get(endpoint_filter::endpoint_projects))
        // Credentials, policies, OAuth1 consumers, revocation events.
        .route("/v3/credentials", get(credentials::list).post(credentials::create))
        .route("/v3/credentials/{id}", get(credentials::get).patch(credentials::update).delete(credentials::delete))
        .route("/v3/policies", get(policies::list).post(policies::create))
        .route("/v3/policies/{id}", get(policies::get).patch(policies::update).delete(policies::delete))
        .route("/v3/OS-OAUTH1/consumers", get(policies::list_consumers).post(policies::create_consumer))
        .route(
            "/v3/OS-OAUTH1/consumers/{id}",
            get(policies::get_consumer).patch(policies::update_consumer).delete(policies::delete_consumer),
        )
        .route("/v3/OS-REVOKE/events", get(policies::revoke_events))
        .fallback(not_found)
        .with_state(identity.clone());
    let routes = routes.layer(middleware::from_fn_with_state(identity, forget_tokens_after_writes));
    api::server::finish(routes, "identity", FaultFormat::Keystone, cache)
}

async fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// Roles, users, projects and tokens feed into what a token means, so any
/// write forgets every cached token validation.
async fn forget_tokens_after_writes(
    axum::extract::State(identity): axum::extract::State<Arc<Identity>>,
    req: Request,
    next: Next,
) -> Response {
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let login = req.method() == Method::POST && req.uri().path() == "/v3/auth/tokens";
    let write = !(read || login);
    let resp = next.run(req).await;
    // Even a failed write may have changed something before it failed.
    if write {
        identity.tokens.forget_cached();
    }
    resp
}
