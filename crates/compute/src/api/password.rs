//! `/servers/{id}/os-server-password`: the admin password a guest encrypted
//! with its key pair and posted to the metadata service, for its owner to
//! fetch; and its deletion. Empty until the guest posts one.

use api::Auth;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::servers::visible;
use super::State;
use crate::error::Result;

pub async fn show(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    Ok(Json(json!({"password": i.password})))
}

pub async fn clear(svc: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    visible(&svc, &auth, &id).await?;
    svc.store
        .update_instance(&id, |i| {
            i.password.clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
