//! Role assignments: an actor (user or group) has a role on a target (project,
//! domain or the system), possibly inherited by the projects below the target.

use db::AnyRow;
use db::{DbError, RowExt};

use super::{flag, Store};
use crate::error::Result;

/// The `target_id` of assignments on the system.
pub const SYSTEM_TARGET: &str = "system";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Project(String),
    Domain(String),
    System,
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Project(_) => "Project",
            Target::Domain(_) => "Domain",
            Target::System => "System",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Target::Project(id) | Target::Domain(id) => id,
            Target::System => SYSTEM_TARGET,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Assignment {
    /// A user id, or a group id when `group` is set.
    pub actor_id: String,
    pub group: bool,
    pub target: Target,
    pub role_id: String,
    pub inherited: bool,
}

impl Assignment {
    fn type_name(&self) -> String {
        format!("{}{}", if self.group { "Group" } else { "User" }, self.target.kind())
    }
}

#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub actor_ids: Option<Vec<String>>,
    pub target_ids: Option<Vec<String>>,
    pub role_id: Option<String>,
    pub inherited: Option<bool>,
}

fn from_row(row: &AnyRow) -> Result<Option<Assignment>, DbError> {
    let kind = row.str("type")?;
    let target_id = row.str("target_id")?;
    let (group, target) = match kind.as_str() {
        "UserProject" => (false, Target::Project(target_id)),
        "GroupProject" => (true, Target::Project(target_id)),
        "UserDomain" => (false, Target::Domain(target_id)),
        "GroupDomain" => (true, Target::Domain(target_id)),
        "UserSystem" => (false, Target::System),
        "GroupSystem" => (true, Target::System),
        _ => return Ok(None),
    };
    Ok(Some(Assignment {
        actor_id: row.str("actor_id")?,
        group,
        target,
        role_id: row.str("role_id")?,
        inherited: row.flag("inherited")?,
    }))
}

impl Store {
    /// Records the assignment; granting twice is not an error.
    pub async fn grant(&self, a: &Assignment) -> Result<()> {
        let res = self
            .db
            .q("INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES (?, ?, ?, ?, ?)")
            .bind(a.type_name())
            .bind(&a.actor_id)
            .bind(a.target.id())
            .bind(&a.role_id)
            .bind(flag(a.inherited))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match res {
            Err(e) if e.is_unique_violation() => Ok(()),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Whether the assignment existed.
    pub async fn revoke(&self, a: &Assignment) -> Result<bool> {
        let res = self
            .db
            .q("DELETE FROM assignment WHERE type = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?")
            .bind(a.type_name())
            .bind(&a.actor_id)
            .bind(a.target.id())
            .bind(&a.role_id)
            .bind(flag(a.inherited))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(res.rows_affected() > 0)
    }

    pub async fn has_assignment(&self, a: &Assignment) -> Result<bool> {
        let row = self
            .db
            .q("SELECT role_id FROM assignment WHERE type = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?")
            .bind(a.type_name())
            .bind(&a.actor_id)
            .bind(a.target.id())
            .bind(&a.role_id)
            .bind(flag(a.inherited))
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(row.is_some())
    }

    pub async fn list_assignments(&self, f: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let mut sql = String::from("SELECT * FROM assignment WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        for (col, ids) in [("actor_id", &f.actor_ids), ("target_id", &f.target_ids)] {
            if let Some(ids) = ids {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                sql.push_str(&format!(" AND {col} IN ({})", vec!["?"; ids.len()].join(", ")));
                args.extend(ids.iter().cloned());
            }
        }
        if let Some(r) = &f.role_id {
            sql.push_str(" AND role_id = ?");
            args.push(r.clone());
        }
        if let Some(i) = f.inherited {
            sql.push_str(if i { " AND inherited = 1" } else { " AND inherited = 0" });
        }
        sql.push_str(" ORDER BY type, actor_id, target_id, role_id");
        let sql = self.db.sql(&sql);
        let mut q = db::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        let rows = self.db.fetch_all(q).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(a) = from_row(row)? {
                out.push(a);
            }
        }
        Ok(out)
    }
}
