//! Services (every compute-side process: `nova-compute` per host, the
//! scheduler, the conductor) with their heartbeats, and compute nodes (what
//! each host's hypervisor offers).

use std::time::Duration;

use db::{AnyRow, Row, RowExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use crate::error::{ComputeError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub id: i64,
    pub uuid: String,
    pub host: String,
    pub binary: String,
    pub topic: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub last_seen_up: Option<i64>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Service {
    /// Up: not forced down and heard from within `down_time`.
    pub fn is_up(&self, down_time: Duration) -> bool {
        let seen = self.last_seen_up.unwrap_or(self.created_at);
        !self.forced_down && common::time::now_micros() - seen <= down_time.as_micros() as i64
    }
}

pub use compute_rpc::model::ComputeNode;

fn service_from_row(r: &AnyRow) -> Result<Service> {
    Ok(Service {
        id: r.int("id")?,
        uuid: r.str("uuid")?,
        host: r.str("host")?,
        binary: r.str("binary_name")?,
        topic: r.str("topic")?,
        disabled: r.flag("disabled")?,
        disabled_reason: r.opt_str("disabled_reason")?,
        forced_down: r.flag("forced_down")?,
        last_seen_up: r.opt_int("last_seen_up")?,
        created_at: r.int("created_at")?,
        updated_at: r.opt_int("updated_at")?,
    })
}

fn float(r: &AnyRow, c: &str) -> Result<f64> {
    Ok(r.try_get::<f64, _>(c).map_err(db::DbError::from)?)
}

fn node_from_row(r: &AnyRow) -> Result<ComputeNode> {
    Ok(ComputeNode {
        id: r.int("id")?,
        uuid: r.str("uuid")?,
        host: r.str("host")?,
        hypervisor_hostname: r.str("hypervisor_hostname")?,
        hypervisor_type: r.str("hypervisor_type")?,
        hypervisor_version: r.int("hypervisor_version")?,
        host_ip: r.str("host_ip")?,
        vcpus: r.int("vcpus")?,
        memory_mb: r.int("memory_mb")?,
        local_gb: r.int("local_gb")?,
        reserved_host_memory_mb: r.int("reserved_host_memory_mb")?,
        reserved_host_disk_mb: r.int("reserved_host_disk_mb")?,
        reserved_host_cpus: r.int("reserved_host_cpus")?,
        cpu_allocation_ratio: float(r, "cpu_allocation_ratio")?,
        ram_allocation_ratio: float(r, "ram_allocation_ratio")?,
        disk_allocation_ratio: float(r, "disk_allocation_ratio")?,
        cpu_info: serde_json::from_str(&r.str("cpu_info")?).unwrap_or(Value::Null),
        supported_instances: serde_json::from_str(&r.str("supported_instances")?).unwrap_or_default(),
        failed_builds: r.int("failed_builds")?,
        stats: serde_json::from_str(&r.str("stats")?).unwrap_or(Value::Null),
        updated_at: r.int("updated_at")?,
    })
}

pub fn service_not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Service {id} could not be found."))
}

impl Store {
    /// Records a service the first time it starts; returns it either way.
    pub async fn register_service(&self, host: &str, binary: &str, topic: &str) -> Result<Service> {
        let mut w = self.db.begin_write().await?;
        let now = super::now();
        // Registered already (a restart): the row stays as it was.
        let insert = self
            .db
            .q("INSERT INTO service (uuid, host, binary_name, topic, disabled, forced_down, last_seen_up, report_count, created_at) VALUES (?, ?, ?, ?, 0, 0, ?, 0, ?)")
            .bind(common::id::new_uuid())
            .bind(host.to_string())
            .bind(binary.to_string())
            .bind(topic.to_string())
            .bind(now)
            .bind(now);
        self.db.insert_unless_duplicate(w.conn(), insert).await?;
        w.commit().await?;
        self.heartbeat(host, binary).await?;
        self.services()
            .await?
            .into_iter()
            .find(|s| s.host == host && s.binary == binary)
            .ok_or_else(|| service_not_found(host))
    }

    /// A service says it is alive.
    pub async fn heartbeat(&self, host: &str, binary: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db
            .q("UPDATE service SET last_seen_up = ?, report_count = report_count + 1 WHERE host = ? AND binary_name = ?")
            .bind(super::now())
            .bind(host.to_string())
            .bind(binary.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    pub async fn services(&self) -> Result<Vec<Service>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM service ORDER BY id")).await?;
        rows.iter().map(service_from_row).collect()
    }

    /// The service `binary` on `host`, if it ever registered.
    pub async fn service_on(&self, host: &str, binary: &str) -> Result<Option<Service>> {
        let q = self
            .db
            .q("SELECT * FROM service WHERE host = ? AND binary_name = ?")
            .bind(host.to_string())
            .bind(binary.to_string());
        let rows = self.db.fetch_all(q).await?;
        rows.first().map(service_from_row).transpose()
    }

    pub async fn update_service(
        &self,
        id: i64,
        disabled: Option<bool>,
        reason: Option<Option<String>>,
        forced_down: Option<bool>,
    ) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let now = super::now();
        if let Some(d) = disabled {
            self.db
                .q("UPDATE service SET disabled = ?, updated_at = ? WHERE id = ?")
                .bind(d as i64)
                .bind(now)
                .bind(id)
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        if let Some(r) = reason {
            self.db
                .q("UPDATE service SET disabled_reason = ?, updated_at = ? WHERE id = ?")
                .bind(r)
                .bind(now)
                .bind(id)
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        if let Some(f) = forced_down {
            self.db
                .q("UPDATE service SET forced_down = ?, updated_at = ? WHERE id = ?")
                .bind(f as i64)
                .bind(now)
                .bind(id)
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Removes a service and, for a compute service, its host's node.
    pub async fn delete_service(&self, s: &Service) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db.q("DELETE FROM service WHERE id = ?").bind(s.id).execute(w.conn()).await.map_err(db::DbError::from)?;
        if s.binary == "nova-compute" {
            self.db
                .q("DELETE FROM compute_node WHERE host = ?")
                .bind(s.host.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
            self.db
                .q("DELETE FROM aggregate_host WHERE host = ?")
                .bind(s.host.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Writes a host's report over the last one (or records the node).
    pub async fn report_compute_node(&self, n: &ComputeNode) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let now = super::now();
        let cpu_info = n.cpu_info.to_string();
        let supported = serde_json::to_string(&n.supported_instances).unwrap_or_else(|_| "[]".into());
        let updated = self
            .db
            .q("UPDATE compute_node SET hypervisor_hostname = ?, hypervisor_type = ?, hypervisor_version = ?, host_ip = ?, vcpus = ?, memory_mb = ?, local_gb = ?, reserved_host_memory_mb = ?, reserved_host_disk_mb = ?, reserved_host_cpus = ?, cpu_allocation_ratio = ?, ram_allocation_ratio = ?, disk_allocation_ratio = ?, cpu_info = ?, supported_instances = ?, stats = ?, updated_at = ? WHERE host = ?")
            .bind(n.hypervisor_hostname.clone())
            .bind(n.hypervisor_type.clone())
            .bind(n.hypervisor_version)
            .bind(n.host_ip.clone())
            .bind(n.vcpus)
            .bind(n.memory_mb)
            .bind(n.local_gb)
            .bind(n.reserved_host_memory_mb)
            .bind(n.reserved_host_disk_mb)
            .bind(n.reserved_host_cpus)
            .bind(n.cpu_allocation_ratio)
            .bind(n.ram_allocation_ratio)
            .bind(n.disk_allocation_ratio)
            .bind(cpu_info.clone())
            .bind(supported.clone())
            .bind(n.stats.to_string())
            .bind(now)
            .bind(n.host.clone())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?
            .rows_affected();
        if updated == 0 {
            self.db
                .q("INSERT INTO compute_node (uuid, host, hypervisor_hostname, hypervisor_type, hypervisor_version, host_ip, vcpus, memory_mb, local_gb, reserved_host_memory_mb, reserved_host_disk_mb, reserved_host_cpus, cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, cpu_info, supported_instances, stats, failed_builds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)")
                .bind(common::id::new_uuid())
                .bind(n.host.clone())
                .bind(n.hypervisor_hostname.clone())
                .bind(n.hypervisor_type.clone())
                .bind(n.hypervisor_version)
                .bind(n.host_ip.clone())
                .bind(n.vcpus)
                .bind(n.memory_mb)
                .bind(n.local_gb)
                .bind(n.reserved_host_memory_mb)
                .bind(n.reserved_host_disk_mb)
                .bind(n.reserved_host_cpus)
                .bind(n.cpu_allocation_ratio)
                .bind(n.ram_allocation_ratio)
                .bind(n.disk_allocation_ratio)
                .bind(cpu_info)
                .bind(supported)
                .bind(n.stats.to_string())
                .bind(now)
                .bind(now)
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn compute_nodes(&self) -> Result<Vec<ComputeNode>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM compute_node ORDER BY id")).await?;
        rows.iter().map(node_from_row).collect()
    }

    /// Counts a failed build against a host (BuildFailureWeigher), or clears
    /// the count after a success.
    pub async fn record_build_result(&self, host: &str, failed: bool) -> Result<()> {
        self.progress_writer().build_result(host, failed).await.map_err(|e| ComputeError::Internal(e.0))
    }
}

/// Counts a failed build on the host (the BuildFailureWeigher reads it), or
/// clears the count after a good one, inside the caller's transaction.
pub(super) async fn write_build_result(
    db: &db::Db,
    conn: &mut db::AnyConnection,
    host: &str,
    failed: bool,
) -> Result<(), db::DbError> {
    let sql = if failed {
        "UPDATE compute_node SET failed_builds = failed_builds + 1 WHERE host = ?"
    } else {
        "UPDATE compute_node SET failed_builds = 0 WHERE host = ? AND failed_builds > 0"
    };
    let sql = db.sql(sql).into_owned();
    db::query(&sql).bind(host.to_string()).execute(conn).await?;
    Ok(())
}
