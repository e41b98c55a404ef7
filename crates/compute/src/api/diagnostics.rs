//! `GET /servers/{id}/diagnostics` (admin): the guest's counters, asked of
//! its host. From 2.48 in Nova's standard form; before, flat keys in the
//! style libvirt used (`cpu0_time`, `memory`, `vda_read`, `<mac>_rx`, …).

use api::request_id::RequestId;
use api::{Auth, Microversion};
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Map, Value};

use super::server_actions::host_of;
use super::servers::visible;
use super::{admin_only, State};
use crate::error::{ComputeError, Result};
use crate::model::vm_state;

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-server-diagnostics")?;
    let i = visible(&svc, &auth, &id).await?;
    if i.vm_state == vm_state::BUILDING || i.vm_state == vm_state::SHELVED_OFFLOADED {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'get_diagnostics' instance {} while it is in vm_state {}",
            i.uuid, i.vm_state
        )));
    }
    let host = host_of(&i)?;
    let d =
        svc.host(&host, &request_id).get_diagnostics(&compute_rpc::host::InstanceRef { uuid: i.uuid.clone() }).await?;
    if v.at_least(2, 48) {
        return Ok(Json(d));
    }
    Ok(Json(Value::Object(flat(&d))))
}

/// The pre-2.48 shape of the same counters.
fn flat(d: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (n, cpu) in d["cpu_details"].as_array().into_iter().flatten().enumerate() {
        out.insert(format!("cpu{n}_time"), cpu["time"].clone());
    }
    let kib = d["memory_details"]["maximum"].as_i64().unwrap_or(0) * 1024;
    out.insert("memory".into(), json!(kib));
    out.insert("memory-actual".into(), json!(kib));
    for disk in d["disk_details"].as_array().into_iter().flatten() {
        out.insert("vda_read".into(), disk["read_bytes"].clone());
        out.insert("vda_read_req".into(), disk["read_requests"].clone());
        out.insert("vda_write".into(), disk["write_bytes"].clone());
        out.insert("vda_write_req".into(), disk["write_requests"].clone());
        out.insert("vda_errors".into(), disk["errors_count"].clone());
    }
    for nic in d["nic_details"].as_array().into_iter().flatten() {
        let name = nic["mac_address"].as_str().unwrap_or("nic").replace(':', "");
        for (k, key) in
            [("rx", "rx_octets"), ("rx_packets", "rx_packets"), ("tx", "tx_octets"), ("tx_packets", "tx_packets")]
        {
            out.insert(format!("tap{name}_{k}"), nic[key].clone());
        }
    }
    out
}
