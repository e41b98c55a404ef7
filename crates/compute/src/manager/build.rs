//! Building an instance on this host, as a list of steps each with its undo:
//!
//! 1. `affinity`   — the late server group check (another build may have
//!    raced this one onto the host); nothing to undo.
//! 2. `networking` — ports made or taken and wired; undo releases them.
//! 3. `spawning`   — the guest started by the driver; undo destroys it.
//!
//! The step reached is written to the instance (with `progress`) before the
//! step runs, so a host restarted mid-build knows what to undo. On failure
//! the completed steps are undone in reverse and the conductor reschedules.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::ComputeHost;
use crate::error::{ComputeError, Result};
use crate::model::{power_state, vm_state, Instance};

const STEPS: &[(&str, i64)] = &[("affinity", 5), ("networking", 20), ("spawning", 60)];

enum Outcome {
    Built,
    /// The instance was deleted meanwhile: undo, but do not reschedule.
    Gone,
}

impl ComputeHost {
    pub(super) async fn build_and_run(&self, uuid: &str, admin_password: Option<&str>, request_id: &str) {
        self.io_ops.fetch_add(1, Ordering::Relaxed);
        self.changed();
        self.conductor.action_event(uuid, request_id, "compute_build_and_run_instance", &self.host, None, None).await;
        let mut reached: Option<&'static str> = None;
        let result = self.build_steps(uuid, admin_password, &mut reached).await;
        match result {
            Ok(Outcome::Built) => {
                self.conductor
                    .action_event(uuid, request_id, "compute_build_and_run_instance", &self.host, Some("Success"), None)
                    .await;
                if let Err(e) = self.conductor.build_succeeded(&self.host).await {
                    tracing::warn!(error = %e, "could not clear the host's failed builds");
                }
            }
            Ok(Outcome::Gone) | Err(_) => {
                let reason = match &result {
                    Err(e) => e.to_string(),
                    _ => "the instance was deleted during the build".into(),
                };
                tracing::warn!(instance = %uuid, host = %self.host, step = ?reached, %reason, "build failed; rolling back");
                match self.conductor.instance_get(uuid).await {
                    Ok(i) => self.undo_build(&i, reached).await,
                    Err(e) => tracing::error!(instance = %uuid, error = %e, "cannot read the instance to roll back"),
                }
                self.conductor
                    .action_event(
                        uuid,
                        request_id,
                        "compute_build_and_run_instance",
                        &self.host,
                        Some("Error"),
                        Some(&reason),
                    )
                    .await;
                if result.is_err() {
                    if let Err(e) =
                        self.conductor.build_failed(uuid, &self.host, &reason, admin_password, request_id).await
                    {
                        tracing::error!(instance = %uuid, error = %e, "could not hand the failed build back to the conductor");
                    }
                }
            }
        }
        self.io_ops.fetch_sub(1, Ordering::Relaxed);
        self.changed();
    }

    /// Marks the step about to run; fails with `Gone` when a delete came.
    async fn enter(
        &self,
        uuid: &str,
        step: &'static str,
        progress: i64,
        reached: &mut Option<&'static str>,
    ) -> Result<Option<Instance>> {
        let expected: &[Option<&str>] =
            &[Some("scheduling"), Some("networking"), Some("spawning"), Some("block_device_mapping")];
        let task = if step == "affinity" { "scheduling" } else { step };
        match self
            .conductor
            .instance_update(
                uuid,
                json!({"task_state": task, "build_step": step, "progress": progress}),
                Some(expected),
            )
            .await
        {
            Ok(i) => {
                *reached = Some(step);
                Ok(Some(i))
            }
            Err(ComputeError::Conflict(_)) | Err(ComputeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn build_steps(
        &self,
        uuid: &str,
        admin_password: Option<&str>,
        reached: &mut Option<&'static str>,
    ) -> Result<Outcome> {
        let mut instance = self.conductor.instance_get(uuid).await?;
        if instance.deleted || instance.task_state.as_deref() == Some("deleting") {
            return Ok(Outcome::Gone);
        }
        for (step, progress) in STEPS {
            let Some(i) = self.enter(uuid, step, *progress, reached).await? else { return Ok(Outcome::Gone) };
            instance = i;
            match *step {
                "affinity" => self.check_group_policy(&instance).await?,
                "networking" => {
                    let vifs = self.allocate_network(&instance).await?;
                    self.conductor.instance_update(uuid, json!({"network_info": vifs}), None).await?;
                }
                "spawning" => self.driver.spawn(&instance, &instance.network_info, admin_password).await?,
                _ => {}
            }
        }
        let done = json!({"vm_state": vm_state::ACTIVE, "task_state": null, "power_state": power_state::RUNNING,
            "progress": 100, "build_step": null, "launched_at": common::time::now_micros(), "fault": null});
        match self.conductor.instance_update(uuid, done, Some(&[Some("spawning")])).await {
            Ok(_) => Ok(Outcome::Built),
            Err(ComputeError::Conflict(_)) | Err(ComputeError::NotFound(_)) => Ok(Outcome::Gone),
            Err(e) => Err(e),
        }
    }

    /// Undoes the build's steps up to `reached`, latest first. Each undo is
    /// safe to repeat.
    pub(super) async fn undo_build(&self, i: &Instance, reached: Option<&str>) {
        let Some(reached) = reached else { return };
        let upto = STEPS.iter().position(|(s, _)| *s == reached).unwrap_or(STEPS.len() - 1);
        for (step, _) in STEPS[..=upto].iter().rev() {
            let undone = match *step {
                "spawning" => self.driver.destroy(i).await.map_err(ComputeError::from),
                "networking" => self.deallocate_network(i).await,
                _ => Ok(()),
            };
            if let Err(e) = undone {
                tracing::error!(instance = %i.uuid, step, error = %e, "could not undo a build step");
            }
        }
        let _ = self.conductor.instance_update(&i.uuid, json!({"network_info": [], "build_step": null}), None).await;
    }

    /// The late server group check: the scheduler decided on what it knew;
    /// another build may have landed on this host since.
    async fn check_group_policy(&self, i: &Instance) -> Result<()> {
        let Some(group_id) = &i.server_group else { return Ok(()) };
        let _held = self.group_lock.lock().await;
        let group = self.conductor.group_hosts(group_id, &i.uuid).await?;
        let here = group.get(&self.host).copied().unwrap_or(0);
        let policy = i.scheduler_hints.get("_group_policy").and_then(|v| v.as_str()).unwrap_or_default();
        let max = i.scheduler_hints.get("_group_max_server_per_host").and_then(|v| v.as_i64()).unwrap_or(1);
        match policy {
            "anti-affinity" if here as i64 >= max => {
                Err(ComputeError::Internal("Anti-affinity instance group policy was violated.".into()))
            }
            "affinity" if !group.is_empty() && here == 0 => {
                Err(ComputeError::Internal("Affinity instance group policy was violated.".into()))
            }
            _ => Ok(()),
        }
    }
}
