//! An instance's ports, through the network service's REST API: made (or,
//! when the user brought them, taken) for the instance and bound to a host,
//! waited on until that host's L2 agent has wired them, moved to another host,
//! and released. Ports made for an instance carry its `device_id`, so every
//! one is found again — a step run twice after a crash reuses the ports the
//! first run made, and a rollback finds them all even if nobody noted them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::error::{ComputeError, Result};
use crate::model::{FixedIp, Instance, RequestedNetwork, RequestedNetworks, Vif};
use crate::session::{remote_error, ServiceSession};

/// How long a port may take to become active once bound.
pub const PLUG_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Ports<'a> {
    pub session: &'a ServiceSession,
}

/// The ports the user brought (kept, only unbound, when the instance goes).
pub fn brought(i: &Instance) -> Vec<String> {
    match &i.requested_networks {
        RequestedNetworks::List(l) => l.iter().filter_map(|r| r.port_id.clone()).collect(),
        _ => Vec::new(),
    }
}

fn requested(i: &Instance) -> Vec<RequestedNetwork> {
    match &i.requested_networks {
        RequestedNetworks::List(l) => l.clone(),
        RequestedNetworks::Auto | RequestedNetworks::None => Vec::new(),
    }
}

impl Ports<'_> {
    /// A network or subnet as the network API shows it (`kind` is
    /// `networks` or `subnets`), read once per call site.
    async fn resource(&self, kind: &str, id: &str, cache: &mut HashMap<String, Value>) -> Result<Value> {
        let key = format!("{kind}/{id}");
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        let path = format!("/v2.0/{key}");
        let mut body = self.session.expect("network", Method::GET, &path, None, None, StatusCode::OK).await?;
        let one = body[kind.trim_end_matches('s')].take();
        cache.insert(key, one.clone());
        Ok(one)
    }

    /// The interface a port gives the instance: its MAC and addresses, with
    /// each subnet's prefix and gateway and the network's MTU, which a real
    /// guest's interface needs.
    pub async fn vif_from_port(
        &self,
        port: &Value,
        created_here: bool,
        tag: Option<String>,
        cache: &mut HashMap<String, Value>,
    ) -> Result<Vif> {
        let network_id = port["network_id"].as_str().unwrap_or_default().to_string();
        let network = self.resource("networks", &network_id, cache).await?;
        let mut fixed_ips = Vec::new();
        for f in port["fixed_ips"].as_array().into_iter().flatten() {
            let ip = f["ip_address"].as_str().unwrap_or_default().to_string();
            let subnet_id = f["subnet_id"].as_str().unwrap_or_default().to_string();
            let subnet = self.resource("subnets", &subnet_id, cache).await?;
            let prefix_len = subnet["cidr"].as_str().and_then(|c| c.split_once('/')).and_then(|(_, p)| p.parse().ok());
            fixed_ips.push(FixedIp {
                version: if ip.contains(':') { 6 } else { 4 },
                ip_address: ip,
                subnet_id,
                floating_ips: Vec::new(),
                prefix_len,
                gateway: subnet["gateway_ip"].as_str().map(String::from),
            });
        }
        Ok(Vif {
            port_id: port["id"].as_str().unwrap_or_default().to_string(),
            network_label: network["name"].as_str().unwrap_or_default().to_string(),
            network_id,
            mac_address: port["mac_address"].as_str().unwrap_or_default().to_string(),
            fixed_ips,
            created_here,
            tag,
            port_state: port["status"].as_str().unwrap_or("DOWN").to_string(),
            mtu: network["mtu"].as_u64().map(|m| m as u32),
        })
    }

    /// Every port carrying the instance's `device_id`.
    pub async fn of_instance(&self, uuid: &str) -> Result<Vec<Value>> {
        let listed = self
            .session
            .expect("network", Method::GET, &format!("/v2.0/ports?device_id={uuid}"), None, None, StatusCode::OK)
            .await?;
        Ok(listed["ports"].as_array().cloned().unwrap_or_default())
    }

    async fn put_binding(&self, port_id: &str, body: Value) -> Result<Value> {
        let p = self
            .session
            .expect("network", Method::PUT, &format!("/v2.0/ports/{port_id}"), Some(&body), None, StatusCode::OK)
            .await?;
        Ok(p["port"].clone())
    }

    fn check_bound(port: &Value, host: &str) -> Result<()> {
        if port["binding:vif_type"] == "binding_failed" {
            return Err(ComputeError::PortBindingFailed(format!(
                "Port {} could not be bound on host {host}: no network agent there can wire it",
                port["id"]
            )));
        }
        Ok(())
    }

    /// Makes or takes one port for the instance, bound to `host`; `reuse`
    /// is a port made for it earlier (by a run cut short) to take instead
    /// of making another.
    pub async fn bind_one(
        &self,
        i: &Instance,
        r: &RequestedNetwork,
        host: &str,
        reuse: Option<&Value>,
    ) -> Result<(Value, bool)> {
        let owner = format!("compute:{}", i.availability_zone.as_deref().unwrap_or("nova"));
        let binding = json!({"device_id": i.uuid, "device_owner": owner, "binding:host_id": host});
        let (port, created) = match (&r.port_id, reuse) {
            (Some(port_id), _) => (self.put_binding(port_id, json!({"port": binding})).await?, false),
            (None, Some(existing)) if existing["binding:host_id"] == host => (existing.clone(), true),
            (None, Some(existing)) => {
                let id = existing["id"].as_str().unwrap_or_default().to_string();
                (self.put_binding(&id, json!({"port": binding})).await?, true)
            }
            (None, None) => {
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
        Self::check_bound(&port, host)?;
        Ok((port, created))
    }

    /// Every requested interface, made (or found again) and bound to `host`.
    /// Running it twice makes no second port.
    pub async fn allocate(&self, i: &Instance, host: &str) -> Result<Vec<Vif>> {
        let mut existing = self.of_instance(&i.uuid).await?;
        let user_ports = brought(i);
        existing.retain(|p| !user_ports.iter().any(|b| p["id"] == b.as_str()));
        let mut names = HashMap::new();
        let mut vifs = Vec::new();
        for r in requested(i) {
            let reuse = match &r.port_id {
                Some(_) => None,
                None => existing
                    .iter()
                    .position(|p| p["network_id"].as_str() == r.network_id.as_deref())
                    .map(|n| existing.remove(n)),
            };
            let (port, created) = self.bind_one(i, &r, host, reuse.as_ref()).await?;
            vifs.push(self.vif_from_port(&port, created, r.tag.clone(), &mut names).await?);
        }
        // Anything else made for the instance is a leftover of an earlier try.
        for stray in existing {
            if let Some(id) = stray["id"].as_str() {
                self.release(id, false).await?;
            }
        }
        Ok(vifs)
    }

    /// Waits until the L2 agent on `host` reports the port up.
    pub async fn wait_active(&self, port_id: &str, host: &str, timeout: Duration) -> Result<Value> {
        let started = Instant::now();
        // Gentle: a thousand builds waiting at once poll together.
        let mut pause = Duration::from_millis(20);
        loop {
            let p = self
                .session
                .expect("network", Method::GET, &format!("/v2.0/ports/{port_id}"), None, None, StatusCode::OK)
                .await?;
            let port = p["port"].clone();
            if port["status"] == "ACTIVE" && port["binding:host_id"] == host {
                return Ok(port);
            }
            if port["binding:vif_type"] == "binding_failed" {
                return Err(ComputeError::PortBindingFailed(format!("Port {port_id} failed to bind on host {host}")));
            }
            if started.elapsed() > timeout {
                return Err(ComputeError::Internal(format!(
                    "Port {port_id} did not become active on {host} within {timeout:?} (is its L2 agent alive?)"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Points the ports at `host` (`""`: no host).
    pub async fn rebind(&self, vifs: &[Vif], host: &str) -> Result<()> {
        for v in vifs {
            let port = self.put_binding(&v.port_id, json!({"port": {"binding:host_id": host}})).await;
            match port {
                Ok(p) if !host.is_empty() => Self::check_bound(&p, host)?,
                Ok(_) | Err(ComputeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Gives back every port of the instance: ports made for it are deleted,
    /// ports the user brought are unbound and kept.
    pub async fn release_all(&self, i: &Instance) -> Result<()> {
        let user_ports = brought(i);
        for port in self.of_instance(&i.uuid).await? {
            let id = port["id"].as_str().unwrap_or_default();
            let kept =
                user_ports.iter().any(|b| b == id) || i.network_info.iter().any(|v| v.port_id == id && !v.created_here);
            self.release(id, kept).await?;
        }
        Ok(())
    }

    /// Deletes a port, or (for a user's own port) unbinds it.
    pub async fn release(&self, id: &str, keep: bool) -> Result<()> {
        let (status, body) = if keep {
            let body = json!({"port": {"device_id": "", "device_owner": "", "binding:host_id": ""}});
            self.session.call("network", Method::PUT, &format!("/v2.0/ports/{id}"), Some(&body), None).await?
        } else {
            self.session.call("network", Method::DELETE, &format!("/v2.0/ports/{id}"), None, None).await?
        };
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(remote_error("network", status, &body))
        }
    }

    /// The instance's interfaces as the network service has them now (Nova's
    /// inject_network_info refresh), keeping what the cache alone knows:
    /// tags, floating IPs, who made each port.
    pub async fn refresh(&self, i: &Instance) -> Result<Vec<Vif>> {
        let mut names = HashMap::new();
        let mut vifs = Vec::new();
        for port in self.of_instance(&i.uuid).await? {
            let id = port["id"].as_str().unwrap_or_default();
            let old = i.network_info.iter().find(|v| v.port_id == id);
            let mut vif = self
                .vif_from_port(&port, old.is_none_or(|v| v.created_here), old.and_then(|v| v.tag.clone()), &mut names)
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
        Ok(vifs)
    }
}
