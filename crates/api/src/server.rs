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
use crate::catch_panic::catch_panic_layer;
use crate::error::fault_layer;
use crate::request_id::request_id_layer;

/// Wraps a service's routes with what every API has: request ids, token
/// validation through `tokens`, faults in `format`, and a 500 instead of a
/// dropped connection when a handler panics.
pub fn finish(router: Router, service: &'static str, format: FaultFormat, tokens: Arc<TokenCache>) -> Router {
    router
        .layer(Extension(tokens))
        .layer(middleware::from_fn(catch_panic_layer))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthContext, TokenError, TokenValidator};
    use crate::{ApiError, Auth};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    struct NoTokens;

    #[async_trait::async_trait]
    impl TokenValidator for NoTokens {
        async fn validate(&self, _: &str) -> Result<AuthContext, TokenError> {
            Err(TokenError::Invalid)
        }
    }

    fn app(format: FaultFormat) -> Router {
        let routes = Router::new()
            .route("/missing", get(|| async { Err::<(), _>(ApiError::not_found("no such thing")) }))
            .route("/private", get(|_: Auth| async { "secret" }));
        finish(routes, "test", format, Arc::new(TokenCache::uncached(Arc::new(NoTokens))))
    }

    async fn get_json(app: Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let resp = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_are_written_in_the_services_format_with_a_request_id() {
        let (s, h, b) = get_json(app(FaultFormat::Nova), "/missing").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(b["itemNotFound"]["message"], "no such thing");
        assert!(common::id::is_request_id(h["x-openstack-request-id"].to_str().unwrap()));
        assert_eq!(h["content-type"], "application/json");

        // Paths no handler serves get the same treatment.
        let (s, _, b) = get_json(app(FaultFormat::Keystone), "/nowhere").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(b["error"]["code"], 404);
    }

    #[allow(clippy::unnecessary_literal_unwrap)]
    async fn boom() -> &'static str {
        let v: Option<&str> = None;
        v.expect("a handler bug")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_the_fault_format_and_the_router_keeps_serving() {
        let routes = Router::new().route("/boom", get(boom)).route("/fine", get(|| async { "ok" }));
        let app = finish(routes, "test", FaultFormat::Nova, Arc::new(TokenCache::uncached(Arc::new(NoTokens))));
        let (s, h, b) = get_json(app.clone(), "/boom").await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(h.contains_key("x-openstack-request-id"));
        assert_eq!(b["computeFault"]["code"], 500, "{b}");
        let resp = app.oneshot(Request::get("/fine").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn requests_without_a_valid_token_are_401s() {
        let (s, _, b) = get_json(app(FaultFormat::Neutron), "/private").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(b["NeutronError"]["type"], "NotAuthorized");
    }
}
