//! JSON request bodies. A body that is not JSON is "malformed"; a body of the wrong
//! shape names the field that is wrong (`Invalid input for field 'user.name': …`),
//! as OpenStack's schema validation does.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

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
        return Err(ApiError::bad_request(
            "The request body is empty; a JSON object is expected.",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("Malformed request body: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!(
                "Invalid input for the request body: {}",
                strip_position(&inner)
            ))
        } else {
            ApiError::bad_request(format!(
                "Invalid input for field '{path}': {}",
                strip_position(&inner)
            ))
        }
    })
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
        assert!(
            e.0.message.contains("'user'") && e.0.message.contains("name"),
            "{}",
            e.0.message
        );
        assert!(decode::<Outer>(b"{not json")
            .unwrap_err()
            .0
            .message
            .starts_with("Malformed"));
        assert_eq!(decode::<Outer>(b"  ").unwrap_err().status(), 400);
        assert!(decode::<Outer>(br#"{"user": {"name": "x"}}"#).is_ok());
    }
}
