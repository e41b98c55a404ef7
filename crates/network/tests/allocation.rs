//! What must never be handed out twice, under concurrency: addresses on a
//! subnet and segmentation ids of project networks.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::Cloud;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn network_with_subnet(cloud: &Cloud, cidr: &str) -> (String, String) {
    let n = cloud.create("/v2.0/networks", json!({"network": {"name": "n"}})).await;
    let nid = n["network"]["id"].as_str().unwrap().to_string();
    let s = cloud.create("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": cidr, "ip_version": 4}})).await;
    (nid, s["subnet"]["id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_ports_never_share_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Arc::new(Cloud::start(dir.path(), &[("quotas", "quota_port", "-1")]).await);
    // A /28: 13 addresses after the gateway, for 50 ports.
    let (nid, _) = network_with_subnet(&cloud, "10.0.0.0/28").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (cloud, nid) = (cloud.clone(), nid.clone());
        tasks.push(tokio::spawn(async move {
            cloud.call(Method::POST, "/v2.0/ports", &cloud.admin, Some(json!({"port": {"network_id": nid}}))).await
        }));
    }
    let mut ips = HashSet::new();
    let (mut ok, mut full) = (0, 0);
    for t in tasks {
        let (s, b) = t.await.unwrap();
        match s {
            StatusCode::CREATED => {
                ok += 1;
                let ip = b["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
                assert!(ips.insert(ip.clone()), "{ip} handed out twice");
            }
            StatusCode::CONFLICT => {
                assert_eq!(b["NeutronError"]["type"], "IpAddressGenerationFailure", "{b}");
                full += 1;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(ok, 13, "every free address is used");
    assert_eq!(full, 37);
    // And the ports that failed left nothing behind.
    let (_, ports) = cloud.call(Method::GET, &format!("/v2.0/ports?network_id={nid}"), &cloud.admin, None).await;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_project_networks_never_share_a_vni() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Arc::new(Cloud::start(dir.path(), &[("quotas", "quota_network", "-1")]).await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let cloud = cloud.clone();
        tasks.push(tokio::spawn(async move {
            let (s, b) = cloud
                .call(Method::POST, "/v2.0/networks", &cloud.admin, Some(json!({"network": {"name": format!("n{i}")}})))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            (b["network"]["provider:network_type"].clone(), b["network"]["provider:segmentation_id"].as_i64().unwrap())
        }));
    }
    let mut vnis = HashSet::new();
    for t in tasks {
        let (t, vni) = t.await.unwrap();
        assert_eq!(t, json!("vxlan"));
        assert!(vnis.insert(vni), "VNI {vni} given twice");
    }
    assert_eq!(vnis.len(), 50);
}

#[tokio::test]
async fn exhausted_ranges_are_refused_and_deletes_release_ids() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[("ml2_type_vxlan", "vni_ranges", "7:8")]).await;
    let a = cloud.create("/v2.0/networks", json!({"network": {"name": "a"}})).await;
    let b = cloud.create("/v2.0/networks", json!({"network": {"name": "b"}})).await;
    assert_eq!(a["network"]["provider:segmentation_id"], 7);
    assert_eq!(b["network"]["provider:segmentation_id"], 8);
    let (s, e) =
        cloud.call(Method::POST, "/v2.0/networks", &cloud.admin, Some(json!({"network": {"name": "c"}}))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert_eq!(e["NeutronError"]["type"], "NoNetworkAvailable");
    let aid = a["network"]["id"].as_str().unwrap();
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2.0/networks/{aid}"), &cloud.admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let c = cloud.create("/v2.0/networks", json!({"network": {"name": "c"}})).await;
    assert_eq!(c["network"]["provider:segmentation_id"], 7, "a deleted network gives its VNI back");
}

#[tokio::test]
async fn provider_segments_are_checked_and_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let vlan = |id: Value| json!({"network": {"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": id}});
    let n = cloud.create("/v2.0/networks", vlan(json!(150))).await;
    assert_eq!(n["network"]["mtu"], 1500);
    let (s, e) = cloud.call(Method::POST, "/v2.0/networks", &cloud.admin, Some(vlan(json!(150)))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["NeutronError"]["type"], "VlanIdInUse");
    // Out of the 802.1Q range, on an unknown physnet, or a flat network with an id: 400.
    for body in [
        vlan(json!(5000)),
        json!({"network": {"provider:network_type": "vlan", "provider:physical_network": "nowhere", "provider:segmentation_id": 5}}),
        json!({"network": {"provider:network_type": "flat", "provider:physical_network": "public", "provider:segmentation_id": 5}}),
        json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 1 << 24}}),
        json!({"network": {"provider:network_type": "geneve"}}),
    ] {
        let (s, e) = cloud.call(Method::POST, "/v2.0/networks", &cloud.admin, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
    }
    let gre = cloud.create("/v2.0/networks", json!({"network": {"provider:network_type": "gre"}})).await;
    assert_eq!(gre["network"]["mtu"], 1458, "GRE takes 42 bytes of the 1500");
    let vx = cloud.create("/v2.0/networks", json!({"network": {}})).await;
    assert_eq!(vx["network"]["mtu"], 1450, "VXLAN takes 50");
    // A VLAN outside the project ranges is fine for an admin on a known physnet.
    cloud.create("/v2.0/networks", vlan(json!(4000))).await;
}
