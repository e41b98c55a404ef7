//! The body schemas of `POST /servers/{id}/action`, as Nova declares them
//! (`nova/api/openstack/compute/schemas/`): which JSON types each action's
//! value may take, and for object values the type of each field, the
//! required ones, and whether others are refused. Checked before anything
//! else, as Nova's validation decorator is, so a wrong type is a 400 that
//! names the field whatever state the server is in.

use api::Microversion;
use serde_json::Value;

use super::bad;
use crate::error::Result;

/// A set of JSON types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Types(u8);

pub const NULL: Types = Types(1);
pub const BOOL: Types = Types(2);
pub const INT: Types = Types(4);
/// A number that is not an integer.
pub const FLOAT: Types = Types(8);
pub const STRING: Types = Types(16);
pub const ARRAY: Types = Types(32);
pub const OBJECT: Types = Types(64);
pub const ANY: Types = Types(127);

impl Types {
    const fn or(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    fn of(v: &Value) -> Types {
        match v {
            Value::Null => NULL,
            Value::Bool(_) => BOOL,
            Value::Number(n) if n.is_i64() || n.is_u64() => INT,
            Value::Number(_) => FLOAT,
            Value::String(_) => STRING,
            Value::Array(_) => ARRAY,
            Value::Object(_) => OBJECT,
        }
    }

    fn admits(self, v: &Value) -> bool {
        self.0 & Types::of(v).0 != 0
    }

    /// jsonschema's wording: `'object'`, `'string', 'null'`.
    fn describe(self) -> String {
        let names = [
            (NULL, "null"),
            (BOOL, "boolean"),
            (INT, "integer"),
            (FLOAT, "number"),
            (STRING, "string"),
            (ARRAY, "array"),
            (OBJECT, "object"),
        ];
        names.iter().filter(|(t, _)| self.0 & t.0 != 0).map(|(_, n)| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    }
}

/// A field of an object value, from microversion `since` (inclusive) to
/// `until` (exclusive).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    name: &'static str,
    types: Types,
    since: (u16, u16),
    until: Option<(u16, u16)>,
}

const fn field(name: &'static str, types: Types) -> Field {
    Field { name, types, since: (2, 1), until: None }
}

const fn field_since(name: &'static str, types: Types, since: (u16, u16)) -> Field {
    Field { name, types, since, until: None }
}

const fn field_until(name: &'static str, types: Types, until: (u16, u16)) -> Field {
    Field { name, types, since: (2, 1), until: Some(until) }
}

const fn field_between(name: &'static str, types: Types, since: (u16, u16), until: (u16, u16)) -> Field {
    Field { name, types, since, until: Some(until) }
}

/// One action's schema at a range of microversions.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub action: &'static str,
    since: (u16, u16),
    value: Types,
    fields: &'static [Field],
    required: &'static [&'static str],
    /// Whether fields not listed are refused (`additionalProperties: false`).
    closed: bool,
}

const fn any(action: &'static str) -> Schema {
    Schema { action, since: (2, 1), value: ANY, fields: &[], required: &[], closed: false }
}

const fn object(action: &'static str, fields: &'static [Field], required: &'static [&'static str]) -> Schema {
    Schema { action, since: (2, 1), value: OBJECT, fields, required, closed: true }
}

const fn nullable_object(action: &'static str, fields: &'static [Field]) -> Schema {
    Schema { action, since: (2, 1), value: NULL.or(OBJECT), fields, required: &[], closed: true }
}

const fn from(mut s: Schema, since: (u16, u16)) -> Schema {
    s.since = since;
    s
}

const BOOLISH: Types = BOOL.or(STRING);
const NAME_AND_METADATA: &[Field] = &[field("name", STRING), field("metadata", OBJECT)];
const CONSOLE: &[Field] = &[field("type", STRING)];
const SECURITY_GROUP: &[Field] = &[field("name", STRING)];

/// Every action's schemas; where an action has several, the last one whose
/// `since` the request's microversion reaches applies.
pub const SCHEMAS: &[Schema] = &[
    any("os-start"),
    any("os-stop"),
    any("pause"),
    any("unpause"),
    any("suspend"),
    any("resume"),
    any("confirmResize"),
    any("revertResize"),
    any("shelve"),
    any("shelveOffload"),
    any("unrescue"),
    any("injectNetworkInfo"),
    any("resetNetwork"),
    any("forceDelete"),
    any("restore"),
    any("unlock"),
    any("lock"),
    from(nullable_object("lock", &[field("locked_reason", STRING)]), (2, 73)),
    Schema { action: "trigger_crash_dump", since: (2, 17), value: NULL, fields: &[], required: &[], closed: true },
    object("reboot", &[field("type", STRING)], &["type"]),
    object("resize", &[field("flavorRef", STRING.or(INT)), field("OS-DCF:diskConfig", STRING)], &["flavorRef"]),
    object(
        "rebuild",
        &[
            field("name", STRING),
            field("imageRef", STRING),
            field("adminPass", STRING),
            field("metadata", OBJECT),
            field("preserve_ephemeral", BOOLISH),
            field("OS-DCF:diskConfig", STRING),
            field("accessIPv4", STRING),
            field("accessIPv6", STRING),
            field_until("personality", ARRAY, (2, 57)),
            field_since("description", STRING.or(NULL), (2, 19)),
            field_since("key_name", STRING.or(NULL), (2, 54)),
            field_since("user_data", STRING.or(NULL), (2, 57)),
            field_since("trusted_image_certificates", ARRAY.or(NULL), (2, 63)),
            field_since("hostname", STRING, (2, 90)),
        ],
        &["imageRef"],
    ),
    object("createImage", NAME_AND_METADATA, &["name"]),
    object(
        "createBackup",
        &[
            field("name", STRING),
            field("backup_type", STRING),
            field("rotation", INT.or(STRING)),
            field("metadata", OBJECT),
        ],
        &["name", "backup_type", "rotation"],
    ),
    any("migrate"),
    from(nullable_object("migrate", &[field("host", STRING.or(NULL))]), (2, 56)),
    object(
        "os-migrateLive",
        &[
            field("block_migration", BOOLISH),
            field_until("disk_over_commit", BOOLISH, (2, 25)),
            field("host", STRING.or(NULL)),
            field_between("force", BOOLISH, (2, 30), (2, 68)),
        ],
        &["block_migration", "host"],
    ),
    nullable_object("rescue", &[field("adminPass", STRING), field("rescue_image_ref", STRING)]),
    any("unshelve"),
    from(nullable_object("unshelve", &[field("availability_zone", STRING)]), (2, 77)),
    from(nullable_object("unshelve", &[field("availability_zone", STRING.or(NULL)), field("host", STRING)]), (2, 91)),
    object("os-getConsoleOutput", &[field("length", INT.or(STRING).or(NULL))], &[]),
    object("addSecurityGroup", SECURITY_GROUP, &["name"]),
    object("removeSecurityGroup", SECURITY_GROUP, &["name"]),
    object("changePassword", &[field("adminPass", STRING)], &["adminPass"]),
    object("os-getVNCConsole", CONSOLE, &["type"]),
    object("os-getSPICEConsole", CONSOLE, &["type"]),
    object("os-getSerialConsole", CONSOLE, &["type"]),
    object("os-getRDPConsole", CONSOLE, &["type"]),
    object("addFloatingIp", &[field("address", STRING), field("fixed_address", STRING)], &["address"]),
    object("removeFloatingIp", &[field("address", STRING)], &["address"]),
    object("os-resetState", &[field("state", STRING)], &["state"]),
];

/// The schema of `action` at microversion `v`, if the action exists then.
pub fn schema(action: &str, v: Microversion) -> Option<&'static Schema> {
    SCHEMAS.iter().rev().find(|s| s.action == action && v.at_least(s.since.0, s.since.1))
}

fn present(f: &Field, v: Microversion) -> bool {
    v.at_least(f.since.0, f.since.1) && f.until.is_none_or(|(a, b)| !v.at_least(a, b))
}

/// Checks an action's value against its schema: 400 naming the field,
/// Nova's wording. Actions without a schema are left to the handler.
pub fn validate(action: &str, value: &Value, v: Microversion) -> Result<()> {
    let Some(s) = schema(action, v) else { return Ok(()) };
    if !s.value.admits(value) {
        return Err(bad(format!(
            "Invalid input for field/attribute {action}. Value: {value}. {value} is not of type {}",
            s.value.describe()
        )));
    }
    let Value::Object(m) = value else { return Ok(()) };
    for name in s.required {
        if !m.contains_key(*name) {
            return Err(bad(format!("Invalid input for field/attribute {action}. '{name}' is a required property")));
        }
    }
    for (k, val) in m {
        match s.fields.iter().find(|f| f.name == k && present(f, v)) {
            Some(f) if !f.types.admits(val) => {
                return Err(bad(format!(
                    "Invalid input for field/attribute {k}. Value: {val}. {val} is not of type {}",
                    f.types.describe()
                )))
            }
            Some(_) => {}
            None if s.closed => {
                return Err(bad(format!(
                    "Invalid input for field/attribute {action}. Additional properties are not allowed ('{k}' was unexpected)"
                )))
            }
            None => {}
        }
    }
    Ok(())
}

/// Every JSON type, one value each: what the bad-input tests send.
pub fn one_of_each_type() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Bool(true),
        Value::from(1),
        Value::from(1.5),
        Value::from("x"),
        Value::Array(vec![Value::from(1)]),
        serde_json::json!({}),
    ]
}

/// Whether `value` is of a type `types` admits (for tests that pick the
/// wrong ones).
pub fn admits(types: Types, value: &Value) -> bool {
    types.admits(value)
}

impl Schema {
    pub fn value_types(&self) -> Types {
        self.value
    }

    /// The fields present at `v`, with their types.
    pub fn fields_at(&self, v: Microversion) -> Vec<(&'static str, Types)> {
        self.fields.iter().filter(|f| present(f, v)).map(|f| (f.name, f.types)).collect()
    }

    pub fn required(&self) -> &'static [&'static str] {
        self.required
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(major: u16, minor: u16) -> Microversion {
        Microversion::new(major, minor)
    }

    #[test]
    fn every_wrong_type_of_every_typed_action_is_a_400() {
        let v = at(2, 96);
        for s in SCHEMAS.iter().filter(|s| schema(s.action, v).is_some_and(|x| std::ptr::eq(x, *s))) {
            for value in one_of_each_type() {
                let r = validate(s.action, &value, v);
                assert_eq!(r.is_ok(), s.value.admits(&value), "{} with {value}: {r:?}", s.action);
            }
            for (name, types) in s.fields_at(v) {
                for value in one_of_each_type().into_iter().filter(|x| !types.admits(x)) {
                    let mut body = serde_json::Map::new();
                    for r in s.required() {
                        body.insert(r.to_string(), json!("x"));
                    }
                    body.insert(name.to_string(), value.clone());
                    let e = validate(s.action, &Value::Object(body), v).unwrap_err();
                    assert!(e.to_string().contains(name), "{}: {e}", s.action);
                }
            }
        }
    }

    #[test]
    fn fields_follow_microversions() {
        let body = json!({"imageRef": "x", "key_name": "k"});
        assert!(validate("rebuild", &body, at(2, 54)).is_ok());
        assert!(validate("rebuild", &body, at(2, 53)).is_err());
        assert!(validate("lock", &json!("anything"), at(2, 72)).is_ok());
        assert!(validate("lock", &json!("anything"), at(2, 73)).is_err());
        assert!(validate("reboot", &json!({}), at(2, 1)).unwrap_err().to_string().contains("'type' is a required"));
        assert!(validate("no-such-action", &json!(1), at(2, 1)).is_ok());
    }
}
