//! Serving a service's router: the layers every API gets, and a listener that
//! stops cleanly when asked.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::middleware;
use axum::{Extension, Router};
use common::FaultFormat;
use tokio::net::TcpListener;

use crate::auth::TokenCache;
use crate::error::fault_layer;
use crate::request_id::request_id_layer;

/// Wraps a service's routes with what every API has: request ids, token
/// validation through `tokens`, and faults in `format`.
pub fn finish(router: Router, service: &'static str, format: FaultFormat, tokens: Arc<TokenCache>) -> Router {
    router
        .layer(Extension(tokens))
        .layer(middleware::from_fn(move |req, next| fault_layer(format, req, next)))
        .layer(middleware::from_fn(move |req, next| request_id_layer(service, req, next)))
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
