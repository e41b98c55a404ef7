//! The catalog a token carries: every enabled service with its enabled endpoints,
//! narrowed for a project that has endpoint associations (OS-EP-FILTER).

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::error::Result;
use crate::store::{Endpoint, EndpointGroup, Store};

/// Whether `endpoint` has every attribute the group's filters name.
pub fn group_matches(group: &EndpointGroup, endpoint: &Endpoint) -> bool {
    group.filters.iter().all(|(k, v)| {
        let want = v.as_str().unwrap_or_default();
        match k.as_str() {
            "service_id" => endpoint.service_id == want,
            "interface" => endpoint.interface == want,
            "region_id" => endpoint.region_id.as_deref() == Some(want),
            _ => endpoint.extra.get(k) == Some(v),
        }
    })
}

impl Store {
    /// The endpoints associated with a project directly or through endpoint
    /// groups; `None` when the project has no associations (it sees everything).
    pub async fn project_endpoint_ids(&self, project_id: &str) -> Result<Option<HashSet<String>>> {
        let direct: Vec<String> = self
            .list_project_endpoints(false)
            .await?
            .into_iter()
            .filter(|(p, _)| p == project_id)
            .map(|(_, e)| e)
            .collect();
        let groups: Vec<String> = self
            .list_project_endpoints(true)
            .await?
            .into_iter()
            .filter(|(p, _)| p == project_id)
            .map(|(_, g)| g)
            .collect();
        if direct.is_empty() && groups.is_empty() {
            return Ok(None);
        }
        let mut ids: HashSet<String> = direct.into_iter().collect();
        if !groups.is_empty() {
            let endpoints = self.list_endpoints().await?;
            for g in groups {
                if let Ok(group) = self.get_endpoint_group(&g).await {
                    ids.extend(endpoints.iter().filter(|e| group_matches(&group, e)).map(|e| e.id.clone()));
                }
            }
        }
        Ok(Some(ids))
    }

    /// The `catalog` list of a token scoped to `project_id` (or to no project).
    pub async fn catalog(&self, project_id: Option<&str>) -> Result<Value> {
        let only = match project_id {
            Some(p) => self.project_endpoint_ids(p).await?,
            None => None,
        };
        let endpoints = self.list_endpoints().await?;
        let mut out = Vec::new();
        for s in self.list_services().await?.into_iter().filter(|s| s.enabled) {
            let eps: Vec<Value> = endpoints
                .iter()
                .filter(|e| e.service_id == s.id && e.enabled)
                .filter(|e| only.as_ref().is_none_or(|ids| ids.contains(&e.id)))
                .map(|e| {
                    json!({
                        "id": e.id,
                        "interface": e.interface,
                        "region": e.region_id,
                        "region_id": e.region_id,
                        "url": e.url,
                    })
                })
                .collect();
            if only.is_some() && eps.is_empty() {
                continue;
            }
            out.push(json!({
                "id": s.id,
                "type": s.service_type,
                "name": s.extra.get("name").cloned().unwrap_or(json!("")),
                "endpoints": eps,
            }));
        }
        Ok(Value::Array(out))
    }
}
