//! A host's part in moving a server: resize and cold migration (source
//! powers off and lets go, destination takes over, then confirm or revert),
//! live migration, and shelving (saving the disk to an image and letting go
//! of the host). The conductor chose the destination and holds the claims;
//! ports follow the guest by rebinding them to the new host.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::ComputeHost;
use crate::error::{ComputeError, Result};
use crate::model::{power_state, vm_state, Instance, Vif};

impl ComputeHost {
    /// Points the instance's ports at this host and waits until they are up.
    async fn rebind_ports(&self, vifs: &[Vif], host: &str) -> Result<()> {
        for v in vifs {
            let body = json!({"port": {"binding:host_id": host}});
            self.session
                .expect(
                    "network",
                    Method::PUT,
                    &format!("/v2.0/ports/{}", v.port_id),
                    Some(&body),
                    None,
                    StatusCode::OK,
                )
                .await?;
        }
        if !host.is_empty() {
            for v in vifs {
                self.wait_active(&v.port_id).await?;
            }
        }
        Ok(())
    }

    /// Starts the guest here with the instance's (possibly new) flavor, in
    /// the power state it had.
    async fn start_here(&self, i: &Instance, stopped: bool) -> Result<i64> {
        self.rebind_ports(&i.network_info, &self.host).await?;
        self.driver.spawn(i, &i.network_info, None).await?;
        if stopped {
            self.driver.power_off(i).await?;
            return Ok(power_state::SHUTDOWN);
        }
        Ok(power_state::RUNNING)
    }

    fn arg<'a>(a: &'a Value, key: &str) -> &'a str {
        a[key].as_str().unwrap_or_default()
    }

    pub(super) async fn move_action(&self, method: &str, i: &Instance, a: &Value, request_id: &str) -> Result<Value> {
        match method {
            // Source side of a resize or migration: power off and let go.
            "resize_instance" => {
                self.conductor.instance_update(&i.uuid, json!({"task_state": "resize_migrating"}), None).await?;
                self.driver.power_off(i).await.ok();
                self.driver.destroy(i).await?;
                self.conductor.instance_update(&i.uuid, json!({"task_state": "resize_migrated"}), None).await?;
                let dest = Self::arg(a, "dest");
                let args = json!({"uuid": i.uuid, "source": self.host, "was_stopped": i.vm_state == vm_state::STOPPED});
                crate::rpc::ComputeRpc { bus: self.conductor.bus.clone() }
                    .cast(dest, "finish_resize", args, request_id)
                    .await?;
            }
            // Destination side: take the guest over with the new flavor.
            "finish_resize" => {
                self.conductor.instance_update(&i.uuid, json!({"task_state": "resize_finish"}), None).await?;
                let mut moved = i.clone();
                if let Some(f) = &i.new_flavor {
                    moved.flavor = f.clone();
                }
                let power = self.start_here(&moved, a["was_stopped"] == true).await?;
                let info = self.driver.host_info();
                let changes = json!({"vm_state": vm_state::RESIZED, "task_state": null, "power_state": power,
                    "host": self.host, "node": info.hypervisor_hostname, "flavor": moved.flavor,
                    "old_flavor": i.flavor, "source_host": Self::arg(a, "source")});
                self.conductor.instance_update(&i.uuid, changes, None).await?;
                self.conductor.migration_update(&i.uuid, "finished", request_id).await?;
            }
            // The user keeps the new size: the source has nothing left.
            "confirm_resize" => {
                let vm = if i.power_state == power_state::SHUTDOWN { vm_state::STOPPED } else { vm_state::ACTIVE };
                self.conductor
                    .instance_update(&i.uuid, json!({"vm_state": vm, "task_state": null, "old_flavor": null, "new_flavor": null, "source_host": null}), None)
                    .await?;
                self.conductor.migration_update(&i.uuid, "confirmed", request_id).await?;
            }
            // Destination side of a revert: let go and hand back.
            "revert_resize" => {
                self.driver.destroy(i).await?;
                let source = i.source_host.clone().unwrap_or_default();
                let args = json!({"uuid": i.uuid, "was_stopped": i.power_state == power_state::SHUTDOWN});
                crate::rpc::ComputeRpc { bus: self.conductor.bus.clone() }
                    .cast(&source, "finish_revert_resize", args, request_id)
                    .await?;
            }
            // Source side of a revert: the guest comes back with its old flavor.
            "finish_revert_resize" => {
                let mut back = i.clone();
                if let Some(f) = &i.old_flavor {
                    back.flavor = f.clone();
                }
                let stopped = a["was_stopped"] == true;
                let power = self.start_here(&back, stopped).await?;
                let info = self.driver.host_info();
                let vm = if stopped { vm_state::STOPPED } else { vm_state::ACTIVE };
                let changes = json!({"vm_state": vm, "task_state": null, "power_state": power, "host": self.host,
                    "node": info.hypervisor_hostname, "flavor": back.flavor, "old_flavor": null, "new_flavor": null,
                    "source_host": null});
                self.conductor.instance_update(&i.uuid, changes, None).await?;
                self.conductor.migration_update(&i.uuid, "reverted", request_id).await?;
            }
            // Source side of a live migration: the destination starts the
            // guest, then this host lets go.
            "live_migration" => {
                let dest = Self::arg(a, "dest").to_string();
                let rpc = crate::rpc::ComputeRpc { bus: self.conductor.bus.clone() };
                let started =
                    rpc.call(&dest, "post_live_migration_at_destination", json!({"uuid": i.uuid}), request_id).await;
                if let Err(e) = started {
                    self.rebind_ports(&i.network_info, &self.host).await.ok();
                    self.conductor.migration_update(&i.uuid, "error", request_id).await.ok();
                    return Err(e);
                }
                self.driver.destroy(i).await?;
                self.conductor.migration_update(&i.uuid, "completed", request_id).await?;
            }
            "post_live_migration_at_destination" => {
                let power = self.start_here(i, i.vm_state == vm_state::STOPPED).await?;
                let info = self.driver.host_info();
                let vm = if i.vm_state == vm_state::PAUSED { vm_state::PAUSED } else { vm_state::ACTIVE };
                if vm == vm_state::PAUSED {
                    self.driver.pause(i).await?;
                }
                let changes = json!({"vm_state": vm, "task_state": null, "host": self.host, "node": info.hypervisor_hostname,
                    "power_state": if vm == vm_state::PAUSED { power_state::PAUSED } else { power }});
                self.conductor.instance_update(&i.uuid, changes, None).await?;
            }
            "shelve_instance" => {
                let image_id = Self::arg(a, "image_id").to_string();
                self.conductor
                    .instance_update(&i.uuid, json!({"task_state": "shelving_image_pending_upload"}), None)
                    .await?;
                let data = self.driver.snapshot(i).await?;
                self.conductor
                    .instance_update(&i.uuid, json!({"task_state": "shelving_image_uploading"}), None)
                    .await?;
                let status = self
                    .session
                    .put_bytes("image", &format!("/v2/images/{image_id}/file"), "application/octet-stream", data)
                    .await?;
                if status != StatusCode::NO_CONTENT {
                    return Err(ComputeError::Upstream(format!(
                        "uploading the shelved disk to image {image_id} answered {status}"
                    )));
                }
                self.driver.power_off(i).await?;
                self.conductor
                    .instance_update(&i.uuid, json!({"vm_state": vm_state::SHELVED, "task_state": null, "power_state": power_state::SHUTDOWN, "shelved_image_id": image_id}), None)
                    .await?;
                if a["offload"] == true {
                    self.offload(i, request_id).await?;
                }
            }
            "shelve_offload_instance" => self.offload(i, request_id).await?,
            "unshelve_instance" => {
                self.conductor.instance_update(&i.uuid, json!({"task_state": "spawning"}), None).await?;
                let power = self.start_here(i, false).await?;
                let info = self.driver.host_info();
                self.conductor
                    .instance_update(&i.uuid, json!({"vm_state": vm_state::ACTIVE, "task_state": null, "power_state": power, "node": info.hypervisor_hostname}), None)
                    .await?;
                if let Some(image) = &i.shelved_image_id {
                    let (status, _) =
                        self.session.call("image", Method::DELETE, &format!("/v2/images/{image}"), None, None).await?;
                    if !status.is_success() && status != StatusCode::NOT_FOUND {
                        tracing::warn!(instance = %i.uuid, image, %status, "could not delete the shelved image");
                    }
                }
                self.conductor.instance_update(&i.uuid, json!({"shelved_image_id": null}), None).await?;
            }
            other => return Err(ComputeError::BadRequest(format!("unknown compute method {other}"))),
        }
        Ok(Value::Null)
    }

    /// Lets go of a shelved instance: no guest, no binding, no claim.
    async fn offload(&self, i: &Instance, request_id: &str) -> Result<()> {
        self.conductor.instance_update(&i.uuid, json!({"task_state": "shelving_offloading"}), None).await?;
        self.driver.destroy(i).await?;
        self.rebind_ports(&i.network_info, "").await?;
        self.conductor.instance_offloaded(&i.uuid, request_id).await?;
        Ok(())
    }
}
