//! A real identity service on an ephemeral port, and a small client for it.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use common::Config;
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "Adm1n!pw";

pub struct Cloud {
    pub base: String,
    pub identity: Arc<Identity>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub client: reqwest::Client,
}

pub fn config(dir: &Path) -> IdentityConfig {
    let mut c = Config::empty();
    c.set("database", "connection", format!("sqlite:///{}", dir.join("identity.db").display()));
    c.set("fernet_tokens", "key_repository", dir.join("fernet").display().to_string());
    c.set("credential", "key_repository", dir.join("cred").display().to_string());
    // Tests hash many passwords; one pass keeps them quick.
    c.set("identity", "password_hash_rounds", "1");
    IdentityConfig::from_config(&c).unwrap()
}

impl Cloud {
    /// Starts identity on a free port with its state in `dir`, bootstrapped.
    pub async fn start(dir: &Path) -> Cloud {
        let identity = Identity::open(config(dir)).await.unwrap();
        let listener = api::server::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let catalog =
            vec![CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: format!("{base}/v3") }];
        identity::bootstrap(
            &identity,
            &Bootstrap { admin_password: ADMIN_PASSWORD.into(), region: "RegionOne".into(), catalog },
        )
        .await
        .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = identity::api::router(identity.clone());
        let server = tokio::spawn(api::server::serve(listener, router, async {
            let _ = stopped.await;
        }));
        Cloud { base, identity, stop: Some(stop), server: Some(server), client: reqwest::Client::new() }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full(method, path, token, body).await;
        (status, body)
    }

    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, headers, body)
    }

    /// A password token; panics unless it is issued.
    pub async fn login(&self, user: &str, password: &str, project: Option<&str>) -> (String, Value) {
        let mut auth = json!({"identity": {"methods": ["password"],
            "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
        }
        let (status, headers, body) =
            self.call_full(Method::POST, "/v3/auth/tokens", None, Some(json!({"auth": auth}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = headers["x-subject-token"].to_str().unwrap().to_string();
        (token, body["token"].clone())
    }

    pub async fn admin(&self) -> String {
        self.login("admin", ADMIN_PASSWORD, Some("admin")).await.0
    }

    /// Validates `subject` with `token`; the status says whether it is alive.
    pub async fn validate(&self, token: &str, subject: &str) -> StatusCode {
        self.client
            .get(format!("{}/v3/auth/tokens", self.base))
            .header("x-auth-token", token)
            .header("x-subject-token", subject)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Creates a project, a user with `password` and the role `role` on it.
    pub async fn member(&self, admin: &str, name: &str, password: &str, role: &str) -> (String, String) {
        let (s, p) =
            self.call(Method::POST, "/v3/projects", Some(admin), Some(json!({"project": {"name": name}}))).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let project_id = p["project"]["id"].as_str().unwrap().to_string();
        let (s, u) = self
            .call(Method::POST, "/v3/users", Some(admin), Some(json!({"user": {"name": name, "password": password}})))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        let user_id = u["user"]["id"].as_str().unwrap().to_string();
        let role_id = self.role_id(admin, role).await;
        let (s, _) = self
            .call(Method::PUT, &format!("/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"), Some(admin), None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        (user_id, project_id)
    }

    pub async fn role_id(&self, admin: &str, name: &str) -> String {
        let (_, roles) = self.call(Method::GET, &format!("/v3/roles?name={name}"), Some(admin), None).await;
        roles["roles"][0]["id"].as_str().unwrap_or_else(|| panic!("no role {name}: {roles}")).to_string()
    }
}
