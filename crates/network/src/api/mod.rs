//! Neutron's REST API: one file per resource, routed here. Resource attributes
//! are declared as data (`attrs`), listing follows one set of rules (`query`),
//! and every handler goes through the store; none writes SQL.

pub mod agents;
pub mod attrs;
pub mod common;
mod discovery;
mod floatingips;
pub mod networks;
pub mod ports;
pub mod query;
pub mod quotas;
pub mod routers;
pub mod security_groups;
mod subnetpools;
pub mod subnets;
mod tags;

use std::sync::Arc;

use crate::Network;
use api::auth::TokenCache;
use api::ApiError;
use axum::routing::{get, put};
use axum::Router;

/// The whole networking API, with the shared layers (request ids, faults,
/// tokens validated through `tokens`).
pub fn router(net: Arc<Network>, tokens: Arc<TokenCache>) -> Router {
    let routes = Router::new()
        .route("/", get(discovery::versions))
        .route("/v2.0/", get(discovery::resources))
        .route("/v2.0/extensions", get(discovery::extensions))
        .route("/v2.0/extensions/{alias}", get(discovery::show_extension))
        .route("/v2.0/availability_zones", get(discovery::availability_zones))
        .route("/v2.0/networks", get(networks::list).post(networks::create))
        .route("/v2.0/networks/{id}", get(networks::show).put(networks::update).delete(networks::delete))
        .route("/v2.0/networks/{id}/dhcp-agents", get(agents::network_dhcp_agents))
        .route("/v2.0/subnets", get(subnets::list).post(subnets::create))
        .route("/v2.0/subnets/{id}", get(subnets::show).put(subnets::update).delete(subnets::delete))
        .route("/v2.0/ports", get(ports::list).post(ports::create))
        .route("/v2.0/ports/{id}", get(ports::show).put(ports::update).delete(ports::delete))
        .route("/v2.0/routers", get(routers::list).post(routers::create))
        .route("/v2.0/routers/{id}", get(routers::show).put(routers::update).delete(routers::delete))
        .route("/v2.0/routers/{id}/add_router_interface", put(routers::add_interface))
        .route("/v2.0/routers/{id}/remove_router_interface", put(routers::remove_interface))
        .route("/v2.0/routers/{id}/l3-agents", get(agents::router_l3_agents))
        .route("/v2.0/floatingips", get(floatingips::list).post(floatingips::create))
        .route("/v2.0/floatingips/{id}", get(floatingips::show).put(floatingips::update).delete(floatingips::delete))
        .route("/v2.0/security-groups", get(security_groups::list).post(security_groups::create))
        .route(
            "/v2.0/security-groups/{id}",
            get(security_groups::show).put(security_groups::update).delete(security_groups::delete),
        )
        .route("/v2.0/security-group-rules", get(security_groups::list_rules).post(security_groups::create_rule))
        .route("/v2.0/security-group-rules/{id}", get(security_groups::show_rule).delete(security_groups::delete_rule))
        .route("/v2.0/subnetpools", get(subnetpools::list).post(subnetpools::create))
        .route("/v2.0/subnetpools/{id}", get(subnetpools::show).put(subnetpools::update).delete(subnetpools::delete))
        .route("/v2.0/address-scopes", get(subnetpools::list_scopes).post(subnetpools::create_scope))
        .route(
            "/v2.0/address-scopes/{id}",
            get(subnetpools::show_scope).put(subnetpools::update_scope).delete(subnetpools::delete_scope),
        )
        .route("/v2.0/agents", get(agents::list))
        .route("/v2.0/agents/{id}", get(agents::show).put(agents::update).delete(agents::delete))
        .route("/v2.0/agents/{id}/dhcp-networks", get(agents::dhcp_networks).post(agents::add_dhcp_network))
        .route("/v2.0/agents/{id}/dhcp-networks/{network}", axum::routing::delete(agents::remove_dhcp_network))
        .route("/v2.0/agents/{id}/l3-routers", get(agents::l3_routers).post(agents::add_l3_router))
        .route("/v2.0/agents/{id}/l3-routers/{router}", axum::routing::delete(agents::remove_l3_router))
        .route("/v2.0/quotas", get(quotas::list))
        .route("/v2.0/quotas/{project}", get(quotas::show).put(quotas::update).delete(quotas::reset))
        .route("/v2.0/quotas/{project}/default", get(quotas::defaults))
        .route("/v2.0/quotas/{project}/details", get(quotas::details))
        .route("/v2.0/{resources}/{id}/tags", get(tags::list).put(tags::replace).delete(tags::clear))
        .route("/v2.0/{resources}/{id}/tags/{tag}", get(tags::check).put(tags::add).delete(tags::remove))
        .fallback(not_found)
        .with_state(net);
    api::server::finish(routes, "network", ::common::FaultFormat::Neutron, tokens)
}

async fn not_found() -> ApiError {
    ApiError(::common::Fault::not_found("The resource could not be found.").with_kind("HTTPNotFound"))
}
