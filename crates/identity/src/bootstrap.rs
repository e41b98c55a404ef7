//! First-start bootstrap, what `keystone-manage bootstrap` does: the default
//! domain, the admin and service projects, the admin user, the standard roles and
//! the implications between them, the region and the catalog. Safe to run on every
//! start: what exists is kept, endpoints are brought up to date.

use serde_json::{json, Map};

use crate::error::Result;
use crate::schema::ROOT_DOMAIN;
use crate::store::{Assignment, Endpoint, Project, Region, Role, Service, Target, User};
use crate::Identity;

pub const DEFAULT_DOMAIN_ID: &str = "default";
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

/// A catalog entry for one running service.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub service_type: String,
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub admin_password: String,
    pub region: String,
    pub catalog: Vec<CatalogEntry>,
}

/// The roles every cloud starts with, and what each implies.
const ROLES: &[&str] = &["admin", "manager", "member", "reader", "service"];
const IMPLICATIONS: &[(&str, &str)] = &[("admin", "manager"), ("manager", "member"), ("member", "reader")];

pub async fn bootstrap(id: &Identity, b: &Bootstrap) -> Result<()> {
    let store = &id.store;
    if store.get_project_any(DEFAULT_DOMAIN_ID).await?.is_none() {
        store
            .create_project(&Project {
                id: DEFAULT_DOMAIN_ID.into(),
                name: DEFAULT_DOMAIN_NAME.into(),
                domain_id: ROOT_DOMAIN.into(),
                parent_id: None,
                is_domain: true,
                enabled: true,
                description: "The default domain".into(),
                extra: Map::new(),
                options: Map::new(),
                tags: vec![],
            })
            .await?;
    }
    let admin_project = ensure_project(id, "admin").await?;
    ensure_project(id, "service").await?;

    let existing = store.list_roles().await?;
    let role_id = |name: &str| existing.iter().find(|r| r.name == name && r.domain_id.is_none()).map(|r| r.id.clone());
    let mut ids = std::collections::HashMap::new();
    for name in ROLES {
        let rid = match role_id(name) {
            Some(rid) => rid,
            None => {
                let r = Role {
                    id: common::id::new_hex_id(),
                    name: name.to_string(),
                    domain_id: None,
                    description: None,
                    options: Map::new(),
                    extra: Map::new(),
                };
                store.create_role(&r).await?;
                r.id
            }
        };
        ids.insert(*name, rid);
    }
    for (prior, implied) in IMPLICATIONS {
        store.create_implied_role(&ids[prior], &ids[implied]).await?;
    }

    let admin = match store.get_user_by_name("admin", DEFAULT_DOMAIN_ID).await {
        Ok(u) => {
            if !u.password_hash.as_deref().is_some_and(|h| id.hasher.verify(&b.admin_password, h)) {
                let mut u = u.clone();
                u.password_hash = Some(id.hasher.hash_async(b.admin_password.clone()).await);
                u.password_created_at = Some(common::time::now_micros());
                store.update_user(&u).await?;
            }
            u
        }
        Err(_) => {
            let now = common::time::now_micros();
            let u = User {
                id: common::id::new_hex_id(),
                domain_id: DEFAULT_DOMAIN_ID.into(),
                name: "admin".into(),
                enabled: true,
                default_project_id: None,
                password_hash: Some(id.hasher.hash_async(b.admin_password.clone()).await),
                password_created_at: Some(now),
                extra: Map::new(),
                options: Map::new(),
                created_at: now,
            };
            store.create_user(&u).await?;
            u
        }
    };
    for target in [Target::Project(admin_project.id.clone()), Target::System] {
        store
            .grant(&Assignment {
                actor_id: admin.id.clone(),
                group: false,
                target,
                role_id: ids["admin"].clone(),
                inherited: false,
            })
            .await?;
    }

    if store.get_region(&b.region).await.is_err() {
        store
            .create_region(&Region {
                id: b.region.clone(),
                description: String::new(),
                parent_region_id: None,
                extra: Map::new(),
            })
            .await?;
    }
    for entry in &b.catalog {
        ensure_catalog_entry(id, entry, &b.region).await?;
    }
    Ok(())
}

async fn ensure_project(id: &Identity, name: &str) -> Result<Project> {
    if let Ok(p) = id.store.get_project_by_name(name, DEFAULT_DOMAIN_ID).await {
        return Ok(p);
    }
    let p = Project {
        id: common::id::new_hex_id(),
        name: name.into(),
        domain_id: DEFAULT_DOMAIN_ID.into(),
        parent_id: Some(DEFAULT_DOMAIN_ID.into()),
        is_domain: false,
        enabled: true,
        description: "Bootstrap project".into(),
        extra: Map::new(),
        options: Map::new(),
        tags: vec![],
    };
    id.store.create_project(&p).await?;
    Ok(p)
}

/// One service of the type with public, internal and admin endpoints at `url`.
async fn ensure_catalog_entry(id: &Identity, entry: &CatalogEntry, region: &str) -> Result<()> {
    let store = &id.store;
    let service = match store.list_services().await?.into_iter().find(|s| s.service_type == entry.service_type) {
        Some(s) => s,
        None => {
            let mut extra = Map::new();
            extra.insert("name".into(), json!(entry.name));
            let s = Service {
                id: common::id::new_hex_id(),
                service_type: entry.service_type.clone(),
                enabled: true,
                extra,
            };
            store.create_service(&s).await?;
            s
        }
    };
    let endpoints = store.list_endpoints().await?;
    for interface in ["public", "internal", "admin"] {
        let existing = endpoints
            .iter()
            .find(|e| e.service_id == service.id && e.interface == interface && e.region_id.as_deref() == Some(region));
        match existing {
            Some(e) if e.url == entry.url => {}
            Some(e) => {
                let mut e = e.clone();
                e.url = entry.url.clone();
                store.update_endpoint(&e).await?;
            }
            None => {
                store
                    .create_endpoint(&Endpoint {
                        id: common::id::new_hex_id(),
                        service_id: service.id.clone(),
                        interface: interface.into(),
                        url: entry.url.clone(),
                        region_id: Some(region.into()),
                        enabled: true,
                        extra: Map::new(),
                    })
                    .await?;
            }
        }
    }
    Ok(())
}
