//! Groups and their members.

use db::{AnyRow, DbError, RowExt};

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
        let q = self
            .db
            .q("INSERT INTO identity_group (id, domain_id, name, description, extra) VALUES (?, ?, ?, ?, ?)")
            .bind(&g.id)
            .bind(&g.domain_id)
            .bind(&g.name)
            .bind(&g.description)
            .bind(to_text(&g.extra));
        self.write(q, || duplicate(g)).await.map(drop)
    }

    pub async fn update_group(&self, g: &Group) -> Result<()> {
        let q = self
            .db
            .q("UPDATE identity_group SET name = ?, description = ?, extra = ? WHERE id = ?")
            .bind(&g.name)
            .bind(&g.description)
            .bind(to_text(&g.extra))
            .bind(&g.id);
        self.write(q, || duplicate(g)).await.map(drop)
    }

    pub async fn get_group(&self, id: &str) -> Result<Group> {
        self.get("SELECT * FROM identity_group WHERE id = ?", id, "group", from_row).await
    }

    pub async fn list_groups(&self, domain_id: Option<&str>, name: Option<&str>) -> Result<Vec<Group>> {
        let groups = self.all(self.db.q("SELECT * FROM identity_group ORDER BY name, id"), from_row).await?;
        Ok(groups
            .into_iter()
            .filter(|g| domain_id.is_none_or(|d| g.domain_id == d))
            .filter(|g| name.is_none_or(|n| g.name == n))
            .collect())
    }

    pub async fn delete_group(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM user_group_membership WHERE group_id = ?",
                "DELETE FROM assignment WHERE actor_id = ?",
                "DELETE FROM identity_group WHERE id = ?",
            ],
            id,
        )
        .await
    }

    /// Adds a member; adding one twice is not an error.
    pub async fn add_user_to_group(&self, user_id: &str, group_id: &str) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO user_group_membership (user_id, group_id) VALUES (?, ?)")
            .bind(user_id)
            .bind(group_id);
        match self.write(q, || IdentityError::conflict("membership", user_id)).await {
            Ok(_) | Err(IdentityError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the membership existed.
    pub async fn remove_user_from_group(&self, user_id: &str, group_id: &str) -> Result<bool> {
        let q = self
            .db
            .q("DELETE FROM user_group_membership WHERE user_id = ? AND group_id = ?")
            .bind(user_id)
            .bind(group_id);
        Ok(self.write(q, || IdentityError::conflict("membership", user_id)).await? > 0)
    }

    pub async fn is_member(&self, user_id: &str, group_id: &str) -> Result<bool> {
        Ok(self.group_ids_of_user(user_id).await?.iter().any(|g| g == group_id))
    }

    pub async fn group_ids_of_user(&self, user_id: &str) -> Result<Vec<String>> {
        let q = self.db.q("SELECT group_id FROM user_group_membership WHERE user_id = ?").bind(user_id);
        self.all(q, |r| r.str("group_id")).await
    }

    pub async fn user_ids_in_group(&self, group_id: &str) -> Result<Vec<String>> {
        let q = self.db.q("SELECT user_id FROM user_group_membership WHERE group_id = ?").bind(group_id);
        self.all(q, |r| r.str("user_id")).await
    }
}
