//! The resource ledger. A claim is a row per consumer (an instance, or a
//! migration holding the source host during a move) per host. Claims are
//! checked against the host's capacity inside the write transaction, so two
//! schedulers cannot overfill a host, and they go away with their consumer,
//! so nothing leaks.

use std::collections::HashMap;

use db::{AnyConnection, RowExt};

use super::Store;
use crate::error::{ComputeError, Result};
use crate::model::Usage;

/// Capacity left on a host for `usage`, with its allocation ratios.
pub struct Capacity {
    pub vcpus: f64,
    pub memory_mb: f64,
    pub disk_gb: f64,
}

impl Store {
    /// Everything claimed on each host, and by whom.
    pub async fn allocations(&self) -> Result<HashMap<String, Vec<(String, Usage)>>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM allocation")).await?;
        let mut out: HashMap<String, Vec<(String, Usage)>> = HashMap::new();
        for r in &rows {
            let usage = Usage { vcpus: r.int("vcpus")?, memory_mb: r.int("memory_mb")?, disk_gb: r.int("disk_gb")? };
            out.entry(r.str("host")?).or_default().push((r.str("consumer")?, usage));
        }
        Ok(out)
    }

    async fn used_on(&self, conn: &mut AnyConnection, host: &str) -> Result<Usage> {
        let rows = db::query(&self.db.sql("SELECT vcpus, memory_mb, disk_gb FROM allocation WHERE host = ?"))
            .bind(host.to_string())
            .fetch_all(conn)
            .await
            .map_err(db::DbError::from)?;
        let mut u = Usage::default();
        for r in &rows {
            u.vcpus += r.int("vcpus")?;
            u.memory_mb += r.int("memory_mb")?;
            u.disk_gb += r.int("disk_gb")?;
        }
        Ok(u)
    }

    /// Claims `usage` on `host` for `consumer` if it still fits `capacity`
    /// (what the host offers after reservations, with ratios); replaces any
    /// earlier claim of the same consumer, on any host: a consumer holds one
    /// claim, so a placement run again after a crash leaves one, not two.
    pub async fn claim(&self, consumer: &str, host: &str, usage: Usage, capacity: &Capacity) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db
            .q("DELETE FROM allocation WHERE consumer = ?")
            .bind(consumer.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        let used = self.used_on(w.conn(), host).await?;
        let fits = (used.vcpus + usage.vcpus) as f64 <= capacity.vcpus
            && (used.memory_mb + usage.memory_mb) as f64 <= capacity.memory_mb
            && (used.disk_gb + usage.disk_gb) as f64 <= capacity.disk_gb;
        if !fits {
            return Err(ComputeError::NoValidHost(format!("Host {host} no longer has room for {consumer}.")));
        }
        self.db
            .q("INSERT INTO allocation (consumer, host, vcpus, memory_mb, disk_gb, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(consumer.to_string())
            .bind(host.to_string())
            .bind(usage.vcpus)
            .bind(usage.memory_mb)
            .bind(usage.disk_gb)
            .bind(super::now())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    /// Drops a consumer's claims: on one host, or everywhere.
    pub async fn release(&self, consumer: &str, host: Option<&str>) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        match host {
            Some(h) => {
                self.db
                    .q("DELETE FROM allocation WHERE consumer = ? AND host = ?")
                    .bind(consumer.to_string())
                    .bind(h.to_string())
                    .execute(w.conn())
                    .await
            }
            None => {
                self.db
                    .q("DELETE FROM allocation WHERE consumer = ?")
                    .bind(consumer.to_string())
                    .execute(w.conn())
                    .await
            }
        }
        .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    /// Moves a consumer's claim on `host` to another consumer (a migration
    /// takes over the instance's claim on the source during a resize).
    pub async fn move_claim(&self, from: &str, to: &str, host: &str) -> Result<()> {
        self.write("UPDATE allocation SET consumer = ? WHERE consumer = ? AND host = ?", &[to, from, host]).await
    }

    /// A reverted move: the instance's claim on the destination goes and the
    /// migration's claim on the source returns to the instance — both or
    /// neither, and only once (a second run finds no migration claim).
    pub async fn revert_claims(&self, instance: &str, migration: &str, source: &str, dest: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let held = db::query(&self.db.sql("SELECT consumer FROM allocation WHERE consumer = ? AND host = ?"))
            .bind(migration.to_string())
            .bind(source.to_string())
            .fetch_optional(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if held.is_some() {
            self.db
                .q("DELETE FROM allocation WHERE consumer = ? AND host = ?")
                .bind(instance.to_string())
                .bind(dest.to_string())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
            self.db
                .q("UPDATE allocation SET consumer = ? WHERE consumer = ? AND host = ?")
                .bind(instance.to_string())
                .bind(migration.to_string())
                .bind(source.to_string())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }
}
