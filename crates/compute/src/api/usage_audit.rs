//! `/os-instance_usage_audit_log`: how far each compute host has got with
//! the periodic usage audit of the last completed period (a month). Hosts
//! here do not run that audit (Nova's `instance_usage_audit` is off by
//! default too), so every host shows as not run.

use api::{Auth, Microversion};
use axum::extract::Path;
use axum::Json;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::{admin_only, bad, ComputeApi, State};
use crate::error::Result;

/// The last whole month that ended at or before `before`.
fn last_completed_month(before: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let first = |y: i32, m: u32| {
        NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or(NaiveDateTime::MIN)
    };
    let end = first(before.year(), before.month());
    let begin =
        if before.month() == 1 { first(before.year() - 1, 12) } else { first(before.year(), before.month() - 1) };
    (begin, end)
}

async fn audit(svc: &ComputeApi, before: NaiveDateTime) -> Result<Value> {
    let (begin, end) = last_completed_month(before);
    let hosts: Vec<String> = svc
        .store
        .services()
        .await?
        .into_iter()
        .filter(|s| s.binary == compute_rpc::host::BINARY)
        .map(|s| s.host)
        .collect();
    Ok(json!({
        "period_beginning": begin.format("%Y-%m-%d %H:%M:%S").to_string(),
        "period_ending": end.format("%Y-%m-%d %H:%M:%S").to_string(),
        "num_hosts": hosts.len(),
        "num_hosts_done": 0,
        "num_hosts_running": 0,
        "num_hosts_not_run": hosts.len(),
        "hosts_not_run": hosts,
        "total_instances": 0,
        "total_errors": 0,
        "overall_status": format!("{} hosts done. 0 errors.", if hosts.is_empty() { "ALL".to_string() } else { format!("0 of {}", hosts.len()) }),
        "log": {},
    }))
}

pub async fn list(svc: State, auth: Auth, _v: Microversion) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-instance-usage-audit-log:list")?;
    let now = Utc::now().naive_utc();
    Ok(Json(json!({"instance_usage_audit_logs": audit(&svc, now).await?})))
}

pub async fn show(svc: State, auth: Auth, _v: Microversion, Path(before): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-instance-usage-audit-log:show")?;
    let format = if before.contains('.') { "%Y-%m-%d %H:%M:%S%.f" } else { "%Y-%m-%d %H:%M:%S" };
    let before = NaiveDateTime::parse_from_str(&before, format)
        .map_err(|_| bad(format!("Invalid timestamp for date {before}")))?;
    Ok(Json(json!({"instance_usage_audit_log": audit(&svc, before).await?})))
}
