//! Neutron's API through HTTP: IPAM rules, who sees what, routers and floating
//! IPs, security groups, and that failed requests leave nothing behind.

mod common;

use common::Cloud;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn id(v: &Value, key: &str) -> String {
    v[key]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn subnets_follow_ipam_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let a = id(&cloud.create("/v2.0/networks", json!({"network": {"name": "a"}})).await, "network");
    let b = id(&cloud.create("/v2.0/networks", json!({"network": {"name": "b"}})).await, "network");
    let s = cloud
        .create("/v2.0/subnets", json!({"subnet": {"network_id": a, "cidr": "10.1.0.0/24", "ip_version": 4}}))
        .await;
    assert_eq!(s["subnet"]["gateway_ip"], "10.1.0.1");
    assert_eq!(s["subnet"]["allocation_pools"], json!([{"start": "10.1.0.2", "end": "10.1.0.254"}]));
    // Overlap within a network is refused, across networks allowed.
    let (st, e) = cloud
        .call(
            Method::POST,
            "/v2.0/subnets",
            &cloud.admin,
            Some(json!({"subnet": {"network_id": a, "cidr": "10.1.0.128/25", "ip_version": 4}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(e["NeutronError"]["message"].as_str().unwrap().contains("overlaps with another subnet"), "{e}");
    cloud.create("/v2.0/subnets", json!({"subnet": {"network_id": b, "cidr": "10.1.0.0/24", "ip_version": 4}})).await;
    // Pools must fit and stay clear of the gateway.
    for (pools, status) in [
        (json!([{"start": "10.2.0.1", "end": "10.2.0.10"}]), StatusCode::CONFLICT),
        (json!([{"start": "10.2.0.20", "end": "10.2.1.10"}]), StatusCode::BAD_REQUEST),
        (json!([{"start": "10.2.0.20", "end": "10.2.0.10"}]), StatusCode::BAD_REQUEST),
    ] {
        let body =
            json!({"subnet": {"network_id": b, "cidr": "10.2.0.0/24", "ip_version": 4, "allocation_pools": pools}});
        assert_eq!(cloud.call(Method::POST, "/v2.0/subnets", &cloud.admin, Some(body)).await.0, status);
    }
    // IPv6 SLAAC gives every port its EUI-64 address; mismatched modes are refused.
    let body = json!({"subnet": {"network_id": a, "cidr": "2001:db8::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}});
    assert_eq!(cloud.call(Method::POST, "/v2.0/subnets", &cloud.admin, Some(body)).await.0, StatusCode::BAD_REQUEST);
    cloud.create("/v2.0/subnets", json!({"subnet": {"network_id": a, "cidr": "2001:db8::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})).await;
    let p = cloud.create("/v2.0/ports", json!({"port": {"network_id": a, "mac_address": "fa:16:3e:12:34:56"}})).await;
    let ips: Vec<&str> =
        p["port"]["fixed_ips"].as_array().unwrap().iter().map(|f| f["ip_address"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.1.0.2", "2001:db8::f816:3eff:fe12:3456"]);
}

#[tokio::test]
async fn addresses_are_never_doubled_and_are_released() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let n = id(&cloud.create("/v2.0/networks", json!({"network": {}})).await, "network");
    cloud.create("/v2.0/subnets", json!({"subnet": {"network_id": n, "cidr": "10.3.0.0/24", "ip_version": 4}})).await;
    let fixed = json!([{"ip_address": "10.3.0.50"}]);
    let p = cloud.create("/v2.0/ports", json!({"port": {"network_id": n, "fixed_ips": fixed}})).await;
    let (s, e) = cloud
        .call(Method::POST, "/v2.0/ports", &cloud.admin, Some(json!({"port": {"network_id": n, "fixed_ips": fixed}})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["NeutronError"]["type"], "IpAddressAlreadyAllocated");
    // A failed create (unknown security group) holds no address afterwards.
    let bogus = "0c7a1b54-9bd5-4d89-9d0b-5a7de7f0a111";
    let (s, _) = cloud
        .call(
            Method::POST,
            "/v2.0/ports",
            &cloud.admin,
            Some(json!({"port": {"network_id": n, "security_groups": [bogus]}})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let next = cloud.create("/v2.0/ports", json!({"port": {"network_id": n}})).await;
    assert_eq!(next["port"]["fixed_ips"][0]["ip_address"], "10.3.0.2");
    // Deleting the port frees its address for the next one.
    let pid = id(&p, "port");
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2.0/ports/{pid}"), &cloud.admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    cloud.create("/v2.0/ports", json!({"port": {"network_id": n, "fixed_ips": fixed}})).await;
    // A network with ports cannot go.
    let (s, e) = cloud.call(Method::DELETE, &format!("/v2.0/networks/{n}"), &cloud.admin, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["NeutronError"]["type"], "NetworkInUse");
}

#[tokio::test]
async fn projects_see_their_own_shared_and_external_networks_only() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let (alice, _) = cloud.member("alice").await;
    let (bob, _) = cloud.member("bob").await;
    let (_, mine) =
        cloud.call(Method::POST, "/v2.0/networks", &alice, Some(json!({"network": {"name": "alice-net"}}))).await;
    let mine = id(&mine, "network");
    let shared =
        id(&cloud.create("/v2.0/networks", json!({"network": {"name": "shared", "shared": true}})).await, "network");
    cloud.create("/v2.0/networks", json!({"network": {"name": "ext", "router:external": true}})).await;
    cloud.create("/v2.0/networks", json!({"network": {"name": "admin-private"}})).await;
    let (_, seen) = cloud.call(Method::GET, "/v2.0/networks", &bob, None).await;
    let mut names: Vec<&str> =
        seen["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ext", "shared"]);
    for (m, path) in
        [(Method::GET, format!("/v2.0/networks/{mine}")), (Method::DELETE, format!("/v2.0/networks/{mine}"))]
    {
        assert_eq!(cloud.call(m, &path, &bob, None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // Another project's subnet is not found, a shared network's is seen but
    // not changed, an unknown one is not found.
    let body = |net: &str, cidr: &str| Some(json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}}));
    let (_, hers) = cloud.call(Method::POST, "/v2.0/subnets", &alice, body(&mine, "10.7.0.0/24")).await;
    let hers = id(&hers, "subnet");
    let common = id(&cloud.create("/v2.0/subnets", body(&shared, "10.8.0.0/24").unwrap()).await, "subnet");
    let rename = Some(json!({"subnet": {"name": "bob-was-here"}}));
    for (subnet, status) in [
        (hers.as_str(), StatusCode::NOT_FOUND),
        (common.as_str(), StatusCode::FORBIDDEN),
        ("00000000-0000-4000-8000-000000000000", StatusCode::NOT_FOUND),
    ] {
        let path = format!("/v2.0/subnets/{subnet}");
        assert_eq!(cloud.call(Method::PUT, &path, &bob, rename.clone()).await.0, status, "{path}");
    }
    let (_, seen) = cloud.call(Method::GET, &format!("/v2.0/subnets/{hers}"), &alice, None).await;
    assert_eq!(seen["subnet"]["name"], "", "nothing changed");
    let (s, _) =
        cloud.call(Method::POST, "/v2.0/networks", &bob, Some(json!({"network": {"router:external": true}}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = cloud.call(Method::GET, "/v2.0/networks?bogus=1", &bob, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (_, agents) = cloud.call(Method::GET, "/v2.0/agents", &bob, None).await;
    assert_eq!(agents["agents"], json!([]));
}

#[tokio::test]
async fn floating_ips_need_a_router_between_the_networks() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let public = id(
        &cloud.create("/v2.0/networks", json!({"network": {"name": "public", "router:external": true}})).await,
        "network",
    );
    cloud
        .create(
            "/v2.0/subnets",
            json!({"subnet": {"network_id": public, "cidr": "172.24.4.0/24", "ip_version": 4, "enable_dhcp": false}}),
        )
        .await;
    let n = id(&cloud.create("/v2.0/networks", json!({"network": {}})).await, "network");
    let s = id(
        &cloud
            .create("/v2.0/subnets", json!({"subnet": {"network_id": n, "cidr": "10.4.0.0/24", "ip_version": 4}}))
            .await,
        "subnet",
    );
    let port = id(&cloud.create("/v2.0/ports", json!({"port": {"network_id": n}})).await, "port");
    let (st, e) = cloud
        .call(
            Method::POST,
            "/v2.0/floatingips",
            &cloud.admin,
            Some(json!({"floatingip": {"floating_network_id": public, "port_id": port}})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(e["NeutronError"]["type"], "ExternalGatewayForFloatingIPNotFound");

    let r = cloud
        .create("/v2.0/routers", json!({"router": {"name": "r", "external_gateway_info": {"network_id": public}}}))
        .await;
    let rid = id(&r, "router");
    assert_eq!(r["router"]["external_gateway_info"]["enable_snat"], true);
    let (st, i) = cloud
        .call(
            Method::PUT,
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            &cloud.admin,
            Some(json!({"subnet_id": s})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{i}");
    let fip = cloud
        .create("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": public, "port_id": port}}))
        .await;
    assert_eq!(fip["floatingip"]["router_id"], rid.as_str());
    assert_eq!(fip["floatingip"]["fixed_ip_address"], "10.4.0.2");
    assert_eq!(fip["floatingip"]["port_details"]["network_id"], n.as_str());
    // The router is held by its interface and its floating IP.
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2.0/routers/{rid}"), &cloud.admin, None).await.0,
        StatusCode::CONFLICT
    );
    let (st, _) = cloud
        .call(
            Method::PUT,
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &cloud.admin,
            Some(json!({"subnet_id": s})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "a floating IP needs the interface");
    // Deleting the port lets the floating IP go free.
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2.0/ports/{port}"), &cloud.admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, f) =
        cloud.call(Method::GET, &format!("/v2.0/floatingips/{}", id(&fip, "floatingip")), &cloud.admin, None).await;
    assert_eq!(f["floatingip"]["port_id"], Value::Null);
    let (st, _) = cloud
        .call(
            Method::PUT,
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            &cloud.admin,
            Some(json!({"subnet_id": s})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2.0/routers/{rid}"), &cloud.admin, None).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn every_project_gets_a_default_security_group_and_rules_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let (alice, _) = cloud.member("alice").await;
    let (_, groups) = cloud.call(Method::GET, "/v2.0/security-groups", &alice, None).await;
    let groups = groups["security_groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "default");
    assert_eq!(groups[0]["security_group_rules"].as_array().unwrap().len(), 4);
    let sg = groups[0]["id"].as_str().unwrap();
    let rule = |extra: Value| {
        let mut r = json!({"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"security_group_rule": r})
    };
    let (s, created) = cloud.call(Method::POST, "/v2.0/security-group-rules", &alice, Some(rule(json!({})))).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(
        cloud.call(Method::POST, "/v2.0/security-group-rules", &alice, Some(rule(json!({})))).await.0,
        StatusCode::CONFLICT
    );
    for bad in [
        json!({"protocol": "nonsense"}),
        json!({"port_range_min": 30, "port_range_max": 20}),
        json!({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}),
    ] {
        let (s, e) = cloud.call(Method::POST, "/v2.0/security-group-rules", &alice, Some(rule(bad.clone()))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
    }
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v2.0/security-groups/{sg}"), &alice, None).await.0,
        StatusCode::CONFLICT
    );
    let (s, _) = cloud
        .call(Method::POST, "/v2.0/security-groups", &alice, Some(json!({"security_group": {"name": "default"}})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}
