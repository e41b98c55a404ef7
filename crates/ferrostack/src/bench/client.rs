//! The benchmarks' REST client: an admin token, the endpoints it came with,
//! and JSON calls that fail on any non-2xx answer.

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

/// An admin token and the endpoints it came with.
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
    pub project: String,
    pub compute: String,
    pub network: String,
    pub image: String,
}

impl Client {
    pub async fn login(auth_url: &str, password: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::new();
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": "admin", "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
        let r = http.post(format!("{auth_url}/auth/tokens")).json(&body).send().await?;
        let token = r.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body: Value = r.json().await?;
        let endpoint = |kind: &str| -> anyhow::Result<String> {
            let services = body["token"]["catalog"].as_array().context("catalog")?;
            let service = services.iter().find(|s| s["type"] == kind).context("service in catalog")?;
            let ep = service["endpoints"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["interface"] == "public"))
                .context("public endpoint")?;
            Ok(ep["url"].as_str().unwrap_or_default().trim_end_matches('/').to_string())
        };
        Ok(Client {
            project: body["token"]["project"]["id"].as_str().unwrap_or_default().to_string(),
            compute: endpoint("compute")?,
            network: endpoint("network")?,
            image: endpoint("image")?,
            http,
            token,
        })
    }

    /// The point is the machinery, not the limits.
    pub async fn lift_quotas(&self) -> anyhow::Result<()> {
        let p = &self.project;
        let nova = json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}});
        self.call(Method::PUT, format!("{}/os-quota-sets/{p}", self.compute), Some(nova)).await?;
        let neutron = json!({"quota": {"port": -1}});
        self.call(Method::PUT, format!("{}/v2.0/quotas/{p}", self.network), Some(neutron)).await?;
        Ok(())
    }

    /// The ids of the `ferrostack-blank` image and the `m1.nano` flavor the
    /// clouds are seeded with.
    pub async fn blank_image_and_nano_flavor(&self) -> anyhow::Result<(String, String)> {
        use anyhow::Context;
        let images = self.call(Method::GET, format!("{}/v2/images?name=ferrostack-blank", self.image), None).await?;
        let image = images["images"][0]["id"].as_str().context("the ferrostack-blank image")?.to_string();
        let flavors = self.call(Method::GET, format!("{}/flavors", self.compute), None).await?;
        let flavor = flavors["flavors"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["name"] == "m1.nano"))
            .and_then(|f| f["id"].as_str())
            .context("the m1.nano flavor")?
            .to_string();
        Ok((image, flavor))
    }

    pub async fn call(&self, method: Method, url: String, body: Option<Value>) -> anyhow::Result<Value> {
        self.call_at("2.96", method, url, body).await
    }

    pub async fn call_at(
        &self,
        version: &str,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", format!("compute {version}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("{method} {url} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Logs in as the admin of a running cloud, from its clouds.yaml (as
    /// `scripts/cloud up` or the all-in-one writes it).
    pub async fn from_clouds_yaml(file: &std::path::Path) -> anyhow::Result<Client> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let (auth_url, password) = crate::clouds::read_admin(&text)
            .with_context(|| format!("no auth_url and password in {}", file.display()))?;
        Client::login(&auth_url, &password).await
    }
}
