//! Projects and domains (a domain is a project row with `is_domain`), with tags.

use db::{AnyRow, DbError, RowExt};

use super::{flag, parse_map, to_text, Extra, Select, Store};
use crate::error::{IdentityError, Result};
use crate::schema::ROOT_DOMAIN;
use db::Query;

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// For a domain: [`ROOT_DOMAIN`].
    pub domain_id: String,
    pub parent_id: Option<String>,
    pub is_domain: bool,
    pub enabled: bool,
    pub description: String,
    pub extra: Extra,
    pub options: Extra,
    pub tags: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct ProjectFilter {
    pub is_domain: Option<bool>,
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub parent_id: Option<String>,
    pub enabled: Option<bool>,
    pub ids: Option<Vec<String>>,
}

fn from_row(row: &AnyRow) -> Result<Project, DbError> {
    Ok(Project {
        id: row.str("id")?,
        name: row.str("name")?,
        domain_id: row.str("domain_id")?,
        parent_id: row.opt_str("parent_id")?,
        is_domain: row.flag("is_domain")?,
        enabled: row.flag("enabled")?,
        description: row.opt_str("description")?.unwrap_or_default(),
        extra: parse_map(&row.str("extra")?),
        options: parse_map(&row.str("options")?),
        tags: Vec::new(),
    })
}

impl Store {
    pub async fn create_project(&self, p: &Project) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO project (id, name, domain_id, parent_id, is_domain, enabled, description, extra, options, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.domain_id)
            .bind(p.parent_id.as_deref())
            .bind(flag(p.is_domain))
            .bind(flag(p.enabled))
            .bind(&p.description)
            .bind(to_text(&p.extra))
            .bind(to_text(&p.options))
            .bind(common::time::now_micros());
        self.save_project(p, q).await
    }

    /// Rewrites every column of an existing project from `p`, tags included.
    pub async fn update_project(&self, p: &Project) -> Result<()> {
        let q = self
            .db
            .q("UPDATE project SET name = ?, parent_id = ?, enabled = ?, description = ?, extra = ?, options = ? WHERE id = ?")
            .bind(&p.name)
            .bind(p.parent_id.as_deref())
            .bind(flag(p.enabled))
            .bind(&p.description)
            .bind(to_text(&p.extra))
            .bind(to_text(&p.options))
            .bind(&p.id);
        self.save_project(p, q).await
    }

    /// Runs the project's row statement and replaces its tags, in one transaction.
    async fn save_project(&self, p: &Project, row: Query<'_>) -> Result<()> {
        let kind = if p.is_domain { "domain" } else { "project" };
        let mut w = self.db.begin_write().await?;
        match row.execute(w.conn()).await.map_err(DbError::from) {
            Err(e) if e.is_unique_violation() => {
                return Err(IdentityError::conflict(kind, duplicate_detail(kind, &p.name, &p.domain_id)))
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        self.db
            .q("DELETE FROM project_tag WHERE project_id = ?")
            .bind(&p.id)
            .execute(w.conn())
            .await
            .map_err(DbError::from)?;
        for tag in &p.tags {
            self.db
                .q("INSERT INTO project_tag (project_id, name) VALUES (?, ?)")
                .bind(&p.id)
                .bind(tag)
                .execute(w.conn())
                .await
                .map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn get_project_any(&self, id: &str) -> Result<Option<Project>> {
        match self.find("SELECT * FROM project WHERE id = ?", id, from_row).await? {
            None => Ok(None),
            Some(mut p) => {
                p.tags = self.project_tags(&p.id).await?;
                Ok(Some(p))
            }
        }
    }

    /// A project (not a domain) by id.
    pub async fn get_project(&self, id: &str) -> Result<Project> {
        match self.get_project_any(id).await? {
            Some(p) if !p.is_domain => Ok(p),
            _ => Err(IdentityError::not_found("project", id)),
        }
    }

    pub async fn get_domain(&self, id: &str) -> Result<Project> {
        match self.get_project_any(id).await? {
            Some(p) if p.is_domain => Ok(p),
            _ => Err(IdentityError::not_found("domain", id)),
        }
    }

    pub async fn get_domain_by_name(&self, name: &str) -> Result<Project> {
        let found = self
            .list_projects(&ProjectFilter { is_domain: Some(true), name: Some(name.into()), ..Default::default() })
            .await?;
        found.into_iter().next().ok_or_else(|| IdentityError::not_found("domain", name))
    }

    pub async fn get_project_by_name(&self, name: &str, domain_id: &str) -> Result<Project> {
        let found = self
            .list_projects(&ProjectFilter {
                is_domain: Some(false),
                name: Some(name.into()),
                domain_id: Some(domain_id.into()),
                ..Default::default()
            })
            .await?;
        found.into_iter().next().ok_or_else(|| IdentityError::not_found("project", name))
    }

    pub async fn list_projects(&self, f: &ProjectFilter) -> Result<Vec<Project>> {
        let select = Select::from("project")
            .flag("is_domain", f.is_domain)
            .flag("enabled", f.enabled)
            .eq("name", &f.name)
            .eq("domain_id", &f.domain_id)
            .eq("parent_id", &f.parent_id)
            .any_of("id", &f.ids);
        let mut out = self.select(select, "name, id", from_row).await?;
        let tags = self.all_project_tags().await?;
        for p in &mut out {
            p.tags = tags.iter().filter(|(id, _)| *id == p.id).map(|(_, t)| t.clone()).collect();
        }
        Ok(out)
    }

    async fn project_tags(&self, id: &str) -> Result<Vec<String>> {
        self.all(self.db.q("SELECT name FROM project_tag WHERE project_id = ? ORDER BY name").bind(id), |r| {
            r.str("name")
        })
        .await
    }

    async fn all_project_tags(&self) -> Result<Vec<(String, String)>> {
        let q = self.db.q("SELECT project_id, name FROM project_tag ORDER BY name");
        self.all(q, |r| Ok((r.str("project_id")?, r.str("name")?))).await
    }

    /// Deletes a project or domain row with its tags, assignments on it and
    /// endpoint associations. Callers check children first.
    pub async fn delete_project(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM project_tag WHERE project_id = ?",
                "DELETE FROM assignment WHERE target_id = ?",
                "DELETE FROM project_endpoint WHERE project_id = ?",
                "DELETE FROM project_endpoint_group WHERE project_id = ?",
                "DELETE FROM project WHERE id = ?",
            ],
            id,
        )
        .await
    }

    /// The chain of parents of a project, nearest first, up to (not including) its
    /// domain.
    pub async fn project_ancestors(&self, p: &Project) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        let mut next = p.parent_id.clone();
        while let Some(id) = next {
            match self.get_project_any(&id).await? {
                Some(parent) if !parent.is_domain && !out.iter().any(|x: &Project| x.id == parent.id) => {
                    next = parent.parent_id.clone();
                    out.push(parent);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every project below `id`, at any depth.
    pub async fn project_descendants(&self, id: &str) -> Result<Vec<Project>> {
        let all = self.list_projects(&ProjectFilter { is_domain: Some(false), ..Default::default() }).await?;
        let mut out: Vec<Project> = Vec::new();
        let mut frontier = vec![id.to_string()];
        while let Some(parent) = frontier.pop() {
            for p in all.iter().filter(|p| p.parent_id.as_deref() == Some(parent.as_str())) {
                if !out.iter().any(|x| x.id == p.id) {
                    frontier.push(p.id.clone());
                    out.push(p.clone());
                }
            }
        }
        Ok(out)
    }

    pub async fn has_children(&self, id: &str) -> Result<bool> {
        let n: i64 =
            db::query_scalar(self.db.static_sql("SELECT COUNT(*) FROM project WHERE parent_id = ? AND is_domain = 0"))
                .bind(id)
                .fetch_one(self.db.pool())
                .await
                .map_err(DbError::from)?;
        Ok(n > 0)
    }
}

fn duplicate_detail(kind: &str, name: &str, domain_id: &str) -> String {
    if domain_id == ROOT_DOMAIN {
        format!("Duplicate entry found with name {name}.")
    } else {
        format!("Duplicate entry found with name {name} at domain ID {domain_id} ({kind}).")
    }
}
