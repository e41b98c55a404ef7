//! Neutron's resource attribute maps, as data: for each attribute, whether a
//! POST or PUT may set it, its default, how it is validated, whether it may be
//! filtered or sorted on, and whether only admins may set or see it. One engine
//! validates every body and renders every resource from these tables, as
//! Neutron's API layer does from neutron-lib's definitions.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::error::{NetworkError, Result};

#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A POST must give it.
    Required,
    /// Computed by the resource's own logic when absent.
    Computed,
    Null,
    Bool(bool),
    Str(&'static str),
    Int(i64),
    EmptyList,
    EmptyObject,
}

#[derive(Debug, Clone, Copy)]
pub enum Check {
    Any,
    /// A string of at most this many characters.
    Str(usize),
    /// Like `Str`, or null.
    NullableStr(usize),
    Bool,
    Uuid,
    NullableUuid,
    /// An integer in the range, or (when the flag says so) null.
    Int(i64, i64, bool),
    Cidr,
    NullableCidr,
    Ip,
    NullableIp,
    Mac,
    /// One of these strings, or (when the flag says so) null.
    OneOf(&'static [&'static str], bool),
    List,
    Object,
    /// A list of strings.
    StrList,
}

/// Who may set or see an attribute beyond the resource's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Everyone,
    /// Only admins set it; all see it.
    AdminSets,
    /// Only admins set it or see it.
    AdminOnly,
}

#[derive(Debug, Clone, Copy)]
pub struct Attr {
    pub name: &'static str,
    pub post: bool,
    pub put: bool,
    pub default: Default,
    pub check: Check,
    pub filter: bool,
    pub sort: bool,
    pub access: Access,
}

/// The usual readable attribute nobody sets (status, revision_number, …).
pub const fn read_only(name: &'static str, filter: bool) -> Attr {
    Attr {
        name,
        post: false,
        put: false,
        default: Default::Computed,
        check: Check::Any,
        filter,
        sort: filter,
        access: Access::Everyone,
    }
}

/// An attribute any owner sets on create and update.
pub const fn writable(name: &'static str, default: Default, check: Check) -> Attr {
    Attr { name, post: true, put: true, default, check, filter: true, sort: true, access: Access::Everyone }
}

/// An attribute set only on create.
pub const fn create_only(name: &'static str, default: Default, check: Check) -> Attr {
    Attr { name, post: true, put: false, default, check, filter: true, sort: true, access: Access::Everyone }
}

#[derive(Debug)]
pub struct Resource {
    pub singular: &'static str,
    pub plural: &'static str,
    pub attrs: &'static [Attr],
}

/// Attributes every standard resource has (standard-attr-*, project-id).
pub const STANDARD: &[Attr] = &[
    read_only("id", true),
    Attr {
        name: "tenant_id",
        post: true,
        put: false,
        default: Default::Computed,
        check: Check::Str(255),
        filter: true,
        sort: true,
        access: Access::Everyone,
    },
    Attr {
        name: "project_id",
        post: true,
        put: false,
        default: Default::Computed,
        check: Check::Str(255),
        filter: true,
        sort: true,
        access: Access::Everyone,
    },
    writable("description", Default::Str(""), Check::Str(255)),
    read_only("revision_number", true),
    read_only("created_at", true),
    read_only("updated_at", true),
    read_only("tags", false),
];

impl Resource {
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().chain(STANDARD).find(|a| a.name == name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Attr> {
        self.attrs.iter().chain(STANDARD)
    }
}

fn bad(attr: &str, reason: impl std::fmt::Display) -> NetworkError {
    NetworkError::invalid("HTTPBadRequest", format!("Invalid input for {attr}. Reason: {reason}."))
}

/// The object under the resource's name in a request body.
pub fn body_object(body: Value, r: &Resource) -> Result<Map<String, Value>> {
    match body {
        Value::Object(mut o) => match o.remove(r.singular) {
            Some(Value::Object(m)) => Ok(m),
            Some(_) => {
                Err(NetworkError::invalid("HTTPBadRequest", format!("Resource body {} is not an object.", r.singular)))
            }
            None => Err(NetworkError::invalid("HTTPBadRequest", format!("Resource body required: {}.", r.singular))),
        },
        _ => Err(NetworkError::invalid("HTTPBadRequest", "Body contains invalid data")),
    }
}

/// Validates a POST body's attributes and fills in defaults. Attributes with
/// [`Default::Computed`] stay absent for the resource's logic to fill.
pub fn for_create(r: &Resource, body: Map<String, Value>, is_admin: bool) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let unknown: Vec<&String> = body.keys().filter(|k| r.attr(k).is_none()).collect();
    if !unknown.is_empty() {
        let list = unknown.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        return Err(NetworkError::invalid("HTTPBadRequest", format!("Unrecognized attribute(s) {list}")));
    }
    for (k, v) in body {
        let a = r.attr(&k).expect("checked above");
        if !a.post {
            return Err(NetworkError::invalid("HTTPBadRequest", format!("Attribute '{k}' not allowed in POST")));
        }
        if a.access != Access::Everyone && !is_admin {
            return Err(policy_refused("create", r, &k));
        }
        out.insert(k, check(a, v)?);
    }
    for a in r.all() {
        if out.contains_key(a.name) || !a.post {
            continue;
        }
        let v = match a.default {
            Default::Required => {
                return Err(NetworkError::invalid(
                    "HTTPBadRequest",
                    format!("Failed to parse request. Required attribute '{}' not specified", a.name),
                ))
            }
            Default::Computed => continue,
            Default::Null => Value::Null,
            Default::Bool(b) => Value::Bool(b),
            Default::Str(s) => Value::String(s.into()),
            Default::Int(i) => Value::from(i),
            Default::EmptyList => Value::Array(vec![]),
            Default::EmptyObject => Value::Object(Map::new()),
        };
        out.insert(a.name.to_string(), v);
    }
    Ok(out)
}

/// Validates a PUT body's attributes; only what it names changes.
pub fn for_update(r: &Resource, body: Map<String, Value>, is_admin: bool) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in body {
        let Some(a) = r.attr(&k) else {
            return Err(NetworkError::invalid("HTTPBadRequest", format!("Unrecognized attribute(s) '{k}'")));
        };
        if !a.put {
            return Err(NetworkError::invalid("HTTPBadRequest", format!("Cannot update read-only attribute {k}")));
        }
        if a.access != Access::Everyone && !is_admin {
            return Err(policy_refused("update", r, &k));
        }
        out.insert(k, check(a, v)?);
    }
    Ok(out)
}

pub fn policy_refused(action: &str, r: &Resource, attr: &str) -> NetworkError {
    NetworkError::Forbidden {
        kind: "PolicyNotAuthorized",
        message: format!("({action}_{}:{attr}) is disallowed by policy", r.singular),
    }
}

/// Hides what the caller may not see.
pub fn visible(r: &Resource, mut attrs: Map<String, Value>, is_admin: bool) -> Map<String, Value> {
    if !is_admin {
        for a in r.all().filter(|a| a.access == Access::AdminOnly) {
            attrs.remove(a.name);
        }
    }
    attrs
}

pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

pub use crate::plugin::ports::is_mac;

/// A subnet CIDR as neutron-lib's `validate_subnet` takes it: a prefix
/// length is required and an IPv4 address must be the network's own, so
/// `10.0.0.5/24` is refused with the CIDR that was probably meant.
fn check_subnet_cidr(name: &str, x: &str) -> Result<()> {
    let net: IpNet = x.parse().map_err(|_| bad(name, format!("'{x}' is not a valid IP subnet")))?;
    if net.addr() != net.network() {
        return Err(bad(name, format!("'{x}' isn't a recognized IP subnet cidr, '{}' is recommended", net.trunc())));
    }
    Ok(())
}

/// Checks one value against its attribute, converting where Neutron converts
/// (booleans given as strings, integers given as strings).
pub fn check(a: &Attr, v: Value) -> Result<Value> {
    let name = a.name;
    let s = |v: &Value| v.as_str().map(str::to_string);
    Ok(match a.check {
        Check::Any => v,
        Check::Str(max) | Check::NullableStr(max) => match &v {
            Value::Null if matches!(a.check, Check::NullableStr(_)) => v,
            Value::String(x) if x.chars().count() <= max => v,
            Value::String(x) => return Err(bad(name, format!("'{x}' exceeds maximum length of {max}"))),
            other => return Err(bad(name, format!("'{other}' is not a valid string"))),
        },
        Check::Bool => {
            Value::Bool(parse_bool(&v).ok_or_else(|| bad(name, format!("'{v}' cannot be converted to boolean")))?)
        }
        Check::Uuid | Check::NullableUuid => match &v {
            Value::Null if matches!(a.check, Check::NullableUuid) => v,
            Value::String(x) if is_uuid(x) => v,
            other => return Err(bad(name, format!("'{}' is not a valid UUID", s(other).unwrap_or(other.to_string())))),
        },
        Check::Int(min, max, nullable) => match &v {
            Value::Null if nullable => v,
            _ => {
                let n = match &v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(x) => x.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| bad(name, format!("'{v}' is not an integer")))?;
                if n < min || n > max {
                    return Err(bad(
                        name,
                        format!("'{n}' is too large or too small - must be between {min} and {max}"),
                    ));
                }
                Value::from(n)
            }
        },
        Check::Cidr | Check::NullableCidr => match &v {
            Value::Null if matches!(a.check, Check::NullableCidr) => v,
            Value::String(x) => {
                check_subnet_cidr(name, x)?;
                v
            }
            other => return Err(bad(name, format!("'{other}' is not a valid IP subnet"))),
        },
        Check::Ip | Check::NullableIp => match &v {
            Value::Null if matches!(a.check, Check::NullableIp) => v,
            Value::String(x) if x.parse::<IpAddr>().is_ok() => v,
            other => {
                return Err(bad(name, format!("'{}' is not a valid IP address", s(other).unwrap_or(other.to_string()))))
            }
        },
        Check::Mac => match &v {
            Value::String(x) if is_mac(x) => Value::String(x.to_ascii_lowercase()),
            other => {
                return Err(bad(
                    name,
                    format!("'{}' is not a valid MAC address", s(other).unwrap_or(other.to_string())),
                ))
            }
        },
        Check::OneOf(options, nullable) => match &v {
            Value::Null if nullable => v,
            Value::String(x) if options.contains(&x.as_str()) => v,
            other => return Err(bad(name, format!("'{other}' is not in {options:?}"))),
        },
        Check::List => match &v {
            Value::Array(_) => v,
            other => return Err(bad(name, format!("'{other}' is not a list"))),
        },
        Check::Object => match &v {
            Value::Object(_) => v,
            other => return Err(bad(name, format!("'{other}' is not a dictionary"))),
        },
        Check::StrList => match &v {
            Value::Array(items) if items.iter().all(Value::is_string) => v,
            other => return Err(bad(name, format!("'{other}' is not a list of strings"))),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const THING: Resource = Resource {
        singular: "thing",
        plural: "things",
        attrs: &[
            writable("name", Default::Str(""), Check::Str(255)),
            writable("admin_state_up", Default::Bool(true), Check::Bool),
            create_only("network_id", Default::Required, Check::Uuid),
            read_only("status", true),
            Attr {
                name: "provider:network_type",
                post: true,
                put: false,
                default: Default::Computed,
                check: Check::Str(32),
                filter: true,
                sort: false,
                access: Access::AdminOnly,
            },
        ],
    };

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn create_fills_defaults_and_converts() {
        let id = uuid::Uuid::new_v4().to_string();
        let out = for_create(&THING, obj(json!({"network_id": id, "admin_state_up": "False"})), false).unwrap();
        assert_eq!(out["admin_state_up"], json!(false));
        assert_eq!(out["name"], json!(""));
        assert_eq!(out["description"], json!(""));
        assert!(!out.contains_key("provider:network_type"));
    }

    #[test]
    fn create_refuses_unknown_readonly_missing_and_admin_only() {
        let id = uuid::Uuid::new_v4().to_string();
        let e = for_create(&THING, obj(json!({"network_id": id, "bogus": 1})), false).unwrap_err();
        assert!(e.to_string().contains("Unrecognized attribute(s) 'bogus'"), "{e}");
        assert!(for_create(&THING, obj(json!({"network_id": id, "status": "ACTIVE"})), false).is_err());
        assert!(for_create(&THING, obj(json!({})), false).is_err());
        let e = for_create(&THING, obj(json!({"network_id": id, "provider:network_type": "vlan"})), false).unwrap_err();
        assert!(matches!(e, NetworkError::Forbidden { .. }));
        assert!(for_create(&THING, obj(json!({"network_id": id, "provider:network_type": "vlan"})), true).is_ok());
        assert!(for_create(&THING, obj(json!({"network_id": "not-a-uuid"})), false).is_err());
    }

    #[test]
    fn update_touches_only_what_is_named_and_admins_see_more() {
        let out = for_update(&THING, obj(json!({"name": "x"})), false).unwrap();
        assert_eq!(out.len(), 1);
        assert!(for_update(&THING, obj(json!({"network_id": uuid::Uuid::new_v4().to_string()})), true).is_err());
        let shown = visible(&THING, obj(json!({"name": "x", "provider:network_type": "vxlan"})), false);
        assert!(!shown.contains_key("provider:network_type"));
    }
}
