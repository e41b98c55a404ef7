//! Flavors, their extra specs and, for private flavors, the projects that may
//! use them.

use std::collections::BTreeMap;

use db::{AnyRow, Row, RowExt};

use super::Store;
use crate::error::{ComputeError, Result};
use crate::model::Flavor;

fn flavor_from_row(r: &AnyRow) -> Result<Flavor> {
    Ok(Flavor {
        flavorid: r.str("flavorid")?,
        name: r.str("name")?,
        memory_mb: r.int("memory_mb")?,
        vcpus: r.int("vcpus")?,
        root_gb: r.int("root_gb")?,
        ephemeral_gb: r.int("ephemeral_gb")?,
        swap: r.int("swap")?,
        rxtx_factor: r.try_get::<f64, _>("rxtx_factor").map_err(db::DbError::from)?,
        is_public: r.flag("is_public")?,
        disabled: r.flag("disabled")?,
        description: r.opt_str("description")?,
        internal_id: r.int("internal_id")?,
        extra_specs: BTreeMap::new(),
    })
}

pub fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Flavor {id} could not be found."))
}

impl Store {
    pub async fn create_flavor(&self, f: &Flavor) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let done = self
            .db
            // The next integer id, taken inside the write transaction.
            .q("INSERT INTO flavor (flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor, is_public, disabled, description, created_at, internal_id) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(MAX(internal_id), 0) + 1 FROM flavor")
            .bind(f.flavorid.clone())
            .bind(f.name.clone())
            .bind(f.memory_mb)
            .bind(f.vcpus)
            .bind(f.root_gb)
            .bind(f.ephemeral_gb)
            .bind(f.swap)
            .bind(f.rxtx_factor)
            .bind(f.is_public as i64)
            .bind(f.disabled as i64)
            .bind(f.description.clone())
            .bind(super::now())
            .execute(w.conn())
            .await;
        if let Err(e) = done {
            let e = db::DbError::from(e);
            return Err(if e.is_unique_violation() {
                ComputeError::Conflict(format!("Flavor with name {} or ID {} already exists.", f.name, f.flavorid))
            } else {
                e.into()
            });
        }
        for (k, v) in &f.extra_specs {
            self.db
                .q("INSERT INTO flavor_extra_spec (flavorid, spec_key, spec_value) VALUES (?, ?, ?)")
                .bind(f.flavorid.clone())
                .bind(k.clone())
                .bind(v.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Every flavor with its extra specs, in flavor id order.
    pub async fn flavors(&self) -> Result<Vec<Flavor>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM flavor ORDER BY created_at, flavorid")).await?;
        let mut flavors = rows.iter().map(flavor_from_row).collect::<Result<Vec<_>>>()?;
        let specs = self.db.fetch_all(self.db.q("SELECT * FROM flavor_extra_spec")).await?;
        let mut by_flavor: std::collections::HashMap<String, BTreeMap<String, String>> = Default::default();
        for s in &specs {
            by_flavor.entry(s.str("flavorid")?).or_default().insert(s.str("spec_key")?, s.str("spec_value")?);
        }
        for f in &mut flavors {
            f.extra_specs = by_flavor.remove(&f.flavorid).unwrap_or_default();
        }
        Ok(flavors)
    }

    pub async fn flavor(&self, id: &str) -> Result<Flavor> {
        let row = self
            .db
            .q("SELECT * FROM flavor WHERE flavorid = ?")
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db::DbError::from)?
            .ok_or_else(|| not_found(id))?;
        let mut f = flavor_from_row(&row)?;
        f.extra_specs = self.extra_specs(id).await?;
        Ok(f)
    }

    pub async fn extra_specs(&self, id: &str) -> Result<BTreeMap<String, String>> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT * FROM flavor_extra_spec WHERE flavorid = ?").bind(id.to_string()))
            .await?;
        rows.iter().map(|r| Ok((r.str("spec_key")?, r.str("spec_value")?))).collect()
    }

    pub async fn set_flavor_description(&self, id: &str, description: Option<String>) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db
            .q("UPDATE flavor SET description = ? WHERE flavorid = ?")
            .bind(description)
            .bind(id.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    pub async fn delete_flavor(&self, id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let done = self
            .db
            .q("DELETE FROM flavor WHERE flavorid = ?")
            .bind(id.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        for sql in ["DELETE FROM flavor_extra_spec WHERE flavorid = ?", "DELETE FROM flavor_access WHERE flavorid = ?"]
        {
            let sql = self.db.sql(sql).into_owned();
            db::query(&sql).bind(id.to_string()).execute(w.conn()).await.map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Sets (adds or replaces) extra specs.
    pub async fn set_extra_specs(&self, id: &str, specs: &BTreeMap<String, String>) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for (k, v) in specs {
            self.db
                .q("DELETE FROM flavor_extra_spec WHERE flavorid = ? AND spec_key = ?")
                .bind(id.to_string())
                .bind(k.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
            self.db
                .q("INSERT INTO flavor_extra_spec (flavorid, spec_key, spec_value) VALUES (?, ?, ?)")
                .bind(id.to_string())
                .bind(k.clone())
                .bind(v.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Removes one extra spec; false when it was not there.
    pub async fn delete_extra_spec(&self, id: &str, key: &str) -> Result<bool> {
        let mut w = self.db.begin_write().await?;
        let done = self
            .db
            .q("DELETE FROM flavor_extra_spec WHERE flavorid = ? AND spec_key = ?")
            .bind(id.to_string())
            .bind(key.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn flavor_access(&self, id: &str) -> Result<Vec<String>> {
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT project_id FROM flavor_access WHERE flavorid = ? ORDER BY project_id")
                    .bind(id.to_string()),
            )
            .await?;
        rows.iter().map(|r| Ok(r.str("project_id")?)).collect()
    }

    /// Grants (`add`) or revokes a project's access; false when there was
    /// nothing to change.
    pub async fn change_flavor_access(&self, id: &str, project: &str, add: bool) -> Result<bool> {
        let mut w = self.db.begin_write().await?;
        let changed = if add {
            let q = self.db.q("INSERT INTO flavor_access (flavorid, project_id) VALUES (?, ?)");
            self.db.insert_unless_duplicate(w.conn(), q.bind(id.to_string()).bind(project.to_string())).await?
        } else {
            let q = self.db.q("DELETE FROM flavor_access WHERE flavorid = ? AND project_id = ?");
            let done = q.bind(id.to_string()).bind(project.to_string()).execute(w.conn()).await;
            done.map_err(db::DbError::from)?.rows_affected() > 0
        };
        w.commit().await?;
        Ok(changed)
    }
}
