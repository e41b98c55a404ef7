//! The service catalog: regions, services, endpoints, and the endpoint filter
//! (OS-EP-FILTER) that narrows the catalog a project sees.

use db::{AnyRow, DbError, RowExt};

use super::{flag, parse_map, to_text, Extra, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: String,
    pub service_type: String,
    pub enabled: bool,
    /// `name`, `description` and anything else the client sent.
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Endpoint attributes an endpoint must match (`service_id`, `interface`, `region_id`).
    pub filters: Extra,
}

fn region_from_row(row: &AnyRow) -> Result<Region, DbError> {
    Ok(Region {
        id: row.str("id")?,
        description: row.str("description")?,
        parent_region_id: row.opt_str("parent_region_id")?,
        extra: parse_map(&row.str("extra")?),
    })
}

fn service_from_row(row: &AnyRow) -> Result<Service, DbError> {
    Ok(Service {
        id: row.str("id")?,
        service_type: row.str("type")?,
        enabled: row.flag("enabled")?,
        extra: parse_map(&row.str("extra")?),
    })
}

fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint, DbError> {
    Ok(Endpoint {
        id: row.str("id")?,
        service_id: row.str("service_id")?,
        interface: row.str("interface")?,
        url: row.str("url")?,
        region_id: row.opt_str("region_id")?,
        enabled: row.flag("enabled")?,
        extra: parse_map(&row.str("extra")?),
    })
}

fn group_from_row(row: &AnyRow) -> Result<EndpointGroup, DbError> {
    Ok(EndpointGroup {
        id: row.str("id")?,
        name: row.str("name")?,
        description: row.opt_str("description")?,
        filters: parse_map(&row.str("filters")?),
    })
}

fn duplicate(kind: &'static str, id: &str) -> IdentityError {
    IdentityError::conflict(kind, format!("Duplicate ID, {id}."))
}

impl Store {
    pub async fn create_region(&self, r: &Region) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO region (id, description, parent_region_id, extra) VALUES (?, ?, ?, ?)")
            .bind(&r.id)
            .bind(&r.description)
            .bind(r.parent_region_id.as_deref())
            .bind(to_text(&r.extra));
        self.write(q, || duplicate("region", &r.id)).await.map(drop)
    }

    pub async fn update_region(&self, r: &Region) -> Result<()> {
        let q = self
            .db
            .q("UPDATE region SET description = ?, parent_region_id = ?, extra = ? WHERE id = ?")
            .bind(&r.description)
            .bind(r.parent_region_id.as_deref())
            .bind(to_text(&r.extra))
            .bind(&r.id);
        self.write(q, || duplicate("region", &r.id)).await.map(drop)
    }

    pub async fn get_region(&self, id: &str) -> Result<Region> {
        self.get("SELECT * FROM region WHERE id = ?", id, "region", region_from_row).await
    }

    pub async fn list_regions(&self) -> Result<Vec<Region>> {
        self.all(self.db.q("SELECT * FROM region ORDER BY id"), region_from_row).await
    }

    pub async fn delete_region(&self, id: &str) -> Result<()> {
        self.delete_with(&["DELETE FROM region WHERE id = ?"], id).await
    }

    pub async fn create_service(&self, s: &Service) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO service (id, type, enabled, extra) VALUES (?, ?, ?, ?)")
            .bind(&s.id)
            .bind(&s.service_type)
            .bind(flag(s.enabled))
            .bind(to_text(&s.extra));
        self.write(q, || duplicate("service", &s.id)).await.map(drop)
    }

    pub async fn update_service(&self, s: &Service) -> Result<()> {
        let q = self
            .db
            .q("UPDATE service SET type = ?, enabled = ?, extra = ? WHERE id = ?")
            .bind(&s.service_type)
            .bind(flag(s.enabled))
            .bind(to_text(&s.extra))
            .bind(&s.id);
        self.write(q, || duplicate("service", &s.id)).await.map(drop)
    }

    pub async fn get_service(&self, id: &str) -> Result<Service> {
        self.get("SELECT * FROM service WHERE id = ?", id, "service", service_from_row).await
    }

    pub async fn list_services(&self) -> Result<Vec<Service>> {
        self.all(self.db.q("SELECT * FROM service ORDER BY type, id"), service_from_row).await
    }

    /// Deletes a service and its endpoints.
    pub async fn delete_service(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM project_endpoint WHERE endpoint_id IN (SELECT id FROM endpoint WHERE service_id = ?)",
                "DELETE FROM endpoint WHERE service_id = ?",
                "DELETE FROM service WHERE id = ?",
            ],
            id,
        )
        .await
    }

    pub async fn create_endpoint(&self, e: &Endpoint) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO endpoint (id, service_id, interface, url, region_id, enabled, extra) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&e.id)
            .bind(&e.service_id)
            .bind(&e.interface)
            .bind(&e.url)
            .bind(e.region_id.as_deref())
            .bind(flag(e.enabled))
            .bind(to_text(&e.extra));
        self.write(q, || duplicate("endpoint", &e.id)).await.map(drop)
    }

    pub async fn update_endpoint(&self, e: &Endpoint) -> Result<()> {
        let q = self
            .db
            .q("UPDATE endpoint SET service_id = ?, interface = ?, url = ?, region_id = ?, enabled = ?, extra = ? WHERE id = ?")
            .bind(&e.service_id)
            .bind(&e.interface)
            .bind(&e.url)
            .bind(e.region_id.as_deref())
            .bind(flag(e.enabled))
            .bind(to_text(&e.extra))
            .bind(&e.id);
        self.write(q, || duplicate("endpoint", &e.id)).await.map(drop)
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<Endpoint> {
        self.get("SELECT * FROM endpoint WHERE id = ?", id, "endpoint", endpoint_from_row).await
    }

    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>> {
        self.all(self.db.q("SELECT * FROM endpoint ORDER BY service_id, interface, id"), endpoint_from_row).await
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        self.delete_with(
            &["DELETE FROM project_endpoint WHERE endpoint_id = ?", "DELETE FROM endpoint WHERE id = ?"],
            id,
        )
        .await
    }

    pub async fn create_endpoint_group(&self, g: &EndpointGroup) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO endpoint_group (id, name, description, filters) VALUES (?, ?, ?, ?)")
            .bind(&g.id)
            .bind(&g.name)
            .bind(g.description.as_deref())
            .bind(to_text(&g.filters));
        self.write(q, || duplicate("endpoint group", &g.id)).await.map(drop)
    }

    pub async fn update_endpoint_group(&self, g: &EndpointGroup) -> Result<()> {
        let q = self
            .db
            .q("UPDATE endpoint_group SET name = ?, description = ?, filters = ? WHERE id = ?")
            .bind(&g.name)
            .bind(g.description.as_deref())
            .bind(to_text(&g.filters))
            .bind(&g.id);
        self.write(q, || duplicate("endpoint group", &g.id)).await.map(drop)
    }

    pub async fn get_endpoint_group(&self, id: &str) -> Result<EndpointGroup> {
        self.get("SELECT * FROM endpoint_group WHERE id = ?", id, "endpoint group", group_from_row).await
    }

    pub async fn list_endpoint_groups(&self) -> Result<Vec<EndpointGroup>> {
        self.all(self.db.q("SELECT * FROM endpoint_group ORDER BY name, id"), group_from_row).await
    }

    pub async fn delete_endpoint_group(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM project_endpoint_group WHERE endpoint_group_id = ?",
                "DELETE FROM endpoint_group WHERE id = ?",
            ],
            id,
        )
        .await
    }

    /// Associates an endpoint (`group = false`) or endpoint group with a
    /// project; associating twice is not an error.
    pub async fn add_project_endpoint(&self, project_id: &str, id: &str, group: bool) -> Result<()> {
        let sql = if group {
            "INSERT INTO project_endpoint_group (endpoint_group_id, project_id) VALUES (?, ?)"
        } else {
            "INSERT INTO project_endpoint (endpoint_id, project_id) VALUES (?, ?)"
        };
        match self.write(self.db.q(sql).bind(id).bind(project_id), || duplicate("project endpoint", id)).await {
            Ok(_) | Err(IdentityError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the association existed.
    pub async fn remove_project_endpoint(&self, project_id: &str, id: &str, group: bool) -> Result<bool> {
        let sql = if group {
            "DELETE FROM project_endpoint_group WHERE endpoint_group_id = ? AND project_id = ?"
        } else {
            "DELETE FROM project_endpoint WHERE endpoint_id = ? AND project_id = ?"
        };
        let n = self.write(self.db.q(sql).bind(id).bind(project_id), || duplicate("project endpoint", id)).await?;
        Ok(n > 0)
    }

    /// (project id, endpoint or endpoint group id) pairs.
    pub async fn list_project_endpoints(&self, group: bool) -> Result<Vec<(String, String)>> {
        let sql = if group {
            "SELECT project_id, endpoint_group_id AS id FROM project_endpoint_group"
        } else {
            "SELECT project_id, endpoint_id AS id FROM project_endpoint"
        };
        self.all(self.db.q(sql), |r| Ok((r.str("project_id")?, r.str("id")?))).await
    }
}
