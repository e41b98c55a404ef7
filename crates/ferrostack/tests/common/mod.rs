//! The real binary as a test fixture: an all-in-one on free ports, and a small
//! REST client that logs in and finds each service in the catalog.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "s3cret!";

/// A running all-in-one, killed when dropped (a failing test leaves nothing).
pub struct AllInOne {
    child: Child,
    pub auth_url: String,
}

impl AllInOne {
    pub fn start(state: &Path) -> AllInOne {
        Self::start_with(state, None)
    }

    /// Starts with an extra INI file (OpenStack option names) over the defaults.
    pub fn start_with(state: &Path, config_file: Option<&Path>) -> AllInOne {
        Self::start_env(state, config_file, &[])
    }

    /// Starts with extra environment variables too (the saga test hooks).
    pub fn start_env(state: &Path, config_file: Option<&Path>, env: &[(&str, String)]) -> AllInOne {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrostack"));
        cmd.args(["all-in-one", "--state-dir"]).arg(state).args([
            "--identity-port",
            "0",
            "--network-port",
            "0",
            "--image-port",
            "0",
            "--compute-port",
            "0",
            "--console-port",
            "0",
            "--admin-password",
            PASSWORD,
        ]);
        if let Some(f) = config_file {
            cmd.arg("--config-file").arg(f);
        }
        if let Some(server) = database_server() {
            cmd.arg("--database-server").arg(server).arg("--database-prefix").arg(database_prefix(state));
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        // The cloud's log goes beside its state directory, kept across restarts.
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(state.with_extension("log")).expect("log file");
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().expect("start ferrostack");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("ready line");
        assert!(line.contains("ready"), "{line}");
        let auth_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|w| w.trim_end_matches([';', ',']).to_string())
            .expect("identity URL in the ready line");
        AllInOne { child, auth_url }
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        self.child.wait().expect("wait")
    }

    /// SIGKILL: a crash, with no chance to tidy up.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AllInOne {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The MariaDB/PostgreSQL server the tests keep their databases on
/// (`FERROSTACK_TEST_DATABASE_SERVER`, a URL with no database), or none: SQLite
/// files in the state directory.
pub fn database_server() -> Option<String> {
    std::env::var("FERROSTACK_TEST_DATABASE_SERVER").ok().filter(|s| !s.is_empty())
}

/// The databases of one state directory are `fst_<hash of its path>_<service>`:
/// the same across restarts of one test's cloud, apart from every other test's.
/// scripts/test drops every `fst_%` database at the end.
fn database_prefix(state: &Path) -> String {
    // FNV-1a: stable across runs and Rust versions, unlike DefaultHasher.
    let hash = state
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
    format!("fst_{hash:016x}_")
}

/// The `[database] connection` of `service` in the cloud kept in `state`.
pub fn database_url(state: &Path, service: &str) -> String {
    match database_server() {
        Some(server) => format!("{}/{}{service}", server.trim_end_matches('/'), database_prefix(state)),
        None => format!("sqlite:///{}", state.join(format!("{service}.db")).display()),
    }
}

/// Logs in as admin on the admin project and returns the token and the body.
pub async fn login(client: &reqwest::Client, auth_url: &str) -> (StatusCode, String, Value) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
        {"name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = client.post(format!("{auth_url}/auth/tokens")).json(&body).send().await.unwrap();
    let status = r.status();
    let token = r.headers().get("x-subject-token").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, token, body)
}

/// An admin session: the token and the public endpoint of every service.
#[derive(Clone)]
pub struct Session {
    pub http: reqwest::Client,
    pub token: String,
    catalog: Value,
}

impl Session {
    pub async fn admin(cloud: &AllInOne) -> Session {
        Session::login(&cloud.auth_url).await
    }

    /// The admin (password [`PASSWORD`]) of the cloud whose identity is at `auth_url`.
    pub async fn login(auth_url: &str) -> Session {
        let http = reqwest::Client::new();
        let (status, token, body) = login(&http, auth_url).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Session { http, token, catalog: body["token"]["catalog"].clone() }
    }

    /// The same session, reaching the service of `kind` at `url` instead of
    /// its catalog's public endpoint (another of its API processes).
    #[allow(dead_code)]
    pub fn with_endpoint(&self, kind: &str, url: &str) -> Session {
        let mut s = self.clone();
        for service in s.catalog.as_array_mut().into_iter().flatten().filter(|s| s["type"] == kind) {
            for ep in service["endpoints"].as_array_mut().into_iter().flatten().filter(|e| e["interface"] == "public") {
                ep["url"] = json!(url);
            }
        }
        s
    }

    /// The public URL of the service of `kind` (identity, network, image, compute).
    pub fn endpoint(&self, kind: &str) -> String {
        let service = self.catalog.as_array().unwrap().iter().find(|s| s["type"] == kind).expect(kind);
        let ep = service["endpoints"].as_array().unwrap().iter().find(|e| e["interface"] == "public").expect("public");
        ep["url"].as_str().unwrap().trim_end_matches('/').to_string()
    }

    /// `method` on `path` of the service `kind`, with the latest compute microversion.
    pub async fn call(&self, method: Method, kind: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_at("2.96", method, kind, path, body).await
    }

    /// Like `call`, at compute microversion `version`.
    pub async fn call_at(
        &self,
        version: &str,
        method: Method,
        kind: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.endpoint(kind)))
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", format!("compute {version}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `method` on `path` with a body of raw bytes and extra headers: for
    /// requests a JSON client would never send.
    pub async fn raw(
        &self,
        method: Method,
        kind: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.endpoint(kind)))
            .header("x-auth-token", &self.token)
            .body(body.to_vec());
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    /// Like `call`, but a request that gets no answer (the cloud died) is
    /// `None` rather than a panic.
    pub async fn try_call(&self, method: Method, kind: &str, path: &str, body: Option<Value>) -> Option<StatusCode> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.endpoint(kind)))
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", "compute 2.96");
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.ok().map(|r| r.status())
    }

    /// Like `call`, insisting on `expected`.
    pub async fn expect(&self, expected: u16, method: Method, kind: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), kind, path, body).await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {value}");
        value
    }

    /// Polls `path` until `done` holds for its body, for at most `limit`.
    pub async fn wait_for(&self, kind: &str, path: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (_, body) = self.call(Method::GET, kind, path, None).await;
            if done(&body) {
                return body;
            }
            assert!(start.elapsed() < limit, "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
