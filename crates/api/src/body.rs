//! JSON request bodies. A body that is not JSON is "malformed"; a body of the wrong
//! shape names the field that is wrong (`Invalid input for field 'user.name': …`),
//! as OpenStack's schema validation does.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A request body decoded into `T`, or a 400 that says what is wrong with it.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError(common::Fault::new(e.status().as_u16(), e.body_text())))?;
        decode(&bytes).map(JsonBody)
    }
}

/// Decodes `bytes` as `T`, naming the offending field on failure.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("The request body is empty; a JSON object is expected."));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("Malformed request body: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!("Invalid input for the request body: {}", strip_position(&inner)))
        } else {
            ApiError::bad_request(format!("Invalid input for field '{path}': {}", strip_position(&inner)))
        }
    })?;
    // One JSON document and nothing after it but whitespace, as every
    // OpenStack API's parser insists.
    de.end().map_err(|e| ApiError::bad_request(format!("Malformed request body: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 17", which means nothing to an API client.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        user: User,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct User {
        name: String,
        enabled: Option<bool>,
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = decode::<Outer>(br#"{"user": {"name": "a", "enabled": "yes"}}"#).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.0.message.contains("'user.enabled'"), "{}", e.0.message);
        assert!(!e.0.message.contains("line 1"), "{}", e.0.message);
    }

    #[test]
    fn missing_fields_and_garbage_are_400s() {
        let e = decode::<Outer>(br#"{"user": {}}"#).unwrap_err();
        assert!(e.0.message.contains("'user'") && e.0.message.contains("name"), "{}", e.0.message);
        assert!(decode::<Outer>(b"{not json").unwrap_err().0.message.starts_with("Malformed"));
        assert_eq!(decode::<Outer>(b"  ").unwrap_err().status(), 400);
        assert!(decode::<Outer>(br#"{"user": {"name": "x"}}"#).is_ok());
    }

    #[test]
    fn trailing_bytes_after_the_document_are_refused() {
        assert!(decode::<Outer>(b"{\"user\": {\"name\": \"x\"}}  \n").is_ok());
        let e = decode::<Outer>(br#"{"user": {"name": "x"}} {}"#).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.0.message.starts_with("Malformed"), "{}", e.0.message);
        assert_eq!(decode::<serde_json::Value>(b"{}x").unwrap_err().status(), 400);
    }
}

/// The attributes of one resource in a request body (`{"user": {...}}`), taken
/// field by field with type checks that name the field, leaving the attributes
/// the API keeps without interpreting (Keystone's "extra").
#[derive(Debug, Clone)]
pub struct Fields {
    resource: &'static str,
    map: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    /// The object under `resource` in `body`; a 400 when it is absent or not an object.
    pub fn from_body(body: Value, resource: &'static str) -> Result<Fields, ApiError> {
        match body {
            Value::Object(mut o) => match o.remove(resource) {
                Some(Value::Object(map)) => Ok(Fields { resource, map }),
                Some(_) => {
                    Err(ApiError::bad_request(format!("Invalid input for field '{resource}': expected an object")))
                }
                None => Err(ApiError::bad_request(format!("Expecting to find {resource} in request body."))),
            },
            _ => Err(ApiError::bad_request("The request body must be a JSON object.")),
        }
    }

    pub fn new(resource: &'static str, map: serde_json::Map<String, Value>) -> Fields {
        Fields { resource, map }
    }

    fn invalid(&self, field: &str, why: &str) -> ApiError {
        ApiError::bad_request(format!("Invalid input for field '{}.{field}': {why}", self.resource))
    }

    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// A string field: absent → `None`; `null` or another type → 400.
    pub fn string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.invalid(field, &format!("{v} is not a string"))),
        }
    }

    /// A string field that may be `null`: absent → `None`, null → `Some(None)`.
    pub fn nullable_string(&mut self, field: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.map.remove(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s))),
            Some(v) => Err(self.invalid(field, &format!("{v} is not a string or null"))),
        }
    }

    /// A required string of `min..=max` characters with at least one
    /// non-whitespace character.
    pub fn name(&mut self, field: &str, max: usize) -> Result<String, ApiError> {
        let s = self.string(field)?.ok_or_else(|| self.invalid(field, "required"))?;
        self.check_name(field, s, max)
    }

    /// Like [`Fields::name`], for an update: absent is fine.
    pub fn optional_name(&mut self, field: &str, max: usize) -> Result<Option<String>, ApiError> {
        match self.string(field)? {
            None => Ok(None),
            Some(s) => self.check_name(field, s, max).map(Some),
        }
    }

    fn check_name(&self, field: &str, s: String, max: usize) -> Result<String, ApiError> {
        if s.trim().is_empty() {
            return Err(self.invalid(field, "must not be empty or only whitespace"));
        }
        if s.chars().count() > max {
            return Err(self.invalid(field, &format!("longer than {max} characters")));
        }
        Ok(s)
    }

    pub fn boolean(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.map.remove(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(self.invalid(field, &format!("{v} is not a boolean"))),
        }
    }

    pub fn object(&mut self, field: &str) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(v) => Err(self.invalid(field, &format!("{v} is not an object"))),
        }
    }

    pub fn strings(&mut self, field: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.map.remove(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    v => Err(self.invalid(field, &format!("{v} is not a string"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.invalid(field, &format!("{v} is not a list"))),
        }
    }

    /// Takes a field whatever its type.
    pub fn raw(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    /// Refuses fields the API does not accept at all.
    pub fn forbid(&self, fields: &[&str]) -> Result<(), ApiError> {
        match fields.iter().find(|f| self.map.contains_key(**f)) {
            Some(f) => Err(self.invalid(f, "this attribute cannot be set")),
            None => Ok(()),
        }
    }

    /// What is left: attributes kept as they came.
    pub fn rest(self) -> serde_json::Map<String, Value> {
        self.map
    }
}

#[cfg(test)]
mod fields_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_fields_name_the_bad_one_and_keep_the_rest() {
        let body = json!({"user": {"name": "alice", "enabled": "yes", "email": "a@x"}});
        let mut f = Fields::from_body(body, "user").unwrap();
        assert_eq!(f.name("name", 255).unwrap(), "alice");
        let e = f.boolean("enabled").unwrap_err();
        assert!(e.0.message.contains("'user.enabled'"), "{}", e.0.message);
        assert_eq!(f.rest().get("email"), Some(&json!("a@x")));
    }

    #[test]
    fn names_must_have_substance_and_bodies_their_resource() {
        let mut f = Fields::from_body(json!({"p": {"name": "  ", "n2": "x".repeat(70)}}), "p").unwrap();
        assert_eq!(f.name("name", 64).unwrap_err().status(), 400);
        assert_eq!(f.name("n2", 64).unwrap_err().status(), 400);
        assert_eq!(f.name("absent", 64).unwrap_err().status(), 400);
        assert!(Fields::from_body(json!({"q": {}}), "p").is_err());
        assert!(Fields::from_body(json!({"p": 1}), "p").is_err());
        let mut f = Fields::from_body(json!({"p": {"d": null}}), "p").unwrap();
        assert_eq!(f.nullable_string("d").unwrap(), Some(None));
    }
}
