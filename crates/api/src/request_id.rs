//! Request ids. Every request gets a fresh `req-<uuid>`, returned in
//! `x-openstack-request-id`, recorded in a tracing span so every log line the request
//! causes carries it, and available to handlers to pass along the bus.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-openstack-request-id";
/// Nova's name for it, which some clients still read.
pub const COMPUTE_HEADER: &str = "x-compute-request-id";

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

pub async fn request_id_layer(service: &'static str, mut req: Request, next: Next) -> Response {
    let id = common::id::new_request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", service, request_id = %id);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            %method,
            path,
            status = resp.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "served"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        // Nova also answers with its own older name for the same id.
        if service == "compute" {
            resp.headers_mut().insert(COMPUTE_HEADER, v.clone());
        }
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_else(|| RequestId(common::id::new_request_id())))
    }
}
