//! What an operator does by hand after installing OpenStack, done by the
//! all-in-one through the public APIs, once: an external network, a first image.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

/// The default image's name and size: an empty raw disk, enough for the fake
/// driver to boot a first server.
pub const DEFAULT_IMAGE: &str = "ferrostack-blank";
const DEFAULT_IMAGE_BYTES: usize = 1 << 20;

/// An admin session against the cloud's APIs.
pub struct Operator {
    client: reqwest::Client,
    token: String,
}

impl Operator {
    pub async fn login(auth_url: &str, password: &str) -> anyhow::Result<Operator> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let resp = client.post(format!("{auth_url}/auth/tokens")).json(&login).send().await?;
        anyhow::ensure!(resp.status() == 201, "admin login answered {}", resp.status());
        let token = resp.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        Ok(Operator { client, token })
    }

    async fn get(&self, url: String) -> anyhow::Result<Value> {
        let resp = self.client.get(&url).header("x-auth-token", &self.token).send().await?;
        anyhow::ensure!(resp.status().is_success(), "GET {url} answered {}", resp.status());
        Ok(resp.json().await?)
    }

    async fn post(&self, url: String, body: Value) -> anyhow::Result<Value> {
        let resp = self.client.post(&url).header("x-auth-token", &self.token).json(&body).send().await?;
        anyhow::ensure!(resp.status() == 201, "POST {url} answered {}", resp.status());
        Ok(resp.json().await?)
    }

    /// The external network projects route out through, as devstack makes it:
    /// `public`, flat on the `public` physical network, 172.24.4.0/24.
    pub async fn public_network(&self, network_url: &str) -> anyhow::Result<()> {
        let existing = self.get(format!("{network_url}/v2.0/networks?name=public&router:external=True")).await?;
        if existing["networks"].as_array().is_some_and(|n| !n.is_empty()) {
            return Ok(());
        }
        let body = json!({"network": {"name": "public", "router:external": true,
            "provider:network_type": "flat", "provider:physical_network": "public"}});
        let created = self.post(format!("{network_url}/v2.0/networks"), body).await?;
        let id = created["network"]["id"].as_str().context("public network id")?;
        let body = json!({"subnet": {"name": "public-subnet", "network_id": id, "ip_version": 4,
            "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": false}});
        self.post(format!("{network_url}/v2.0/subnets"), body).await?;
        Ok(())
    }

    /// A public image every project can boot from at once.
    pub async fn default_image(&self, image_url: &str) -> anyhow::Result<()> {
        let existing = self.get(format!("{image_url}/v2/images?name={DEFAULT_IMAGE}")).await?;
        if existing["images"].as_array().is_some_and(|i| i.iter().any(|i| i["status"] == "active")) {
            return Ok(());
        }
        let body = json!({"name": DEFAULT_IMAGE, "disk_format": "raw", "container_format": "bare",
            "visibility": "public", "description": "An empty 1 MiB raw disk, for the fake compute driver."});
        let created = self.post(format!("{image_url}/v2/images"), body).await?;
        let id = created["id"].as_str().context("default image id")?;
        let resp = self
            .client
            .put(format!("{image_url}/v2/images/{id}/file"))
            .header("x-auth-token", &self.token)
            .header("content-type", "application/octet-stream")
            .body(vec![0u8; DEFAULT_IMAGE_BYTES])
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 204, "uploading the default image answered {}", resp.status());
        Ok(())
    }
}
