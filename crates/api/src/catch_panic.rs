//! A panic in a handler must not drop the connection without an answer: this
//! layer turns it into a 500 in the service's fault format (the fault layer
//! outside it writes the body) and logs it inside the request's span, so the
//! log line carries the request id. The process keeps serving.

use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;

use crate::error::ApiError;

pub async fn catch_panic_layer(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            tracing::error!(%method, path, panic = %what, "a request handler panicked");
            ApiError::internal("Unexpected API Error. Please report it with the request id of this response.")
                .into_response()
        }
    }
}
