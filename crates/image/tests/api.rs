//! Glance's API over HTTP with a real identity service: the image life cycle
//! with data, who sees what, members, filters and paging, and that a broken
//! upload leaves the image queued with no data.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use common::Config;
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};
use image::{ImageConfig, ImageService};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "Adm1n!pw";

struct Cloud {
    identity_url: String,
    url: String,
    client: reqwest::Client,
    admin: String,
    dir: std::path::PathBuf,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

impl Cloud {
    async fn start(dir: &Path, size_cap: u64) -> Cloud {
        let mut c = Config::empty();
        c.set("database", "connection", format!("sqlite:///{}", dir.join("identity.db").display()));
        c.set("fernet_tokens", "key_repository", dir.join("fernet").display().to_string());
        c.set("credential", "key_repository", dir.join("cred").display().to_string());
        c.set("identity", "password_hash_rounds", "1");
        let identity = Identity::open(IdentityConfig::from_config(&c).unwrap()).await.unwrap();
        c.set("database", "connection", format!("sqlite:///{}", dir.join("image.db").display()));
        c.set("glance_store", "filesystem_store_datadir", dir.join("images").display().to_string());
        c.set("DEFAULT", "image_size_cap", size_cap.to_string());
        let images = ImageService::open(ImageConfig::from_config(&c).unwrap()).await.unwrap();
        let il = api::server::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await.unwrap();
        let gl = api::server::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await.unwrap();
        let identity_url = format!("http://{}", il.local_addr().unwrap());
        let url = format!("http://{}", gl.local_addr().unwrap());
        let catalog =
            vec![CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: identity_url.clone() }];
        identity::bootstrap(
            &identity,
            &Bootstrap { admin_password: PASSWORD.into(), region: "RegionOne".into(), catalog },
        )
        .await
        .unwrap();
        let tokens = identity.token_cache.clone();
        let servers = vec![
            tokio::spawn(api::server::serve(il, identity::api::router(identity), std::future::pending::<()>())),
            tokio::spawn(api::server::serve(gl, image::api::router(images, tokens), std::future::pending::<()>())),
        ];
        let mut cloud = Cloud {
            identity_url,
            url,
            client: reqwest::Client::new(),
            admin: String::new(),
            dir: dir.to_path_buf(),
            servers,
        };
        cloud.admin = cloud.login("admin", PASSWORD, "admin").await;
        cloud
    }

    async fn login(&self, user: &str, password: &str, project: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
            {"name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = self.client.post(format!("{}/v3/auth/tokens", self.identity_url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// A new project with a member user: (token, project id).
    async fn member(&self, name: &str) -> (String, String) {
        let post = |p: &str, b: Value| {
            self.client.post(format!("{}{p}", self.identity_url)).header("x-auth-token", &self.admin).json(&b).send()
        };
        let p: Value = post("/v3/projects", json!({"project": {"name": name}})).await.unwrap().json().await.unwrap();
        let pid = p["project"]["id"].as_str().unwrap().to_string();
        let u: Value =
            post("/v3/users", json!({"user": {"name": name, "password": "pw"}})).await.unwrap().json().await.unwrap();
        let uid = u["user"]["id"].as_str().unwrap();
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
        let r = self
            .client
            .put(format!("{}/v3/projects/{pid}/users/{uid}/roles/{rid}", self.identity_url))
            .header("x-auth-token", &self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        (self.login(name, "pw", name).await, pid)
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req =
            self.client.request(method.clone(), format!("{}{}", self.url, path)).header("x-auth-token", token);
        if let Some(b) = body {
            req = if method == Method::PATCH {
                req.header("content-type", "application/openstack-images-v2.1-json-patch").body(b.to_string())
            } else {
                req.json(&b)
            };
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    async fn create(&self, token: &str, body: Value) -> Value {
        let (s, b) = self.call(Method::POST, "/v2/images", token, Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    async fn upload(&self, token: &str, id: &str, data: Vec<u8>) -> StatusCode {
        self.client
            .put(format!("{}/v2/images/{id}/file", self.url))
            .header("x-auth-token", token)
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn names(&self, token: &str, query: &str) -> Vec<String> {
        let (s, b) = self.call(Method::GET, &format!("/v2/images{query}"), token, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap_or_default().to_string()).collect()
    }
}

#[tokio::test]
async fn upload_download_and_life_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), 1 << 20).await;
    // No interoperable import methods: data arrives only through PUT /file.
    let (status, info) = cloud.call(Method::GET, "/v2/info/import", &cloud.admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["import-methods"]["value"], json!([]));
    let img = cloud
        .create(
            &cloud.admin,
            json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "os_distro": "cirros"}),
        )
        .await;
    assert_eq!(img["status"], "queued");
    assert_eq!(img["visibility"], "shared");
    assert_eq!(img["os_distro"], "cirros");
    let id = img["id"].as_str().unwrap();

    // A qcow2 header that says 1 GiB virtual; the rest is padding.
    let mut data = b"QFI\xfb\x00\x00\x00\x03".to_vec();
    data.extend_from_slice(&[0u8; 16]);
    data.extend_from_slice(&(1u64 << 30).to_be_bytes());
    data.resize(4096, 7);
    assert_eq!(cloud.upload(&cloud.admin, id, data.clone()).await, StatusCode::NO_CONTENT);
    let (_, img) = cloud.call(Method::GET, &format!("/v2/images/{id}"), &cloud.admin, None).await;
    assert_eq!(img["status"], "active");
    assert_eq!(img["size"], 4096);
    assert_eq!(img["virtual_size"], 1u64 << 30);
    assert_eq!(img["os_hash_algo"], "sha512");
    assert_eq!(img["checksum"].as_str().unwrap().len(), 32);
    assert_eq!(img["os_hash_value"].as_str().unwrap().len(), 128);
    // Data goes in once.
    assert_eq!(cloud.upload(&cloud.admin, id, vec![1]).await, StatusCode::CONFLICT);

    let resp = cloud
        .client
        .get(format!("{}/v2/images/{id}/file", cloud.url))
        .header("x-auth-token", &cloud.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-md5"], img["checksum"].as_str().unwrap());
    assert_eq!(resp.bytes().await.unwrap().to_vec(), data);

    // Deactivated images cannot be downloaded by users, and come back.
    let (s, _) = cloud.call(Method::POST, &format!("/v2/images/{id}/actions/deactivate"), &cloud.admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, img) = cloud.call(Method::GET, &format!("/v2/images/{id}"), &cloud.admin, None).await;
    assert_eq!(img["status"], "deactivated");
    let (s, _) = cloud.call(Method::POST, &format!("/v2/images/{id}/actions/reactivate"), &cloud.admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Protected images stay until unprotected.
    let patch = json!([{"op": "replace", "path": "/protected", "value": true}, {"op": "add", "path": "/hw_disk_bus", "value": "virtio"}]);
    let (s, img) = cloud.call(Method::PATCH, &format!("/v2/images/{id}"), &cloud.admin, Some(patch)).await;
    assert_eq!(s, StatusCode::OK, "{img}");
    assert_eq!(img["hw_disk_bus"], "virtio");
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2/images/{id}"), &cloud.admin, None).await.0,
        StatusCode::FORBIDDEN
    );
    let patch =
        json!([{"op": "replace", "path": "/protected", "value": false}, {"op": "remove", "path": "/hw_disk_bus"}]);
    let (s, img) = cloud.call(Method::PATCH, &format!("/v2/images/{id}"), &cloud.admin, Some(patch)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(img.get("hw_disk_bus").is_none());
    // Read-only and reserved attributes are refused.
    for path in ["/status", "/size", "/os_glance_import_task"] {
        let patch = json!([{"op": "add", "path": path, "value": "x"}]);
        assert_eq!(
            cloud.call(Method::PATCH, &format!("/v2/images/{id}"), &cloud.admin, Some(patch)).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2/images/{id}"), &cloud.admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(!dir.path().join("images").join(id).exists(), "the data goes with the image");
    assert_eq!(cloud.call(Method::GET, &format!("/v2/images/{id}"), &cloud.admin, None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn failed_uploads_leave_the_image_queued_and_bodies_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), 1000).await;
    let id = cloud.create(&cloud.admin, json!({"name": "big"})).await["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.upload(&cloud.admin, &id, vec![0; 2000]).await, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, img) = cloud.call(Method::GET, &format!("/v2/images/{id}"), &cloud.admin, None).await;
    assert_eq!(img["status"], "queued");
    let left: Vec<_> = std::fs::read_dir(cloud.dir.join("images")).unwrap().collect();
    assert!(left.is_empty(), "no partial data");
    assert_eq!(cloud.upload(&cloud.admin, &id, vec![0; 10]).await, StatusCode::NO_CONTENT);

    for bad in [
        json!({"disk_format": "floppy"}),
        json!({"min_ram": -1}),
        json!({"visibility": "everyone"}),
        json!({"id": "nope"}),
        json!({"protected": "yes"}),
    ] {
        let (s, e) = cloud.call(Method::POST, "/v2/images", &cloud.admin, Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert!(e["code"].as_str().unwrap().starts_with("400"), "{e}");
    }
    let (s, _) = cloud.call(Method::POST, "/v2/images", &cloud.admin, Some(json!({"id": id}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn visibility_members_filters_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), 1 << 20).await;
    let (alice, _) = cloud.member("alice").await;
    let (bob, bob_project) = cloud.member("bob").await;

    let public = cloud.create(&cloud.admin, json!({"name": "public", "visibility": "public", "tags": ["base"]})).await;
    let private = cloud.create(&alice, json!({"name": "private", "visibility": "private"})).await;
    let shared = cloud.create(&alice, json!({"name": "shared"})).await;
    let community = cloud.create(&alice, json!({"name": "community", "visibility": "community"})).await;
    let hidden = cloud.create(&alice, json!({"name": "hidden", "os_hidden": true})).await;
    // Only admins publish.
    assert_eq!(
        cloud.call(Method::POST, "/v2/images", &alice, Some(json!({"visibility": "public"}))).await.0,
        StatusCode::FORBIDDEN
    );

    // Owners see their community images too; others only when asking for them.
    assert_eq!(cloud.names(&alice, "?sort=name:asc").await, ["community", "private", "public", "shared"]);
    assert_eq!(cloud.names(&alice, "?os_hidden=true").await, ["hidden"]);
    assert_eq!(cloud.names(&bob, "?sort=name:asc").await, ["public"]);
    assert_eq!(cloud.names(&bob, "?visibility=community").await, ["community"]);
    let private_id = private["id"].as_str().unwrap();
    assert_eq!(cloud.call(Method::GET, &format!("/v2/images/{private_id}"), &bob, None).await.0, StatusCode::NOT_FOUND);
    // Bob may see the community image but not change it.
    let community_id = community["id"].as_str().unwrap();
    let patch = json!([{"op": "replace", "path": "/name", "value": "mine"}]);
    assert_eq!(
        cloud.call(Method::PATCH, &format!("/v2/images/{community_id}"), &bob, Some(patch)).await.0,
        StatusCode::FORBIDDEN
    );

    // Sharing: pending until bob accepts; only bob decides.
    let shared_id = shared["id"].as_str().unwrap();
    let path = format!("/v2/images/{shared_id}/members");
    let (s, m) = cloud.call(Method::POST, &path, &alice, Some(json!({"member": bob_project}))).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "pending");
    assert_eq!(
        cloud.call(Method::POST, &path, &alice, Some(json!({"member": bob_project}))).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(cloud.call(Method::GET, &format!("/v2/images/{shared_id}"), &bob, None).await.0, StatusCode::OK);
    assert_eq!(cloud.names(&bob, "?member_status=pending&sort=name:asc").await, ["public", "shared"]);
    assert_eq!(cloud.names(&bob, "?sort=name:asc").await, ["public"]);
    let member_path = format!("{path}/{bob_project}");
    assert_eq!(
        cloud.call(Method::PUT, &member_path, &alice, Some(json!({"status": "accepted"}))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        cloud.call(Method::PUT, &member_path, &bob, Some(json!({"status": "maybe"}))).await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, m) = cloud.call(Method::PUT, &member_path, &bob, Some(json!({"status": "accepted"}))).await;
    assert_eq!((s, m["status"].as_str()), (StatusCode::OK, Some("accepted")));
    assert_eq!(cloud.names(&bob, "?sort=name:asc").await, ["public", "shared"]);
    // Members only of shared images.
    let (s, _) = cloud
        .call(Method::POST, &format!("/v2/images/{private_id}/members"), &alice, Some(json!({"member": bob_project})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(cloud.call(Method::DELETE, &member_path, &alice, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(cloud.call(Method::GET, &format!("/v2/images/{shared_id}"), &bob, None).await.0, StatusCode::NOT_FOUND);

    // Filters: `in:`, tags, and paging with `next` links.
    let in_query = format!(
        "?id=in:{},{}&sort_key=name&sort_dir=asc",
        public["id"].as_str().unwrap(),
        hidden["id"].as_str().unwrap()
    );
    assert_eq!(cloud.names(&cloud.admin, &in_query).await, ["public"]);
    assert_eq!(cloud.names(&cloud.admin, "?tag=base").await, ["public"]);
    assert_eq!(cloud.names(&cloud.admin, "?name=in:private,\"shared\"&sort=name:asc").await, ["private", "shared"]);
    let (_, page) = cloud.call(Method::GET, "/v2/images?limit=2&sort=name:asc", &cloud.admin, None).await;
    assert_eq!(page["images"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, page2) = cloud.call(Method::GET, &next, &cloud.admin, None).await;
    assert_eq!(page2["images"][0]["name"], "public");
    let (s, _) = cloud.call(Method::GET, "/v2/images?sort_key=colour", &cloud.admin, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = cloud.call(Method::GET, "/", &cloud.admin, None).await;
    assert_eq!(s, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(v["versions"][0]["status"], "CURRENT");
}
