//! Role assignments: an actor (user or group) has a role on a target (project,
//! domain or the system), possibly inherited by the projects below the target.

use db::{AnyRow, DbError, RowExt};

use super::{flag, Select, Store};
use crate::error::{IdentityError, Result};

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

/// The statement matching one assignment row exactly, for its five columns.
fn bind_key<'q>(q: db::Query<'q>, a: &'q Assignment) -> db::Query<'q> {
    q.bind(a.type_name()).bind(&a.actor_id).bind(a.target.id()).bind(&a.role_id).bind(flag(a.inherited))
}

impl Store {
    /// Records the assignment; granting twice is not an error.
    pub async fn grant(&self, a: &Assignment) -> Result<()> {
        let q =
            self.db.q("INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES (?, ?, ?, ?, ?)");
        match self.write(bind_key(q, a), || IdentityError::conflict("assignment", &a.role_id)).await {
            Ok(_) | Err(IdentityError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the assignment existed.
    pub async fn revoke(&self, a: &Assignment) -> Result<bool> {
        let q = self
            .db
            .q("DELETE FROM assignment WHERE type = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?");
        Ok(self.write(bind_key(q, a), || IdentityError::conflict("assignment", &a.role_id)).await? > 0)
    }

    pub async fn has_assignment(&self, a: &Assignment) -> Result<bool> {
        let q = self.db.q(
            "SELECT role_id FROM assignment WHERE type = ? AND actor_id = ? AND target_id = ? AND role_id = ? AND inherited = ?",
        );
        Ok(!self.all(bind_key(q, a), |r| r.str("role_id")).await?.is_empty())
    }

    pub async fn list_assignments(&self, f: &AssignmentFilter) -> Result<Vec<Assignment>> {
        let select = Select::from("assignment")
            .any_of("actor_id", &f.actor_ids)
            .any_of("target_id", &f.target_ids)
            .eq("role_id", &f.role_id)
            .flag("inherited", f.inherited);
        Ok(self.select(select, "type, actor_id, target_id, role_id", from_row).await?.into_iter().flatten().collect())
    }
}
