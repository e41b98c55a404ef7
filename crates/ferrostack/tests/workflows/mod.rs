//! Compute's workflows driven through the real binary, and the check that
//! the cloud is a clean slate: what the crash, unwind and run-twice tests of
//! every saga share.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use saga::StepName;
use serde_json::{json, Value};

use crate::common::{AllInOne, Session};

pub const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Build,
    Delete,
    Resize,
    ConfirmResize,
    RevertResize,
    ColdMigration,
    LiveMigration,
    Shelve,
    Unshelve,
    Snapshot,
}

pub const ALL: [Workflow; 10] = [
    Workflow::Build,
    Workflow::Delete,
    Workflow::Resize,
    Workflow::ConfirmResize,
    Workflow::RevertResize,
    Workflow::ColdMigration,
    Workflow::LiveMigration,
    Workflow::Shelve,
    Workflow::Unshelve,
    Workflow::Snapshot,
];

fn names<S: StepName>() -> Vec<&'static str> {
    S::ALL.iter().map(|s| s.name()).collect()
}

/// How a workflow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Undone,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Finished => "finished",
            Outcome::Undone => "undone",
        })
    }
}

impl Workflow {
    pub fn label(self) -> &'static str {
        match self {
            Workflow::Build => "build",
            Workflow::Delete => "delete",
            Workflow::Resize => "resize",
            Workflow::ConfirmResize => "resize confirm",
            Workflow::RevertResize => "resize revert",
            Workflow::ColdMigration => "cold migration",
            Workflow::LiveMigration => "live migration",
            Workflow::Shelve => "shelve",
            Workflow::Unshelve => "unshelve",
            Workflow::Snapshot => "snapshot",
        }
    }

    /// The saga that carries the workflow out, as the test hooks name it.
    pub fn saga(self) -> &'static str {
        match self {
            Workflow::Build => "build_instance",
            Workflow::Delete => "delete_instance",
            Workflow::Resize | Workflow::ColdMigration => "migrate_instance",
            Workflow::ConfirmResize => "confirm_resize",
            Workflow::RevertResize => "revert_resize",
            Workflow::LiveMigration => "live_migrate_instance",
            Workflow::Shelve => "shelve_instance",
            Workflow::Unshelve => "unshelve_instance",
            Workflow::Snapshot => "snapshot_instance",
        }
    }

    pub fn steps(self) -> Vec<&'static str> {
        use compute::sagas::*;
        match self {
            Workflow::Build => names::<build::BuildStep>(),
            Workflow::Delete => names::<delete::DeleteStep>(),
            Workflow::Resize | Workflow::ColdMigration => names::<migrate::MigrateStep>(),
            Workflow::ConfirmResize => names::<confirm_resize::ConfirmStep>(),
            Workflow::RevertResize => names::<revert_resize::RevertStep>(),
            Workflow::LiveMigration => names::<live_migrate::LiveMigrateStep>(),
            Workflow::Shelve => names::<shelve::ShelveStep>(),
            Workflow::Unshelve => names::<unshelve::UnshelveStep>(),
            Workflow::Snapshot => names::<snapshot::SnapshotStep>(),
        }
    }

    /// How the workflow ends when `step` fails once: undone, unless the
    /// step is past its saga's point of no return (then it is retried), or
    /// the saga tries again by itself (a build takes another host).
    pub fn after_failure_at(self, step: &str) -> Outcome {
        let finishes = match self {
            Workflow::Build | Workflow::Delete | Workflow::ConfirmResize | Workflow::RevertResize => true,
            Workflow::LiveMigration => matches!(step, "record_host" | "clean_source" | "complete"),
            Workflow::Shelve => matches!(step, "destroy_guest" | "unbind_ports" | "offload"),
            Workflow::Unshelve => step == "finish",
            Workflow::Snapshot => step != "upload",
            Workflow::Resize | Workflow::ColdMigration => false,
        };
        if finishes {
            Outcome::Finished
        } else {
            Outcome::Undone
        }
    }
}

/// A cloud with a tenant network and the all-in-one's image.
pub struct Cloud {
    pub cloud: AllInOne,
    pub s: Session,
    pub state: PathBuf,
    /// An INI file over the all-in-one's defaults, kept across restarts.
    pub config: Option<PathBuf>,
    /// Sagas the last crash left unfinished, for the restart to take up.
    pub interrupted: usize,
    pub net: String,
    pub image: String,
}

/// What a workflow works on, and how it was before.
#[derive(Debug, Clone)]
pub struct Subject {
    pub server: String,
    pub host: String,
    /// The image a snapshot goes into.
    pub image: Option<String>,
}

impl Cloud {
    pub async fn start(state: &Path, env: &[(&str, String)]) -> Cloud {
        Self::start_with(state, None, env).await
    }

    pub async fn start_with(state: &Path, config: Option<&Path>, env: &[(&str, String)]) -> Cloud {
        let cloud = AllInOne::start_env(state, config, env);
        let s = Session::admin(&cloud).await;
        let net = s
            .expect(201, Method::POST, "network", "/v2.0/networks", Some(json!({"network": {"name": "private"}})))
            .await;
        let net = net["network"]["id"].as_str().unwrap().to_string();
        let subnet = json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}});
        s.expect(201, Method::POST, "network", "/v2.0/subnets", Some(subnet)).await;
        let images = s.expect(200, Method::GET, "image", "/v2/images?name=ferrostack-blank", None).await;
        let image = images["images"][0]["id"].as_str().unwrap().to_string();
        Cloud {
            cloud,
            s,
            state: state.to_path_buf(),
            config: config.map(Path::to_path_buf),
            interrupted: 0,
            net,
            image,
        }
    }

    /// The same state directory after a crash: a new process, no hooks.
    pub async fn restart(self) -> Cloud {
        self.cloud.crash();
        let db = db::Db::connect(&crate::common::database_url(&self.state, "compute")).await.unwrap();
        let interrupted = db.fetch_all(db.q("SELECT id FROM saga")).await.unwrap().len();
        db.close().await;
        let cloud = AllInOne::start_with(&self.state, self.config.as_deref());
        let s = Session::admin(&cloud).await;
        Cloud { cloud, s, state: self.state, config: self.config, interrupted, net: self.net, image: self.image }
    }

    pub async fn server(&self, id: &str) -> Option<Value> {
        let (status, body) = self.s.call(Method::GET, "compute", &format!("/servers/{id}"), None).await;
        (status != 404).then(|| body["server"].clone())
    }

    pub async fn action(&self, id: &str, body: Value) {
        let (status, answer) =
            self.s.call(Method::POST, "compute", &format!("/servers/{id}/action"), Some(body.clone())).await;
        assert!(status.is_success(), "{body}: {status} {answer}");
    }

    /// How many sagas work on the server now.
    async fn sagas_on(&self, id: &str) -> usize {
        let db = db::Db::connect(&crate::common::database_url(&self.state, "compute")).await.unwrap();
        let rows = db.fetch_all(db.q("SELECT id FROM saga WHERE saga_key = ?").bind(id.to_string())).await.unwrap();
        db.close().await;
        rows.len()
    }

    /// Waits until the server is not in the middle of anything (or gone):
    /// no task, and no saga working on it.
    pub async fn stable(&self, id: &str) -> Option<Value> {
        let start = Instant::now();
        loop {
            let server = self.server(id).await;
            let busy = self.sagas_on(id).await > 0;
            match &server {
                None if !busy => return None,
                Some(s) if !busy && s["OS-EXT-STS:task_state"].is_null() && s["status"] != "BUILD" => return server,
                _ => assert!(start.elapsed() < WAIT, "the server never settled: {server:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_status(&self, id: &str, status: &str) -> Value {
        let server = self.stable(id).await.expect("the server exists");
        assert_eq!(server["status"], status, "{server}");
        server
    }

    pub async fn boot(&self, name: &str) -> String {
        let body = json!({"server": {"name": name, "imageRef": self.image, "flavorRef": "1",
            "networks": [{"uuid": self.net}]}});
        let created = self.s.expect(202, Method::POST, "compute", "/servers", Some(body)).await;
        created["server"]["id"].as_str().unwrap().to_string()
    }

    /// What the workflow needs before it starts: an ACTIVE server, resized
    /// or shelved for the workflows that end those.
    pub async fn prepare(&self, w: Workflow) -> Subject {
        if w == Workflow::Build {
            return Subject { server: String::new(), host: String::new(), image: None };
        }
        let id = self.boot("subject").await;
        let server = self.wait_status(&id, "ACTIVE").await;
        match w {
            Workflow::ConfirmResize | Workflow::RevertResize => {
                self.action(&id, json!({"resize": {"flavorRef": "2"}})).await;
                self.wait_status(&id, "VERIFY_RESIZE").await;
            }
            Workflow::Unshelve => {
                self.action(&id, json!({"shelve": null})).await;
                self.wait_status(&id, "SHELVED_OFFLOADED").await;
            }
            _ => {}
        }
        let host = server["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default().to_string();
        Subject { server: id, host, image: None }
    }

    /// Starts the workflow.
    pub async fn trigger(&self, w: Workflow, subject: &mut Subject) {
        let id = subject.server.clone();
        match w {
            Workflow::Build => subject.server = self.boot("built").await,
            Workflow::Delete => {
                self.s.expect(204, Method::DELETE, "compute", &format!("/servers/{id}"), None).await;
            }
            Workflow::Resize => self.action(&id, json!({"resize": {"flavorRef": "2"}})).await,
            Workflow::ConfirmResize => self.action(&id, json!({"confirmResize": null})).await,
            Workflow::RevertResize => self.action(&id, json!({"revertResize": null})).await,
            Workflow::ColdMigration => self.action(&id, json!({"migrate": null})).await,
            Workflow::LiveMigration => {
                self.action(&id, json!({"os-migrateLive": {"host": null, "block_migration": "auto"}})).await
            }
            Workflow::Shelve => self.action(&id, json!({"shelve": null})).await,
            Workflow::Unshelve => self.action(&id, json!({"unshelve": null})).await,
            Workflow::Snapshot => {
                let (status, body) = self
                    .s
                    .call(
                        Method::POST,
                        "compute",
                        &format!("/servers/{id}/action"),
                        Some(json!({"createImage": {"name": "snap"}})),
                    )
                    .await;
                assert_eq!(status, 202, "{body}");
                subject.image = body["image_id"].as_str().map(String::from);
            }
        }
    }

    /// Waits for the workflow to end and says how it ended.
    pub async fn outcome(&self, w: Workflow, subject: &Subject) -> Outcome {
        let server = self.stable(&subject.server).await;
        let Some(server) = server else {
            assert_eq!(w, Workflow::Delete, "the server is gone after {}", w.label());
            return Outcome::Finished;
        };
        let status = server["status"].as_str().unwrap_or_default().to_string();
        let flavor = server["flavor"]["original_name"].as_str().unwrap_or_default().to_string();
        let host = server["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default().to_string();
        let moved = host != subject.host;
        let outcome = match (w, status.as_str()) {
            (Workflow::Build, "ACTIVE") => Some(Outcome::Finished),
            (Workflow::Resize, "VERIFY_RESIZE") if flavor == "m1.small" => Some(Outcome::Finished),
            (Workflow::Resize, "ACTIVE") if flavor == "m1.tiny" => Some(Outcome::Undone),
            (Workflow::ConfirmResize, "ACTIVE") if flavor == "m1.small" => Some(Outcome::Finished),
            (Workflow::RevertResize, "ACTIVE") if flavor == "m1.tiny" => Some(Outcome::Finished),
            (Workflow::ColdMigration, "VERIFY_RESIZE") if moved => Some(Outcome::Finished),
            (Workflow::ColdMigration, "ACTIVE") if !moved => Some(Outcome::Undone),
            (Workflow::LiveMigration, "ACTIVE") => Some(if moved { Outcome::Finished } else { Outcome::Undone }),
            (Workflow::Shelve, "SHELVED_OFFLOADED") => Some(Outcome::Finished),
            (Workflow::Shelve, "ACTIVE") => Some(Outcome::Undone),
            (Workflow::Unshelve, "ACTIVE") => Some(Outcome::Finished),
            (Workflow::Unshelve, "SHELVED_OFFLOADED") => Some(Outcome::Undone),
            (Workflow::Snapshot, "ACTIVE") => {
                let image = subject.image.clone().unwrap_or_default();
                let (code, body) = self.s.call(Method::GET, "image", &format!("/v2/images/{image}"), None).await;
                match (code.as_u16(), body["status"].as_str()) {
                    (200, Some("active")) => Some(Outcome::Finished),
                    (404, _) => Some(Outcome::Undone),
                    _ => None,
                }
            }
            _ => None,
        };
        outcome.unwrap_or_else(|| panic!("{} ended in no state it should: {server}", w.label()))
    }

    /// The cloud holds nothing that no live server accounts for: no saga
    /// under way, no port of a server that is gone (and exactly the ports of
    /// those that are not), a claim per server on its host with its flavor
    /// (plus a resized server's source claim), and a guest on a hypervisor
    /// only for a server that has one there.
    pub async fn assert_clean(&self, context: &str) {
        let db = db::Db::connect(&crate::common::database_url(&self.state, "compute")).await.unwrap();
        // A saga's record goes just after its last step has shown the server
        // settled: give the conductor a moment to write that.
        let started = std::time::Instant::now();
        loop {
            let sagas = db.fetch_all(db.q("SELECT name, id FROM saga")).await.unwrap();
            if sagas.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{context}: {} saga rows left",
                sagas.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }

        let listed = self.s.expect(200, Method::GET, "compute", "/servers/detail?all_tenants=1", None).await;
        let servers: BTreeMap<String, Value> = listed["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
            .collect();
        for (id, s) in &servers {
            assert!(s["OS-EXT-STS:task_state"].is_null(), "{context}: {id} is still busy: {s}");
            assert_ne!(s["status"], "ERROR", "{context}: {id} is in ERROR: {s}");
        }

        let ports = self.s.expect(200, Method::GET, "network", "/v2.0/ports", None).await;
        let mut per_server: BTreeMap<String, usize> = BTreeMap::new();
        for p in ports["ports"].as_array().unwrap() {
            if p["device_owner"].as_str().unwrap_or_default().starts_with("compute:") {
                let device = p["device_id"].as_str().unwrap_or_default().to_string();
                assert!(servers.contains_key(&device), "{context}: port {} of a server that is gone: {p}", p["id"]);
                *per_server.entry(device).or_default() += 1;
            }
        }
        for id in servers.keys() {
            assert_eq!(per_server.get(id).copied().unwrap_or(0), 1, "{context}: server {id} should have its one port");
        }

        use db::RowExt;
        let rows = db.fetch_all(db.q("SELECT consumer, host, memory_mb FROM allocation")).await.unwrap();
        let migrations =
            db.fetch_all(db.q("SELECT uuid, instance_uuid, source_compute, status FROM migration")).await.unwrap();
        let mut claimed: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
        for r in &rows {
            let consumer = r.str("consumer").unwrap();
            let host = r.str("host").unwrap();
            let memory = r.int("memory_mb").unwrap();
            if servers.contains_key(&consumer) {
                claimed.entry(consumer).or_default().push((host, memory));
                continue;
            }
            // A resized server's source claim, held by its migration.
            let m = migrations.iter().find(|m| m.str("uuid").unwrap() == consumer);
            let ok = m.is_some_and(|m| {
                let server = servers.get(&m.str("instance_uuid").unwrap());
                server.is_some_and(|s| s["status"] == "VERIFY_RESIZE")
                    && m.str("status").unwrap() == "finished"
                    && m.opt_str("source_compute").unwrap().as_deref() == Some(host.as_str())
            });
            assert!(ok, "{context}: a claim of {consumer} on {host} that nothing accounts for");
        }
        for (id, s) in &servers {
            let host = s["OS-EXT-SRV-ATTR:host"].as_str();
            let memory = s["flavor"]["ram"].as_i64().unwrap();
            let claims = claimed.get(id).cloned().unwrap_or_default();
            match host {
                Some(h) => assert_eq!(claims, vec![(h.to_string(), memory)], "{context}: claims of {id}"),
                None => assert!(claims.is_empty(), "{context}: {id} is on no host but holds {claims:?}"),
            }
        }

        let mut guests: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir(self.state.join("fake-hypervisors")) {
            for f in dir.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                let Some(host) = name.strip_suffix(".json") else { continue };
                let hv: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
                let on: BTreeSet<String> =
                    hv["guests"].as_object().map(|g| g.keys().cloned().collect()).unwrap_or_default();
                guests.insert(host.to_string(), on);
            }
        }
        for (host, on) in &guests {
            for g in on {
                let s = servers
                    .get(g)
                    .unwrap_or_else(|| panic!("{context}: {host} has a guest of a server that is gone: {g}"));
                let mine = s["OS-EXT-SRV-ATTR:host"].as_str() == Some(host.as_str());
                assert!(
                    mine || s["status"] == "VERIFY_RESIZE",
                    "{context}: {host} has a guest of {g}, which is elsewhere: {s}"
                );
            }
        }
        for (id, s) in &servers {
            let needs_guest = !matches!(s["status"].as_str(), Some("SHELVED_OFFLOADED") | Some("ERROR"));
            let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default();
            let has = guests.get(host).is_some_and(|g| g.contains(id));
            assert_eq!(has, needs_guest, "{context}: the guest of {id} on {host:?} ({})", s["status"]);
        }
        db.close().await;
    }
}

/// A line of the table the tests print: workflow × step → outcome.
pub fn row(w: Workflow, step: &str, how: &str, outcome: Outcome) -> String {
    format!("| {:<15} | {:<22} | {:<11} | {:<8} |", w.label(), step, how, outcome)
}
