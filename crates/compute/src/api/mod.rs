//! Nova's v2.1 REST API with microversions: one file per resource, routed
//! here. Handlers validate, apply policy, write the record and hand the work
//! to the conductor or a host over the bus; none waits for a guest.

pub mod action_schemas;
mod aggregates;
mod consoles;
mod diagnostics;
mod extensions;
mod flavors;
mod hosts;
mod hypervisors;
mod instance_actions;
mod interfaces;
mod keypairs;
mod limits;
mod metadata;
mod password;
mod proxies;
mod server_actions;
mod server_groups;
pub mod servers;
mod services;
mod usage_audit;
mod versions;
mod views;

use std::sync::Arc;

use api::auth::TokenCache;
use api::microversion::{Microversion, Versions};
use api::{ApiError, Auth};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value};

use bus::Bus;
use compute_rpc::conductor::{ConductorClient, SagaIds};
use compute_rpc::host::ComputeHostClient;
use saga::Saga;

use crate::config::ComputeConfig;
use crate::error::{ComputeError, Result};
use crate::model::Instance;
use crate::session::ServiceSession;
use crate::store::actions::NewAction;
use crate::store::Store;

pub const VERSIONS: Versions = Versions {
    service: "compute",
    legacy_header: "x-openstack-nova-api-version",
    min: Microversion::new(2, 1),
    max: Microversion::new(2, 96),
};

/// What the API handlers share.
pub struct ComputeApi {
    pub store: Store,
    pub conductor: ConductorClient,
    pub bus: Bus,
    pub session: Arc<ServiceSession>,
    pub config: ComputeConfig,
}

impl ComputeApi {
    /// A client for one compute host, on behalf of the request.
    pub fn host(&self, host: &str, request_id: &str) -> ComputeHostClient {
        ComputeHostClient::to_server(&self.bus, host).for_request(Some(request_id.to_string()))
    }

    /// Asks the conductor to run sagas recorded here.
    pub async fn run_sagas(&self, ids: Vec<String>, request_id: &str) -> Result<()> {
        Ok(self.conductor.for_request(Some(request_id.to_string())).run_sagas(&SagaIds { ids }).await?)
    }

    /// Changes the instance and records the saga that carries the change
    /// out and the action the request started, in one transaction, then has
    /// the conductor run the saga.
    pub async fn start_saga<S: Saga>(
        &self,
        uuid: &str,
        id: &str,
        params: &S::Params,
        action: &NewAction,
        change: impl FnOnce(&mut Instance) -> Result<()>,
    ) -> Result<Instance> {
        let request_id = action.request_id.as_str();
        let record = saga::new_record::<S>(id, Some(uuid.to_string()), params, Some(request_id.to_string()))
            .map_err(|e| ComputeError::Internal(e.message))?;
        let i = self.store.update_instance_with_saga(uuid, change, &record, action).await?;
        self.run_sagas(vec![id.to_string()], request_id).await?;
        Ok(i)
    }
}

pub type State = axum::extract::State<Arc<ComputeApi>>;

/// Nova's 403 for a policy refusal.
pub fn admin_only(auth: &Auth, action: &str) -> Result<()> {
    if auth.is_admin() {
        Ok(())
    } else {
        Err(ComputeError::Forbidden(format!("Policy doesn't allow {action} to be performed.")))
    }
}

/// A 400 for a body or query that does not fit.
pub fn bad(message: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(message.into())
}

/// `self` and `bookmark` links for a resource.
pub fn links(base: &api::BaseUrl, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v2.1/{kind}/{id}", base.0)},
        {"rel": "bookmark", "href": format!("{}/{kind}/{id}", base.0)},
    ])
}

/// The body's one top-level object under `key`.
pub fn body_object(body: &Value, key: &str) -> Result<serde_json::Map<String, Value>> {
    match body.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => {
            Err(bad(format!("Invalid input for field/attribute {key}. Value: {}. is not of type 'object'", body[key])))
        }
        None => Err(bad(format!("Invalid input for field/attribute {key}: '{key}' is a required property"))),
    }
}

/// Decodes a JSON body (400 when it is not JSON).
pub fn json_body(bytes: &[u8]) -> Result<Value> {
    Ok(api::body::decode::<Value>(bytes)?)
}

/// The whole compute API with the shared layers.
pub fn router(svc: Arc<ComputeApi>, tokens: Arc<TokenCache>) -> Router {
    let v21 = Router::new()
        .route("/servers", get(servers::list).post(servers::create))
        .route("/servers/detail", get(servers::detail))
        .route("/servers/{id}", get(servers::show).put(servers::update).delete(servers::delete))
        .route("/servers/{id}/action", post(server_actions::action))
        .route("/servers/{id}/os-instance-actions", get(instance_actions::list))
        .route("/servers/{id}/diagnostics", get(diagnostics::show))
        .route("/servers/{id}/remote-consoles", post(consoles::create))
        .route("/os-console-auth-tokens/{token}", get(consoles::show_token))
        .route("/servers/{id}/os-server-password", get(password::show).delete(password::clear))
        .route("/servers/{id}/os-instance-actions/{request_id}", get(instance_actions::show))
        .route("/servers/{id}/os-interface", get(interfaces::list).post(interfaces::attach))
        .route("/servers/{id}/os-interface/{port}", get(interfaces::show).delete(interfaces::detach))
        .route("/servers/{id}/metadata", get(metadata::list).post(metadata::update_all).put(metadata::replace_all))
        .route("/servers/{id}/metadata/{key}", get(metadata::show).put(metadata::set).delete(metadata::delete))
        .route("/servers/{id}/tags", get(metadata::tags).put(metadata::replace_tags).delete(metadata::clear_tags))
        .route("/servers/{id}/tags/{tag}", get(metadata::has_tag).put(metadata::add_tag).delete(metadata::remove_tag))
        .route("/servers/{id}/os-security-groups", get(proxies::server_security_groups))
        .route("/servers/{id}/migrations", get(hypervisors::server_migrations))
        .route("/servers/{id}/ips", get(servers::ips))
        .route("/servers/{id}/ips/{network}", get(servers::ips_of))
        .route("/flavors", get(flavors::list).post(flavors::create))
        .route("/flavors/detail", get(flavors::detail))
        .route("/flavors/{id}", get(flavors::show).put(flavors::update).delete(flavors::delete))
        .route("/flavors/{id}/action", post(flavors::access_action))
        .route("/flavors/{id}/os-flavor-access", get(flavors::access_list))
        .route("/flavors/{id}/os-extra_specs", get(flavors::specs_list).post(flavors::specs_set))
        .route(
            "/flavors/{id}/os-extra_specs/{key}",
            get(flavors::spec_show).put(flavors::spec_put).delete(flavors::spec_delete),
        )
        .route("/os-keypairs", get(keypairs::list).post(keypairs::create))
        .route("/os-keypairs/{name}", get(keypairs::show).delete(keypairs::delete))
        .route("/os-server-groups", get(server_groups::list).post(server_groups::create))
        .route("/os-server-groups/{id}", get(server_groups::show).delete(server_groups::delete))
        .route("/os-aggregates", get(aggregates::list).post(aggregates::create))
        .route("/os-aggregates/{id}", get(aggregates::show).put(aggregates::update).delete(aggregates::delete))
        .route("/os-aggregates/{id}/action", post(aggregates::action))
        .route("/os-availability-zone", get(aggregates::zones))
        .route("/os-availability-zone/detail", get(aggregates::zones_detail))
        .route("/os-hypervisors", get(hypervisors::list))
        .route("/os-hypervisors/detail", get(hypervisors::detail))
        .route("/os-hypervisors/statistics", get(hypervisors::statistics))
        .route("/os-hypervisors/{id}", get(hypervisors::show))
        .route("/os-hypervisors/{id}/uptime", get(hypervisors::uptime))
        .route("/os-hypervisors/{id}/search", get(hypervisors::search))
        .route("/os-hypervisors/{id}/servers", get(hypervisors::servers))
        .route("/os-migrations", get(hypervisors::migrations))
        .route("/os-services", get(services::list))
        .route("/os-services/{id}", put(services::update).delete(services::delete))
        .route("/os-services/disable", put(services::disable))
        .route("/os-services/enable", put(services::enable))
        .route("/os-services/disable-log-reason", put(services::disable_log_reason))
        .route("/os-services/force-down", put(services::force_down))
        .route(
            "/os-quota-sets/{project}",
            get(limits::quota_show).put(limits::quota_update).delete(limits::quota_delete),
        )
        .route("/os-quota-sets/{project}/defaults", get(limits::quota_defaults))
        .route("/os-quota-sets/{project}/detail", get(limits::quota_detail))
        .route("/os-quota-class-sets/{class}", get(limits::quota_class_show).put(limits::quota_class_update))
        .route("/limits", get(limits::limits))
        .route("/os-simple-tenant-usage", get(limits::usage_list))
        .route("/os-simple-tenant-usage/{project}", get(limits::usage_show))
        .route("/images", get(proxies::images))
        .route("/images/detail", get(proxies::images_detail))
        .route("/images/{id}", get(proxies::image).delete(proxies::image_delete))
        .route(
            "/images/{id}/metadata",
            get(proxies::image_metadata).post(proxies::image_metadata_merge).put(proxies::image_metadata_replace),
        )
        .route(
            "/images/{id}/metadata/{key}",
            get(proxies::image_metadata_item)
                .put(proxies::image_metadata_item_set)
                .delete(proxies::image_metadata_item_delete),
        )
        .route("/os-security-groups", get(proxies::security_groups).post(proxies::security_group_create))
        .route(
            "/os-security-groups/{id}",
            get(proxies::security_group).put(proxies::security_group_update).delete(proxies::security_group_delete),
        )
        .route("/os-security-group-rules", post(proxies::security_group_rule_create))
        .route("/os-security-group-rules/{id}", axum::routing::delete(proxies::security_group_rule_delete))
        .route("/os-floating-ips", get(proxies::floating_ips).post(proxies::floating_ip_create))
        .route("/os-floating-ips/{id}", get(proxies::floating_ip).delete(proxies::floating_ip_delete))
        .route("/os-floating-ip-pools", get(proxies::floating_ip_pools))
        .route("/os-networks", get(proxies::networks))
        .route("/os-networks/{id}", get(proxies::network))
        .route("/os-tenant-networks", get(proxies::tenant_networks))
        .route("/os-tenant-networks/{id}", get(proxies::tenant_network))
        .route("/os-server-external-events", post(server_actions::external_events))
        .route("/os-hosts", get(hosts::list))
        .route("/os-hosts/{host}", get(hosts::show).put(hosts::update))
        .route("/os-hosts/{host}/startup", get(hosts::power_action))
        .route("/os-hosts/{host}/shutdown", get(hosts::power_action))
        .route("/os-hosts/{host}/reboot", get(hosts::power_action))
        .route("/os-instance_usage_audit_log", get(usage_audit::list))
        .route("/os-instance_usage_audit_log/{before}", get(usage_audit::show))
        .route("/extensions", get(extensions::list))
        .route("/extensions/{alias}", get(extensions::show))
        .with_state(svc.clone());
    let routes = Router::new()
        .route("/", get(versions::root))
        .route("/v2", get(versions::v2))
        .route("/v2/", get(versions::v2))
        .route("/v2.1", get(versions::v21))
        .route("/v2.1/", get(versions::v21))
        .nest("/v2.1", v21)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |req, next| api::microversion::microversion_layer(VERSIONS, req, next)));
    api::server::finish(routes, "compute", ::common::FaultFormat::Nova, tokens)
}

async fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}

/// A lookup that found nothing becomes `instead` (the 400 Nova answers for a
/// bad reference); any other failure, such as the database being down (503),
/// keeps its own status.
pub(crate) fn only_missing(e: ComputeError, instead: impl FnOnce() -> ComputeError) -> ComputeError {
    match e {
        ComputeError::NotFound(_) => instead(),
        other => other,
    }
}
