//! `/v2.0/security-groups` and `/v2.0/security-group-rules`: stateful
//! per-port firewall rules. Every project gets a `default` group the first
//! time it needs one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use db::{AnyConnection, DbError};
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::attrs::{self, create_only, read_only, writable, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use super::quotas::check_quota;
use crate::error::{NetworkError, Result};
use crate::plugin::{Change, Txn};
use crate::store::{self, Record, PORT, SECURITY_GROUP, SECURITY_GROUP_RULE};
use crate::Network;

pub const GROUP: Resource = Resource {
    singular: "security_group",
    plural: "security_groups",
    attrs: &[writable("name", Default::Str(""), Check::Str(255)), read_only("security_group_rules", false)],
};

pub const RULE: Resource = Resource {
    singular: "security_group_rule",
    plural: "security_group_rules",
    attrs: &[
        create_only("security_group_id", Default::Required, Check::Str(36)),
        create_only("remote_group_id", Default::Null, Check::Any),
        create_only("direction", Default::Required, Check::OneOf(&["ingress", "egress"], false)),
        create_only("protocol", Default::Null, Check::Any),
        create_only("port_range_min", Default::Null, Check::Any),
        create_only("port_range_max", Default::Null, Check::Any),
        create_only("ethertype", Default::Str("IPv4"), Check::Any),
        create_only("remote_ip_prefix", Default::Null, Check::Any),
        create_only("remote_address_group_id", Default::Null, Check::NullableUuid),
    ],
};

/// IP protocols Neutron knows by name.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 4),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];
/// Protocols whose ports are port numbers.
const PORT_PROTOCOLS: &[&str] = &["tcp", "udp", "dccp", "sctp", "udplite", "6", "17", "33", "132", "136"];
const ICMP: &[&str] = &["icmp", "ipv6-icmp", "1", "58"];
const IPV6_ONLY: &[&str] = &[
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "41",
    "43",
    "44",
    "58",
    "59",
    "60",
];

fn render_rule(r: &Record) -> Map<String, Value> {
    let mut m = common::render(r, &HashMap::new());
    m.remove("tags");
    m
}

fn render_group(g: &Record, rules: &[Record], tags: &HashMap<String, Vec<String>>) -> Map<String, Value> {
    let mut m = common::render(g, tags);
    let mine: Vec<Value> = rules
        .iter()
        .filter(|r| r.str("security_group_id") == Some(g.id.as_str()))
        .map(|r| Value::Object(render_rule(r)))
        .collect();
    m.insert("security_group_rules".into(), Value::Array(mine));
    m
}

fn rule(sg: &str, project: &str, direction: &str, ethertype: &str, remote_group: Option<&str>) -> Record {
    let attrs = json!({
        "security_group_id": sg,
        "direction": direction,
        "ethertype": ethertype,
        "protocol": null,
        "port_range_min": null,
        "port_range_max": null,
        "remote_ip_prefix": null,
        "remote_group_id": remote_group,
        "remote_address_group_id": null,
        "description": "",
    });
    Record::new(common::new_id(), project.to_string(), attrs.as_object().cloned().unwrap_or_default())
}

/// The project's `default` group, created (with its four standard rules) the
/// first time it is needed. The project's row in `default_security_group` is
/// claimed first: when two requests race, the second waits for the first's
/// transaction (MariaDB, PostgreSQL) or for the write lock (SQLite), finds the
/// key taken and uses the first's group, so neither fails and no group is left
/// over.
pub async fn default_group(net: &Network, conn: &mut AnyConnection, project: &str) -> Result<String> {
    if let Some(id) = existing_default(net, conn, project).await? {
        return Ok(id);
    }
    let id = common::new_id();
    let db = net.store.db();
    let claim = db
        .q("INSERT INTO default_security_group (project_id, security_group_id) VALUES (?, ?)")
        .bind(project)
        .bind(&id);
    if !db.insert_unless_duplicate(&mut *conn, claim).await? {
        return existing_default(net, conn, project).await?.ok_or_else(|| {
            NetworkError::Db(DbError::Column { column: "default_security_group".into(), reason: "vanished".into() })
        });
    }
    let attrs = json!({"name": "default", "description": "Default security group"});
    let g = Record::new(id.clone(), project.to_string(), attrs.as_object().cloned().unwrap_or_default());
    net.store.insert(conn, &SECURITY_GROUP, &g).await?;
    for r in [
        rule(&id, project, "egress", "IPv4", None),
        rule(&id, project, "egress", "IPv6", None),
        rule(&id, project, "ingress", "IPv4", Some(&id)),
        rule(&id, project, "ingress", "IPv6", Some(&id)),
    ] {
        net.store.insert(conn, &SECURITY_GROUP_RULE, &r).await?;
    }
    Ok(id)
}

async fn existing_default(net: &Network, conn: &mut AnyConnection, project: &str) -> Result<Option<String>> {
    let row: Option<String> = db::query_scalar(
        net.store.db().static_sql("SELECT security_group_id FROM default_security_group WHERE project_id = ?"),
    )
    .bind(project)
    .fetch_optional(conn)
    .await
    .map_err(DbError::from)?;
    Ok(row)
}

/// Makes sure `project` has its default group, in its own transaction.
pub async fn ensure_default(net: &Network, project: &str) -> Result<()> {
    if project.is_empty() {
        return Ok(());
    }
    let mut w = net.store.begin().await?;
    default_group(net, w.conn(), project).await?;
    w.commit().await?;
    Ok(())
}

/// A group the caller may use: theirs, or any for an admin.
pub async fn visible_group(net: &Network, conn: &mut AnyConnection, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find_in(conn, &SECURITY_GROUP, id).await? {
        Some(g) if common::owns(auth, &g.project_id) => Ok(g),
        _ => Err(NetworkError::not_found("SecurityGroupNotFound", format!("Security group {id} does not exist"))),
    }
}

fn is_default_name(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("default"))
}

pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&GROUP, attrs::body_object(body, &GROUP)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    if is_default_name(a.get("name")) {
        return Err(NetworkError::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        )
        .into());
    }
    let mut w = net.store.begin().await?;
    default_group(&net, w.conn(), &project).await?;
    check_quota(&net, w.conn(), &SECURITY_GROUP, &project, 1).await?;
    let g = Record::new(common::new_id(), project.clone(), a);
    net.store.insert(w.conn(), &SECURITY_GROUP, &g).await?;
    let mut rules = Vec::new();
    for r in [rule(&g.id, &project, "egress", "IPv4", None), rule(&g.id, &project, "egress", "IPv6", None)] {
        net.store.insert(w.conn(), &SECURITY_GROUP_RULE, &r).await?;
        rules.push(r);
    }
    w.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"security_group": render_group(&g, &rules, &HashMap::new())}))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &GROUP, &[])?;
    ensure_default(&net, auth.project_id.as_deref().unwrap_or_default()).await?;
    if auth.is_admin() {
        // An admin looking at one project sees its default group, as Neutron
        // creates it on that first look.
        if let Some([p]) = q.filter("project_id").or(q.filter("tenant_id")) {
            ensure_default(&net, p).await?;
        }
    }
    let rules = net.store.list(&SECURITY_GROUP_RULE, None).await?;
    let tags = super::tags::all(&net).await?;
    let items = net
        .store
        .list(&SECURITY_GROUP, None)
        .await?
        .iter()
        .filter(|g| common::owns(&auth, &g.project_id))
        .map(|g| render_group(g, &rules, &tags))
        .collect();
    common::many(&GROUP, &base, items, &q)
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &GROUP, &[])?;
    let mut conn = net.store.reader().await?;
    let g = visible_group(&net, &mut conn, &auth, &id).await?;
    let rules = net.store.list(&SECURITY_GROUP_RULE, Some(("security_group_id", &id))).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&GROUP, render_group(&g, &rules, &tags), &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let changes = attrs::for_update(&GROUP, attrs::body_object(body, &GROUP)?, is_admin(&auth))?;
    let mut w = net.store.begin().await?;
    let mut g = visible_group(&net, w.conn(), &auth, &id).await?;
    if changes.contains_key("name") {
        let is_default = existing_default(&net, w.conn(), &g.project_id).await?.as_deref() == Some(id.as_str());
        if is_default && changes.get("name").and_then(Value::as_str) != Some("default") {
            return Err(NetworkError::conflict(
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group not allowed.",
            )
            .into());
        }
        if !is_default && is_default_name(changes.get("name")) {
            return Err(NetworkError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            )
            .into());
        }
    }
    for (k, v) in changes {
        g.attrs.insert(k, v);
    }
    g.touch();
    net.store.update(w.conn(), &SECURITY_GROUP, &g).await?;
    w.commit().await?;
    let rules = net.store.list(&SECURITY_GROUP_RULE, Some(("security_group_id", &id))).await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"security_group": render_group(&g, &rules, &tags)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let mut w = Txn::begin(&net).await?;
    let g = visible_group(&net, w.conn(), &auth, &id).await?;
    let is_default = existing_default(&net, w.conn(), &g.project_id).await?.as_deref() == Some(id.as_str());
    if is_default && !auth.is_admin() {
        return Err(NetworkError::conflict(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        )
        .into());
    }
    let in_use = net.store.list_in(w.conn(), &PORT, None).await?.iter().any(|p| {
        p.attrs
            .get("security_groups")
            .and_then(Value::as_array)
            .is_some_and(|gs| gs.iter().any(|x| x.as_str() == Some(id.as_str())))
    });
    if in_use {
        return Err(NetworkError::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")).into());
    }
    // Its rules go, and other groups' rules naming it as remote: those
    // groups' ports are filtered again.
    let mut touched = vec![id.clone()];
    for r in net.store.list_in(w.conn(), &SECURITY_GROUP_RULE, None).await? {
        if r.str("security_group_id") == Some(id.as_str()) || r.str("remote_group_id") == Some(id.as_str()) {
            net.store.delete(w.conn(), &SECURITY_GROUP_RULE, &r.id).await?;
            let owner = r.str("security_group_id").unwrap_or_default().to_string();
            if !touched.contains(&owner) {
                touched.push(owner);
            }
        }
    }
    if is_default {
        net.store
            .db()
            .q("DELETE FROM default_security_group WHERE project_id = ?")
            .bind(&g.project_id)
            .execute(w.conn())
            .await
            .map_err(DbError::from)
            .map_err(NetworkError::from)?;
    }
    net.store.set_tags(w.conn(), &id, &[]).await?;
    net.store.delete(w.conn(), &SECURITY_GROUP, &id).await?;
    w.record(Change::SecurityGroupRules(touched));
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn rule_error(kind: &'static str, message: impl Into<String>) -> NetworkError {
    NetworkError::invalid(kind, message)
}

/// `protocol` as Neutron stores it: null for any, a known name lowercased, or a
/// number 0–255 as a string.
fn canonical_protocol(v: &Value) -> Result<Option<String>> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.to_ascii_lowercase(),
        other => other.to_string(),
    };
    if text == "any" {
        return Ok(None);
    }
    if PROTOCOLS.iter().any(|(n, _)| *n == text) {
        return Ok(Some(text));
    }
    match text.parse::<i64>() {
        Ok(n) if (0..=255).contains(&n) => Ok(Some(n.to_string())),
        _ => Err(rule_error(
            "SecurityGroupRuleInvalidProtocol",
            format!("Security group rule protocol {text} not supported. Only protocol values {:?} and integer representations [0 to 255] are supported.", PROTOCOLS.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
        )),
    }
}

fn port_value(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        _ => {
            let n = v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
            match n {
                Some(n) if (0..=65535).contains(&n) => Ok(Some(n)),
                _ => Err(rule_error(
                    "SecurityGroupInvalidPortValue",
                    format!("Invalid value for port {}", v.as_str().map(String::from).unwrap_or(v.to_string())),
                )),
            }
        }
    }
}

/// Validates and canonicalises a new rule, in Neutron's order.
fn canonical_rule(a: &mut Map<String, Value>) -> Result<()> {
    let mut protocol = canonical_protocol(a.get("protocol").unwrap_or(&Value::Null))?;
    let mut min = port_value(a.get("port_range_min").unwrap_or(&Value::Null))?;
    let mut max = port_value(a.get("port_range_max").unwrap_or(&Value::Null))?;
    let ethertype = match a.get("ethertype").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("ipv4") | None => "IPv4",
        Some("ipv6") => "IPv6",
        Some(other) => {
            return Err(rule_error(
                "SecurityGroupRuleInvalidEtherType",
                format!(
                    "Security group rule for ethertype '{other}' not supported. Allowed values are ['IPv4', 'IPv6']."
                ),
            ))
        }
    };
    let prefix: Option<IpNet> = match a.get("remote_ip_prefix") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| rule_error("InvalidCIDR", format!("Invalid CIDR {s} given as IP prefix.")))?,
        ),
        Some(other) => return Err(rule_error("InvalidCIDR", format!("Invalid CIDR {other} given as IP prefix."))),
    };
    if ethertype == "IPv6" {
        protocol = protocol.map(|p| match p.as_str() {
            "icmp" | "icmpv6" => "ipv6-icmp".to_string(),
            "1" => "58".to_string(),
            _ => p,
        });
    }
    if min == Some(1) && max == Some(65535) && protocol.as_deref().is_some_and(|p| PORT_PROTOCOLS.contains(&p)) {
        min = None;
        max = None;
    }
    if (min.is_some() || max.is_some()) && protocol.is_none() {
        return Err(rule_error(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ));
    }
    if let Some(p) = protocol.as_deref() {
        if PORT_PROTOCOLS.contains(&p) {
            for v in [min, max].into_iter().flatten() {
                if v == 0 {
                    return Err(rule_error("SecurityGroupInvalidPortValue", "Invalid value for port 0"));
                }
            }
            if !matches!((min, max), (Some(a), Some(b)) if a <= b) && (min.is_some() || max.is_some()) {
                return Err(rule_error(
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                ));
            }
        } else if ICMP.contains(&p) {
            for (v, what, field) in [(min, "type", "port_range_min"), (max, "code", "port_range_max")] {
                if let Some(v) = v {
                    if v > 255 {
                        return Err(rule_error(
                            "SecurityGroupInvalidIcmpValue",
                            format!("Invalid value for ICMP {what} ({field}) {v}. It must be 0 to 255."),
                        ));
                    }
                }
            }
            if min.is_none() && max.is_some() {
                return Err(rule_error(
                    "SecurityGroupMissingIcmpType",
                    format!(
                        "ICMP code (port-range-max) {} is provided but ICMP type (port-range-min) is missing.",
                        max.unwrap_or_default()
                    ),
                ));
            }
        } else if min.is_some() || max.is_some() {
            return Err(rule_error(
                "SecurityGroupInvalidProtocolForPort",
                format!("Ports cannot be specified for protocol {p}."),
            ));
        }
    }
    if let Some(p) = &prefix {
        if p.addr().is_ipv6() != (ethertype == "IPv6") {
            return Err(rule_error(
                "SecurityGroupRuleParameterConflict",
                format!("Conflicting value ethertype {ethertype} for CIDR {p}"),
            ));
        }
    }
    if ethertype == "IPv4" && protocol.as_deref().is_some_and(|p| IPV6_ONLY.contains(&p)) {
        return Err(rule_error(
            "SecurityGroupEthertypeConflictWithProtocol",
            format!("Invalid ethertype IPv4 for protocol {}.", protocol.clone().unwrap_or_default()),
        ));
    }
    let remotes = [
        prefix.is_some(),
        a.get("remote_group_id").is_some_and(|v| !v.is_null()),
        a.get("remote_address_group_id").is_some_and(|v| !v.is_null()),
    ];
    if remotes.iter().filter(|x| **x).count() > 1 {
        return Err(rule_error(
            "SecurityGroupMultipleRemoteEntites",
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
        ));
    }
    a.insert("protocol".into(), json!(protocol));
    a.insert("port_range_min".into(), json!(min));
    a.insert("port_range_max".into(), json!(max));
    a.insert("ethertype".into(), json!(ethertype));
    // Neutron keeps the prefix as given (host bits and all).
    a.insert("remote_ip_prefix".into(), json!(prefix.map(|p| p.to_string())));
    Ok(())
}

/// The number behind a protocol, for comparing rules written either way.
fn protocol_number(p: Option<&str>) -> Option<String> {
    p.map(|p| PROTOCOLS.iter().find(|(n, _)| *n == p).map_or(p.to_string(), |(_, num)| num.to_string()))
}

fn same_rule(a: &Map<String, Value>, b: &Record) -> bool {
    let norm = |v: Option<&Value>| match v.and_then(Value::as_str) {
        Some("0.0.0.0/0") | Some("::/0") => Value::Null,
        _ => v.cloned().unwrap_or(Value::Null),
    };
    [
        "direction",
        "ethertype",
        "port_range_min",
        "port_range_max",
        "remote_group_id",
        "remote_address_group_id",
        "security_group_id",
    ]
    .iter()
    .all(|k| a.get(*k).unwrap_or(&Value::Null) == b.attrs.get(*k).unwrap_or(&Value::Null))
        && protocol_number(a.get("protocol").and_then(Value::as_str)) == protocol_number(b.str("protocol"))
        && norm(a.get("remote_ip_prefix")) == norm(b.attrs.get("remote_ip_prefix"))
}

pub async fn create_rule(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&RULE, attrs::body_object(body, &RULE)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    canonical_rule(&mut a)?;
    let mut w = Txn::begin(&net).await?;
    if let Some(remote) = a.get("remote_group_id").and_then(Value::as_str) {
        visible_group(&net, w.conn(), &auth, remote).await?;
    }
    let sg_id = a.get("security_group_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let group = visible_group(&net, w.conn(), &auth, &sg_id).await?;
    let existing = net.store.list_in(w.conn(), &SECURITY_GROUP_RULE, Some(("security_group_id", &sg_id))).await?;
    if let Some(dup) = existing.iter().find(|r| same_rule(&a, r)) {
        return Err(NetworkError::conflict(
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {}.", dup.id),
        )
        .into());
    }
    check_quota(&net, w.conn(), &SECURITY_GROUP_RULE, &project, 1).await?;
    let r = Record::new(common::new_id(), project, a);
    net.store.insert(w.conn(), &SECURITY_GROUP_RULE, &r).await?;
    let mut g = group;
    g.touch();
    net.store.update(w.conn(), &SECURITY_GROUP, &g).await?;
    w.record(Change::SecurityGroupRules(vec![sg_id]));
    w.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"security_group_rule": render_rule(&r)}))))
}

async fn rule_visible(net: &Network, auth: &Auth, r: &Record) -> Result<bool> {
    if common::owns(auth, &r.project_id) {
        return Ok(true);
    }
    let g = net.store.find(&SECURITY_GROUP, r.str("security_group_id").unwrap_or_default()).await?;
    Ok(g.is_some_and(|g| common::owns(auth, &g.project_id)))
}

pub async fn list_rules(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RULE, &[])?;
    ensure_default(&net, auth.project_id.as_deref().unwrap_or_default()).await?;
    let groups: HashMap<String, Record> =
        net.store.list(&SECURITY_GROUP, None).await?.into_iter().map(|g| (g.id.clone(), g)).collect();
    let items = net
        .store
        .list(&SECURITY_GROUP_RULE, None)
        .await?
        .iter()
        .filter(|r| {
            common::owns(&auth, &r.project_id)
                || groups
                    .get(r.str("security_group_id").unwrap_or_default())
                    .is_some_and(|g| common::owns(&auth, &g.project_id))
        })
        .map(render_rule)
        .collect();
    common::many(&RULE, &base, items, &q)
}

pub async fn show_rule(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RULE, &[])?;
    let r =
        net.store.find(&SECURITY_GROUP_RULE, &id).await?.ok_or_else(|| store::not_found(&SECURITY_GROUP_RULE, &id))?;
    if !rule_visible(&net, &auth, &r).await? {
        return Err(store::not_found(&SECURITY_GROUP_RULE, &id).into());
    }
    Ok(common::one(&RULE, render_rule(&r), &q))
}

pub async fn delete_rule(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let r =
        net.store.find(&SECURITY_GROUP_RULE, &id).await?.ok_or_else(|| store::not_found(&SECURITY_GROUP_RULE, &id))?;
    if !rule_visible(&net, &auth, &r).await? {
        return Err(store::not_found(&SECURITY_GROUP_RULE, &id).into());
    }
    let sg_id = r.str("security_group_id").unwrap_or_default().to_string();
    let mut w = Txn::begin(&net).await?;
    net.store.delete(w.conn(), &SECURITY_GROUP_RULE, &id).await?;
    if let Some(mut g) = net.store.find_in(w.conn(), &SECURITY_GROUP, &sg_id).await? {
        g.touch();
        net.store.update(w.conn(), &SECURITY_GROUP, &g).await?;
    }
    w.record(Change::SecurityGroupRules(vec![sg_id]));
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
