//! Instances, stored as records whose attributes are the [`Instance`].
//! Deleted instances stay, marked deleted (Nova's soft delete), so their
//! actions can still be read.

use db::records::{Kind, Record};
use db::RowExt;
use saga::SagaRecord;

use super::actions::NewAction;
use serde_json::Value;

use super::Store;
use crate::error::{ComputeError, Result};
use crate::model::Instance;

pub const INSTANCE: Kind =
    Kind { table: "instance", name: "instance", not_found: "InstanceNotFound", keys: &["user_id", "host", "deleted"] };

fn to_record(i: &Instance) -> Record {
    let attrs = match serde_json::to_value(i) {
        Ok(Value::Object(m)) => m,
        _ => Default::default(),
    };
    let mut r = Record::new(i.uuid.clone(), i.project_id.clone(), attrs);
    r.created_at = i.created_at;
    r.updated_at = i.updated_at;
    r
}

fn from_record(r: Record) -> Result<Instance> {
    let mut i: Instance = serde_json::from_value(Value::Object(r.attrs))
        .map_err(|e| ComputeError::Internal(format!("instance {} is unreadable: {e}", r.id)))?;
    i.uuid = r.id;
    i.created_at = r.created_at;
    i.updated_at = r.updated_at;
    Ok(i)
}

pub fn not_found(uuid: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance {uuid} could not be found."))
}

impl Store {
    /// Records new instances (one request's, all or none) with the sagas
    /// that build them and the actions the request started: an instance
    /// never exists without its build.
    pub async fn create_instances(
        &self,
        instances: &[Instance],
        sagas: &[SagaRecord],
        actions: &[NewAction],
    ) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for i in instances {
            self.db.insert_record(w.conn(), &INSTANCE, &to_record(i)).await?;
        }
        for s in sagas {
            self.insert_saga(w.conn(), s).await?;
        }
        for a in actions {
            self.insert_action(w.conn(), a).await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// The instance, deleted ones included.
    pub async fn instance_any(&self, uuid: &str) -> Result<Option<Instance>> {
        self.db.find_record(&INSTANCE, uuid).await?.map(from_record).transpose()
    }

    /// The instance unless deleted.
    pub async fn instance(&self, uuid: &str) -> Result<Instance> {
        match self.instance_any(uuid).await? {
            Some(i) if !i.deleted => Ok(i),
            _ => Err(not_found(uuid)),
        }
    }

    /// Reads, changes and writes one instance under the writer lock, so
    /// concurrent changes do not overwrite each other.
    pub async fn update_instance<F>(&self, uuid: &str, change: F) -> Result<Instance>
    where
        F: FnOnce(&mut Instance) -> Result<()>,
    {
        self.change_instance(uuid, change, None).await
    }

    /// Changes one instance and records the saga that carries the change
    /// out, in one transaction: a task state set is never left without the
    /// workflow that will clear it.
    pub async fn update_instance_with_saga<F>(
        &self,
        uuid: &str,
        change: F,
        saga: &SagaRecord,
        action: &NewAction,
    ) -> Result<Instance>
    where
        F: FnOnce(&mut Instance) -> Result<()>,
    {
        self.change_instance(uuid, change, Some((saga, action))).await
    }

    async fn change_instance<F>(
        &self,
        uuid: &str,
        change: F,
        saga: Option<(&SagaRecord, &NewAction)>,
    ) -> Result<Instance>
    where
        F: FnOnce(&mut Instance) -> Result<()>,
    {
        let mut w = self.db.begin_write().await?;
        let r = self.db.find_record_in(w.conn(), &INSTANCE, uuid).await?.ok_or_else(|| not_found(uuid))?;
        let mut i = from_record(r)?;
        change(&mut i)?;
        i.updated_at = super::now().max(i.updated_at + 1);
        self.db.update_record(w.conn(), &INSTANCE, &to_record(&i)).await?;
        if let Some((s, a)) = saga {
            self.insert_saga(w.conn(), s).await?;
            self.insert_action(w.conn(), a).await?;
        }
        w.commit().await?;
        Ok(i)
    }

    /// The end of a delete, in one transaction: the instance is marked
    /// deleted; its claims and its moves' claims leave the ledger (moves
    /// still under way end in error); it leaves its server group; its console
    /// tokens go.
    pub async fn forget_instance(&self, uuid: &str) -> Result<Instance> {
        let mut w = self.db.begin_write().await?;
        let r = self.db.find_record_in(w.conn(), &INSTANCE, uuid).await?.ok_or_else(|| not_found(uuid))?;
        let mut i = from_record(r)?;
        let now = super::now();
        i.vm_state = crate::model::vm_state::DELETED.into();
        i.task_state = None;
        i.power_state = 0;
        i.deleted = true;
        i.deleted_at.get_or_insert(now);
        i.terminated_at.get_or_insert(now);
        i.network_info.clear();
        i.updated_at = now.max(i.updated_at + 1);
        self.db.update_record(w.conn(), &INSTANCE, &to_record(&i)).await?;
        let release = "DELETE FROM allocation WHERE consumer = ? OR consumer IN (SELECT uuid FROM migration WHERE instance_uuid = ?)";
        self.db
            .q(release)
            .bind(uuid.to_string())
            .bind(uuid.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        for sql in [
            "UPDATE migration SET status = 'error' WHERE instance_uuid = ? AND status NOT IN ('confirmed', 'reverted', 'error', 'completed', 'failed')",
            "DELETE FROM server_group_member WHERE instance_uuid = ?",
            "DELETE FROM console_auth_token WHERE instance_uuid = ?",
        ] {
            self.db.q(sql).bind(uuid.to_string()).execute(w.conn()).await.map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(i)
    }

    /// Instances of a project (or all), deleted ones included.
    pub async fn instances(&self, project_id: Option<&str>) -> Result<Vec<Instance>> {
        let by = project_id.map(|p| ("project_id", p));
        self.db.list_records(&INSTANCE, by).await?.into_iter().map(from_record).collect()
    }

    /// A project's live instances: how many, and the vCPUs and RAM their
    /// flavors take (for quotas). Reads only the flavor of each.
    pub async fn project_usage(&self, project_id: &str) -> Result<(i64, i64, i64)> {
        #[derive(serde::Deserialize)]
        struct Sized {
            flavor: SizeOf,
        }
        #[derive(serde::Deserialize)]
        struct SizeOf {
            vcpus: i64,
            memory_mb: i64,
        }
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT attrs FROM instance WHERE project_id = ? AND deleted = 'false'")
                    .bind(project_id.to_string()),
            )
            .await?;
        let mut usage = (0, 0, 0);
        for r in &rows {
            let s: Sized = serde_json::from_str(&r.str("attrs")?)
                .map_err(|e| ComputeError::Internal(format!("an instance of {project_id} is unreadable: {e}")))?;
            usage = (usage.0 + 1, usage.1 + s.flavor.vcpus, usage.2 + s.flavor.memory_mb);
        }
        Ok(usage)
    }

    /// Live instances placed on `host`.
    pub async fn instances_on_host(&self, host: &str) -> Result<Vec<Instance>> {
        let all = self.db.list_records(&INSTANCE, Some(("host", host))).await?;
        Ok(all.into_iter().map(from_record).collect::<Result<Vec<_>>>()?.into_iter().filter(|i| !i.deleted).collect())
    }
}
