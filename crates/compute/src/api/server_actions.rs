//! `POST /servers/{id}/action`: each action checks the server's state as
//! Nova does (409 when it cannot happen now), sets the task, records an
//! instance action and hands the work to the host or the conductor.

use api::request_id::RequestId;
use api::{Auth, BaseUrl, Microversion};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};

use super::servers::{check_lock, host_statuses, visible};
use super::views::ServerView;
use super::{admin_only, bad, json_body, only_missing, ComputeApi, State};
use compute_rpc::host::{ComputeHostClient, InstanceRef, PasswordArgs, RebootArgs};
use saga::Saga;

use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Instance};
use crate::sagas;
use crate::store::actions::NewAction;

/// Where an action may start from.
struct Allowed {
    vm: &'static [&'static str],
    /// Task states allowed besides none.
    tasks: &'static [&'static str],
}

const fn allowed(vm: &'static [&'static str]) -> Allowed {
    Allowed { vm, tasks: &[] }
}

fn check_state(i: &Instance, action: &str, a: &Allowed) -> Result<()> {
    if !a.vm.contains(&i.vm_state.as_str()) {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {}",
            i.uuid, i.vm_state
        )));
    }
    if let Some(t) = &i.task_state {
        if !a.tasks.contains(&t.as_str()) {
            return Err(ComputeError::Conflict(format!(
                "Cannot '{action}' instance {} while it is in task_state {t}",
                i.uuid
            )));
        }
    }
    Ok(())
}

pub(super) fn host_of(i: &Instance) -> Result<String> {
    i.host.clone().ok_or_else(|| ComputeError::Conflict(format!("Instance {} has no host yet.", i.uuid)))
}

/// Who asks, in which request: what every action needs.
struct Ctx<'a> {
    svc: &'a ComputeApi,
    auth: &'a Auth,
    request_id: &'a str,
}

impl Ctx<'_> {
    /// Sets the task (only if nothing else started meanwhile), records the
    /// action, and has `send` tell the instance's host.
    async fn to_host<F, Fut>(&self, i: &Instance, action: &str, task: Option<&str>, send: F) -> Result<()>
    where
        F: FnOnce(ComputeHostClient, String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), bus::BusError>>,
    {
        let host = host_of(i)?;
        start(self.svc, self.auth, i, action, task).await?;
        self.svc.store.start_action(&i.uuid, self.request_id, action, &i.project_id, &self.auth.user_id).await?;
        Ok(send(self.svc.host(&host, self.request_id), i.uuid.clone()).await?)
    }

    /// Records the action and the saga that carries it out, setting the
    /// task (only if nothing else started meanwhile) and `change`, in one
    /// transaction; the conductor runs the saga.
    async fn saga<S: Saga>(
        &self,
        i: &Instance,
        action: &str,
        task: Option<&str>,
        id: &str,
        params: &S::Params,
        change: impl FnOnce(&mut Instance),
    ) -> Result<()> {
        if !self.svc.store.sagas_for(&i.uuid).await?.is_empty() {
            return Err(ComputeError::Conflict(format!(
                "Cannot '{action}' instance {} while another operation on it is under way",
                i.uuid
            )));
        }
        let recorded = NewAction::new(&i.uuid, self.request_id, action, &i.project_id, &self.auth.user_id);
        let seen = i.task_state.clone();
        self.svc
            .start_saga::<S>(&i.uuid, id, params, &recorded, |x| {
                if x.task_state != seen {
                    return Err(ComputeError::Conflict(format!(
                        "Cannot '{action}' instance {} while it is in task_state {}",
                        x.uuid,
                        x.task_state.clone().unwrap_or_default()
                    )));
                }
                if let Some(t) = task {
                    x.task_state = Some(t.into());
                }
                change(x);
                Ok(())
            })
            .await?;
        Ok(())
    }
}

/// Sets the task state if the instance still has the one we checked.
async fn start(svc: &ComputeApi, _auth: &Auth, i: &Instance, action: &str, task: Option<&str>) -> Result<()> {
    let Some(task) = task else { return Ok(()) };
    let seen = i.task_state.clone();
    svc.store
        .update_instance(&i.uuid, |x| {
            if x.task_state != seen {
                return Err(ComputeError::Conflict(format!(
                    "Cannot '{action}' instance {} while it is in task_state {}",
                    x.uuid,
                    x.task_state.clone().unwrap_or_default()
                )));
            }
            x.task_state = Some(task.into());
            Ok(())
        })
        .await?;
    Ok(())
}

const ACTIVE: &str = vm_state::ACTIVE;
const STOPPED: &str = vm_state::STOPPED;
const PAUSED: &str = vm_state::PAUSED;
const SUSPENDED: &str = vm_state::SUSPENDED;
const RESCUED: &str = vm_state::RESCUED;
const RESIZED: &str = vm_state::RESIZED;
const SHELVED: &str = vm_state::SHELVED;
const OFFLOADED: &str = vm_state::SHELVED_OFFLOADED;
const ERROR: &str = vm_state::ERROR;

pub async fn action(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let obj = body.as_object().ok_or_else(|| bad("The action body must be a JSON object."))?;
    let (name, args) = match obj.iter().next() {
        Some((k, v)) if obj.len() == 1 => (k.clone(), v.clone()),
        _ => return Err(bad("There is either no action or more than one action in the body.")),
    };
    super::action_schemas::validate(&name, &args, v)?;
    let i = visible(&svc, &auth, &id).await?;
    let svc = &*svc;
    let ctx = Ctx { svc, auth: &auth, request_id: &request_id };
    let accepted = || Ok(StatusCode::ACCEPTED.into_response());
    // Actions a lock does not stop.
    if !matches!(
        name.as_str(),
        "lock"
            | "unlock"
            | "os-getConsoleOutput"
            | "os-resetState"
            | "createImage"
            | "os-getVNCConsole"
            | "os-getSPICEConsole"
            | "os-getSerialConsole"
            | "os-getRDPConsole"
    ) {
        check_lock(&auth, &i)?;
    }
    match name.as_str() {
        "os-start" => {
            check_state(&i, "start", &allowed(&[STOPPED]))?;
            ctx.to_host(&i, "start", Some("powering-on"), |h, uuid| async move {
                h.start_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "os-stop" => {
            check_state(&i, "stop", &allowed(&[ACTIVE, RESCUED, ERROR]))?;
            ctx.to_host(&i, "stop", Some("powering-off"), |h, uuid| async move {
                h.stop_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "reboot" => {
            let kind = args.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase);
            let hard = match kind.as_deref() {
                Some("HARD") => true,
                Some("SOFT") => false,
                _ => return Err(bad("Invalid input for field/attribute type. Value must be SOFT or HARD.")),
            };
            if hard {
                let a = Allowed {
                    vm: &[ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR],
                    tasks: &[
                        "rebooting",
                        "reboot_pending",
                        "reboot_started",
                        "rebooting_hard",
                        "reboot_pending_hard",
                        "reboot_started_hard",
                        "resuming",
                        "unpausing",
                        "pausing",
                        "suspending",
                    ],
                };
                check_state(&i, "reboot", &a)?;
            } else {
                check_state(&i, "reboot", &allowed(&[ACTIVE]))?;
            }
            let task = if hard { "rebooting_hard" } else { "rebooting" };
            let kind = if hard { "HARD" } else { "SOFT" };
            ctx.to_host(&i, "reboot", Some(task), |h, uuid| async move {
                h.reboot_instance(&RebootArgs { uuid, reboot_type: kind.into() }).await
            })
            .await?;
            accepted()
        }
        "pause" => {
            check_state(&i, "pause", &allowed(&[ACTIVE]))?;
            ctx.to_host(&i, "pause", Some("pausing"), |h, uuid| async move {
                h.pause_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "unpause" => {
            check_state(&i, "unpause", &allowed(&[PAUSED]))?;
            ctx.to_host(&i, "unpause", Some("unpausing"), |h, uuid| async move {
                h.unpause_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "suspend" => {
            check_state(&i, "suspend", &allowed(&[ACTIVE]))?;
            ctx.to_host(&i, "suspend", Some("suspending"), |h, uuid| async move {
                h.suspend_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "resume" => {
            check_state(&i, "resume", &allowed(&[SUSPENDED]))?;
            ctx.to_host(&i, "resume", Some("resuming"), |h, uuid| async move {
                h.resume_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "lock" => {
            let reason = match args.get("locked_reason") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if v.at_least(2, 73) && s.chars().count() <= 255 => Some(s.clone()),
                Some(other) => {
                    return Err(bad(format!("Invalid input for field/attribute locked_reason. Value: {other}.")))
                }
            };
            let by = if auth.is_admin() && auth.project_id.as_deref() != Some(i.project_id.as_str()) {
                "admin"
            } else {
                "owner"
            };
            svc.store.start_action(&i.uuid, &request_id, "lock", &i.project_id, &auth.user_id).await?;
            svc.store
                .update_instance(&i.uuid, |x| {
                    x.locked = true;
                    x.locked_by = Some(by.into());
                    x.locked_reason = reason.clone();
                    Ok(())
                })
                .await?;
            accepted()
        }
        "unlock" => {
            if i.locked_by.as_deref() == Some("admin") && !auth.is_admin() {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.".into(),
                ));
            }
            svc.store.start_action(&i.uuid, &request_id, "unlock", &i.project_id, &auth.user_id).await?;
            svc.store
                .update_instance(&i.uuid, |x| {
                    x.locked = false;
                    x.locked_by = None;
                    x.locked_reason = None;
                    Ok(())
                })
                .await?;
            accepted()
        }
        "rescue" => {
            check_state(&i, "rescue", &allowed(&[ACTIVE, STOPPED, ERROR]))?;
            let password = args.get("adminPass").and_then(Value::as_str).map(String::from).unwrap_or_else(new_password);
            if let Some(image) = args.get("rescue_image_ref").and_then(Value::as_str) {
                let (status, _) = svc
                    .session
                    .call("image", Method::GET, &format!("/v2/images/{image}"), None, Some(&auth.token))
                    .await?;
                if !status.is_success() {
                    return Err(bad(format!("Image {image} could not be found.")));
                }
            }
            let admin_password = Some(password.clone());
            ctx.to_host(&i, "rescue", Some("rescuing"), |h, uuid| async move {
                h.rescue_instance(&PasswordArgs { uuid, admin_password }).await
            })
            .await?;
            Ok(Json(json!({"adminPass": password})).into_response())
        }
        "unrescue" => {
            check_state(&i, "unrescue", &allowed(&[RESCUED]))?;
            ctx.to_host(&i, "unrescue", Some("unrescuing"), |h, uuid| async move {
                h.unrescue_instance(&InstanceRef { uuid }).await
            })
            .await?;
            accepted()
        }
        "rebuild" => rebuild(svc, &auth, v, &base, &i, &args, &request_id).await,
        "resize" => {
            check_state(&i, "resize", &allowed(&[ACTIVE, STOPPED]))?;
            let flavor_ref = match args.get("flavorRef") {
                Some(Value::String(s)) if !s.is_empty() => s.rsplit('/').next().unwrap_or(s).to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(bad("Invalid input for field/attribute resize. 'flavorRef' is a required property")),
            };
            let flavor = super::flavors::usable(svc, &auth, &flavor_ref)
                .await
                .map_err(|e| only_missing(e, || bad(format!("Flavor {flavor_ref} could not be found."))))?;
            if flavor.flavorid == i.flavor.flavorid {
                return Err(bad("When resizing, instances must change flavor!"));
            }
            if flavor.root_gb == 0 && i.flavor.root_gb > 0 {
                return Err(bad("Resize to zero disk flavor is not allowed."));
            }
            if flavor.root_gb < i.flavor.root_gb {
                return Err(bad("Resizing to a smaller disk flavor is not allowed."));
            }
            let project = i.project_id.clone();
            let (_, cores, ram) = super::servers::usage(svc, &project).await?;
            for (resource, used, delta) in
                [("cores", cores, flavor.vcpus - i.flavor.vcpus), ("ram", ram, flavor.memory_mb - i.flavor.memory_mb)]
            {
                let limit = super::servers::project_quota(svc, &project, resource).await?;
                if delta > 0 && limit >= 0 && used + delta > limit {
                    return Err(ComputeError::OverQuota(format!("Quota exceeded for {resource}: Requested {delta}, but already used {used} of {limit} {resource}")));
                }
            }
            let disk_config = match args.get("OS-DCF:diskConfig") {
                None => None,
                Some(Value::String(d)) if d == "AUTO" || d == "MANUAL" => Some(d.clone()),
                Some(other) => {
                    return Err(bad(format!("Invalid input for field/attribute OS-DCF:diskConfig. Value: {other}.")))
                }
            };
            let migration_uuid = common::id::new_uuid();
            let params = sagas::migrate::MigrateParams {
                instance_uuid: i.uuid.clone(),
                migration_uuid: migration_uuid.clone(),
                new_flavor: Some(flavor.clone()),
                host: None,
                allow_same_host: svc.config.allow_resize_to_same_host,
            };
            let id = sagas::migrate::saga_id(&migration_uuid);
            ctx.saga::<sagas::migrate::Migrate>(&i, "resize", Some("resize_prep"), &id, &params, |x| {
                x.new_flavor = Some(flavor.clone());
                if let Some(d) = &disk_config {
                    x.disk_config = d.clone();
                }
            })
            .await?;
            accepted()
        }
        "confirmResize" => {
            check_state(&i, "confirmResize", &allowed(&[RESIZED]))?;
            let m = svc.store.active_migration(&i.uuid).await?;
            let params = sagas::MoveRef { instance_uuid: i.uuid.clone(), migration_uuid: m.uuid.clone() };
            let id = sagas::confirm_resize::saga_id(&m.uuid);
            ctx.saga::<sagas::confirm_resize::ConfirmResize>(&i, "confirmResize", None, &id, &params, |_| {}).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "revertResize" => {
            check_state(&i, "revertResize", &allowed(&[RESIZED]))?;
            let m = svc.store.active_migration(&i.uuid).await?;
            let params = sagas::MoveRef { instance_uuid: i.uuid.clone(), migration_uuid: m.uuid.clone() };
            let id = sagas::revert_resize::saga_id(&m.uuid);
            ctx.saga::<sagas::revert_resize::RevertResize>(
                &i,
                "revertResize",
                Some("resize_reverting"),
                &id,
                &params,
                |_| {},
            )
            .await?;
            accepted()
        }
        "migrate" => {
            admin_only(&auth, "os_compute_api:os-migrate-server:migrate")?;
            check_state(&i, "migrate", &allowed(&[ACTIVE, STOPPED]))?;
            let host =
                if v.at_least(2, 56) { args.get("host").and_then(Value::as_str).map(String::from) } else { None };
            if let Some(h) = &host {
                check_host(svc, h).await?;
            }
            let migration_uuid = common::id::new_uuid();
            let params = sagas::migrate::MigrateParams {
                instance_uuid: i.uuid.clone(),
                migration_uuid: migration_uuid.clone(),
                new_flavor: None,
                host,
                allow_same_host: false,
            };
            let id = sagas::migrate::saga_id(&migration_uuid);
            ctx.saga::<sagas::migrate::Migrate>(&i, "migrate", Some("resize_prep"), &id, &params, |_| {}).await?;
            accepted()
        }
        "os-migrateLive" => {
            admin_only(&auth, "os_compute_api:os-migrate-server:migrate_live")?;
            check_state(&i, "os-migrateLive", &allowed(&[ACTIVE, PAUSED]))?;
            let host = args.get("host").and_then(Value::as_str).filter(|h| !h.is_empty()).map(String::from);
            match args.get("block_migration") {
                Some(Value::Bool(_)) => {}
                Some(Value::String(s)) if v.at_least(2, 25) && s == "auto" => {}
                Some(Value::String(s))
                    if !v.at_least(2, 25) && ["true", "false", "True", "False"].contains(&s.as_str()) => {}
                other => {
                    return Err(bad(format!(
                        "Invalid input for field/attribute block_migration. Value: {}.",
                        other.cloned().unwrap_or(Value::Null)
                    )))
                }
            }
            if let Some(h) = &host {
                check_host(svc, h).await?;
                if Some(h) == i.host.as_ref() {
                    return Err(bad(format!(
                        "The supplied hypervisor type of is invalid. Cannot live migrate to the same host {h}"
                    )));
                }
            }
            let force = v.at_least(2, 30) && !v.at_least(2, 68) && args.get("force") == Some(&Value::Bool(true));
            let migration_uuid = common::id::new_uuid();
            let params = sagas::live_migrate::LiveMigrateParams {
                instance_uuid: i.uuid.clone(),
                migration_uuid: migration_uuid.clone(),
                host,
                force,
            };
            let id = sagas::live_migrate::saga_id(&migration_uuid);
            ctx.saga::<sagas::live_migrate::LiveMigrate>(&i, "live-migration", Some("migrating"), &id, &params, |_| {})
                .await?;
            accepted()
        }
        "shelve" => {
            check_state(&i, "shelve", &allowed(&[ACTIVE, STOPPED, PAUSED, SUSPENDED]))?;
            let image =
                snapshot_image(svc, &auth, &i, &format!("{}-shelved", i.display_name), &json!({}), "snapshot").await?;
            let params =
                sagas::shelve::ShelveParams { instance_uuid: i.uuid.clone(), image_id: Some(image), offload: true };
            let id = sagas::shelve::saga_id(&i.uuid, &sagas::nonce());
            ctx.saga::<sagas::shelve::Shelve>(&i, "shelve", Some("shelving"), &id, &params, |_| {}).await?;
            accepted()
        }
        "shelveOffload" => {
            check_state(&i, "shelveOffload", &allowed(&[SHELVED]))?;
            let params = sagas::shelve::ShelveParams { instance_uuid: i.uuid.clone(), image_id: None, offload: true };
            let id = sagas::shelve::saga_id(&i.uuid, &sagas::nonce());
            ctx.saga::<sagas::shelve::Shelve>(&i, "shelveOffload", Some("shelving_offloading"), &id, &params, |_| {})
                .await?;
            accepted()
        }
        "unshelve" => {
            check_state(&i, "unshelve", &allowed(&[SHELVED, OFFLOADED]))?;
            let zone = match &args {
                Value::Object(m) if v.at_least(2, 77) => match m.get("availability_zone") {
                    Some(Value::String(z)) => Some(z.clone()),
                    None | Some(Value::Null) => None,
                    Some(other) => {
                        return Err(bad(format!(
                            "Invalid input for field/attribute availability_zone. Value: {other}."
                        )))
                    }
                },
                Value::Null | Value::Object(_) => None,
                other => return Err(bad(format!("Invalid input for field/attribute unshelve. Value: {other}."))),
            };
            // 2.91: an admin may name the host; only an offloaded server moves.
            let host = match args.get("host") {
                Some(Value::String(h)) if v.at_least(2, 91) => {
                    admin_only(&auth, "os_compute_api:os-shelve:unshelve_to_host")?;
                    if i.vm_state != OFFLOADED {
                        return Err(ComputeError::Conflict(format!(
                            "The server status must be SHELVED_OFFLOADED. Current status: {}",
                            i.status()
                        )));
                    }
                    check_host(svc, h).await?;
                    Some(h.clone())
                }
                None => None,
                Some(other) => return Err(bad(format!("Invalid input for field/attribute host. Value: {other}."))),
            };
            let params =
                sagas::unshelve::UnshelveParams { instance_uuid: i.uuid.clone(), availability_zone: zone, host };
            let id = sagas::unshelve::saga_id(&i.uuid, &sagas::nonce());
            ctx.saga::<sagas::unshelve::Unshelve>(&i, "unshelve", Some("unshelving"), &id, &params, |_| {}).await?;
            accepted()
        }
        "createImage" | "createBackup" => {
            let is_backup = name == "createBackup";
            check_state(&i, &name, &allowed(&[ACTIVE, STOPPED, PAUSED, SUSPENDED]))?;
            let image_name = args
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.trim().is_empty() && n.len() <= 255)
                .ok_or_else(|| {
                    bad(format!("Invalid input for field/attribute {name}. 'name' is a required property"))
                })?;
            let mut metadata = match args.get("metadata") {
                None => json!({}),
                Some(_) => json!(super::metadata::parse_metadata(&args, "metadata")?),
            };
            let mut backup = None;
            if is_backup {
                let Some(backup_type) = args.get("backup_type").and_then(Value::as_str) else {
                    return Err(bad(
                        "Invalid input for field/attribute createBackup. 'backup_type' is a required property",
                    ));
                };
                let rotation = args
                    .get("rotation")
                    .and_then(|r| r.as_i64().or_else(|| r.as_str().and_then(|s| s.parse::<i64>().ok())))
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("Invalid input for field/attribute rotation."))?;
                metadata["backup_type"] = json!(backup_type);
                backup =
                    Some(sagas::snapshot::Backup { backup_type: backup_type.to_string(), rotation: rotation as usize });
            }
            let image =
                snapshot_image(svc, &auth, &i, image_name, &metadata, if is_backup { "backup" } else { "snapshot" })
                    .await?;
            host_of(&i)?;
            let params =
                sagas::snapshot::SnapshotParams { instance_uuid: i.uuid.clone(), image_id: image.clone(), backup };
            let id = sagas::snapshot::saga_id(&image);
            ctx.saga::<sagas::snapshot::Snapshot>(&i, &name, Some("image_snapshot"), &id, &params, |_| {}).await?;
            let location = format!("{}/v2.1/images/{image}", base.0);
            if v.at_least(2, 45) {
                return Ok((StatusCode::ACCEPTED, Json(json!({"image_id": image}))).into_response());
            }
            Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response())
        }
        "os-getConsoleOutput" => {
            let length = match args.get("length") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => Some(
                    s.parse::<i64>()
                        .map_err(|_| bad(format!("Invalid input for field/attribute length. Value: {s}.")))?,
                ),
                Some(other) => return Err(bad(format!("Invalid input for field/attribute length. Value: {other}."))),
            };
            if length.is_some_and(|l| l < -1) {
                return Err(bad("Invalid input for field/attribute length."));
            }
            if i.vm_state == vm_state::BUILDING || i.host.is_none() {
                return Err(ComputeError::Conflict(format!("Instance {} is not ready", i.uuid)));
            }
            let host = host_of(&i)?;
            let out = svc.host(&host, &request_id).get_console_output(&InstanceRef { uuid: i.uuid.clone() }).await?;
            let text = out.as_str();
            let text = match length {
                Some(n) if n >= 0 => {
                    let lines: Vec<&str> = text.lines().collect();
                    lines[lines.len().saturating_sub(n as usize)..].join("\n")
                }
                _ => text.to_string(),
            };
            Ok(Json(json!({"output": text})).into_response())
        }
        "os-getVNCConsole" if !v.at_least(2, 6) => {
            let kind = args.get("type").and_then(Value::as_str).unwrap_or_default();
            if kind != "novnc" {
                return Err(bad(format!("Unavailable console type {kind}.")));
            }
            let url = super::consoles::novnc_url(svc, &i, &request_id).await?;
            Ok(Json(json!({"console": {"type": kind, "url": url}})).into_response())
        }
        "os-getSPICEConsole" | "os-getSerialConsole" | "os-getRDPConsole" if !v.at_least(2, 6) => {
            let kind = args.get("type").and_then(Value::as_str).unwrap_or_default();
            Err(bad(format!("Unavailable console type {kind}.")))
        }
        "os-resetState" => {
            admin_only(&auth, "os_compute_api:os-admin-actions:reset_state")?;
            let state = match args.get("state").and_then(Value::as_str) {
                Some("active") => ACTIVE,
                Some("error") => ERROR,
                _ => return Err(bad("Invalid input for field/attribute state. Value must be 'active' or 'error'.")),
            };
            svc.store
                .update_instance(&i.uuid, |x| {
                    x.vm_state = state.into();
                    x.task_state = None;
                    Ok(())
                })
                .await?;
            accepted()
        }
        "injectNetworkInfo" => {
            admin_only(&auth, "os_compute_api:os-admin-actions:inject_network_info")?;
            let host = host_of(&i)?;
            svc.host(&host, &request_id).inject_network_info(&InstanceRef { uuid: i.uuid.clone() }).await?;
            accepted()
        }
        "addFloatingIp" | "removeFloatingIp" if !v.at_least(2, 44) => {
            super::proxies::floating_ip_action(svc, &auth, &i, name == "addFloatingIp", &args).await?;
            accepted()
        }
        "addSecurityGroup" | "removeSecurityGroup" => {
            security_group_action(svc, &auth, &i, &name, &args, &request_id).await
        }
        "changePassword" => Err(ComputeError::Conflict(
            "Setting the admin password is not supported by this cloud's virt driver.".into(),
        )),
        "forceDelete" | "restore" => Err(ComputeError::Conflict(format!(
            "Cannot '{name}' instance {} while it is in vm_state {}",
            i.uuid, i.vm_state
        ))),
        other => Err(bad(format!("There is no such action: {other}"))),
    }
}

fn new_password() -> String {
    rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(12).map(char::from).collect()
}

async fn check_host(svc: &ComputeApi, host: &str) -> Result<()> {
    if svc.store.compute_nodes().await?.iter().any(|n| n.host == host) {
        Ok(())
    } else {
        Err(bad(format!("Compute host {host} could not be found.")))
    }
}

/// Registers the image a snapshot or shelve will fill, as the user.
async fn snapshot_image(
    svc: &ComputeApi,
    auth: &Auth,
    i: &Instance,
    name: &str,
    metadata: &Value,
    kind: &str,
) -> Result<String> {
    let mut body = json!({
        "name": name,
        "disk_format": i.image_meta.get("disk_format").cloned().unwrap_or(json!("raw")),
        "container_format": "bare",
        "visibility": "private",
        "instance_uuid": i.uuid,
        "image_type": kind,
        "base_image_ref": i.image_ref,
        "owner_id": i.project_id,
        "user_id": auth.user_id,
    });
    if let (Some(b), Some(m)) = (body.as_object_mut(), metadata.as_object()) {
        for (k, v) in m {
            b.insert(k.clone(), Value::String(v.as_str().map(String::from).unwrap_or_else(|| v.to_string())));
        }
    }
    let created = svc
        .session
        .expect("image", Method::POST, "/v2/images", Some(&body), Some(&auth.token), StatusCode::CREATED)
        .await?;
    created["id"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| ComputeError::Upstream("the image service returned no image id".into()))
}

async fn rebuild(
    svc: &ComputeApi,
    auth: &Auth,
    v: Microversion,
    base: &BaseUrl,
    i: &Instance,
    args: &Value,
    request_id: &str,
) -> Result<Response> {
    check_state(i, "rebuild", &allowed(&[ACTIVE, STOPPED, ERROR]))?;
    let m = args.as_object().ok_or_else(|| bad("Invalid input for field/attribute rebuild."))?;
    let image_ref = m
        .get("imageRef")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("Invalid input for field/attribute rebuild. 'imageRef' is a required property"))?;
    let image_id = image_ref.rsplit('/').next().unwrap_or(image_ref).to_string();
    let (status, image) =
        svc.session.call("image", Method::GET, &format!("/v2/images/{image_id}"), None, Some(&auth.token)).await?;
    if !status.is_success() {
        return Err(bad(format!("Image {image_id} could not be found.")));
    }
    if image["status"] != "active" {
        return Err(bad(format!("Image {image_id} is not active.")));
    }
    let name = match m.get("name") {
        Some(Value::String(n)) if !n.is_empty() && n.len() <= 255 && n.trim() == n => Some(n.clone()),
        None => None,
        Some(other) => return Err(bad(format!("Invalid input for field/attribute name. Value: {other}."))),
    };
    let metadata = match m.get("metadata") {
        Some(Value::Object(o)) => Some(
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
        None => None,
        Some(other) => return Err(bad(format!("Invalid input for field/attribute metadata. Value: {other}."))),
    };
    let password = m.get("adminPass").and_then(Value::as_str).map(String::from).unwrap_or_else(new_password);
    let key_name = if v.at_least(2, 54) { m.get("key_name").cloned() } else { None };
    let key_data = match &key_name {
        Some(Value::String(k)) => Some(Some(
            svc.store
                .keypair(&auth.user_id, k)
                .await
                .map_err(|e| only_missing(e, || bad("Invalid key_name provided.")))?
                .public_key,
        )),
        Some(Value::Null) => Some(None),
        _ => None,
    };
    let description = if v.at_least(2, 19) { m.get("description").cloned() } else { None };
    let user_data = if v.at_least(2, 57) { m.get("user_data").cloned() } else { None };
    let mut meta = i.image_meta.clone();
    if let Some(obj) = image.as_object() {
        let props: serde_json::Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| {
                ![
                    "id",
                    "name",
                    "status",
                    "checksum",
                    "size",
                    "virtual_size",
                    "min_ram",
                    "min_disk",
                    "disk_format",
                    "container_format",
                    "owner",
                    "created_at",
                    "updated_at",
                    "visibility",
                    "protected",
                    "tags",
                    "self",
                    "file",
                    "schema",
                    "os_hidden",
                    "os_hash_algo",
                    "os_hash_value",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for k in ["id", "name", "disk_format", "container_format", "min_ram", "min_disk", "size"] {
            if let Some(v) = obj.get(k) {
                meta.insert(k.into(), v.clone());
            }
        }
        meta.insert("properties".into(), Value::Object(props));
    }
    let seen = i.task_state.clone();
    let updated = svc
        .store
        .update_instance(&i.uuid, |x| {
            if x.task_state != seen {
                return Err(ComputeError::Conflict(format!(
                    "Cannot 'rebuild' instance {} while it is in task_state {:?}",
                    x.uuid, x.task_state
                )));
            }
            x.task_state = Some("rebuilding".into());
            x.image_ref = image_id.clone();
            x.image_meta = meta.clone();
            if let Some(n) = &name {
                x.display_name = n.clone();
            }
            if let Some(md) = &metadata {
                x.metadata = md.clone();
            }
            if let Some(Value::String(ip)) = m.get("accessIPv4") {
                x.access_ip_v4 = Some(ip.clone());
            }
            if let Some(Value::String(ip)) = m.get("accessIPv6") {
                x.access_ip_v6 = Some(ip.clone());
            }
            if let Some(Value::String(d)) = m.get("OS-DCF:diskConfig") {
                x.disk_config = d.clone();
            }
            if let (Some(k), Some(d)) = (&key_name, &key_data) {
                x.key_name = k.as_str().map(String::from);
                x.key_data = d.clone();
            }
            if let Some(d) = &description {
                x.display_description = d.as_str().map(String::from);
            }
            if let Some(u) = &user_data {
                x.user_data = u.as_str().map(String::from);
            }
            Ok(())
        })
        .await?;
    svc.store.start_action(&i.uuid, request_id, "rebuild", &i.project_id, &auth.user_id).await?;
    let host = host_of(i)?;
    let args = PasswordArgs { uuid: i.uuid.clone(), admin_password: Some(password.clone()) };
    svc.host(&host, request_id).rebuild_instance(&args).await?;
    let statuses = host_statuses(svc).await?;
    let view = ServerView { base, v, admin: auth.is_admin(), host_status: &statuses };
    let mut server = view.after_change(&updated, true);
    server["adminPass"] = json!(password);
    Ok((StatusCode::ACCEPTED, Json(json!({"server": server}))).into_response())
}

/// Adds or removes a security group on every port of the server.
async fn security_group_action(
    svc: &ComputeApi,
    auth: &Auth,
    i: &Instance,
    action: &str,
    args: &Value,
    request_id: &str,
) -> Result<Response> {
    let name = args
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad(format!("Invalid input for field/attribute {action}. 'name' is a required property")))?;
    let (_, found) = svc
        .session
        .call("network", Method::GET, &format!("/v2.0/security-groups?name={name}"), None, Some(&auth.token))
        .await?;
    let group = found["security_groups"].as_array().and_then(|a| a.first()).cloned();
    let group = match group {
        Some(g) => g,
        None => {
            let (status, g) = svc
                .session
                .call("network", Method::GET, &format!("/v2.0/security-groups/{name}"), None, Some(&auth.token))
                .await?;
            if !status.is_success() {
                return Err(ComputeError::NotFound(format!("Security group {name} not found.")));
            }
            g["security_group"].clone()
        }
    };
    let group_id = group["id"].as_str().unwrap_or_default().to_string();
    let group_name = group["name"].as_str().unwrap_or(name).to_string();
    let add = action == "addSecurityGroup";
    if i.network_info.is_empty() {
        return Err(bad(format!("Instance {} has no network interfaces to apply a security group to.", i.uuid)));
    }
    for vif in &i.network_info {
        let p = svc
            .session
            .expect("network", Method::GET, &format!("/v2.0/ports/{}", vif.port_id), None, None, StatusCode::OK)
            .await?;
        let mut groups: Vec<String> = p["port"]["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(String::from))
            .collect();
        if add {
            if groups.contains(&group_id) {
                return Err(bad(format!(
                    "Security group {group_name} is already associated with the instance {}",
                    i.uuid
                )));
            }
            groups.push(group_id.clone());
        } else {
            if !groups.contains(&group_id) {
                return Err(bad(format!("Security group {group_name} not associated with the instance {}", i.uuid)));
            }
            groups.retain(|g| *g != group_id);
        }
        let body = json!({"port": {"security_groups": groups}});
        svc.session
            .expect("network", Method::PUT, &format!("/v2.0/ports/{}", vif.port_id), Some(&body), None, StatusCode::OK)
            .await?;
    }
    svc.store
        .update_instance(&i.uuid, |x| {
            if add {
                if !x.security_groups.contains(&group_name) {
                    x.security_groups.push(group_name.clone());
                }
            } else {
                x.security_groups.retain(|g| *g != group_name);
            }
            Ok(())
        })
        .await?;
    let _ = request_id;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The events the network (and block storage) services may send, as Nova's
/// schema lists them.
const EXTERNAL_EVENTS: &[&str] = &[
    "network-changed",
    "network-vif-plugged",
    "network-vif-unplugged",
    "network-vif-deleted",
    "volume-extended",
    "power-update",
    "accelerator-request-bound",
    "volume-reimaged",
];

/// One event of `os-server-external-events`, checked against Nova's schema.
fn external_event(e: &Value, n: usize) -> Result<serde_json::Map<String, Value>> {
    let field = |f: &str| format!("Invalid input for field/attribute events[{n}].{f}.");
    let Value::Object(m) = e else {
        return Err(bad(format!(
            "Invalid input for field/attribute events[{n}]. Value: {e}. {e} is not of type 'object'"
        )));
    };
    if let Some(k) = m.keys().find(|k| !["server_uuid", "name", "status", "tag"].contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute events[{n}]. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    match m.get("server_uuid") {
        Some(Value::String(u)) if common::id::is_uuid_like(u) => {}
        Some(other) => return Err(bad(format!("{} Value: {other}. It is not a uuid.", field("server_uuid")))),
        None => return Err(bad(format!("{} 'server_uuid' is a required property", field("server_uuid")))),
    }
    match m.get("name") {
        Some(Value::String(name)) if EXTERNAL_EVENTS.contains(&name.as_str()) => {}
        Some(other) => {
            return Err(bad(format!("{} Value: {other}. It is not one of the known events.", field("name"))))
        }
        None => return Err(bad(format!("{} 'name' is a required property", field("name")))),
    }
    match m.get("status") {
        None => {}
        Some(Value::String(s)) if ["failed", "completed", "in-progress"].contains(&s.as_str()) => {}
        Some(other) => return Err(bad(format!("{} Value: {other}.", field("status")))),
    }
    match m.get("tag") {
        None => {}
        Some(Value::String(t)) if t.chars().count() <= 255 => {}
        Some(other) => return Err(bad(format!("{} Value: {other}.", field("tag")))),
    }
    Ok(m.clone())
}

/// `POST /os-server-external-events`: the network service says a port is
/// plugged or changed. Hosts wait on port status themselves, so the events
/// are acknowledged for each known server: 200 when every server is known,
/// 207 when some are not, 404 when none is.
pub async fn external_events(svc: State, auth: Auth, body: axum::body::Bytes) -> Result<Response> {
    admin_only(&auth, "os_compute_api:os-server-external-events:create")?;
    let body = json_body(&body)?;
    let events = match body.get("events") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        Some(Value::Array(_)) => return Err(bad("Invalid input for field/attribute events. [] should be non-empty")),
        Some(other) => {
            return Err(bad(format!("Invalid input for field/attribute events. Value: {other}. It is not a list.")))
        }
        None => return Err(bad("Invalid input for field/attribute events. 'events' is a required property")),
    };
    let events = events.iter().enumerate().map(|(n, e)| external_event(e, n)).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    let mut known_count = 0;
    for mut e in events {
        let uuid = e.get("server_uuid").and_then(Value::as_str).unwrap_or_default().to_string();
        let known = svc.store.instance(&uuid).await.is_ok();
        e.insert("code".into(), json!(if known { 200 } else { 404 }));
        e.insert("status".into(), json!(if known { "completed" } else { "failed" }));
        known_count += usize::from(known);
        out.push(Value::Object(e));
    }
    let status = match known_count {
        0 => StatusCode::NOT_FOUND,
        n if n == out.len() => StatusCode::OK,
        _ => StatusCode::MULTI_STATUS,
    };
    Ok((status, Json(json!({"events": out}))).into_response())
}
