//! Groups and their members.

use db::AnyRow;
use db::{DbError, RowExt};

use super::{parse_map, to_text, Extra, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    pub description: String,
    pub extra: Extra,
}

fn from_row(row: &AnyRow) -> Result<Group, DbError> {
    Ok(Group {
        id: row.str("id")?,
        domain_id: row.str("domain_id")?,
        name: row.str("name")?,
        description: row.opt_str("description")?.unwrap_or_default(),
        extra: parse_map(&row.str("extra")?),
    })
}

fn duplicate(g: &Group) -> IdentityError {
    IdentityError::conflict(
        "group",
        format!("Duplicate entry found with name {} at domain ID {}.", g.name, g.domain_id),
    )
}

impl Store {
    pub async fn create_group(&self, g: &Group) -> Result<()> {
        let r = self
            .db
            .q("INSERT INTO identity_group (id, domain_id, name, description, extra) VALUES (?, ?, ?, ?, ?)")
            .bind(&g.id)
            .bind(&g.domain_id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(to_text(&g.extra))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match r {
            Err(e) if e.is_unique_violation() => Err(duplicate(g)),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn update_group(&self, g: &Group) -> Result<()> {
        let r = self
            .db
            .q("UPDATE identity_group SET name = ?, description = ?, extra = ? WHERE id = ?")
            .bind(&g.name)
            .bind(&g.description)
            .bind(to_text(&g.extra))
            .bind(&g.id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match r {
            Err(e) if e.is_unique_violation() => Err(duplicate(g)),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn get_group(&self, id: &str) -> Result<Group> {
        let row = self
            .db
            .q("SELECT * FROM identity_group WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        row.as_ref().map(from_row).transpose()?.ok_or_else(|| IdentityError::not_found("group", id))
    }

    pub async fn list_groups(&self, domain_id: Option<&str>, name: Option<&str>) -> Result<Vec<Group>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM identity_group ORDER BY name, id")).await?;
        let groups = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(groups
            .into_iter()
            .filter(|g| domain_id.is_none_or(|d| g.domain_id == d))
            .filter(|g| name.is_none_or(|n| g.name == n))
            .collect())
    }

    pub async fn delete_group(&self, id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for sql in [
            "DELETE FROM user_group_membership WHERE group_id = ?",
            "DELETE FROM assignment WHERE actor_id = ?",
            "DELETE FROM identity_group WHERE id = ?",
        ] {
            self.db.q(sql).bind(id).execute(w.conn()).await.map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn add_user_to_group(&self, user_id: &str, group_id: &str) -> Result<()> {
        let r = self
            .db
            .q("INSERT INTO user_group_membership (user_id, group_id) VALUES (?, ?)")
            .bind(user_id)
            .bind(group_id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match r {
            // Adding a member twice is not an error in Keystone.
            Err(e) if e.is_unique_violation() => Ok(()),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Whether the membership existed.
    pub async fn remove_user_from_group(&self, user_id: &str, group_id: &str) -> Result<bool> {
        let r = self
            .db
            .q("DELETE FROM user_group_membership WHERE user_id = ? AND group_id = ?")
            .bind(user_id)
            .bind(group_id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn is_member(&self, user_id: &str, group_id: &str) -> Result<bool> {
        let row = self
            .db
            .q("SELECT user_id FROM user_group_membership WHERE user_id = ? AND group_id = ?")
            .bind(user_id)
            .bind(group_id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(row.is_some())
    }

    pub async fn group_ids_of_user(&self, user_id: &str) -> Result<Vec<String>> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT group_id FROM user_group_membership WHERE user_id = ?").bind(user_id))
            .await?;
        Ok(rows.iter().map(|r| r.str("group_id")).collect::<Result<_, _>>()?)
    }

    pub async fn user_ids_in_group(&self, group_id: &str) -> Result<Vec<String>> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT user_id FROM user_group_membership WHERE group_id = ?").bind(group_id))
            .await?;
        Ok(rows.iter().map(|r| r.str("user_id")).collect::<Result<_, _>>()?)
    }
}
