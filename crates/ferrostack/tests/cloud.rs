//! The multi-host cloud `scripts/cloud` brings up (every service its own
//! process, RabbitMQ, MariaDB, compute hosts in network namespaces), and what
//! it survives: services killed at random under load, the broker restarted,
//! the database restarted. Each test prints its counts.
//!
//! They need root, and install and start RabbitMQ and MariaDB: they run when
//! `FERROSTACK_TEST_CLOUD=1` (scripts/test sets it) and say so otherwise. The
//! cloud uses the standard ports and one underlay bridge, so the tests here
//! take turns.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use db::RowExt;
use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::Session;

static ONE_CLOUD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sets its flag when dropped: a load or chaos task told to stop even when
/// the test fails (a panic unwinds past the normal stop), before the cloud
/// is taken down.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

const SETTLE: Duration = Duration::from_secs(240);

/// A cloud from `scripts/cloud up`, taken down when dropped (its logs are
/// copied to target/cloud-logs/<test> first).
struct Cloud {
    _dir: tempfile::TempDir,
    state: PathBuf,
    name: &'static str,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cloud")
}

impl Cloud {
    fn up(name: &'static str, hosts: usize) -> Option<Cloud> {
        Cloud::up_with(name, &["--hosts", &hosts.to_string()])
    }

    /// `scripts/cloud up` with `args`.
    fn up_with(name: &'static str, args: &[&str]) -> Option<Cloud> {
        if std::env::var("FERROSTACK_TEST_CLOUD").as_deref() != Ok("1") {
            eprintln!(
                "skipped: set FERROSTACK_TEST_CLOUD=1 (root; installs RabbitMQ and MariaDB) to run the cloud tests"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // The DHCP agents' dnsmasq runs as nobody and re-reads its files under here.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
        let cloud = Cloud { state: dir.path().join("cloud"), _dir: dir, name };
        let out = cloud.run(&[&["up"], args].concat());
        assert!(out.status.success(), "scripts/cloud up: {}{}", cloud.stdout(&out), cloud.stderr(&out));
        print!("{}", cloud.stdout(&out));
        Some(cloud)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(script());
        cmd.args(args)
            .arg("--state-dir")
            .arg(&self.state)
            .env("FERROSTACK_BIN", env!("CARGO_BIN_EXE_ferrostack"))
            .env("FERROSTACK_ADMIN_PASSWORD", common::PASSWORD);
        cmd.output().expect("scripts/cloud")
    }

    fn stdout(&self, out: &std::process::Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stderr(&self, out: &std::process::Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The cloud's processes, by the names `restart` takes.
    fn processes(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.state.join("cmds"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }

    fn all_running(&self) -> bool {
        self.run(&["status"]).status.success()
    }

    /// A service's database, as its own user.
    async fn db(&self, name: &str) -> db::Db {
        let password = std::fs::read_to_string(self.state.join("secrets").join(format!("db-{name}"))).unwrap();
        db::Db::connect(&format!("mysql://{name}:{}@127.0.0.1/{name}", password.trim())).await.unwrap()
    }

    async fn admin(&self) -> Session {
        Session::login("http://127.0.0.1:5000/v3").await
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let logs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/cloud-logs").join(self.name);
        let _ = std::fs::remove_dir_all(&logs);
        let _ = std::fs::create_dir_all(&logs);
        if let Ok(entries) = std::fs::read_dir(self.state.join("logs")) {
            for e in entries.flatten() {
                let _ = std::fs::copy(e.path(), logs.join(e.file_name()));
            }
        }
        let out = self.run(&["down"]);
        if !out.status.success() {
            eprintln!("scripts/cloud down: {}", self.stderr(&out));
        }
    }
}

/// One answer, or none at all (the process behind the port was down).
async fn request(
    s: &Session,
    method: Method,
    kind: &str,
    path: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let mut req = s
        .http
        .request(method, format!("{}{path}", s.endpoint(kind)))
        .header("x-auth-token", &s.token)
        .header("openstack-api-version", "compute 2.96")
        .timeout(Duration::from_secs(120));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.ok()?;
    let status = r.status();
    let text = r.text().await.ok()?;
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// What the load saw of the API, by kind of answer.
#[derive(Debug, Default, Clone)]
struct Answers {
    ok: u64,
    /// Successes that took more than a second (they waited out an outage).
    late: u64,
    unavailable: u64,
    no_answer: u64,
    /// Answers that are neither success nor 503, with their bodies.
    other: Vec<String>,
}

impl Answers {
    fn count(&mut self, what: &str, answer: &Option<(StatusCode, Value)>, took: Duration) {
        match answer {
            Some((s, _)) if s.is_success() || *s == StatusCode::NOT_FOUND => {
                self.ok += 1;
                if took > Duration::from_secs(1) {
                    self.late += 1;
                }
            }
            Some((StatusCode::SERVICE_UNAVAILABLE, _)) => self.unavailable += 1,
            Some((s, body)) => self.other.push(format!("{what}: {s} {body}")),
            None => self.no_answer += 1,
        }
    }

    fn add(&mut self, other: &Answers) {
        self.ok += other.ok;
        self.late += other.late;
        self.unavailable += other.unavailable;
        self.no_answer += other.no_answer;
        self.other.extend(other.other.iter().cloned());
    }
}

/// `request`, its answer counted in `answers` as `what`.
async fn ask(
    s: &Session,
    answers: &mut Answers,
    what: &str,
    method: Method,
    kind: &str,
    path: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let started = Instant::now();
    let a = request(s, method, kind, path, body).await;
    answers.count(what, &a, started.elapsed());
    a
}

/// The project network the servers boot on, the image and the flavor.
struct Fixtures {
    network: String,
    image: String,
    flavor: String,
}

async fn fixtures(s: &Session) -> Fixtures {
    // The load runs as admin: lift the admin project's quotas out of its way.
    let projects = s.expect(200, Method::GET, "identity", "/projects?name=admin", None).await;
    let project = projects["projects"][0]["id"].as_str().unwrap().to_string();
    let unlimited = json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}});
    s.expect(200, Method::PUT, "compute", &format!("/os-quota-sets/{project}"), Some(unlimited)).await;
    let unlimited = json!({"quota": {"port": -1, "network": -1, "subnet": -1}});
    s.expect(200, Method::PUT, "network", &format!("/v2.0/quotas/{project}"), Some(unlimited)).await;
    let net =
        s.expect(201, Method::POST, "network", "/v2.0/networks", Some(json!({"network": {"name": "load"}}))).await;
    let network = net["network"]["id"].as_str().unwrap().to_string();
    s.expect(
        201,
        Method::POST,
        "network",
        "/v2.0/subnets",
        Some(json!({"subnet": {"network_id": network, "cidr": "10.77.0.0/20", "ip_version": 4}})),
    )
    .await;
    let images = s.expect(200, Method::GET, "image", "/v2/images?name=ferrostack-blank", None).await;
    let image = images["images"][0]["id"].as_str().unwrap().to_string();
    let flavors = s.expect(200, Method::GET, "compute", "/flavors", None).await;
    let flavor = flavors["flavors"].as_array().unwrap().iter().find(|f| f["name"] == "m1.nano").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    Fixtures { network, image, flavor }
}

/// The server named `name`, if the cloud knows it.
async fn find(s: &Session, name: &str, answers: &mut Answers) -> Option<Option<String>> {
    match ask(s, answers, "list", Method::GET, "compute", &format!("/servers?name=^{name}$"), None).await {
        Some((StatusCode::OK, body)) => Some(body["servers"][0]["id"].as_str().map(str::to_string)),
        _ => None,
    }
}

/// Creates `name` until the cloud says it has it (a create that got no
/// answer may or may not have happened: look before asking again).
async fn create(s: &Session, f: &Fixtures, name: &str, answers: &mut Answers) -> Option<String> {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if let Some(Some(id)) = find(s, name, answers).await {
            return Some(id);
        }
        let body = json!({"server": {"name": name, "imageRef": f.image, "flavorRef": f.flavor,
            "networks": [{"uuid": f.network}]}});
        if let Some((StatusCode::ACCEPTED, body)) =
            ask(s, answers, "create", Method::POST, "compute", "/servers", Some(body)).await
        {
            return body["server"]["id"].as_str().map(str::to_string);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// The server's status once it has left BUILD and has no task, or None.
async fn settled(s: &Session, id: &str, answers: &mut Answers) -> Option<Value> {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        match ask(s, answers, "show", Method::GET, "compute", &format!("/servers/{id}"), None).await {
            Some((StatusCode::OK, body))
                if body["server"]["status"] != "BUILD" && body["server"]["OS-EXT-STS:task_state"].is_null() =>
            {
                return Some(body["server"].clone())
            }
            Some((StatusCode::NOT_FOUND, _)) => return Some(json!({"status": "DELETED"})),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    None
}

/// Deletes until the cloud answers that it will (or that it already has).
async fn delete(s: &Session, id: &str, answers: &mut Answers) -> bool {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        match ask(s, answers, "delete", Method::DELETE, "compute", &format!("/servers/{id}"), None).await {
            Some((StatusCode::NO_CONTENT | StatusCode::NOT_FOUND, _)) => return true,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    false
}

/// What the cloud holds once the load has stopped, checked against what
/// was asked: `live` servers ACTIVE, every other one gone, and nothing else
/// left (ports, addresses, claims); every service and agent up.
async fn check_settled(
    cloud: &Cloud,
    s: &Session,
    live: &BTreeSet<String>,
    prefix: &str,
) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    // Every process running again, and every service reporting up.
    let deadline = Instant::now() + SETTLE;
    loop {
        let services = request(s, Method::GET, "compute", "/os-services", None).await;
        let agents = request(s, Method::GET, "network", "/v2.0/agents", None).await;
        let down_services = services
            .as_ref()
            .map(|(_, b)| b["services"].as_array().map_or(99, |v| v.iter().filter(|x| x["state"] != "up").count()))
            .unwrap_or(99);
        let down_agents = agents
            .as_ref()
            .map(|(_, b)| b["agents"].as_array().map_or(99, |v| v.iter().filter(|x| x["alive"] != true).count()))
            .unwrap_or(99);
        if cloud.all_running() && down_services == 0 && down_agents == 0 {
            let n = |a: &Option<(StatusCode, Value)>, key: &str| {
                a.as_ref().and_then(|(_, b)| b[key].as_array().map(|v| v.len() as u64)).unwrap_or(0)
            };
            counts.insert("services up", n(&services, "services"));
            counts.insert("agents up", n(&agents, "agents"));
            break;
        }
        assert!(Instant::now() < deadline, "services down: {down_services}, agents down: {down_agents}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Servers: the live ones ACTIVE, none in BUILD or with a task, no others.
    let deadline = Instant::now() + SETTLE;
    let servers = loop {
        let (_, body) = s.call(Method::GET, "compute", "/servers/detail?all_tenants=1", None).await;
        let ours: Vec<Value> = body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .cloned()
            .collect();
        let busy = ours.iter().filter(|v| v["status"] == "BUILD" || !v["OS-EXT-STS:task_state"].is_null()).count();
        if busy == 0 {
            break ours;
        }
        assert!(Instant::now() < deadline, "{busy} servers still busy: {ours:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let ids: BTreeSet<String> = servers.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    let not_active: Vec<&Value> = servers.iter().filter(|v| v["status"] != "ACTIVE").collect();
    counts.insert("servers active", (servers.len() - not_active.len()) as u64);
    counts.insert("servers stuck or in error", not_active.len() as u64);
    assert!(not_active.is_empty(), "servers that are not ACTIVE: {not_active:?}");
    let unexpected: Vec<&String> = ids.difference(live).collect();
    let missing: Vec<&String> = live.difference(&ids).collect();
    counts.insert("servers that should be gone", unexpected.len() as u64);
    counts.insert("servers lost", missing.len() as u64);
    assert!(unexpected.is_empty(), "servers asked to be deleted are still here: {unexpected:?}");
    assert!(missing.is_empty(), "servers that should be ACTIVE are gone: {missing:?}");

    // Ports: one per live server, none for a device that is gone.
    let (_, ports) = s.call(Method::GET, "network", "/v2.0/ports", None).await;
    let compute_ports: Vec<&Value> = ports["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["device_owner"].as_str().is_some_and(|o| o.starts_with("compute:")))
        .collect();
    let orphans = compute_ports.iter().filter(|p| !ids.contains(p["device_id"].as_str().unwrap_or_default())).count();
    counts.insert("ports", compute_ports.len() as u64);
    counts.insert("ports leaked", orphans as u64);
    assert_eq!(orphans, 0, "ports whose server is gone");
    assert_eq!(compute_ports.len(), ids.len(), "one port per live server");

    // Addresses: every allocation belongs to a port that exists.
    let neutron = cloud.db("neutron").await;
    let leaked = neutron
        .fetch_all(db::query(
            "SELECT COUNT(*) AS n FROM ip_allocation a LEFT JOIN port p ON a.port_id = p.id WHERE p.id IS NULL",
        ))
        .await
        .unwrap()[0]
        .int("n")
        .unwrap();
    counts.insert("IPs leaked", leaked as u64);
    assert_eq!(leaked, 0, "addresses allocated to ports that do not exist");
    neutron.close().await;

    // The claims ledger: one claim per live server, of its flavor's size.
    let nova = cloud.db("nova").await;
    let claims = nova.fetch_all(db::query("SELECT consumer, vcpus, memory_mb, disk_gb FROM allocation")).await.unwrap();
    let consumers: BTreeSet<String> = claims.iter().map(|r| r.str("consumer").unwrap()).collect();
    let claimed_mb: i64 = claims.iter().map(|r| r.int("memory_mb").unwrap()).sum();
    let flavor_mb: i64 = servers.iter().map(|v| v["flavor"]["ram"].as_i64().unwrap()).sum();
    counts.insert("claims", claims.len() as u64);
    counts.insert("claims without a server", consumers.difference(&ids).count() as u64);
    assert_eq!(consumers, ids, "the claims ledger names exactly the live servers");
    assert_eq!(claimed_mb, flavor_mb, "the ledger's memory is the live servers' flavors'");
    nova.close().await;
    counts
}

fn print_counts(title: &str, counts: &BTreeMap<&'static str, u64>, answers: &Answers) {
    println!("== {title}");
    for (k, v) in counts {
        println!("  {k}: {v}");
    }
    println!(
        "  API answers: {} ok ({} late, after more than 1 s), {} 503, {} no answer (process down), {} other",
        answers.ok,
        answers.late,
        answers.unavailable,
        answers.no_answer,
        answers.other.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_boot_across_hosts_and_survive_random_crashes() {
    let _turn = ONE_CLOUD.lock().await;
    // Two of each of compute-api, scheduler and conductor, sharing the work.
    let Some(cloud) = Cloud::up_with("chaos", &["--hosts", "3", "--controllers", "2"]) else { return };
    let s = cloud.admin().await;
    let f = Arc::new(fixtures(&s).await);
    let second_api = s.with_endpoint("compute", "http://127.0.0.1:8874/v2.1");

    // 200 boots or more — until every process has been killed once — every
    // other one deleted once up, 8 at a time, half of the workers through
    // each compute-api.
    const SERVERS: usize = 200;
    const AT_MOST: usize = 1000;
    const WORKERS: usize = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let every_one_killed = Arc::new(AtomicBool::new(false));
    let chaos = {
        let (stop, every_one_killed) = (stop.clone(), every_one_killed.clone());
        // Every process in turn, in a random order each round, so each kind
        // (conductor, scheduler, a host, an agent…) is hit.
        let mut processes = cloud.processes();
        let state = cloud.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut killed = Vec::new();
            let mut round = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(rand::thread_rng().gen_range(1000..2000)));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if round.is_empty() {
                    if !killed.is_empty() {
                        every_one_killed.store(true, Ordering::Relaxed);
                    }
                    processes.shuffle(&mut rand::thread_rng());
                    round = processes.clone();
                }
                let victim = round.pop().unwrap_or_default();
                let out = Command::new(script())
                    .args(["restart", &victim, "--kill", "--state-dir"])
                    .arg(&state)
                    .env("FERROSTACK_BIN", env!("CARGO_BIN_EXE_ferrostack"))
                    .output()
                    .unwrap();
                assert!(out.status.success(), "restart {victim}: {}", String::from_utf8_lossy(&out.stderr));
                killed.push(victim);
            }
            killed
        })
    };
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let s = if w % 2 == 0 { s.clone() } else { second_api.clone() };
        let (f, next, every_one_killed) = (f.clone(), next.clone(), every_one_killed.clone());
        workers.push(tokio::spawn(async move {
            let mut answers = Answers::default();
            let mut live = BTreeSet::new();
            let mut spots: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if (i >= SERVERS && every_one_killed.load(Ordering::Relaxed)) || i >= AT_MOST {
                    break;
                }
                let name = format!("chaos-{i}");
                let id = create(&s, &f, &name, &mut answers).await.expect("the create was never accepted");
                let server = settled(&s, &id, &mut answers).await.expect("the server never settled");
                if let Some(host) = server["OS-EXT-SRV-ATTR:host"].as_str() {
                    *spots.entry(host.to_string()).or_default() += 1;
                }
                if i % 2 == 0 {
                    assert!(delete(&s, &id, &mut answers).await, "the delete was never accepted");
                } else {
                    live.insert(id);
                }
            }
            (answers, live, spots)
        }));
    }
    let mut answers = Answers::default();
    let mut live = BTreeSet::new();
    let mut spots: BTreeMap<String, u64> = BTreeMap::new();
    for w in workers {
        let (a, l, sp) = w.await.unwrap();
        answers.add(&a);
        live.extend(l);
        for (k, v) in sp {
            *spots.entry(k).or_default() += v;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let killed = chaos.await.unwrap();

    let mut counts = check_settled(&cloud, &s, &live, "chaos-").await;
    counts.insert("processes killed and restarted", killed.len() as u64);
    // Each worker stopped at one number past the boots it made.
    let boots = next.load(Ordering::Relaxed) - WORKERS;
    print_counts(&format!("chaos: {boots} boots, half deleted, 3 hosts, 2 controllers"), &counts, &answers);
    println!("  killed: {}", killed.join(" "));
    println!("  servers landed on: {spots:?}");
    // Both conductors ran sagas (the logs of a killed one's earlier lives too).
    let finished_by = |conductor: &str| {
        std::fs::read_to_string(cloud.state.join("logs").join(format!("{conductor}.log")))
            .map(|log| log.matches("saga done").count())
            .unwrap_or(0)
    };
    let (first, second) = (finished_by("conductor"), finished_by("conductor-2"));
    println!("  sagas finished by conductor: {first}, by conductor-2: {second}");
    assert!(spots.len() >= 2, "servers landed on several hosts: {spots:?}");
    assert!(first > 0 && second > 0, "both conductors share the work");
    assert!(answers.other.is_empty(), "answers that were neither success nor 503: {:?}", answers.other);
}

/// Boots and deletes (every other server) with `workers` at a time until
/// `stop`; returns what the API answered and the servers that should be live.
async fn stream(
    s: &Session,
    f: &Arc<Fixtures>,
    prefix: &'static str,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> (Answers, BTreeSet<String>, u64) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (s, f, next, stop) = (s.clone(), f.clone(), next.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Answers::default();
            let mut live = BTreeSet::new();
            // A bound, so a test that fails to stop the load cannot fill the hosts.
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 400 {
                    break;
                }
                let id = create(&s, &f, &format!("{prefix}{i}"), &mut answers).await.expect("never accepted");
                settled(&s, &id, &mut answers).await.expect("never settled");
                if i % 2 == 0 {
                    assert!(delete(&s, &id, &mut answers).await, "the delete was never accepted");
                } else {
                    live.insert(id);
                }
            }
            (answers, live)
        }));
    }
    let mut answers = Answers::default();
    let mut live = BTreeSet::new();
    for t in tasks {
        let (a, l) = t.await.unwrap();
        answers.add(&a);
        live.extend(l);
    }
    (answers, live, next.load(Ordering::Relaxed) as u64)
}

/// The boot-and-delete stream of `stream`, running in the background until
/// `finish` (or the test's end, even a failed one).
struct Load {
    stop: StopOnDrop,
    task: tokio::task::JoinHandle<(Answers, BTreeSet<String>, u64)>,
}

impl Load {
    fn start(s: &Session, f: &Arc<Fixtures>, prefix: &'static str, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, f, flag) = (s.clone(), f.clone(), stop.clone());
        let task = tokio::spawn(async move { stream(&s, &f, prefix, workers, &flag).await });
        Load { stop: StopOnDrop(stop), task }
    }

    /// Stops it and waits for what is under way; what it saw.
    async fn finish(self) -> (Answers, BTreeSet<String>, u64) {
        self.stop.0.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Runs `script` (bash, with scripts/lib/services.sh loaded) and returns when
/// it has.
fn services_sh(script: &str) {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/services.sh");
    let out = Command::new("bash").arg("-c").arg(format!(". {}; {script}", lib.display())).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A server to probe RPC with: its console is asked of its compute host.
async fn probe_server(s: &Session, f: &Fixtures) -> String {
    let mut answers = Answers::default();
    let id = create(s, f, "probe", &mut answers).await.unwrap();
    let server = settled(s, &id, &mut answers).await.unwrap();
    assert_eq!(server["status"], "ACTIVE", "{server}");
    id
}

/// Whether a call through the API to the probe's compute host answers now.
async fn rpc_answers(s: &Session, probe: &str) -> bool {
    let body = json!({"remote_console": {"protocol": "vnc", "type": "novnc"}});
    let r = request(s, Method::POST, "compute", &format!("/servers/{probe}/remote-consoles"), Some(body)).await;
    matches!(r, Some((StatusCode::OK, _)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boots_ride_out_a_broker_restart() {
    let _turn = ONE_CLOUD.lock().await;
    let Some(cloud) = Cloud::up("broker-restart", 3) else { return };
    let s = cloud.admin().await;
    let f = Arc::new(fixtures(&s).await);
    let probe = probe_server(&s, &f).await;
    let mut live = BTreeSet::from([probe.clone()]);

    let load = Load::start(&s, &f, "broker-", 4);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let went = Instant::now();
    tokio::task::spawn_blocking(|| services_sh("rabbitmqctl -q shutdown && start_rabbitmq")).await.unwrap();
    let back = Instant::now();
    let resumed = loop {
        if rpc_answers(&s, &probe).await {
            break back.elapsed();
        }
        assert!(back.elapsed() < SETTLE, "RPC never resumed after the broker came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (answers, streamed, boots) = load.finish().await;
    live.extend(streamed);

    let counts = check_settled(&cloud, &s, &live, "").await;
    print_counts(&format!("broker restart: {boots} boots by 4 workers, half deleted"), &counts, &answers);
    println!(
        "  broker down for {:.1} s; RPC answered {:.2} s after it was back",
        (back - went).as_secs_f64(),
        resumed.as_secs_f64()
    );
    assert!(answers.other.is_empty(), "answers that were neither success nor 503: {:?}", answers.other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_acknowledged_is_lost_across_a_database_restart() {
    let _turn = ONE_CLOUD.lock().await;
    let Some(cloud) = Cloud::up("database-restart", 3) else { return };
    let s = cloud.admin().await;
    let f = Arc::new(fixtures(&s).await);

    let load = Load::start(&s, &f, "db-", 4);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let went = Instant::now();
    tokio::task::spawn_blocking(|| services_sh("mariadb-admin shutdown && sleep 15 && start_mariadb")).await.unwrap();
    let down_for = went.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (answers, live, boots) = load.finish().await;

    let counts = check_settled(&cloud, &s, &live, "db-").await;
    print_counts(&format!("database restart: {boots} boots by 4 workers, half deleted"), &counts, &answers);
    println!("  database down for {:.1} s", down_for.as_secs_f64());
    assert!(answers.other.is_empty(), "answers that were neither success nor 503: {:?}", answers.other);
}

/// `cmd` in the network namespace `ns`: its exit status and stdout.
fn in_netns(ns: &str, cmd: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(["netns", "exec", ns]).args(cmd).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The netns driver's namespace for a server: Nova's instance name.
fn instance_ns(id: &str) -> String {
    format!("instance-{}", &id[..8])
}

/// Whether `from` reaches `ip` with ICMP and HTTP; the page names the
/// server that answered.
fn reach(from: &str, ip: &str) -> Option<String> {
    let (pinged, _) = in_netns(&instance_ns(from), &["busybox", "ping", "-c", "2", "-W", "2", ip]);
    let (fetched, page) = in_netns(&instance_ns(from), &["curl", "-s", "-m", "3", &format!("http://{ip}/")]);
    (pinged && fetched).then_some(page)
}

/// Boots `name` on `host` with `networks` (Nova's `networks` list) and
/// returns it once it has settled.
async fn boot_on(s: &Session, f: &Fixtures, name: &str, host: &str, networks: Value) -> Value {
    boot_in_groups(s, f, name, host, networks, &["default"]).await
}

async fn boot_in_groups(s: &Session, f: &Fixtures, name: &str, host: &str, networks: Value, groups: &[&str]) -> Value {
    let groups: Vec<Value> = groups.iter().map(|g| json!({"name": g})).collect();
    let body = json!({"server": {"name": name, "imageRef": f.image, "flavorRef": f.flavor,
        "networks": networks, "availability_zone": format!("nova:{host}"), "security_groups": groups}});
    let created = s.expect(202, Method::POST, "compute", "/servers", Some(body)).await;
    let id = created["server"]["id"].as_str().unwrap().to_string();
    settled(s, &id, &mut Answers::default()).await.unwrap_or_else(|| panic!("{name} never settled"))
}

/// The server's address on the network named `network`.
fn address(server: &Value, network: &str) -> String {
    server["addresses"][network][0]["addr"]
        .as_str()
        .unwrap_or_else(|| panic!("no address on {network}: {server}"))
        .into()
}

async fn network_with_subnet(s: &Session, name: &str, provider: Value, cidr: &str) -> (String, String) {
    let mut body = json!({"name": name});
    body.as_object_mut().unwrap().extend(provider.as_object().unwrap().clone());
    let net = s.expect(201, Method::POST, "network", "/v2.0/networks", Some(json!({"network": body}))).await;
    let id = net["network"]["id"].as_str().unwrap().to_string();
    let subnet = json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4}});
    let subnet = s.expect(201, Method::POST, "network", "/v2.0/subnets", Some(subnet)).await;
    (id, subnet["subnet"]["id"].as_str().unwrap().to_string())
}

/// What `from` gets from `ip`, (ICMP, HTTP), once it is `want` or after ten
/// seconds (rule changes reach the hosts' filters asynchronously).
async fn reaches_as(from: &str, ip: &str, want: (bool, bool)) -> (bool, bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pinged = in_netns(&instance_ns(from), &["busybox", "ping", "-c", "1", "-W", "1", ip]).0;
        let fetched = in_netns(&instance_ns(from), &["curl", "-s", "-m", "2", &format!("http://{ip}/")]).0;
        if (pinged, fetched) == want || Instant::now() > deadline {
            return (pinged, fetched);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn add_rule(s: &Session, group: &str, protocol: &str, port: Option<u16>, remote_group: Option<&str>) -> String {
    let rule = json!({"security_group_rule": {"security_group_id": group, "direction": "ingress",
        "protocol": protocol, "port_range_min": port, "port_range_max": port, "remote_group_id": remote_group}});
    let rule = s.expect(201, Method::POST, "network", "/v2.0/security-group-rules", Some(rule)).await;
    rule["security_group_rule"]["id"].as_str().unwrap().to_string()
}

/// Security groups, enforced by the agents' nftables filters: the default
/// group lets its members in and no one else; a new group lets nothing in
/// until rules open ICMP, then tcp/80 for a remote group's members, and
/// closes again when the rule goes; spoofed sources are dropped; port
/// security off opens the port.
async fn security_groups_are_enforced(s: &Session, f: &Fixtures, network: &str, a1: &Value, a2: &Value) {
    let a1_id = a1["id"].as_str().unwrap();
    let web = s
        .expect(201, Method::POST, "network", "/v2.0/security-groups", Some(json!({"security_group": {"name": "web"}})))
        .await;
    let web = web["security_group"]["id"].as_str().unwrap().to_string();
    let groups = s.expect(200, Method::GET, "network", "/v2.0/security-groups?name=default", None).await;
    let default = groups["security_groups"][0]["id"].as_str().unwrap().to_string();
    let nets = json!([{"uuid": network}]);
    let w1 = boot_in_groups(s, f, "w1", "host-2", nets.clone(), &["web"]).await;
    let w2 = boot_in_groups(s, f, "w2", "host-1", nets, &["web"]).await;
    assert_eq!((w1["status"].as_str(), w2["status"].as_str()), (Some("ACTIVE"), Some("ACTIVE")), "{w1} {w2}");
    let (w1_id, w2_id) = (w1["id"].as_str().unwrap(), w2["id"].as_str().unwrap());
    let (w1_ip, a2_ip) = (address(&w1, "a"), address(a2, "a"));

    // Default-group members reach each other; w2, outside it, does not.
    assert_eq!(reaches_as(a1_id, &a2_ip, (true, true)).await, (true, true), "default members apart");
    assert_eq!(reaches_as(w2_id, &a2_ip, (false, false)).await, (false, false), "an outsider got into default");
    // web has no ingress rule yet: nothing gets in.
    assert_eq!(reaches_as(a1_id, &w1_ip, (false, false)).await, (false, false), "web let traffic in without rules");
    add_rule(s, &web, "icmp", None, None).await;
    assert_eq!(reaches_as(a1_id, &w1_ip, (true, false)).await, (true, false), "ICMP rule: ping only");
    // tcp/80 from default's members: a1 is one, w2 is not.
    let http = add_rule(s, &web, "tcp", Some(80), Some(&default)).await;
    assert_eq!(reaches_as(a1_id, &w1_ip, (true, true)).await, (true, true), "tcp/80 from default refused");
    assert_eq!(reaches_as(w2_id, &w1_ip, (true, false)).await, (true, false), "tcp/80 let a non-member in");
    s.expect(204, Method::DELETE, "network", &format!("/v2.0/security-group-rules/{http}"), None).await;
    assert_eq!(reaches_as(a1_id, &w1_ip, (true, false)).await, (true, false), "tcp/80 open after its rule went");
    println!("  security groups: default members only; ICMP, then tcp/80 for a remote group, then closed again");

    // a1 sends from an address that is not its own: dropped.
    let a1_ns = instance_ns(a1_id);
    let spoofed = "10.50.0.250";
    assert!(in_netns(&a1_ns, &["ip", "addr", "add", &format!("{spoofed}/24"), "dev", "eth0"]).0);
    assert!(!in_netns(&a1_ns, &["busybox", "ping", "-c", "1", "-W", "2", "-I", spoofed, &a2_ip]).0, "spoofed");
    assert!(in_netns(&a1_ns, &["busybox", "ping", "-c", "1", "-W", "2", &a2_ip]).0, "a1's own address refused");

    // Port security off on w1's port: everything gets in.
    let ports = s.expect(200, Method::GET, "network", &format!("/v2.0/ports?device_id={w1_id}"), None).await;
    let port = ports["ports"][0]["id"].as_str().unwrap().to_string();
    let open = json!({"port": {"port_security_enabled": false, "security_groups": []}});
    s.expect(200, Method::PUT, "network", &format!("/v2.0/ports/{port}"), Some(open)).await;
    assert_eq!(reaches_as(w2_id, &w1_ip, (true, true)).await, (true, true), "port security off still filters");
    println!("  spoofed sources dropped; port security off opens the port");
    for id in [w1_id, w2_id] {
        s.expect(204, Method::DELETE, "compute", &format!("/servers/{id}"), None).await;
        assert_eq!(settled(s, id, &mut Answers::default()).await.unwrap()["status"], "DELETED");
    }
}

fn host_has_link(host: &str, name: &str) -> bool {
    in_netns(host, &["ip", "link", "show", name]).0
}

/// Layer 2 for real on two hosts of the netns driver: instances are network
/// namespaces plugged by the Linux bridge agent into brq bridges, VXLAN
/// between the hosts with l2population, a flat provider network on
/// physnet1, local networks that stay on their host, VLAN refused where the
/// kernel cannot do it, and an agent killed -9 whose resync removes what was
/// deleted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linux_bridge_carries_packets_between_hosts() {
    let _turn = ONE_CLOUD.lock().await;
    let Some(cloud) = Cloud::up_with("linuxbridge", &["--hosts", "2", "--compute-driver", "netns"]) else { return };
    let s = cloud.admin().await;
    let f = fixtures(&s).await;

    let vxlan = json!({"provider:network_type": "vxlan"});
    let (a, _) = network_with_subnet(&s, "a", vxlan.clone(), "10.50.0.0/24").await;
    let (b, b_subnet) = network_with_subnet(&s, "b", vxlan, "10.50.0.0/24").await;
    let flat = json!({"provider:network_type": "flat", "provider:physical_network": "physnet1"});
    let (flat, _) = network_with_subnet(&s, "flat", flat, "10.60.0.0/24").await;
    let (local, _) = network_with_subnet(&s, "local", json!({"provider:network_type": "local"}), "10.70.0.0/24").await;
    let vlan = json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": 100});
    let (vlan, _) = network_with_subnet(&s, "vlan", vlan, "10.80.0.0/24").await;

    let both = json!([{"uuid": a}, {"uuid": flat}, {"uuid": local}]);
    let a1 = boot_on(&s, &f, "a1", "host-1", both.clone()).await;
    let a2 = boot_on(&s, &f, "a2", "host-2", both).await;
    assert_eq!((a1["status"].as_str(), a2["status"].as_str()), (Some("ACTIVE"), Some("ACTIVE")), "{a1} {a2}");
    let (a1_id, a2_id) = (a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap());

    // Network b has a's CIDR, and its server on host-1 takes a2's address.
    let a2_ip = address(&a2, "a");
    let port = json!({"port": {"network_id": b, "fixed_ips": [{"subnet_id": b_subnet, "ip_address": a2_ip}]}});
    let port = s.expect(201, Method::POST, "network", "/v2.0/ports", Some(port)).await;
    let b1 = boot_on(&s, &f, "b1", "host-1", json!([{"port": port["port"]["id"]}])).await;
    assert_eq!(b1["status"], "ACTIVE", "{b1}");
    let b1_id = b1["id"].as_str().unwrap().to_string();

    let ports = s.expect(200, Method::GET, "network", &format!("/v2.0/ports?device_id={a1_id}"), None).await;
    for p in ports["ports"].as_array().unwrap() {
        assert_eq!((p["binding:vif_type"].as_str(), p["binding:host_id"].as_str()), (Some("bridge"), Some("host-1")));
        assert_eq!(p["status"], "ACTIVE", "{p}");
    }

    // VXLAN across hosts, isolated from b; flat across hosts through
    // physnet1; local stays on its host.
    let page = reach(a1_id, &a2_ip).expect("a1 reaches a2 over VXLAN");
    assert!(page.contains(a2_id), "a2's address on a answered as {page:?}");
    let page = reach(&b1_id, &a2_ip);
    assert!(page.as_ref().is_none_or(|p| !p.contains(a2_id)), "b reached a: {page:?}");
    let page = reach(a1_id, &address(&a2, "flat")).expect("a1 reaches a2 over the flat network");
    assert!(page.contains(a2_id));
    assert!(reach(a1_id, &address(&a2, "local")).is_none(), "a local network crossed hosts");
    println!("  VXLAN and flat carry ICMP and HTTP between hosts; b and local stay apart");
    security_groups_are_enforced(&s, &f, &a, &a1, &a2).await;

    // This kernel has no 802.1Q devices: the agent says so and nothing binds.
    let v = boot_on(&s, &f, "v", "host-1", json!([{"uuid": vlan}])).await;
    assert_eq!(v["status"], "ERROR", "{v}");
    assert!(v["fault"]["message"].as_str().unwrap_or("").contains("could not be bound"), "{v}");

    // The agent dies; traffic goes on; b1 and then network b (whose DHCP
    // port may be on host-1 too) go meanwhile; the restarted agent's
    // resync takes b's bridge and VXLAN device down.
    let out = cloud.run(&["stop", "host-1-linuxbridge-agent", "--kill"]);
    assert!(out.status.success(), "{}", cloud.stderr(&out));
    assert!(reach(a1_id, &a2_ip).is_some(), "traffic stopped with the agent");
    s.expect(204, Method::DELETE, "compute", &format!("/servers/{b1_id}"), None).await;
    assert_eq!(settled(&s, &b1_id, &mut Answers::default()).await.unwrap()["status"], "DELETED");
    let b_port = port["port"]["id"].as_str().unwrap_or_default();
    s.expect(204, Method::DELETE, "network", &format!("/v2.0/ports/{b_port}"), None).await;
    s.expect(204, Method::DELETE, "network", &format!("/v2.0/networks/{b}"), None).await;
    let b_bridge = format!("brq{}", &b[..11]);
    assert!(host_has_link("host-1", &b_bridge), "the bridge went without the agent");
    let out = cloud.run(&["start", "host-1-linuxbridge-agent"]);
    assert!(out.status.success(), "{}", cloud.stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    while host_has_link("host-1", &b_bridge) {
        assert!(Instant::now() < deadline, "resync left {b_bridge}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(reach(a1_id, &a2_ip).is_some(), "traffic stopped after the agent's resync");
    println!("  agent killed -9: traffic went on; its resync removed {b_bridge}");

    let namespaces = [instance_ns(a1_id), instance_ns(a2_id)];
    drop(cloud);
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    for ns in namespaces.iter().chain([&"host-1".to_string()]) {
        assert!(!left.lines().any(|l| l.split(' ').next() == Some(ns)), "{ns} left behind");
    }
    assert!(!left.lines().any(|l| l.starts_with("qdhcp-")), "a DHCP namespace left behind: {left}");
    // The hosts' bridges, veths, VXLAN devices and nft tables went with
    // their namespaces; the cloud's own underlay and physnet1 went too.
    let links = Command::new("ip").args(["-o", "link", "show"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    for prefix in ["fs-underlay", "fs-physnet1", "fsu-", "fsp-", "brq", "vxlan-"] {
        assert!(!links.contains(&format!(": {prefix}")), "a {prefix} device left behind: {links}");
    }
}
