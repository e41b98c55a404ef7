//! Handler errors. A handler returns [`ApiError`] (a [`Fault`]); the service's
//! [`fault_layer`] writes it in that API's body format. Responses that never went
//! through a handler (an unknown path, a wrong method) are given the same shape.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use common::{Fault, FaultFormat};

pub type ApiResult<T> = Result<T, ApiError>;

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub Fault);

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(Fault::bad_request(message))
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError(Fault::unauthorized(message))
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError(Fault::forbidden(message))
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError(Fault::not_found(message))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError(Fault::conflict(message))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError(Fault::internal(message))
    }
    pub fn status(&self) -> u16 {
        self.0.status
    }
}

impl From<Fault> for ApiError {
    fn from(f: Fault) -> Self {
        ApiError(f)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.status >= 500 {
            tracing::error!(status = self.0.status, message = %self.0.message, "request failed");
        }
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = status.into_response();
        // The body is written by `fault_layer`, which knows the API's format.
        resp.extensions_mut().insert(self.0);
        resp
    }
}

/// Writes every error response of a service in that service's fault format.
pub async fn fault_layer(format: FaultFormat, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let fault = match resp.extensions().get::<Fault>() {
        Some(f) => f.clone(),
        None if is_json(&resp) => return resp,
        None => Fault::new(status.as_u16(), default_message(status)),
    };
    let (mut parts, _) = resp.into_parts();
    let body = format.body(&fault).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "The resource could not be found.".into(),
        StatusCode::METHOD_NOT_ALLOWED => "The method is not allowed for the requested URL.".into(),
        s => s.canonical_reason().unwrap_or("Error").into(),
    }
}
