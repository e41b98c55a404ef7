//! The URL a client used to reach us. Keystone's `links.self` (which keystoneauth
//! uses as its base URL) and every `links` entry must name the host and port the
//! client connected to, not a bind address.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// `scheme://host[:port]` as the client addressed us, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header_str = |name| parts.headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
        let scheme = header_str(header::HeaderName::from_static("x-forwarded-proto")).unwrap_or("http");
        let host = header_str(header::HOST)
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".into());
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}
