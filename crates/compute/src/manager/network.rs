//! An instance's ports, through the network service's REST API: made (or,
//! when the user brought them, taken) for the instance, bound to this host,
//! waited on until the host's L2 agent has wired them; and released again.
//! A port the host made is found again by its `device_id`, so a rollback
//! finds every port even if the host stopped before it could note one down.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::ComputeHost;
use crate::error::{ComputeError, Result};
use crate::model::{FixedIp, Instance, RequestedNetwork, RequestedNetworks, Vif};

/// How long a port may take to become active once bound.
const PLUG_TIMEOUT: Duration = Duration::from_secs(60);

impl ComputeHost {
    async fn network_name(&self, id: &str, cache: &mut HashMap<String, String>) -> Result<String> {
        if let Some(n) = cache.get(id) {
            return Ok(n.clone());
        }
        let net = self
            .session
            .expect("network", Method::GET, &format!("/v2.0/networks/{id}"), None, None, StatusCode::OK)
            .await?;
        let name = net["network"]["name"].as_str().unwrap_or_default().to_string();
        cache.insert(id.to_string(), name.clone());
        Ok(name)
    }

    /// The interface a port gives the instance.
    pub(super) async fn vif_from_port(
        &self,
        port: &Value,
        created_here: bool,
        tag: Option<String>,
        names: &mut HashMap<String, String>,
    ) -> Result<Vif> {
        let network_id = port["network_id"].as_str().unwrap_or_default().to_string();
        let fixed_ips = port["fixed_ips"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let ip = f["ip_address"].as_str().unwrap_or_default().to_string();
                FixedIp {
                    version: if ip.contains(':') { 6 } else { 4 },
                    ip_address: ip,
                    subnet_id: f["subnet_id"].as_str().unwrap_or_default().to_string(),
                    floating_ips: Vec::new(),
                }
            })
            .collect();
        Ok(Vif {
            port_id: port["id"].as_str().unwrap_or_default().to_string(),
            network_label: self.network_name(&network_id, names).await?,
            network_id,
            mac_address: port["mac_address"].as_str().unwrap_or_default().to_string(),
            fixed_ips,
            created_here,
            tag,
            port_state: port["status"].as_str().unwrap_or("DOWN").to_string(),
        })
    }

    /// Makes or takes one port for the instance, bound to this host.
    pub(super) async fn plug_one(&self, i: &Instance, r: &RequestedNetwork) -> Result<(Value, bool)> {
        let owner = format!("compute:{}", i.availability_zone.as_deref().unwrap_or("nova"));
        let binding = json!({"device_id": i.uuid, "device_owner": owner, "binding:host_id": self.host});
        let (port, created) = match &r.port_id {
            Some(port_id) => {
                let body = json!({"port": binding});
                let p = self
                    .session
                    .expect(
                        "network",
                        Method::PUT,
                        &format!("/v2.0/ports/{port_id}"),
                        Some(&body),
                        None,
                        StatusCode::OK,
                    )
                    .await?;
                (p["port"].clone(), false)
            }
            None => {
                let mut port = binding;
                port["network_id"] = json!(r.network_id);
                port["project_id"] = json!(i.project_id);
                if let Some(ip) = &r.fixed_ip {
                    port["fixed_ips"] = json!([{"ip_address": ip}]);
                }
                if !i.security_group_ids.is_empty() {
                    port["security_groups"] = json!(i.security_group_ids);
                }
                let body = json!({"port": port});
                let p = self
                    .session
                    .expect("network", Method::POST, "/v2.0/ports", Some(&body), None, StatusCode::CREATED)
                    .await?;
                (p["port"].clone(), true)
            }
        };
        if port["binding:vif_type"] == "binding_failed" {
            return Err(ComputeError::Internal(format!(
                "Port {} could not be bound on host {}: no network agent there can wire it",
                port["id"], self.host
            )));
        }
        Ok((port, created))
    }

    /// Waits until the host's L2 agent reports the port up.
    pub(super) async fn wait_active(&self, port_id: &str) -> Result<Value> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let p = self
                .session
                .expect("network", Method::GET, &format!("/v2.0/ports/{port_id}"), None, None, StatusCode::OK)
                .await?;
            let port = p["port"].clone();
            if port["status"] == "ACTIVE" {
                return Ok(port);
            }
            if port["binding:vif_type"] == "binding_failed" {
                return Err(ComputeError::Internal(format!("Port {port_id} failed to bind on host {}", self.host)));
            }
            if started.elapsed() > PLUG_TIMEOUT {
                return Err(ComputeError::Internal(format!(
                    "Port {port_id} did not become active within {PLUG_TIMEOUT:?} (is the L2 agent on {} alive?)",
                    self.host
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Every requested interface, made and wired. Each port is noted on the
    /// instance as soon as it exists.
    pub(super) async fn allocate_network(&self, i: &Instance) -> Result<Vec<Vif>> {
        let requested = match &i.requested_networks {
            RequestedNetworks::List(l) => l.clone(),
            RequestedNetworks::Auto | RequestedNetworks::None => Vec::new(),
        };
        let mut names = HashMap::new();
        let mut vifs = Vec::new();
        for r in &requested {
            let (port, created) = self.plug_one(i, r).await?;
            vifs.push(self.vif_from_port(&port, created, r.tag.clone(), &mut names).await?);
            self.conductor.instance_update(&i.uuid, json!({"network_info": vifs}), None).await?;
        }
        for v in &mut vifs {
            let port = self.wait_active(&v.port_id).await?;
            v.port_state = port["status"].as_str().unwrap_or("ACTIVE").to_string();
        }
        Ok(vifs)
    }

    /// Gives back every port of the instance: ports made for it are deleted,
    /// ports the user brought are unbound and kept.
    pub(super) async fn deallocate_network(&self, i: &Instance) -> Result<()> {
        let brought: Vec<String> = match &i.requested_networks {
            RequestedNetworks::List(l) => l.iter().filter_map(|r| r.port_id.clone()).collect(),
            _ => Vec::new(),
        };
        let listed = self
            .session
            .expect("network", Method::GET, &format!("/v2.0/ports?device_id={}", i.uuid), None, None, StatusCode::OK)
            .await?;
        for port in listed["ports"].as_array().into_iter().flatten() {
            let id = port["id"].as_str().unwrap_or_default();
            let kept =
                brought.iter().any(|b| b == id) || i.network_info.iter().any(|v| v.port_id == id && !v.created_here);
            self.release_port(id, kept).await?;
        }
        Ok(())
    }

    /// Rebuilds the instance's interface cache from its ports as the network
    /// service has them now (Nova's inject_network_info refresh), keeping
    /// what the cache alone knows: tags, floating IPs, who made each port.
    pub(super) async fn refresh_network_info(&self, i: &Instance) -> Result<Vec<Vif>> {
        let listed = self
            .session
            .expect("network", Method::GET, &format!("/v2.0/ports?device_id={}", i.uuid), None, None, StatusCode::OK)
            .await?;
        let mut names = HashMap::new();
        let mut vifs = Vec::new();
        for port in listed["ports"].as_array().into_iter().flatten() {
            let id = port["id"].as_str().unwrap_or_default();
            let old = i.network_info.iter().find(|v| v.port_id == id);
            let mut vif = self
                .vif_from_port(port, old.is_none_or(|v| v.created_here), old.and_then(|v| v.tag.clone()), &mut names)
                .await?;
            if let Some(old) = old {
                for ip in &mut vif.fixed_ips {
                    if let Some(o) = old.fixed_ips.iter().find(|o| o.ip_address == ip.ip_address) {
                        ip.floating_ips = o.floating_ips.clone();
                    }
                }
            }
            vifs.push(vif);
        }
        self.conductor.instance_update(&i.uuid, json!({"network_info": vifs}), None).await?;
        Ok(vifs)
    }

    /// Deletes a port, or (for a user's own port) unbinds it.
    pub(super) async fn release_port(&self, id: &str, keep: bool) -> Result<()> {
        let (status, body) = if keep {
            let body = json!({"port": {"device_id": "", "device_owner": "", "binding:host_id": ""}});
            self.session.call("network", Method::PUT, &format!("/v2.0/ports/{id}"), Some(&body), None).await?
        } else {
            self.session.call("network", Method::DELETE, &format!("/v2.0/ports/{id}"), None, None).await?
        };
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(crate::clients::remote_error("network", status, &body))
        }
    }
}
