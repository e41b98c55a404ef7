//! The core plugin's security groups: every project's `default` group, made
//! the first time it is needed; groups and their rules, checked and made
//! canonical as Neutron does; the agents refilter a group's ports when its
//! rules change.

use std::net::IpAddr;

use api::Auth;
use db::{AnyConnection, DbError};
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::quotas::check_quota;
use super::{owns, Change, Txn};
use crate::error::{NetworkError, Result};
use crate::store::{Record, PORT, SECURITY_GROUP, SECURITY_GROUP_RULE};
use crate::Network;

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
    Record::new(super::new_id(), project.to_string(), attrs.as_object().cloned().unwrap_or_default())
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
    let id = super::new_id();
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
    let mut w = Txn::begin(net).await?;
    default_group(net, w.conn(), project).await?;
    w.commit().await?;
    Ok(())
}

/// A group the caller may use: theirs, or any for an admin.
pub async fn visible_group(net: &Network, conn: &mut AnyConnection, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find_in(conn, &SECURITY_GROUP, id).await? {
        Some(g) if owns(auth, &g.project_id) => Ok(g),
        _ => Err(NetworkError::not_found("SecurityGroupNotFound", format!("Security group {id} does not exist"))),
    }
}

fn is_default_name(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("default"))
}

/// Creates a group of `project` (whose default group is made first, if it
/// has none) with the two egress rules every new group has.
pub async fn create(net: &Network, project: String, a: Map<String, Value>) -> Result<(Record, Vec<Record>)> {
    if is_default_name(a.get("name")) {
        return Err(NetworkError::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    let mut w = Txn::begin(net).await?;
    default_group(net, w.conn(), &project).await?;
    check_quota(net, w.conn(), &SECURITY_GROUP, &project, 1).await?;
    let g = Record::new(super::new_id(), project.clone(), a);
    net.store.insert(w.conn(), &SECURITY_GROUP, &g).await?;
    let mut rules = Vec::new();
    for r in [rule(&g.id, &project, "egress", "IPv4", None), rule(&g.id, &project, "egress", "IPv6", None)] {
        net.store.insert(w.conn(), &SECURITY_GROUP_RULE, &r).await?;
        rules.push(r);
    }
    w.commit().await?;
    Ok((g, rules))
}

/// Renames a group or changes its description; the default group keeps its
/// name, and no other takes it.
pub async fn update(net: &Network, auth: &Auth, id: &str, changes: Map<String, Value>) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    let mut g = visible_group(net, w.conn(), auth, id).await?;
    if changes.contains_key("name") {
        let is_default = existing_default(net, w.conn(), &g.project_id).await?.as_deref() == Some(id);
        if is_default && changes.get("name").and_then(Value::as_str) != Some("default") {
            return Err(NetworkError::conflict(
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group not allowed.",
            ));
        }
        if !is_default && is_default_name(changes.get("name")) {
            return Err(NetworkError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
    }
    for (k, v) in changes {
        g.attrs.insert(k, v);
    }
    g.touch();
    net.store.update(w.conn(), &SECURITY_GROUP, &g).await?;
    w.commit().await?;
    Ok(g)
}

/// Deletes a group not in use (the default group only by an admin), with
/// its rules and other groups' rules naming it as remote.
pub async fn delete(net: &Network, auth: &Auth, id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    let g = visible_group(net, w.conn(), auth, id).await?;
    let is_default = existing_default(net, w.conn(), &g.project_id).await?.as_deref() == Some(id);
    if is_default && !auth.is_admin() {
        return Err(NetworkError::conflict(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        ));
    }
    let in_use = net.store.list_in(w.conn(), &PORT, None).await?.iter().any(|p| {
        p.attrs
            .get("security_groups")
            .and_then(Value::as_array)
            .is_some_and(|gs| gs.iter().any(|x| x.as_str() == Some(id)))
    });
    if in_use {
        return Err(NetworkError::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")));
    }
    // Its rules go, and other groups' rules naming it as remote: those
    // groups' ports are filtered again.
    let mut touched = vec![id.to_string()];
    for r in net.store.list_in(w.conn(), &SECURITY_GROUP_RULE, None).await? {
        if r.str("security_group_id") == Some(id) || r.str("remote_group_id") == Some(id) {
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
    net.store.set_tags(w.conn(), id, &[]).await?;
    net.store.delete(w.conn(), &SECURITY_GROUP, id).await?;
    w.record(Change::SecurityGroupRules(touched));
    w.commit().await
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

/// Adds a validated rule to a group the caller may use (after Neutron's
/// checks: canonical protocol and ports, one remote, no duplicate).
pub async fn create_rule(net: &Network, auth: &Auth, project: String, mut a: Map<String, Value>) -> Result<Record> {
    canonical_rule(&mut a)?;
    let mut w = Txn::begin(net).await?;
    if let Some(remote) = a.get("remote_group_id").and_then(Value::as_str) {
        visible_group(net, w.conn(), auth, remote).await?;
    }
    let sg_id = a.get("security_group_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let group = visible_group(net, w.conn(), auth, &sg_id).await?;
    let existing = net.store.list_in(w.conn(), &SECURITY_GROUP_RULE, Some(("security_group_id", &sg_id))).await?;
    if let Some(dup) = existing.iter().find(|r| same_rule(&a, r)) {
        return Err(NetworkError::conflict(
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {}.", dup.id),
        ));
    }
    check_quota(net, w.conn(), &SECURITY_GROUP_RULE, &project, 1).await?;
    let r = Record::new(super::new_id(), project, a);
    net.store.insert(w.conn(), &SECURITY_GROUP_RULE, &r).await?;
    let mut g = group;
    g.touch();
    net.store.update(w.conn(), &SECURITY_GROUP, &g).await?;
    w.record(Change::SecurityGroupRules(vec![sg_id]));
    w.commit().await?;
    Ok(r)
}

/// Whether the caller may see the rule: its own, or in a group of its own.
pub async fn rule_visible(net: &Network, auth: &Auth, r: &Record) -> Result<bool> {
    if owns(auth, &r.project_id) {
        return Ok(true);
    }
    let g = net.store.find(&SECURITY_GROUP, r.str("security_group_id").unwrap_or_default()).await?;
    Ok(g.is_some_and(|g| owns(auth, &g.project_id)))
}

/// Deletes a rule; the group's ports are filtered again.
pub async fn delete_rule(net: &Network, r: &Record) -> Result<()> {
    let sg_id = r.str("security_group_id").unwrap_or_default().to_string();
    let mut w = Txn::begin(net).await?;
    net.store.delete(w.conn(), &SECURITY_GROUP_RULE, &r.id).await?;
    if let Some(mut g) = net.store.find_in(w.conn(), &SECURITY_GROUP, &sg_id).await? {
        g.touch();
        net.store.update(w.conn(), &SECURITY_GROUP, &g).await?;
    }
    w.record(Change::SecurityGroupRules(vec![sg_id]));
    w.commit().await
}
