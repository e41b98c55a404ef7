//! Microversions: a client asks for an API version with
//! `OpenStack-API-Version: compute 2.60` (or a service's legacy header such as
//! `X-OpenStack-Nova-API-Version: 2.60`); without one it gets the minimum,
//! with `latest` the maximum. The answer says which version it speaks in both
//! headers, and `Vary` names them for caches.

use std::fmt;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub const HEADER: &str = "openstack-api-version";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    pub major: u16,
    pub minor: u16,
}

impl Microversion {
    pub const fn new(major: u16, minor: u16) -> Microversion {
        Microversion { major, minor }
    }

    /// Whether the request's version is at least `major.minor`.
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= Microversion::new(major, minor)
    }

    pub fn parse(s: &str) -> Option<Microversion> {
        let (major, minor) = s.trim().split_once('.')?;
        let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
        if !ok(major) || !ok(minor) {
            return None;
        }
        Some(Microversion { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The versions one service speaks.
#[derive(Debug, Clone, Copy)]
pub struct Versions {
    /// The service type in `OpenStack-API-Version`, e.g. `compute`.
    pub service: &'static str,
    /// The legacy header, e.g. `x-openstack-nova-api-version`.
    pub legacy_header: &'static str,
    pub min: Microversion,
    pub max: Microversion,
}

impl Versions {
    /// The version a request asks for, or why it cannot have it.
    pub fn requested(&self, headers: &HeaderMap) -> Result<Microversion, ApiError> {
        let mut asked: Option<String> = None;
        for value in headers.get_all(HEADER) {
            let Ok(value) = value.to_str() else { continue };
            for part in value.split(',') {
                let mut words = part.split_whitespace();
                if words.next().is_some_and(|s| s.eq_ignore_ascii_case(self.service)) {
                    asked = Some(words.collect::<Vec<_>>().join(" "));
                }
            }
        }
        if asked.is_none() {
            asked = headers.get(self.legacy_header).and_then(|v| v.to_str().ok()).map(str::to_string);
        }
        let Some(asked) = asked else { return Ok(self.min) };
        if asked.trim().eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let v = Microversion::parse(&asked).ok_or_else(|| {
            ApiError::bad_request(format!(
                "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
            ))
        })?;
        if v < self.min || v > self.max {
            return Err(ApiError(common::Fault::new(
                406,
                format!(
                    "Version {v} is not supported by the API. Minimum is {} and maximum is {}.",
                    self.min, self.max
                ),
            )));
        }
        Ok(v)
    }
}

/// Resolves the request's microversion (refusing bad ones), makes it available
/// to handlers as [`Microversion`], and states it on the response.
pub async fn microversion_layer(versions: Versions, mut req: Request, next: Next) -> Response {
    let v = match versions.requested(req.headers()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(v);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("{} {v}", versions.service)) {
        h.insert(HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&v.to_string()) {
        h.insert(versions.legacy_header, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("OpenStack-API-Version, {}", versions.legacy_header)) {
        h.insert(axum::http::header::VARY, value);
    }
    resp
}

impl<S: Send + Sync> FromRequestParts<S> for Microversion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Microversion>().copied().unwrap_or(Microversion::new(2, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOVA: Versions = Versions {
        service: "compute",
        legacy_header: "x-openstack-nova-api-version",
        min: Microversion::new(2, 1),
        max: Microversion::new(2, 96),
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn negotiation() {
        assert_eq!(NOVA.requested(&headers(&[])).unwrap(), Microversion::new(2, 1));
        assert_eq!(NOVA.requested(&headers(&[(HEADER, "compute 2.60")])).unwrap(), Microversion::new(2, 60));
        assert_eq!(
            NOVA.requested(&headers(&[(HEADER, "volume 3.5, compute 2.10")])).unwrap(),
            Microversion::new(2, 10)
        );
        assert_eq!(NOVA.requested(&headers(&[(HEADER, "compute latest")])).unwrap(), Microversion::new(2, 96));
        assert_eq!(
            NOVA.requested(&headers(&[("x-openstack-nova-api-version", "2.5")])).unwrap(),
            Microversion::new(2, 5)
        );
        assert_eq!(NOVA.requested(&headers(&[(HEADER, "compute 2.97")])).unwrap_err().0.status, 406);
        assert_eq!(NOVA.requested(&headers(&[(HEADER, "compute 2.a")])).unwrap_err().0.status, 400);
        assert_eq!(NOVA.requested(&headers(&[(HEADER, "compute 2.01")])).unwrap_err().0.status, 400);
        assert!(Microversion::new(2, 10) > Microversion::new(2, 9));
    }
}
