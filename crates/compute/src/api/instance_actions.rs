//! `/servers/{id}/os-instance-actions`: what was asked of a server and what
//! each part did about it.

use std::collections::HashMap;

use api::{Auth, Microversion};
use axum::extract::{Path, Query};
use axum::Json;
use serde_json::{json, Value};

use super::{bad, State};
use crate::error::{ComputeError, Result};
use crate::store::actions::{Action, Event};

fn view(a: &Action, v: Microversion) -> Value {
    let mut out = json!({
        "action": a.action, "instance_uuid": a.instance_uuid, "request_id": a.request_id,
        "user_id": a.user_id, "project_id": a.project_id,
        "start_time": common::time::naive_micros(a.start_time), "message": a.message,
    });
    if v.at_least(2, 58) {
        out["updated_at"] = json!(common::time::naive_micros(a.updated_at));
    }
    out
}

fn event_view(e: &Event, v: Microversion, admin: bool, project: &str) -> Value {
    let mut out = json!({
        "event": e.event, "start_time": common::time::naive_micros(e.start_time),
        "finish_time": e.finish_time.map(common::time::naive_micros), "result": e.result,
    });
    if admin {
        out["traceback"] = json!(e.traceback);
    }
    if v.at_least(2, 62) {
        if admin {
            out["host"] = json!(e.host);
        }
        let host_id = e.host.as_ref().map(|h| {
            use sha2::Digest;
            sha2::Sha224::digest(format!("{project}{h}").as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        out["hostId"] = json!(host_id.unwrap_or_default());
    }
    if v.at_least(2, 84) {
        out["details"] = json!(e.details);
    }
    out
}

/// The server; from 2.21 deleted ones too (their history stays readable).
async fn server(svc: &super::ComputeApi, auth: &Auth, v: Microversion, id: &str) -> Result<crate::model::Instance> {
    match svc.store.instance_any(id).await? {
        Some(i) if auth.is_admin() || auth.project_id.as_deref() == Some(i.project_id.as_str()) => {
            if i.deleted && !v.at_least(2, 21) {
                return Err(crate::store::instances::not_found(id));
            }
            Ok(i)
        }
        _ => Err(crate::store::instances::not_found(id)),
    }
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    server(&svc, &auth, v, &id).await?;
    let mut actions = svc.store.actions(&id).await?;
    if v.at_least(2, 58) {
        if let Some(since) = q.get("changes-since") {
            let t =
                common::time::parse_iso(since).ok_or_else(|| bad(format!("Invalid changes-since value {since}")))?;
            actions.retain(|a| a.updated_at >= t);
        }
        if v.at_least(2, 66) {
            if let Some(before) = q.get("changes-before") {
                let t = common::time::parse_iso(before)
                    .ok_or_else(|| bad(format!("Invalid changes-before value {before}")))?;
                actions.retain(|a| a.updated_at <= t);
            }
        }
        if let Some(marker) = q.get("marker") {
            let pos = actions
                .iter()
                .position(|a| a.request_id == *marker)
                .ok_or_else(|| bad(format!("Marker {marker} could not be found.")))?;
            actions.drain(..=pos);
        }
        if let Some(limit) = q.get("limit") {
            actions.truncate(limit.parse().map_err(|_| bad(format!("Invalid limit {limit}")))?);
        }
    }
    Ok(Json(json!({"instanceActions": actions.iter().map(|a| view(a, v)).collect::<Vec<_>>()})))
}

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, request_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let i = server(&svc, &auth, v, &id).await?;
    let a = svc
        .store
        .actions(&id)
        .await?
        .into_iter()
        .find(|a| a.request_id == request_id)
        .ok_or_else(|| ComputeError::NotFound(format!("Action {request_id} not found")))?;
    let events = svc.store.action_events(&a.id).await?;
    let mut out = view(&a, v);
    // Events are shown to admins, and to owners from 2.51.
    if auth.is_admin() || v.at_least(2, 51) {
        out["events"] =
            json!(events.iter().map(|e| event_view(e, v, auth.is_admin(), &i.project_id)).collect::<Vec<_>>());
    }
    Ok(Json(json!({"instanceAction": out})))
}
