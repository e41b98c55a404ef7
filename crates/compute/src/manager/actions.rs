//! What a host does for a server's actions: deleting it, its power
//! operations, rescue, rebuild, snapshots, consoles and interfaces. The API
//! has already checked the state and set the task; the host does the work
//! through the driver and writes the outcome through the conductor.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::ComputeHost;
use crate::error::{ComputeError, Result};
use crate::model::{power_state, vm_state, Instance, RequestedNetwork};

/// Event names as Nova records them, per action.
fn event_name(method: &str) -> String {
    format!("compute_{method}")
}

impl ComputeHost {
    /// Deletes the guest and its ports, then tells the conductor it is gone.
    pub(super) async fn terminate(&self, uuid: &str, request_id: &str) -> Result<()> {
        let i = self.conductor.instance_get(uuid).await?;
        self.conductor.action_event(uuid, request_id, "compute_terminate_instance", &self.host, None, None).await;
        self.driver.destroy(&i).await?;
        self.deallocate_network(&i).await?;
        self.conductor.instance_destroyed(uuid, request_id).await?;
        self.conductor
            .action_event(uuid, request_id, "compute_terminate_instance", &self.host, Some("Success"), None)
            .await;
        self.changed();
        Ok(())
    }

    pub(super) async fn console_output(&self, uuid: &str) -> Result<String> {
        let i = self.conductor.instance_get(uuid).await?;
        Ok(self.driver.console_output(&i).await?)
    }

    /// Keeps the newest `keep` backups of this kind of the instance and
    /// deletes the rest, as Nova's `_rotate_backups` does.
    async fn rotate_backups(&self, i: &Instance, kind: &str, keep: usize) -> Result<()> {
        let mut url =
            reqwest::Url::parse("http://image/v2/images").map_err(|e| ComputeError::Internal(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("image_type", "backup")
            .append_pair("backup_type", kind)
            .append_pair("instance_uuid", &i.uuid)
            .append_pair("sort_key", "created_at")
            .append_pair("sort_dir", "desc");
        let path = format!("/v2/images?{}", url.query().unwrap_or_default());
        let listed = self.session.expect("image", Method::GET, &path, None, None, StatusCode::OK).await?;
        for old in listed["images"].as_array().into_iter().flatten().skip(keep) {
            let id = old["id"].as_str().unwrap_or_default();
            let (status, body) =
                self.session.call("image", Method::DELETE, &format!("/v2/images/{id}"), None, None).await?;
            if !status.is_success() && status != StatusCode::NOT_FOUND {
                return Err(crate::clients::remote_error("image", status, &body));
            }
            tracing::info!(instance = %i.uuid, image = id, "rotated out an old backup");
        }
        Ok(())
    }

    pub(super) async fn vnc_console(&self, uuid: &str) -> Result<Value> {
        let i = self.conductor.instance_get(uuid).await?;
        let endpoint = self.driver.vnc_console(&i).await?;
        serde_json::to_value(endpoint).map_err(|e| ComputeError::Internal(e.to_string()))
    }

    pub(super) async fn diagnostics(&self, uuid: &str) -> Result<Value> {
        let i = self.conductor.instance_get(uuid).await?;
        Ok(self.driver.diagnostics(&i).await?)
    }

    /// Runs one action: the driver call, then the states it leaves. A
    /// failure puts the instance back in its state with the task cleared and
    /// records the error on the action.
    pub(super) async fn instance_action(&self, method: &str, uuid: &str, a: &Value, request_id: &str) -> Result<Value> {
        let i = self.conductor.instance_get(uuid).await?;
        let event = event_name(method);
        self.conductor.action_event(uuid, request_id, &event, &self.host, None, None).await;
        let result = self.run_action(method, &i, a, request_id).await;
        match &result {
            Ok(_) => self.conductor.action_event(uuid, request_id, &event, &self.host, Some("Success"), None).await,
            Err(e) => {
                tracing::warn!(instance = %uuid, method, error = %e, "action failed");
                self.conductor
                    .action_event(uuid, request_id, &event, &self.host, Some("Error"), Some(&e.to_string()))
                    .await;
                let _ = self.conductor.instance_update(uuid, json!({"task_state": null}), None).await;
            }
        }
        self.changed();
        result
    }

    async fn set(&self, i: &Instance, vm: &str, power: i64) -> Result<()> {
        self.conductor
            .instance_update(&i.uuid, json!({"vm_state": vm, "task_state": null, "power_state": power}), None)
            .await
            .map(|_| ())
    }

    async fn run_action(&self, method: &str, i: &Instance, a: &Value, request_id: &str) -> Result<Value> {
        match method {
            "inject_network_info" => {
                let vifs = self.refresh_network_info(i).await?;
                self.driver.inject_network_info(i, &vifs).await?;
            }
            "start_instance" => {
                self.driver.power_on(i).await?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            "stop_instance" => {
                self.driver.power_off(i).await?;
                self.set(i, vm_state::STOPPED, power_state::SHUTDOWN).await?;
            }
            "reboot_instance" => {
                let hard = a["reboot_type"] == "HARD";
                self.driver.reboot(i, hard).await?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            "pause_instance" => {
                self.driver.pause(i).await?;
                self.set(i, vm_state::PAUSED, power_state::PAUSED).await?;
            }
            "unpause_instance" => {
                self.driver.unpause(i).await?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            "suspend_instance" => {
                self.driver.suspend(i).await?;
                self.set(i, vm_state::SUSPENDED, power_state::SUSPENDED).await?;
            }
            "resume_instance" => {
                self.driver.resume(i).await?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            "rescue_instance" => {
                self.driver.rescue(i).await?;
                self.set(i, vm_state::RESCUED, power_state::RUNNING).await?;
            }
            "unrescue_instance" => {
                self.driver.unrescue(i).await?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            "rebuild_instance" => {
                // The new image and metadata are on the instance already.
                self.conductor.instance_update(&i.uuid, json!({"task_state": "rebuild_spawning"}), None).await?;
                let was_stopped = i.vm_state == vm_state::STOPPED;
                self.driver.destroy(i).await?;
                self.driver.spawn(i, &i.network_info, a["admin_password"].as_str()).await?;
                if was_stopped {
                    self.driver.power_off(i).await?;
                    self.set(i, vm_state::STOPPED, power_state::SHUTDOWN).await?;
                } else {
                    self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
                }
            }
            "snapshot_instance" => {
                let image_id = a["image_id"].as_str().unwrap_or_default().to_string();
                self.conductor.instance_update(&i.uuid, json!({"task_state": "image_pending_upload"}), None).await?;
                let data = self.driver.snapshot(i).await?;
                self.conductor.instance_update(&i.uuid, json!({"task_state": "image_uploading"}), None).await?;
                let status = self
                    .session
                    .put_bytes("image", &format!("/v2/images/{image_id}/file"), "application/octet-stream", data)
                    .await?;
                if status != StatusCode::NO_CONTENT {
                    return Err(ComputeError::Upstream(format!(
                        "uploading the snapshot to image {image_id} answered {status}"
                    )));
                }
                self.conductor.instance_update(&i.uuid, json!({"task_state": null}), None).await?;
                if let (Some(kind), Some(keep)) = (a["backup_type"].as_str(), a["rotation"].as_u64()) {
                    self.rotate_backups(i, kind, keep as usize).await?;
                }
            }
            "attach_interface" => return self.attach_interface(i, a).await,
            "detach_interface" => {
                let port_id = a["port_id"].as_str().unwrap_or_default();
                let Some(vif) = i.network_info.iter().find(|v| v.port_id == port_id).cloned() else {
                    return Err(ComputeError::NotFound(format!("Port {port_id} is not attached")));
                };
                self.driver.detach_interface(i, &vif).await?;
                self.release_port(port_id, !vif.created_here).await?;
                let left: Vec<_> = i.network_info.iter().filter(|v| v.port_id != port_id).cloned().collect();
                self.conductor.instance_update(&i.uuid, json!({"network_info": left}), None).await?;
            }
            other => return self.move_action(other, i, a, request_id).await,
        }
        Ok(Value::Null)
    }

    /// Plugs one more interface into a running guest; returns it.
    async fn attach_interface(&self, i: &Instance, a: &Value) -> Result<Value> {
        let requested = RequestedNetwork {
            network_id: a["net_id"].as_str().map(String::from),
            port_id: a["port_id"].as_str().map(String::from),
            fixed_ip: a["fixed_ip"].as_str().map(String::from),
            tag: a["tag"].as_str().map(String::from),
        };
        let (port, created) = self.plug_one(i, &requested).await?;
        let port_id = port["id"].as_str().unwrap_or_default().to_string();
        let mut names = Default::default();
        let attached = async {
            let port = self.wait_active(&port_id).await?;
            let vif = self.vif_from_port(&port, created, requested.tag.clone(), &mut names).await?;
            self.driver.attach_interface(i, &vif).await?;
            Ok::<_, ComputeError>(vif)
        }
        .await;
        let vif = match attached {
            Ok(v) => v,
            Err(e) => {
                self.release_port(&port_id, !created).await?;
                return Err(e);
            }
        };
        let mut all = i.network_info.clone();
        all.push(vif.clone());
        self.conductor.instance_update(&i.uuid, json!({"network_info": all, "task_state": null}), None).await?;
        Ok(json!(vif))
    }
}
