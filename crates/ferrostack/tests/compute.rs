//! Compute end to end through the real binary: identity, networking, image and
//! compute in one all-in-one on the fake driver. Builds get a port and an
//! address, reschedule off a failing host, honour server groups, survive a
//! crash mid-build, and leave no port and no claim behind when deleted.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{AllInOne, Session};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &Path, fake: &str) -> std::path::PathBuf {
    let path = dir.join("extra.conf");
    std::fs::write(&path, format!("[fake]\n{fake}\n")).unwrap();
    path
}

/// A tenant network with a subnet; returns the network id.
async fn private_network(s: &Session) -> String {
    let net =
        s.expect(201, Method::POST, "network", "/v2.0/networks", Some(json!({"network": {"name": "private"}}))).await;
    let id = net["network"]["id"].as_str().unwrap().to_string();
    let subnet =
        json!({"subnet": {"network_id": id, "ip_version": 4, "cidr": "10.0.0.0/24", "name": "private-subnet"}});
    s.expect(201, Method::POST, "network", "/v2.0/subnets", Some(subnet)).await;
    id
}

async fn image_id(s: &Session) -> String {
    let list = s.expect(200, Method::GET, "image", "/v2/images?name=ferrostack-blank", None).await;
    list["images"][0]["id"].as_str().expect("the all-in-one's first image").to_string()
}

async fn boot(s: &Session, name: &str, image: &str, net: &str, hints: Option<Value>) -> String {
    let mut body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
    if let Some(h) = hints {
        body["os:scheduler_hints"] = h;
    }
    let created = s.expect(202, Method::POST, "compute", "/servers", Some(body)).await;
    created["server"]["id"].as_str().unwrap().to_string()
}

/// Waits until the server leaves BUILD and returns it.
async fn settled(s: &Session, id: &str) -> Value {
    let body = s.wait_for("compute", &format!("/servers/{id}"), WAIT, |b| b["server"]["status"] != "BUILD").await;
    body["server"].clone()
}

async fn ports_of(s: &Session, device: &str) -> Vec<Value> {
    let body = s.expect(200, Method::GET, "network", &format!("/v2.0/ports?device_id={device}"), None).await;
    body["ports"].as_array().unwrap().clone()
}

fn host(server: &Value) -> String {
    server["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default().to_string()
}

/// Memory in use on every hypervisor, by host name (the 2.87 view still shows usage).
async fn memory_used(s: &Session) -> Vec<(String, u64)> {
    let (status, body) = s.call_at("2.87", Method::GET, "compute", "/os-hypervisors/detail", None).await;
    assert_eq!(status, 200, "{body}");
    let mut used: Vec<(String, u64)> = body["hypervisors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["hypervisor_hostname"].as_str().unwrap().to_string(), h["memory_mb_used"].as_u64().unwrap()))
        .collect();
    used.sort();
    used
}

/// `totalInstancesUsed` from `/limits`: what the quota sees.
async fn instances_used(s: &Session) -> u64 {
    let limits = s.expect(200, Method::GET, "compute", "/limits", None).await;
    limits["limits"]["absolute"]["totalInstancesUsed"].as_u64().expect("totalInstancesUsed")
}

async fn delete_and_wait(s: &Session, id: &str) {
    s.expect(204, Method::DELETE, "compute", &format!("/servers/{id}"), None).await;
    s.wait_for("compute", &format!("/servers/{id}"), WAIT, |b| b["itemNotFound"].is_object()).await;
}

#[tokio::test]
async fn a_server_boots_with_an_address_and_its_delete_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let net = private_network(&s).await;
    let image = image_id(&s).await;
    let before = memory_used(&s).await;

    let id = boot(&s, "vm1", &image, &net, None).await;
    let server = settled(&s, &id).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let addr = server["addresses"]["private"][0]["addr"].as_str().expect("an address on private");
    assert!(addr.starts_with("10.0.0."), "{addr}");
    let ports = ports_of(&s, &id).await;
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0]["status"], "ACTIVE");
    assert_eq!(ports[0]["binding:host_id"], host(&server).as_str());
    assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], addr);
    let actions = s.expect(200, Method::GET, "compute", &format!("/servers/{id}/os-instance-actions"), None).await;
    assert_eq!(actions["instanceActions"][0]["action"], "create");
    assert_eq!(instances_used(&s).await, 1, "the quota counts the live server");
    let during = memory_used(&s).await;
    let grew: u64 = during.iter().zip(&before).map(|(d, b)| d.1 - b.1).sum();
    assert_eq!(grew, 512, "m1.tiny claims 512 MiB: {before:?} → {during:?}");

    // A stop and a start go through the host and come back to ACTIVE.
    s.expect(202, Method::POST, "compute", &format!("/servers/{id}/action"), Some(json!({"os-stop": null}))).await;
    s.wait_for("compute", &format!("/servers/{id}"), WAIT, |b| b["server"]["status"] == "SHUTOFF").await;
    let (status, fault) =
        s.call(Method::POST, "compute", &format!("/servers/{id}/action"), Some(json!({"os-stop": null}))).await;
    assert_eq!(status, 409, "stopping a stopped server conflicts: {fault}");
    s.expect(202, Method::POST, "compute", &format!("/servers/{id}/action"), Some(json!({"os-start": null}))).await;
    s.wait_for("compute", &format!("/servers/{id}"), WAIT, |b| b["server"]["status"] == "ACTIVE").await;

    delete_and_wait(&s, &id).await;
    assert!(ports_of(&s, &id).await.is_empty(), "the server's port went with it");
    assert_eq!(memory_used(&s).await, before, "the claim was released");
    assert_eq!(instances_used(&s).await, 0, "a deleted server no longer counts against the quota");
}

#[tokio::test]
async fn builds_reschedule_off_a_failing_host_and_fault_when_no_host_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let extra = config(dir.path(), "hosts = 2\nfail_hosts = compute-1");
    let cloud = AllInOne::start_with(&dir.path().join("state"), Some(&extra));
    let s = Session::admin(&cloud).await;
    let net = private_network(&s).await;
    let image = image_id(&s).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(boot(&s, &format!("vm{n}"), &image, &net, None).await);
    }
    for id in &ids {
        let server = settled(&s, id).await;
        assert_eq!(server["status"], "ACTIVE", "{server}");
        assert_eq!(host(&server), "compute-2", "compute-1 fails every spawn");
        let ports = ports_of(&s, id).await;
        assert_eq!(ports.len(), 1, "a failed attempt leaves no port behind: {ports:?}");
        assert_eq!(ports[0]["binding:host_id"], "compute-2");
    }

    // With compute-2 disabled only the failing host is left: the build fails
    // there, finds no alternate, and ends in ERROR on no host, with no port.
    let services = s.expect(200, Method::GET, "compute", "/os-services?binary=nova-compute&host=compute-2", None).await;
    let service = services["services"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"status": "disabled", "disabled_reason": "test"});
    s.expect(200, Method::PUT, "compute", &format!("/os-services/{service}"), Some(body)).await;
    let doomed = boot(&s, "doomed", &image, &net, None).await;
    let server = settled(&s, &doomed).await;
    assert_eq!(server["status"], "ERROR", "{server}");
    let message = server["fault"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Exhausted all hosts available"), "{server}");
    assert_eq!(host(&server), "", "the failed host let go of it");
    assert!(ports_of(&s, &doomed).await.is_empty());
    delete_and_wait(&s, &doomed).await;
}

#[tokio::test]
async fn server_groups_spread_and_pack() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let net = private_network(&s).await;
    let image = image_id(&s).await;

    let group = |policy: &str| json!({"server_group": {"name": policy, "policy": policy}});
    let spread = s.expect(200, Method::POST, "compute", "/os-server-groups", Some(group("anti-affinity"))).await;
    let spread = spread["server_group"]["id"].as_str().unwrap().to_string();
    let mut hosts = Vec::new();
    for n in 0..2 {
        let id = boot(&s, &format!("spread{n}"), &image, &net, Some(json!({"group": spread}))).await;
        let server = settled(&s, &id).await;
        assert_eq!(server["status"], "ACTIVE", "{server}");
        hosts.push(host(&server));
    }
    assert_ne!(hosts[0], hosts[1], "anti-affinity puts them on different hosts");
    let third = boot(&s, "spread2", &image, &net, Some(json!({"group": spread}))).await;
    let server = settled(&s, &third).await;
    assert_eq!(server["status"], "ERROR", "two hosts hold only two members: {server}");
    let fault = server["fault"]["message"].as_str().unwrap_or_default();
    assert!(fault.contains("ServerGroupAntiAffinityFilter"), "the fault names the filter: {fault}");

    let pack = s.expect(200, Method::POST, "compute", "/os-server-groups", Some(group("affinity"))).await;
    let pack = pack["server_group"]["id"].as_str().unwrap().to_string();
    let mut hosts = Vec::new();
    for n in 0..3 {
        let id = boot(&s, &format!("pack{n}"), &image, &net, Some(json!({"group": pack}))).await;
        let server = settled(&s, &id).await;
        assert_eq!(server["status"], "ACTIVE", "{server}");
        hosts.push(host(&server));
    }
    assert!(hosts.iter().all(|h| *h == hosts[0]), "affinity keeps them together: {hosts:?}");
    let members = s.expect(200, Method::GET, "compute", &format!("/os-server-groups/{pack}"), None).await;
    assert_eq!(members["server_group"]["members"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_build_cut_short_by_a_crash_finishes_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let extra = config(dir.path(), "hosts = 2\nspawn_ms = 4000");
    let cloud = AllInOne::start_with(&state, Some(&extra));
    let s = Session::admin(&cloud).await;
    let net = private_network(&s).await;
    let image = image_id(&s).await;
    let id = boot(&s, "interrupted", &image, &net, None).await;
    s.wait_for("compute", &format!("/servers/{id}"), WAIT, |b| b["server"]["OS-EXT-STS:task_state"] == "spawning")
        .await;
    cloud.crash();

    let cloud = AllInOne::start_with(&state, Some(&extra));
    let s = Session::admin(&cloud).await;
    let server = settled(&s, &id).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let ports = ports_of(&s, &id).await;
    assert_eq!(ports.len(), 1, "the first attempt's port was cleaned up or reused: {ports:?}");
    assert_eq!(ports[0]["binding:host_id"], host(&server).as_str());
    assert_eq!(ports[0]["status"], "ACTIVE");
    delete_and_wait(&s, &id).await;
    assert!(ports_of(&s, &id).await.is_empty());
}

/// Reads `n` bytes of the console stream, however the proxy framed them.
async fn console_bytes<S>(ws: &mut S, pending: &mut Vec<u8>, n: usize) -> Vec<u8>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while pending.len() < n {
        match ws.next().await.expect("the console stream ended").expect("a console frame") {
            Message::Binary(b) => pending.extend_from_slice(&b),
            Message::Close(_) => panic!("the console closed"),
            _ => {}
        }
    }
    pending.drain(..n).collect()
}

#[tokio::test]
async fn a_console_url_reaches_the_guest_display_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let net = private_network(&s).await;
    let image = image_id(&s).await;
    let id = boot(&s, "viewer", &image, &net, None).await;
    assert_eq!(settled(&s, &id).await["status"], "ACTIVE");

    let ask = json!({"remote_console": {"protocol": "vnc", "type": "novnc"}});
    let body = s.expect(200, Method::POST, "compute", &format!("/servers/{id}/remote-consoles"), Some(ask)).await;
    let url = body["remote_console"]["url"].as_str().unwrap().to_string();
    let (page, token) = url.split_once("?path=%3Ftoken%3D").expect("noVNC's path parameter carries the token");
    let proxy = page.trim_end_matches("/vnc_auto.html").replace("http://", "ws://");
    let shown = s.expect(200, Method::GET, "compute", &format!("/os-console-auth-tokens/{token}"), None).await;
    assert_eq!(shown["console"]["instance_uuid"], id.as_str());

    // The proxy hands the websocket to the guest's display: a VNC handshake.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{proxy}/?token={token}")).await.expect("proxy");
    let mut pending = Vec::new();
    assert_eq!(console_bytes(&mut ws, &mut pending, 12).await, b"RFB 003.008\n");
    ws.send(Message::binary(b"RFB 003.008\n".to_vec())).await.unwrap();
    assert_eq!(console_bytes(&mut ws, &mut pending, 2).await, [1, 1], "one security type: none");
    ws.send(Message::binary(vec![1u8])).await.unwrap();
    assert_eq!(console_bytes(&mut ws, &mut pending, 4).await, [0, 0, 0, 0], "security handshake passed");
    ws.send(Message::binary(vec![1u8])).await.unwrap();
    let init = console_bytes(&mut ws, &mut pending, 24).await;
    assert_eq!((u16::from_be_bytes([init[0], init[1]]), u16::from_be_bytes([init[2], init[3]])), (640, 480));
    let _ = ws.close(None).await;

    assert!(
        tokio_tungstenite::connect_async(format!("{proxy}/?token=not-a-token")).await.is_err(),
        "an unknown token is refused"
    );
    // A page from another site may not open the console, even with a token.
    let mut request = format!("{proxy}/?token={token}").into_client_request().unwrap();
    request.headers_mut().insert("origin", "http://elsewhere.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err(), "a foreign Origin is refused");
    delete_and_wait(&s, &id).await;
    let (status, _) = s.call(Method::GET, "compute", &format!("/os-console-auth-tokens/{token}"), None).await;
    assert_eq!(status, 404, "a deleted server's console tokens are gone");
}

#[tokio::test]
async fn a_build_past_instance_build_timeout_goes_to_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.conf");
    std::fs::write(&path, "[DEFAULT]\ninstance_build_timeout = 1\n[fake]\nspawn_ms = 2500\n").unwrap();
    let cloud = AllInOne::start_with(&dir.path().join("state"), Some(&path));
    let s = Session::admin(&cloud).await;
    let net = private_network(&s).await;
    let image = image_id(&s).await;
    let before = memory_used(&s).await;
    let id = boot(&s, "slow", &image, &net, None).await;
    let server = settled(&s, &id).await;
    assert_eq!(server["status"], "ERROR", "{server}");
    assert!(server["fault"]["message"].as_str().unwrap_or_default().contains("timed out"), "{server}");
    assert!(ports_of(&s, &id).await.is_empty(), "the timed-out build's port went");
    assert_eq!(memory_used(&s).await, before, "and its claim");
    delete_and_wait(&s, &id).await;
}
