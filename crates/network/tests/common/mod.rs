//! A real identity and network service on ephemeral ports, sharing an
//! in-process bus with stand-in agents, and a small client for both.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::Config;
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};
use network::{Network, NetworkConfig};
use network_agents::datapath::standin::StandIn;
use network_agents::{Agent, AgentIdentity};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "Adm1n!pw";

pub struct Cloud {
    pub identity_url: String,
    pub url: String,
    pub net: Arc<Network>,
    pub client: reqwest::Client,
    pub admin: String,
    pub bus: bus::Bus,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn network_config(dir: &Path, extra: &[(&str, &str, &str)]) -> NetworkConfig {
    let mut c = Config::empty();
    c.set("database", "connection", format!("sqlite:///{}", dir.join("network.db").display()));
    c.set("ml2", "tenant_network_types", "vxlan");
    c.set("ml2_type_vxlan", "vni_ranges", "1:1000");
    c.set("ml2_type_gre", "tunnel_id_ranges", "1:1000");
    c.set("ml2_type_vlan", "network_vlan_ranges", "physnet1:100:199");
    c.set("ml2_type_flat", "flat_networks", "public,physnet1");
    for (s, k, v) in extra {
        c.set(s, k, *v);
    }
    NetworkConfig::from_config(&c).unwrap()
}

impl Cloud {
    pub async fn start(dir: &Path, extra: &[(&str, &str, &str)]) -> Cloud {
        let mut c = Config::empty();
        c.set("database", "connection", format!("sqlite:///{}", dir.join("identity.db").display()));
        c.set("fernet_tokens", "key_repository", dir.join("fernet").display().to_string());
        c.set("credential", "key_repository", dir.join("cred").display().to_string());
        c.set("identity", "password_hash_rounds", "1");
        let identity = Identity::open(IdentityConfig::from_config(&c).unwrap()).await.unwrap();
        let bus = bus::Bus::in_process();
        let net = Network::open(network_config(dir, extra), bus.clone()).await.unwrap();
        network::agents::rpc::serve(net.clone(), "server").await.unwrap();

        let il = api::server::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await.unwrap();
        let nl = api::server::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await.unwrap();
        let identity_url = format!("http://{}", il.local_addr().unwrap());
        let url = format!("http://{}", nl.local_addr().unwrap());
        let catalog = vec![
            CatalogEntry {
                service_type: "identity".into(),
                name: "keystone".into(),
                url: format!("{identity_url}/v3"),
            },
            CatalogEntry { service_type: "network".into(), name: "neutron".into(), url: url.clone() },
        ];
        identity::bootstrap(
            &identity,
            &Bootstrap { admin_password: ADMIN_PASSWORD.into(), region: "RegionOne".into(), catalog },
        )
        .await
        .unwrap();
        let tokens = identity.token_cache.clone();
        let never = std::future::pending::<()>();
        let servers = vec![
            tokio::spawn(api::server::serve(il, identity::api::router(identity), std::future::pending::<()>())),
            tokio::spawn(api::server::serve(nl, network::api::router(net.clone(), tokens), never)),
        ];
        let client = reqwest::Client::new();
        let mut cloud = Cloud { identity_url, url, net, client, admin: String::new(), bus, servers };
        cloud.admin = cloud.login("admin", ADMIN_PASSWORD, "admin").await;
        cloud
    }

    pub async fn login(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self.client.post(format!("{}/v3/auth/tokens", self.identity_url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// A new project with a member user; returns its token and project id.
    pub async fn member(&self, name: &str) -> (String, String) {
        let call = |m: Method, p: &str, b: Value| {
            self.client
                .request(m, format!("{}{p}", self.identity_url))
                .header("x-auth-token", &self.admin)
                .json(&b)
                .send()
        };
        let p: Value =
            call(Method::POST, "/v3/projects", json!({"project": {"name": name}})).await.unwrap().json().await.unwrap();
        let pid = p["project"]["id"].as_str().unwrap().to_string();
        let u: Value = call(Method::POST, "/v3/users", json!({"user": {"name": name, "password": "pw"}}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let uid = u["user"]["id"].as_str().unwrap().to_string();
        let roles: Value = self
            .client
            .get(format!("{}/v3/roles?name=member", self.identity_url))
            .header("x-auth-token", &self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rid = roles["roles"][0]["id"].as_str().unwrap();
        call(Method::PUT, &format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"), json!(null)).await.unwrap();
        (self.login(name, "pw", name).await, pid)
    }

    pub async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.url, path)).header("x-auth-token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    /// POST as admin, expecting 201; returns the created resource.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (s, b) = self.call(Method::POST, path, &self.admin, Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{path}: {b}");
        b
    }

    /// Runs an in-tree stand-in agent of `agent_type` on `host`.
    pub async fn agent(&self, agent_type: &str, host: &str, configurations: Value, report_interval: Duration) {
        Agent {
            identity: AgentIdentity {
                agent_type: agent_type.into(),
                binary: format!("test-{host}"),
                topic: "N/A".into(),
                availability_zone: None,
                report_interval,
            },
            hosts: vec![host.into()],
            datapath: std::sync::Arc::new(StandIn::new(configurations)),
            firewall: std::sync::Arc::new(network_agents::firewall::noop::Noop),
            wires_ports: true,
        }
        .start(self.bus.clone())
        .await
        .unwrap();
        for _ in 0..200 {
            let (_, agents) = self.call(Method::GET, "/v2.0/agents", &self.admin.clone(), None).await;
            if agents["agents"].as_array().unwrap().iter().any(|a| a["host"] == host && a["agent_type"] == agent_type) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("agent {agent_type} on {host} never reported");
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}
