//! Glance's v2 REST API: one file per resource, routed here.

pub mod data;
pub mod images;
mod info;
pub mod members;
mod schemas;

use std::sync::Arc;

use api::auth::TokenCache;
use api::ApiError;
use axum::routing::{get, post, put};
use axum::Router;

use crate::ImageService;

/// The whole image API, with the shared layers (request ids, faults, tokens
/// validated through `tokens`).
pub fn router(svc: Arc<ImageService>, tokens: Arc<TokenCache>) -> Router {
    let routes = Router::new()
        .route("/", get(schemas::versions))
        .route("/versions", get(schemas::versions))
        .route("/v2/images", get(images::list).post(images::create))
        .route("/v2/images/{id}", get(images::show).patch(images::update).delete(images::delete))
        .route("/v2/images/{id}/file", put(data::upload).get(data::download))
        .route("/v2/images/{id}/tasks", get(images::tasks))
        .route("/v2/images/{id}/actions/deactivate", post(images::deactivate))
        .route("/v2/images/{id}/actions/reactivate", post(images::reactivate))
        .route("/v2/images/{id}/tags/{tag}", put(images::add_tag).delete(images::remove_tag))
        .route("/v2/images/{id}/members", get(members::list).post(members::create))
        .route("/v2/images/{id}/members/{member}", get(members::show).put(members::update).delete(members::delete))
        .route("/v2/info/import", get(info::import_methods))
        .route("/v2/schemas/image", get(schemas::image))
        .route("/v2/schemas/images", get(schemas::images))
        .route("/v2/schemas/member", get(schemas::member))
        .route("/v2/schemas/members", get(schemas::members))
        .fallback(not_found)
        .with_state(svc);
    api::server::finish(routes, "image", ::common::FaultFormat::Glance, tokens)
}

async fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}
