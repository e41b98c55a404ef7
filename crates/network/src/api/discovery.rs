//! Discovery: the version document, the v2.0 resource list, the extensions this
//! server implements (exactly those), and availability zones.

use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{NetworkError, Result};
use crate::store::AGENT;
use crate::Network;

/// (alias, name, description, updated) of every extension implemented.
const EXTENSIONS: &[(&str, &str, &str, &str)] = &[
    (
        "address-scope",
        "Address scope",
        "Address scopes group subnet pools whose addresses must not overlap",
        "2015-07-26T10:00:00-00:00",
    ),
    ("agent", "agent", "The agent management extension", "2013-02-03T10:00:00-00:00"),
    (
        "allowed-address-pairs",
        "Allowed Address Pairs",
        "Lets a port send and receive traffic for extra address/MAC pairs",
        "2013-07-23T10:00:00-00:00",
    ),
    ("availability_zone", "Availability Zone", "The availability zone extension", "2015-01-01T10:00:00-00:00"),
    (
        "binding",
        "Port Binding",
        "Exposes the port binding of a virtual port to external applications",
        "2014-02-03T10:00:00-00:00",
    ),
    (
        "default-subnetpools",
        "Default Subnetpools",
        "Lets subnets be allocated from the default subnet pool",
        "2016-02-18T18:00:00-00:00",
    ),
    (
        "dhcp_agent_scheduler",
        "DHCP Agent Scheduler",
        "Schedules networks among DHCP agents",
        "2013-02-07T10:00:00-00:00",
    ),
    (
        "external-net",
        "Neutron external network",
        "Adds the router:external attribute to networks",
        "2013-01-14T10:00:00-00:00",
    ),
    (
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "Lets the SNAT of a router's external gateway be switched",
        "2013-03-28T10:00:00-00:00",
    ),
    (
        "extra_dhcp_opt",
        "Neutron Extra DHCP options",
        "Extra DHCP options a port's DHCP replies carry",
        "2013-03-17T12:00:00-00:00",
    ),
    ("extraroute", "Neutron Extra Route", "Static routes on routers", "2013-02-01T10:00:00-00:00"),
    (
        "filter-validation",
        "Filter parameters validation",
        "Refuses list filters that are not attributes of the resource",
        "2018-07-04T10:00:00-00:00",
    ),
    (
        "fip-port-details",
        "Floating IP Port Details Extension",
        "Shows the details of the port a floating IP is associated with",
        "2018-04-09T10:00:00-00:00",
    ),
    (
        "ip-substring-filtering",
        "IP address substring filtering",
        "Filters ports by a substring of their IP addresses",
        "2017-11-28T09:00:00-00:00",
    ),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedules routers among L3 agents", "2013-02-07T10:00:00-00:00"),
    (
        "multi-provider",
        "Multi Provider Network",
        "Networks made of several provider segments",
        "2013-06-27T10:00:00-00:00",
    ),
    ("net-mtu", "Network MTU", "Shows the MTU of each network", "2015-03-25T10:00:00-00:00"),
    (
        "network_availability_zone",
        "Network Availability Zone",
        "Availability zones of networks",
        "2015-01-01T10:00:00-00:00",
    ),
    ("pagination", "Pagination support", "Paging of list results with limit and marker", "2016-06-12T00:00:00-00:00"),
    (
        "port-security",
        "Port Security",
        "Lets port security be turned off per network or port",
        "2012-07-23T10:00:00-00:00",
    ),
    (
        "project-id",
        "project_id field enabled",
        "Resources carry project_id as well as tenant_id",
        "2016-09-09T09:09:09-09:09",
    ),
    (
        "provider",
        "Provider Network",
        "Shows and sets how a network is realised on the physical network",
        "2012-09-07T10:00:00-00:00",
    ),
    ("quotas", "Quota management support", "Per-project quotas", "2012-07-29T10:00:00-00:00"),
    (
        "router",
        "Neutron L3 Router",
        "Routers joining subnets and external networks, and floating IPs",
        "2012-07-20T10:00:00-00:00",
    ),
    (
        "router_availability_zone",
        "Router Availability Zone",
        "Availability zones of routers",
        "2015-01-01T10:00:00-00:00",
    ),
    ("security-group", "security-group", "Security groups and their rules", "2012-10-05T10:00:00-00:00"),
    (
        "security-groups-remote-address-group",
        "Remote address group id field for security group rules",
        "Security group rules may name a remote address group",
        "2020-08-25T10:00:00-00:00",
    ),
    ("sorting", "Sorting support", "Sorting of list results", "2016-06-12T00:00:00-00:00"),
    (
        "standard-attr-description",
        "standard-attr-description",
        "A description on every standard resource",
        "2016-02-10T10:00:00-00:00",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "A revision number on every standard resource",
        "2016-04-11T10:00:00-00:00",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute",
        "Tags on every standard resource",
        "2017-01-01T00:00:00-00:00",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Creation and update times on every standard resource",
        "2016-09-12T10:00:00-00:00",
    ),
    (
        "subnet-service-types",
        "Subnet service types",
        "Subnets that serve only some device owners",
        "2016-03-15T18:00:00-00:00",
    ),
    ("subnet_allocation", "Subnet Allocation", "Subnets allocated from subnet pools", "2015-03-30T10:00:00-00:00"),
    (
        "tag-ext",
        "Tag support for resources: subnet, subnetpool, port, router",
        "Tags on subnets, subnet pools, ports and routers",
        "2017-01-01T00:00:00-00:00",
    ),
];

fn extension(e: &(&str, &str, &str, &str)) -> Value {
    json!({"alias": e.0, "name": e.1, "description": e.2, "updated": e.3, "links": []})
}

/// `GET /`: the versions (no authentication).
pub async fn versions(base: BaseUrl) -> Json<Value> {
    Json(
        json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": base.join("/v2.0/")}]}]}),
    )
}

/// `GET /v2.0/`: the core resources.
pub async fn resources(base: BaseUrl) -> Json<Value> {
    let items: Vec<Value> = [("network", "networks"), ("subnet", "subnets"), ("subnetpool", "subnetpools"), ("port", "ports")]
        .iter()
        .map(|(n, c)| json!({"name": n, "collection": c, "links": [{"rel": "self", "href": base.join(&format!("/v2.0/{c}"))}]}))
        .collect();
    Json(json!({"resources": items}))
}

pub async fn extensions(_auth: Auth) -> Json<Value> {
    Json(json!({"extensions": EXTENSIONS.iter().map(extension).collect::<Vec<_>>()}))
}

pub async fn show_extension(_auth: Auth, Path(alias): Path<String>) -> ApiResult<Json<Value>> {
    match EXTENSIONS.iter().find(|e| e.0 == alias) {
        Some(e) => Ok(Json(json!({"extension": extension(e)}))),
        None => Err(ApiError(
            common::Fault::not_found(format!("Extension with alias {alias} does not exist"))
                .with_kind("ExtensionNotFound"),
        )),
    }
}

/// Refuses `availability_zone_hints` naming a zone no agent of the right
/// kind (DHCP for networks, L3 for routers) is in, as Neutron does (404).
pub async fn check_zone_hints(net: &Network, resource: &str, attrs: &serde_json::Map<String, Value>) -> Result<()> {
    let hints: Vec<&str> = attrs
        .get("availability_zone_hints")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if hints.is_empty() {
        return Ok(());
    }
    let agent_type =
        if resource == "router" { crate::plugin::agents::L3_AGENT } else { crate::plugin::agents::DHCP_AGENT };
    let agents = net.store.list(&AGENT, Some(("agent_type", agent_type))).await?;
    let known: Vec<&str> = agents.iter().filter_map(|a| a.str("availability_zone")).collect();
    match hints.iter().find(|h| !known.contains(h)) {
        Some(missing) => Err(NetworkError::not_found(
            "AvailabilityZoneNotFound",
            format!("AvailabilityZone {missing} could not be found."),
        )),
        None => Ok(()),
    }
}

/// `GET /v2.0/availability_zones`: the zones of the DHCP (network) and L3
/// (router) agents.
pub async fn availability_zones(State(net): State<Arc<Network>>, _auth: Auth) -> ApiResult<Json<Value>> {
    let mut zones: Vec<Value> = Vec::new();
    for a in net.store.list(&AGENT, None).await? {
        let resource = match a.str("agent_type") {
            Some(crate::plugin::agents::DHCP_AGENT) => "network",
            Some(crate::plugin::agents::L3_AGENT) => "router",
            _ => continue,
        };
        let Some(name) = a.str("availability_zone").filter(|z| !z.is_empty()) else { continue };
        let state = if crate::plugin::agents::is_alive(&net, &a) { "available" } else { "unavailable" };
        let z = json!({"name": name, "resource": resource, "state": state});
        if !zones.contains(&z) {
            zones.push(z);
        }
    }
    Ok(Json(json!({"availability_zones": zones})))
}
