//! The server actions a host does alone: power operations, rescue,
//! rebuild, consoles and interfaces. The API has already checked the state
//! and set the task; the host does the work through the driver and writes
//! the outcome through the conductor. A host that restarts mid-action
//! settles the instance from what the hypervisor shows (`settle`).

use std::collections::HashMap;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::AttachArgs;
use compute_rpc::model::{power_state, vm_state, Instance, RequestedNetwork, Vif};
use compute_rpc::ports::{Ports, PLUG_TIMEOUT};
use compute_rpc::{ComputeError, Result};
use serde_json::{json, Value};

use super::{driver_error, Host};

/// An action a user asked of the instance's host.
#[derive(Debug, Clone)]
pub enum Action {
    Start,
    Stop,
    Reboot { hard: bool },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Rescue,
    Unrescue,
    Rebuild { admin_password: Option<String> },
    InjectNetworkInfo,
    Detach { port_id: String },
}

impl Action {
    /// The event Nova records for it on the instance action.
    fn event(&self) -> &'static str {
        match self {
            Action::Start => "compute_start_instance",
            Action::Stop => "compute_stop_instance",
            Action::Reboot { .. } => "compute_reboot_instance",
            Action::Pause => "compute_pause_instance",
            Action::Unpause => "compute_unpause_instance",
            Action::Suspend => "compute_suspend_instance",
            Action::Resume => "compute_resume_instance",
            Action::Rescue => "compute_rescue_instance",
            Action::Unrescue => "compute_unrescue_instance",
            Action::Rebuild { .. } => "compute_rebuild_instance",
            Action::InjectNetworkInfo => "compute_inject_network_info",
            Action::Detach { .. } => "compute_detach_interface",
        }
    }
}

impl Host {
    pub(super) async fn action_event(
        &self,
        uuid: &str,
        request_id: &str,
        event: &str,
        result: Option<&str>,
        details: Option<&str>,
    ) {
        let e = ActionEvent {
            uuid: uuid.into(),
            request_id: request_id.into(),
            event: event.into(),
            host: self.host.clone(),
            result: result.map(String::from),
            details: details.map(String::from),
        };
        if let Err(err) = self.conductor.for_request(Some(request_id.to_string())).action_event(&e).await {
            tracing::warn!(instance = %uuid, event, error = %err, "could not record an instance action event");
        }
    }

    /// Runs one action: the driver call, then the states it leaves. A
    /// failure puts the instance back in its state with the task cleared and
    /// records the error on the action.
    pub(super) async fn instance_action(&self, uuid: &str, action: Action, request_id: &str) -> Result<()> {
        let i = self.instance(uuid).await?;
        let event = action.event();
        self.action_event(uuid, request_id, event, None, None).await;
        let result = self.run_action(&i, &action).await;
        match &result {
            Ok(_) => self.action_event(uuid, request_id, event, Some("Success"), None).await,
            Err(e) => {
                tracing::warn!(instance = %uuid, ?action, error = %e, "action failed");
                self.action_event(uuid, request_id, event, Some("Error"), Some(&e.to_string())).await;
                let _ = self.update(uuid, json!({"task_state": null})).await;
            }
        }
        result
    }

    async fn set(&self, i: &Instance, vm: &str, power: i64) -> Result<()> {
        self.update(&i.uuid, json!({"vm_state": vm, "task_state": null, "power_state": power})).await.map(|_| ())
    }

    async fn run_action(&self, i: &Instance, action: &Action) -> Result<()> {
        let d = &self.driver;
        match action {
            Action::InjectNetworkInfo => {
                let vifs = Ports { session: &self.session }.refresh(i).await?;
                self.update(&i.uuid, json!({"network_info": vifs})).await?;
                d.inject_network_info(i, &vifs).await.map_err(driver_error)?;
            }
            Action::Start => {
                d.power_on(i).await.map_err(driver_error)?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            Action::Stop => {
                d.power_off(i).await.map_err(driver_error)?;
                self.set(i, vm_state::STOPPED, power_state::SHUTDOWN).await?;
            }
            Action::Reboot { hard } => {
                d.reboot(i, *hard).await.map_err(driver_error)?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            Action::Pause => {
                d.pause(i).await.map_err(driver_error)?;
                self.set(i, vm_state::PAUSED, power_state::PAUSED).await?;
            }
            Action::Unpause => {
                d.unpause(i).await.map_err(driver_error)?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            Action::Suspend => {
                d.suspend(i).await.map_err(driver_error)?;
                self.set(i, vm_state::SUSPENDED, power_state::SUSPENDED).await?;
            }
            Action::Resume => {
                d.resume(i).await.map_err(driver_error)?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            Action::Rescue => {
                d.rescue(i).await.map_err(driver_error)?;
                self.set(i, vm_state::RESCUED, power_state::RUNNING).await?;
            }
            Action::Unrescue => {
                d.unrescue(i).await.map_err(driver_error)?;
                self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
            }
            Action::Rebuild { admin_password } => {
                // The new image and metadata are on the instance already.
                self.update(&i.uuid, json!({"task_state": "rebuild_spawning"})).await?;
                let was_stopped = i.vm_state == vm_state::STOPPED;
                d.destroy(i).await.map_err(driver_error)?;
                d.prepare_image(i).await.map_err(driver_error)?;
                d.create_disk(i).await.map_err(driver_error)?;
                d.spawn(i, &i.network_info, admin_password.as_deref()).await.map_err(driver_error)?;
                if was_stopped {
                    d.power_off(i).await.map_err(driver_error)?;
                    self.set(i, vm_state::STOPPED, power_state::SHUTDOWN).await?;
                } else {
                    self.set(i, vm_state::ACTIVE, power_state::RUNNING).await?;
                }
            }
            Action::Detach { port_id } => {
                let Some(vif) = i.network_info.iter().find(|v| v.port_id == *port_id).cloned() else {
                    return Err(ComputeError::NotFound(format!("Port {port_id} is not attached")));
                };
                d.detach_interface(i, &vif).await.map_err(driver_error)?;
                Ports { session: &self.session }.release(port_id, !vif.created_here).await?;
                let left: Vec<_> = i.network_info.iter().filter(|v| v.port_id != *port_id).cloned().collect();
                self.update(&i.uuid, json!({"network_info": left})).await?;
            }
        }
        Ok(())
    }

    /// Plugs one more interface into a running guest; returns it.
    pub(super) async fn attach_interface(&self, a: &AttachArgs) -> Result<Vif> {
        let i = self.instance(&a.uuid).await?;
        let requested = RequestedNetwork {
            network_id: a.net_id.clone(),
            port_id: a.port_id.clone(),
            fixed_ip: a.fixed_ip.clone(),
            tag: a.tag.clone(),
        };
        let ports = Ports { session: &self.session };
        let (port, created) = ports.bind_one(&i, &requested, &self.host, None).await?;
        let port_id = port["id"].as_str().unwrap_or_default().to_string();
        let mut names: HashMap<String, serde_json::Value> = HashMap::new();
        let attached = async {
            let port = ports.wait_active(&port_id, &self.host, PLUG_TIMEOUT).await?;
            let vif = ports.vif_from_port(&port, created, requested.tag.clone(), &mut names).await?;
            self.driver.attach_interface(&i, &vif).await.map_err(driver_error)?;
            Ok::<_, ComputeError>(vif)
        }
        .await;
        let vif = match attached {
            Ok(v) => v,
            Err(e) => {
                ports.release(&port_id, !created).await?;
                return Err(e);
            }
        };
        let mut all = i.network_info.clone();
        all.push(vif.clone());
        self.update(&i.uuid, json!({"network_info": all, "task_state": null})).await?;
        Ok(vif)
    }

    pub(super) async fn console_output(&self, uuid: &str) -> Result<String> {
        let i = self.instance(uuid).await?;
        self.driver.console_output(&i).await.map_err(driver_error)
    }

    pub(super) async fn vnc_console(&self, uuid: &str) -> Result<compute_rpc::model::ConsoleEndpoint> {
        let i = self.instance(uuid).await?;
        self.driver.vnc_console(&i).await.map_err(driver_error)
    }

    pub(super) async fn diagnostics(&self, uuid: &str) -> Result<Value> {
        let i = self.instance(uuid).await?;
        self.driver.diagnostics(&i).await.map_err(driver_error)
    }
}
