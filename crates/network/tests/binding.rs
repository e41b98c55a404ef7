//! Port binding end to end: ML2 picks, for the port's host, a mechanism driver
//! whose agent is alive there and can reach the segment; the agent hears of the
//! port over the bus and reports it up.

mod common;

use std::time::Duration;

use common::Cloud;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn port_on(cloud: &Cloud, network: &Value, host: &str) -> Value {
    let nid = network["network"]["id"].as_str().unwrap();
    cloud.create("/v2.0/ports", json!({"port": {"network_id": nid, "binding:host_id": host}})).await["port"].clone()
}

async fn wait_status(cloud: &Cloud, port_id: &str, want: &str) -> Value {
    for _ in 0..300 {
        let (_, p) = cloud.call(Method::GET, &format!("/v2.0/ports/{port_id}"), &cloud.admin, None).await;
        if p["port"]["status"] == want {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("port {port_id} never became {want}");
}

#[tokio::test]
async fn each_host_binds_with_the_driver_of_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let long = Duration::from_secs(60);
    cloud
        .agent(
            "Open vSwitch agent",
            "ovs-host",
            json!({"bridge_mappings": {"physnet1": "br-eth1"}, "tunnel_types": ["vxlan", "gre"]}),
            long,
        )
        .await;
    cloud
        .agent(
            "Linux bridge agent",
            "lb-host",
            json!({"interface_mappings": {"physnet1": "eth1"}, "tunnel_types": ["vxlan"]}),
            long,
        )
        .await;

    let vxlan = cloud.create("/v2.0/networks", json!({"network": {"name": "vx"}})).await;
    let gre = cloud.create("/v2.0/networks", json!({"network": {"provider:network_type": "gre"}})).await;
    let flat = cloud
        .create(
            "/v2.0/networks",
            json!({"network": {"provider:network_type": "flat", "provider:physical_network": "public"}}),
        )
        .await;

    let p = port_on(&cloud, &vxlan, "ovs-host").await;
    assert_eq!(p["binding:vif_type"], "ovs");
    assert_eq!(p["binding:vif_details"]["ovs_hybrid_plug"], true);
    // The OVS agent hears of it and says it is wired.
    wait_status(&cloud, p["id"].as_str().unwrap(), "ACTIVE").await;

    let p = port_on(&cloud, &vxlan, "lb-host").await;
    assert_eq!(p["binding:vif_type"], "bridge");
    wait_status(&cloud, p["id"].as_str().unwrap(), "ACTIVE").await;

    // Linux bridges carry no GRE; no agent maps `public`; nobody runs on ghost.
    for (network, host) in [(&gre, "lb-host"), (&flat, "ovs-host"), (&vxlan, "ghost")] {
        let p = port_on(&cloud, network, host).await;
        assert_eq!(p["binding:vif_type"], "binding_failed", "{host}");
        assert_eq!(p["status"], "DOWN");
    }

    // Moving a failed port to a host that can bind it binds it.
    let p = port_on(&cloud, &gre, "lb-host").await;
    let id = p["id"].as_str().unwrap();
    let (s, moved) = cloud
        .call(
            Method::PUT,
            &format!("/v2.0/ports/{id}"),
            &cloud.admin,
            Some(json!({"port": {"binding:host_id": "ovs-host"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(moved["port"]["binding:vif_type"], "ovs");
    wait_status(&cloud, id, "ACTIVE").await;

    // Without a host a port is unbound, and projects never see binding details.
    let (token, _) = cloud.member("alice").await;
    let (s, own) = cloud.call(Method::POST, "/v2.0/networks", &token, Some(json!({"network": {"name": "mine"}}))).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(own["network"].get("provider:network_type").is_none(), "provider attributes are admin-only");
    let nid = own["network"]["id"].as_str().unwrap();
    let (_, p) = cloud.call(Method::POST, "/v2.0/ports", &token, Some(json!({"port": {"network_id": nid}}))).await;
    assert!(p["port"].get("binding:vif_type").is_none());
    let (_, shown) = cloud
        .call(Method::GET, &format!("/v2.0/ports/{}", p["port"]["id"].as_str().unwrap()), &cloud.admin, None)
        .await;
    assert_eq!(shown["port"]["binding:vif_type"], "unbound");
    let (s, _) = cloud
        .call(
            Method::POST,
            "/v2.0/ports",
            &token,
            Some(json!({"port": {"network_id": nid, "binding:host_id": "ovs-host"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only admins bind ports");
}

#[tokio::test]
async fn an_agent_that_stops_reporting_binds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[("DEFAULT", "agent_down_time", "1")]).await;
    // Reports once, then not for a minute: down after a second.
    cloud.agent("Open vSwitch agent", "quiet", json!({"tunnel_types": ["vxlan"]}), Duration::from_secs(60)).await;
    let vxlan = cloud.create("/v2.0/networks", json!({"network": {}})).await;
    assert_eq!(port_on(&cloud, &vxlan, "quiet").await["binding:vif_type"], "ovs");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, agents) = cloud.call(Method::GET, "/v2.0/agents", &cloud.admin, None).await;
    assert_eq!(agents["agents"][0]["alive"], false);
    assert_eq!(port_on(&cloud, &vxlan, "quiet").await["binding:vif_type"], "binding_failed");
}

#[tokio::test]
async fn agents_learn_over_the_bus() {
    use network::agents::interfaces::{DevicesOnHost, PluginClient};
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let mut sg_updates = cloud.bus.listen(network::agents::SECURITY_GROUP_UPDATE_TOPIC, "watcher", 8).await.unwrap();
    let mut port_updates = cloud.bus.listen(network::agents::PORT_UPDATE_TOPIC, "watcher", 8).await.unwrap();
    cloud
        .agent("Open vSwitch agent", "h1", json!({"bridge_mappings": {"physnet1": "br"}}), Duration::from_secs(60))
        .await;

    let n = cloud.create("/v2.0/networks", json!({"network": {"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 120}})).await;
    let p = port_on(&cloud, &n, "h1").await;
    let pid = p["id"].as_str().unwrap();
    // The port's binding is announced with its segment.
    let update = port_updates.next().await.unwrap().message().clone();
    assert_eq!(update.args["port"]["id"], pid);
    assert_eq!(update.args["segmentation_id"], 120);
    // An agent asking about the device gets how to wire it.
    let ask = DevicesOnHost { devices: vec![pid.to_string()], agent_id: None, host: "h1".into() };
    let details = PluginClient::new(&cloud.bus).get_devices_details_list(&ask).await.unwrap();
    assert_eq!(details[0].network_type.as_deref(), Some("vlan"));
    assert_eq!(details[0].physical_network.as_deref(), Some("physnet1"));
    assert_eq!(details[0].segmentation_id, Some(120));
    assert_eq!(details[0].mtu, Some(1500));
    // A new port in a group changes the group's members...
    let sg = p["security_groups"][0].as_str().unwrap().to_string();
    let delivery = sg_updates.next().await.unwrap();
    let m = delivery.message().clone();
    delivery.finish(Ok(serde_json::Value::Null));
    assert_eq!(m.method, "security_groups_member_updated");
    assert_eq!(m.args["security_groups"], json!([sg]));
    // ...and rule changes reach the agents.
    cloud
        .create(
            "/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "icmp"}}),
        )
        .await;
    let m = sg_updates.next().await.unwrap().message().clone();
    assert_eq!(m.method, "security_groups_rule_updated");
    assert_eq!(m.args["security_groups"], json!([sg]));
    // The firewall learns the group's rules, and the members its
    // remote-group rules (the default group's) match.
    let info = PluginClient::new(&cloud.bus).security_group_info_for_devices(&ask).await.unwrap();
    let rules = &info.security_groups[&sg];
    assert!(rules.iter().any(|r| r.direction == "ingress" && r.protocol.as_deref() == Some("icmp")), "{rules:?}");
    assert!(rules.iter().any(|r| r.remote_group_id.as_deref() == Some(sg.as_str())), "{rules:?}");
    let ip = p["fixed_ips"][0]["ip_address"].as_str().map(String::from);
    assert_eq!(info.sg_member_ips[&sg].ipv4.first(), ip.as_ref());
}

/// Takes the next message on a listener, acknowledging it.
async fn next_message(l: &mut bus::Listener) -> bus::Message {
    let delivery = l.next().await.unwrap();
    let m = delivery.message().clone();
    delivery.finish(Ok(serde_json::Value::Null));
    m
}

#[tokio::test]
async fn dhcp_and_l3_agents_hear_of_changes_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let mut dhcp = cloud.bus.listen(network_rpc::DHCP_AGENT_TOPIC, "watcher", 8).await.unwrap();
    let mut l3 = cloud.bus.listen(network_rpc::L3_AGENT_TOPIC, "watcher", 8).await.unwrap();

    let n = cloud.create("/v2.0/networks", json!({"network": {"name": "told"}})).await;
    let nid = n["network"]["id"].as_str().unwrap();
    let m = next_message(&mut dhcp).await;
    assert_eq!((m.method.as_str(), &m.args["payload"]["network"]["id"]), ("network_create_end", &json!(nid)));
    let s = cloud
        .create("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.42.0.0/24", "ip_version": 4}}))
        .await;
    let m = next_message(&mut dhcp).await;
    assert_eq!((m.method.as_str(), &m.args["payload"]["subnet"]["id"]), ("subnet_create_end", &s["subnet"]["id"]));
    let p = cloud.create("/v2.0/ports", json!({"port": {"network_id": nid}})).await;
    let m = next_message(&mut dhcp).await;
    assert_eq!((m.method.as_str(), &m.args["payload"]["port"]["id"]), ("port_create_end", &p["port"]["id"]));

    let r = cloud.create("/v2.0/routers", json!({"router": {"name": "r"}})).await;
    let rid = r["router"]["id"].as_str().unwrap();
    let m = next_message(&mut l3).await;
    assert_eq!((m.method.as_str(), &m.args["routers"]), ("routers_updated", &json!([rid])));
    let (status, _) = cloud.call(Method::DELETE, &format!("/v2.0/routers/{rid}"), &cloud.admin, None).await;
    assert_eq!(status, 204);
    let m = next_message(&mut l3).await;
    assert_eq!((m.method.as_str(), &m.args["router_id"]), ("router_deleted", &json!(rid)));

    // A request that fails tells nobody: the next message is the delete's.
    let pid = p["port"]["id"].as_str().unwrap();
    let bad = json!({"port": {"fixed_ips": [{"subnet_id": "not-a-subnet"}]}});
    let (status, _) = cloud.call(Method::PUT, &format!("/v2.0/ports/{pid}"), &cloud.admin, Some(bad)).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = cloud.call(Method::DELETE, &format!("/v2.0/ports/{pid}"), &cloud.admin, None).await;
    assert_eq!(status, 204);
    let m = next_message(&mut dhcp).await;
    assert_eq!((m.method.as_str(), &m.args["payload"]["port_id"]), ("port_delete_end", &json!(pid)));
}

#[tokio::test]
async fn l2population_follows_ports_that_come_up_change_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let mut fdb = cloud.bus.listen(network_rpc::L2POPULATION_TOPIC, "watcher", 8).await.unwrap();
    let conf = json!({"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.1"});
    cloud.agent("Linux bridge agent", "h1", conf, Duration::from_secs(60)).await;
    let n = cloud.create("/v2.0/networks", json!({"network": {"provider:network_type": "vxlan"}})).await;
    let nid = n["network"]["id"].as_str().unwrap();
    let s = cloud
        .create("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.43.0.0/24", "ip_version": 4}}))
        .await;
    let p = port_on(&cloud, &n, "h1").await;
    let pid = p["id"].as_str().unwrap();

    // Up where the stand-in agent wired it: every other host learns where.
    let m = next_message(&mut fdb).await;
    assert_eq!(m.method, "add_fdb_entries");
    let entry = &m.args["entries"][0];
    assert_eq!((&entry["port_id"], &entry["tunnel_ip"]), (&json!(pid), &json!("192.0.2.1")));
    assert_eq!(entry["ip_addresses"], json!([p["fixed_ips"][0]["ip_address"]]));

    // New addresses on a port that stays up: the old entry goes, the new comes.
    let sid = s["subnet"]["id"].as_str().unwrap();
    let body = json!({"port": {"fixed_ips": [{"subnet_id": sid, "ip_address": "10.43.0.99"}]}});
    let (status, _) = cloud.call(Method::PUT, &format!("/v2.0/ports/{pid}"), &cloud.admin, Some(body)).await;
    assert_eq!(status, 200);
    let m = next_message(&mut fdb).await;
    assert_eq!(
        (m.method.as_str(), &m.args["entries"][0]["ip_addresses"]),
        ("remove_fdb_entries", &entry["ip_addresses"])
    );
    let m = next_message(&mut fdb).await;
    assert_eq!((m.method.as_str(), &m.args["entries"][0]["ip_addresses"]), ("add_fdb_entries", &json!(["10.43.0.99"])));

    // Deleted: forgotten.
    let (status, _) = cloud.call(Method::DELETE, &format!("/v2.0/ports/{pid}"), &cloud.admin, None).await;
    assert_eq!(status, 204);
    let m = next_message(&mut fdb).await;
    assert_eq!((m.method.as_str(), &m.args["entries"][0]["port_id"]), ("remove_fdb_entries", &json!(pid)));
}

#[tokio::test]
async fn dhcp_agents_are_given_their_networks_and_ports() {
    use network_rpc::{
        dhcp_device_id, DhcpPortRequest, Host, NetworkOnHost, PluginClient, PluginReportsClient, ReportState,
    };
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path(), &[]).await;
    let l2 = json!({"interface_mappings": {}, "tunnel_types": ["vxlan"]});
    cloud.agent("Linux bridge agent", "h1", l2, Duration::from_secs(60)).await;

    // A network whose DHCP subnet came while no DHCP agent ran is served by
    // none, until an agent asks for its networks: then it is that agent's.
    let n = cloud.create("/v2.0/networks", json!({"network": {"name": "early"}})).await;
    let nid = n["network"]["id"].as_str().unwrap().to_string();
    let s = cloud
        .create("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.50.0.0/24", "ip_version": 4}}))
        .await;
    let sid = s["subnet"]["id"].as_str().unwrap().to_string();
    let state = json!({"agent_state": {"agent_type": "DHCP agent", "binary": "test-dhcp", "topic": "dhcp_agent",
        "host": "h1", "configurations": {}, "start_flag": true}});
    PluginReportsClient::new(&cloud.bus).report_state(&ReportState { agent_state: state, time: None }).await.unwrap();
    let plugin = PluginClient::new(&cloud.bus);
    let active = plugin.get_active_networks_info(&Host { host: "h1".into() }).await.unwrap();
    assert_eq!(active.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), vec![nid.as_str()]);
    let served = &active[0];
    assert!(served.has_dhcp());
    assert_eq!(served.subnets[0].cidr, "10.50.0.0/24");
    assert_eq!(served.subnets[0].gateway_ip.as_deref(), Some("10.50.0.1"));
    assert!(served.mtu > 0);
    let (_, hosting) = cloud.call(Method::GET, &format!("/v2.0/networks/{nid}/dhcp-agents"), &cloud.admin, None).await;
    assert_eq!(hosting["agents"][0]["host"], "h1", "{hosting}");
    // Nobody else is told of it.
    let elsewhere = NetworkOnHost { network_id: nid.clone(), host: "h2".into() };
    assert_eq!(plugin.get_network_info(&elsewhere).await.unwrap(), None);

    // The agent's DHCP port: an address on the subnet, bound to its host
    // (and so wired there), no security groups; the same port when asked
    // again.
    let ask = DhcpPortRequest { network_id: nid.clone(), host: "h1".into() };
    let port = plugin.create_dhcp_port(&ask).await.unwrap();
    assert_eq!(port.device_owner, "network:dhcp");
    assert_eq!(port.device_id, dhcp_device_id("h1", &nid));
    assert_eq!(port.fixed_ips.iter().map(|f| f.subnet_id.as_str()).collect::<Vec<_>>(), vec![sid.as_str()]);
    assert_eq!(plugin.create_dhcp_port(&ask).await.unwrap().id, port.id);
    let shown = wait_status(&cloud, &port.id, "ACTIVE").await;
    assert_eq!(shown["port"]["binding:host_id"], "h1");
    assert_eq!(shown["port"]["binding:vif_type"], "bridge");
    assert_eq!(shown["port"]["security_groups"], json!([]));
    let here = NetworkOnHost { network_id: nid.clone(), host: "h1".into() };
    let info = plugin.get_network_info(&here).await.unwrap().expect("the agent's network");
    assert_eq!(info.dhcp_port("h1").map(|p| p.id.as_str()), Some(port.id.as_str()));

    // A second DHCP subnet: the port gains an address on it.
    cloud
        .create("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.51.0.0/24", "ip_version": 4}}))
        .await;
    assert_eq!(plugin.create_dhcp_port(&ask).await.unwrap().fixed_ips.len(), 2);

    // Released, the port goes.
    plugin.release_dhcp_port(&ask).await.unwrap();
    let (status, _) = cloud.call(Method::GET, &format!("/v2.0/ports/{}", port.id), &cloud.admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
