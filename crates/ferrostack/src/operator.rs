//! What an operator does by hand after installing OpenStack, done by the
//! all-in-one through the public APIs, once: an external network, a first
//! image, the compute service's user, the usual flavors.

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

    /// A service's own user: in the `service` project, with the admin role
    /// (what devstack gives nova, to bind ports and clean up after anyone).
    pub async fn service_user(&self, auth_url: &str, name: &str, password: &str) -> anyhow::Result<()> {
        let project = match self.get(format!("{auth_url}/projects?name=service")).await?["projects"][0]["id"].as_str() {
            Some(id) => id.to_string(),
            None => {
                let p = self
                    .post(
                        format!("{auth_url}/projects"),
                        json!({"project": {"name": "service", "domain_id": "default"}}),
                    )
                    .await?;
                p["project"]["id"].as_str().context("service project id")?.to_string()
            }
        };
        let user = match self.get(format!("{auth_url}/users?name={name}")).await?["users"][0]["id"].as_str() {
            Some(id) => {
                let body = json!({"user": {"password": password}});
                let resp = self
                    .client
                    .patch(format!("{auth_url}/users/{id}"))
                    .header("x-auth-token", &self.token)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "resetting the {name} password answered {}", resp.status());
                id.to_string()
            }
            None => {
                let body = json!({"user": {"name": name, "password": password, "domain_id": "default", "default_project_id": project}});
                self.post(format!("{auth_url}/users"), body).await?["user"]["id"]
                    .as_str()
                    .context("service user id")?
                    .to_string()
            }
        };
        let admin = self.get(format!("{auth_url}/roles?name=admin")).await?["roles"][0]["id"]
            .as_str()
            .context("admin role")?
            .to_string();
        let resp = self
            .client
            .put(format!("{auth_url}/projects/{project}/users/{user}/roles/{admin}"))
            .header("x-auth-token", &self.token)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "granting {name} the admin role answered {}", resp.status());
        Ok(())
    }

    /// Waits until `n` compute hosts report up (`nova-compute` services), or
    /// fails after `timeout`.
    pub async fn wait_for_compute_hosts(&self, compute_url: &str, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let services = self.get(format!("{compute_url}/v2.1/os-services?binary=nova-compute")).await?;
            let up = services["services"].as_array().map_or(0, |s| s.iter().filter(|s| s["state"] == "up").count());
            if up >= n {
                return Ok(());
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "{up} of {n} compute hosts up after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Devstack's flavors, so `--flavor m1.tiny` works as everywhere.
    pub async fn default_flavors(&self, compute_url: &str) -> anyhow::Result<()> {
        let existing = self.get(format!("{compute_url}/v2.1/flavors?is_public=None")).await?;
        if existing["flavors"].as_array().is_some_and(|f| !f.is_empty()) {
            return Ok(());
        }
        for (id, name, ram, disk, vcpus) in [
            ("1", "m1.tiny", 512, 1, 1),
            ("2", "m1.small", 2048, 20, 1),
            ("3", "m1.medium", 4096, 40, 2),
            ("4", "m1.large", 8192, 80, 4),
            ("5", "m1.xlarge", 16384, 160, 8),
            ("42", "m1.nano", 192, 1, 1),
            ("84", "m1.micro", 256, 1, 1),
        ] {
            let body = json!({"flavor": {"id": id, "name": name, "ram": ram, "disk": disk, "vcpus": vcpus}});
            let resp = self
                .client
                .post(format!("{compute_url}/v2.1/flavors"))
                .header("x-auth-token", &self.token)
                .json(&body)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "creating flavor {name} answered {}", resp.status());
        }
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
