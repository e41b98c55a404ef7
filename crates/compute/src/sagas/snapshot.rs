//! Snapshotting a server (`createImage`, `createBackup`): the host uploads
//! the guest's disk into the image the API registered; a backup then keeps
//! only the newest `rotation` of its kind. A failed upload deletes the image.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::SnapshotArgs;
use reqwest::{Method, StatusCode};
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{failed, SagaEnv};

saga::steps! {
    pub enum SnapshotStep {
        /// The host uploads the disk into the image. Undo: the image goes.
        Upload = "upload",
        /// For a backup, the oldest backups beyond `rotation` go.
        RotateBackups = "rotate_backups",
        /// The server's task is done.
        Finish = "finish",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    pub backup_type: String,
    pub rotation: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotParams {
    pub instance_uuid: String,
    pub image_id: String,
    #[serde(default)]
    pub backup: Option<Backup>,
}

pub fn saga_id(image_id: &str) -> String {
    format!("snapshot-{image_id}")
}

pub struct Snapshot(pub Arc<SagaEnv>);

type Ctx = SagaContext<SnapshotParams>;

async fn delete_image(env: &SagaEnv, id: &str) -> Result<(), StepError> {
    let (status, body) =
        env.session.call("image", Method::DELETE, &format!("/v2/images/{id}"), None, None).await.map_err(failed)?;
    if status.is_success() || status == StatusCode::NOT_FOUND {
        Ok(())
    } else {
        Err(failed(compute_rpc::session::remote_error("image", status, &body)))
    }
}

/// Keeps the newest `keep` backups of this kind of the instance and deletes
/// the rest, as Nova's `_rotate_backups` does.
async fn rotate_backups(env: &SagaEnv, uuid: &str, b: &Backup) -> Result<(), StepError> {
    let mut url =
        reqwest::Url::parse("http://image/v2/images").map_err(|e| StepError::new("Internal", e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("image_type", "backup")
        .append_pair("backup_type", &b.backup_type)
        .append_pair("instance_uuid", uuid)
        .append_pair("sort_key", "created_at")
        .append_pair("sort_dir", "desc");
    let path = format!("/v2/images?{}", url.query().unwrap_or_default());
    let listed = env.session.expect("image", Method::GET, &path, None, None, StatusCode::OK).await.map_err(failed)?;
    for old in listed["images"].as_array().into_iter().flatten().skip(b.rotation) {
        if let Some(id) = old["id"].as_str() {
            delete_image(env, id).await?;
            tracing::info!(instance = %uuid, image = id, "rotated out an old backup");
        }
    }
    Ok(())
}

impl Saga for Snapshot {
    const NAME: &'static str = "snapshot_instance";
    type Params = SnapshotParams;
    type Step = SnapshotStep;

    fn forward_only(&self, step: SnapshotStep) -> bool {
        step != SnapshotStep::Upload
    }

    async fn action(&self, step: SnapshotStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.0;
        let uuid = &ctx.params.instance_uuid;
        match step {
            SnapshotStep::Upload => {
                let i = env.live(uuid).await?;
                let host = i.host.clone().ok_or_else(|| StepError::new("Conflict", "The instance has no host."))?;
                env.update(uuid, true, |x| x.task_state = Some("image_uploading".into())).await?;
                let args = SnapshotArgs { instance: i, image_id: ctx.params.image_id.clone() };
                env.on_host(&host, env.host(&host, ctx.request_id()).snapshot_guest(&args)).await?;
            }
            SnapshotStep::RotateBackups => {
                if let Some(b) = &ctx.params.backup {
                    rotate_backups(env, uuid, b).await?;
                }
            }
            SnapshotStep::Finish => {
                env.clear_task(uuid).await?;
                let e = ActionEvent {
                    uuid: uuid.clone(),
                    request_id: ctx.request_id.clone().unwrap_or_default(),
                    event: "compute_snapshot_instance".into(),
                    host: env.any(uuid).await?.host.unwrap_or_default(),
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
            }
        }
        Ok(Value::Null)
    }

    async fn undo(&self, step: SnapshotStep, ctx: &Ctx) -> Result<(), StepError> {
        match step {
            SnapshotStep::Upload => delete_image(&self.0, &ctx.params.image_id).await,
            SnapshotStep::RotateBackups | SnapshotStep::Finish => Ok(()),
        }
    }

    async fn unwound(&self, ctx: &Ctx, _error: &StepError) -> Result<(), StepError> {
        self.0.clear_task(&ctx.params.instance_uuid).await
    }
}
