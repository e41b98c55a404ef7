//! What an operator tries: kill -9 the all-in-one in the middle of a stream
//! of creates, and again in the middle of a stream of deletes, restart it on
//! the same state each time. No server ends in ERROR because of the restart,
//! none is left stuck, the ledger holds exactly the live servers' flavors,
//! and once everything is deleted every hypervisor shows no use.

mod common;
mod workflows;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use workflows::Cloud;

const SERVERS: usize = 20;
const IN_FLIGHT: usize = 4;

/// Runs `work(i)` for i in 0..n, `IN_FLIGHT` at a time, until `stop_after`
/// of them are done; answers how many started.
async fn stream<F, Fut>(n: usize, stop_after: usize, work: F) -> usize
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (next, done, work) = (next.clone(), done.clone(), work.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n || done.load(Ordering::SeqCst) >= stop_after {
                    return;
                }
                work(i).await;
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let start = Instant::now();
    while done.load(Ordering::SeqCst) < stop_after.min(n) && start.elapsed() < workflows::WAIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The kill comes now, with requests in flight; the workers are left to fail.
    next.load(Ordering::SeqCst).min(n)
}

async fn servers(cloud: &Cloud) -> Vec<Value> {
    let listed = cloud.s.expect(200, Method::GET, "compute", "/servers/detail?all_tenants=1", None).await;
    listed["servers"].as_array().cloned().unwrap_or_default()
}

/// Waits (a minute at most) until no server is building or busy.
async fn settled(cloud: &Cloud) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = servers(cloud).await;
        if all.iter().all(|s| s["status"] != "BUILD" && s["OS-EXT-STS:task_state"].is_null()) {
            return all;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "servers stuck: {all:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// vCPUs, disk and guests in use on each hypervisor, and its memory in use.
async fn usage(cloud: &Cloud) -> Vec<(String, i64, i64, i64, i64)> {
    let (status, body) = cloud.s.call_at("2.87", Method::GET, "compute", "/os-hypervisors/detail", None).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<_> = body["hypervisors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let n = |k: &str| h[k].as_i64().unwrap_or(-1);
            (
                h["hypervisor_hostname"].as_str().unwrap_or_default().to_string(),
                n("vcpus_used"),
                n("local_gb_used"),
                n("running_vms"),
                n("memory_mb_used"),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn kill_9_during_streams_of_creates_and_deletes_leaves_nothing_stuck_or_leaked() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("slow.conf");
    // Builds take a while, so the kill finds several under way.
    std::fs::write(&extra, "[fake]\nspawn_ms = 300\n[quota]\ninstances = 100\ncores = 200\nram = 1000000\n").unwrap();
    let state = dir.path().join("state");
    let cloud = Cloud::start_with(&state, Some(&extra), &[]).await;
    let idle = usage(&cloud).await;

    // A stream of creates, killed half way.
    let (session, net, image) = (Arc::new(cloud.s.clone()), cloud.net.clone(), cloud.image.clone());
    let started = stream(SERVERS, SERVERS / 2, move |i| {
        let (s, net, image) = (session.clone(), net.clone(), image.clone());
        async move {
            let body = json!({"server": {"name": format!("vm{i}"), "imageRef": image, "flavorRef": "1",
                "networks": [{"uuid": net}]}});
            let _ = s.try_call(Method::POST, "compute", "/servers", Some(body)).await;
        }
    })
    .await;
    let cloud = cloud.restart().await;
    println!("killed after {started} creates were asked for, with {} builds under way", cloud.interrupted);
    let after_creates = settled(&cloud).await;
    assert!(after_creates.len() >= SERVERS / 2, "{} servers of {started} asked for", after_creates.len());
    for server in &after_creates {
        assert_eq!(server["status"], "ACTIVE", "no server fails because of the restart: {server}");
    }
    cloud.assert_clean("after the creates").await;

    // Whatever the stream did not ask for before the kill is asked for now.
    for i in after_creates.len()..SERVERS {
        let body = json!({"server": {"name": format!("vm{i}"), "imageRef": cloud.image, "flavorRef": "1",
            "networks": [{"uuid": cloud.net}]}});
        cloud.s.expect(202, Method::POST, "compute", "/servers", Some(body)).await;
    }
    let all = settled(&cloud).await;
    assert_eq!(all.len(), SERVERS);

    // A stream of deletes, killed half way.
    let ids: Vec<String> = all.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    let session = Arc::new(cloud.s.clone());
    let targets = Arc::new(ids.clone());
    stream(SERVERS, SERVERS / 2, move |i| {
        let (s, targets) = (session.clone(), targets.clone());
        async move {
            let _ = s.try_call(Method::DELETE, "compute", &format!("/servers/{}", targets[i]), None).await;
        }
    })
    .await;
    let cloud = cloud.restart().await;
    println!("killed during the deletes, with {} under way", cloud.interrupted);
    let left = settled(&cloud).await;
    assert!(left.len() <= SERVERS / 2 + IN_FLIGHT, "{} servers left of {SERVERS}", left.len());
    cloud.assert_clean("after the deletes").await;

    // The rest go too, and the hypervisors are as idle as at the start.
    for server in &left {
        let id = server["id"].as_str().unwrap();
        cloud.s.expect(204, Method::DELETE, "compute", &format!("/servers/{id}"), None).await;
    }
    let start = Instant::now();
    while !servers(&cloud).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "servers never went");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cloud.assert_clean("after deleting everything").await;
    assert_eq!(usage(&cloud).await, idle, "every hypervisor is back to no use");
}
