//! Bad input through the real binary: every API refuses what OpenStack
//! refuses with a 4xx in its own fault format, and nothing a client sends
//! makes a service answer 500 or drop the connection.

mod common;

use std::time::Duration;

use common::{AllInOne, Session};
use compute::api::action_schemas::{self, one_of_each_type};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn bodies_with_trailing_bytes_are_refused_by_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let cases: [(&str, &str, &[u8]); 4] = [
        ("identity", "/projects", br#"{"project": {"name": "p1"}} x"#),
        ("network", "/v2.0/networks", br#"{"network": {"name": "n1"}}{}"#),
        ("image", "/v2/images", br#"{"name": "i1"} ]"#),
        ("compute", "/os-keypairs", br#"{"keypair": {"name": "k1"}} 1"#),
    ];
    for (kind, path, body) in cases {
        let (status, _, answer) = s.raw(Method::POST, kind, path, body, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind} {path}: {}", text(&answer));
    }
    // Nothing was made by any of them.
    let nets = s.expect(200, Method::GET, "network", "/v2.0/networks?name=n1", None).await;
    assert_eq!(nets["networks"].as_array().unwrap().len(), 0);
    let (status, _) = s.call(Method::GET, "compute", "/os-keypairs/k1", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn networking_refuses_broadcast_pools_reserved_macs_host_bits_and_unknown_zones() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let net = s.expect(201, Method::POST, "network", "/v2.0/networks", Some(json!({"network": {"name": "n"}}))).await;
    let net_id = net["network"]["id"].as_str().unwrap().to_string();
    let subnet = |cidr: &str, pools: Value| {
        let mut body = json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": cidr}});
        if !pools.is_null() {
            body["subnet"]["allocation_pools"] = pools;
        }
        body
    };

    let with_broadcast = subnet("10.9.0.0/24", json!([{"start": "10.9.0.200", "end": "10.9.0.255"}]));
    let (status, body) = s.call(Method::POST, "network", "/v2.0/subnets", Some(with_broadcast)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["NeutronError"]["type"], "OutOfBoundsAllocationPool", "{body}");
    let with_network_address = subnet("10.9.0.0/24", json!([{"start": "10.9.0.0", "end": "10.9.0.10"}]));
    assert_eq!(s.call(Method::POST, "network", "/v2.0/subnets", Some(with_network_address)).await.0, 400);

    let (status, body) =
        s.call(Method::POST, "network", "/v2.0/subnets", Some(subnet("10.9.0.5/24", Value::Null))).await;
    assert_eq!(status, 400, "host bits in a cidr: {body}");
    assert!(body["NeutronError"]["message"].as_str().unwrap().contains("10.9.0.0/24"), "{body}");
    let ok = subnet("10.9.0.0/24", json!([{"start": "10.9.0.2", "end": "10.9.0.254"}]));
    s.expect(201, Method::POST, "network", "/v2.0/subnets", Some(ok)).await;

    for mac in ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "FF:FF:FF:FF:FF:FF"] {
        let port = json!({"port": {"network_id": net_id, "mac_address": mac}});
        let (status, body) = s.call(Method::POST, "network", "/v2.0/ports", Some(port)).await;
        assert_eq!(status, 400, "{mac}: {body}");
    }
    let ports = s.expect(200, Method::GET, "network", &format!("/v2.0/ports?network_id={net_id}"), None).await;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 0, "no port was made: {ports}");

    let zone = json!({"network": {"name": "z", "availability_zone_hints": ["no-such-zone"]}});
    let (status, body) = s.call(Method::POST, "network", "/v2.0/networks", Some(zone)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["NeutronError"]["type"], "AvailabilityZoneNotFound");
    let zone = json!({"router": {"name": "z", "availability_zone_hints": ["no-such-zone"]}});
    assert_eq!(s.call(Method::POST, "network", "/v2.0/routers", Some(zone)).await.0, 404);
    let known = json!({"network": {"name": "z", "availability_zone_hints": ["nova"]}});
    s.expect(201, Method::POST, "network", "/v2.0/networks", Some(known)).await;

    let (status, _, body) = s.raw(Method::PATCH, "network", "/v2.0/networks", b"{}", &[]).await;
    assert_eq!(status, 405);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["NeutronError"]["type"], "HTTPMethodNotAllowed", "{body}");
}

#[tokio::test]
async fn images_keep_reserved_names_refuse_bad_pointers_and_answer_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let (status, _, body) =
        s.raw(Method::POST, "image", "/v2/images", br#"{"name": "x", "location": "file:///etc/passwd"}"#, &[]).await;
    assert_eq!(status, 403, "{}", text(&body));

    let image = s
        .expect(
            201,
            Method::POST,
            "image",
            "/v2/images",
            Some(json!({"name": "r", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    let id = image["id"].as_str().unwrap().to_string();
    let path = format!("/v2/images/{id}");
    let ct = [("content-type", "application/openstack-images-v2.1-json-patch")];
    for (ops, expected) in [
        (json!([{"op": "add", "path": "/location", "value": "x"}]), 403),
        (json!([{"op": "add", "path": "/~2", "value": "x"}]), 400),
        // An escaped '/' is a fine property name.
        (json!([{"op": "add", "path": "/a~1b", "value": "x"}]), 200),
    ] {
        let (status, _, body) = s.raw(Method::PATCH, "image", &path, ops.to_string().as_bytes(), &ct).await;
        assert_eq!(status.as_u16(), expected, "{ops}: {}", text(&body));
    }

    let data: Vec<u8> = (0..=255u8).collect();
    let (status, _, _) = s
        .raw(
            Method::PUT,
            "image",
            &format!("/v2/images/{id}/file"),
            &data,
            &[("content-type", "application/octet-stream")],
        )
        .await;
    assert_eq!(status, 204);
    let file = format!("/v2/images/{id}/file");
    let (status, headers, body) = s.raw(Method::GET, "image", &file, b"", &[("range", "bytes=10-19")]).await;
    assert_eq!(status, 206);
    assert_eq!(body, data[10..20].to_vec());
    assert_eq!(headers["content-range"], "bytes 10-19/256");
    let (status, _, body) = s.raw(Method::GET, "image", &file, b"", &[("range", "bytes=-6")]).await;
    assert_eq!((status.as_u16(), body), (206, data[250..].to_vec()));
    let (status, _, body) = s.raw(Method::GET, "image", &file, b"", &[("range", "bytes=256-300")]).await;
    assert_eq!(status, 416, "{}", text(&body));
    let (status, _, body) = s.raw(Method::GET, "image", &file, b"", &[]).await;
    assert_eq!((status.as_u16(), body), (200, data));
}

/// Boots a server on the all-in-one's public network and waits for it.
async fn active_server(s: &Session, name: &str) -> String {
    let images = s.expect(200, Method::GET, "image", "/v2/images?name=ferrostack-blank", None).await;
    let image = images["images"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}});
    let created = s.expect(202, Method::POST, "compute", "/servers", Some(body)).await;
    let id = created["server"]["id"].as_str().unwrap().to_string();
    s.wait_for("compute", &format!("/servers/{id}"), WAIT, |b| b["server"]["status"] == "ACTIVE").await;
    id
}

#[tokio::test]
async fn every_server_action_answers_wrong_json_types_with_400_and_nothing_with_500() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let id = active_server(&s, "target").await;
    let action = format!("/servers/{id}/action");
    let v = api::Microversion::new(2, 96);
    let mut checked = 0;
    let mut seen = std::collections::BTreeSet::new();
    for schema in action_schemas::SCHEMAS.iter().rev() {
        // The schema that applies at 2.96: the last of each action's.
        if !seen.insert(schema.action) {
            continue;
        }
        let typed = schema.value_types() != action_schemas::ANY;
        for value in one_of_each_type() {
            if typed && action_schemas::admits(schema.value_types(), &value) {
                continue;
            }
            let (status, body) = s.call(Method::POST, "compute", &action, Some(json!({schema.action: value}))).await;
            if typed {
                assert_eq!(status, 400, "{} with {value}: {body}", schema.action);
                assert!(body["badRequest"]["message"].as_str().unwrap_or_default().contains(schema.action), "{body}");
            } else {
                assert_ne!(status.as_u16(), 500, "{} with {value}: {body}", schema.action);
            }
            checked += 1;
        }
        for (field, types) in schema.fields_at(v) {
            for value in one_of_each_type().into_iter().filter(|x| !action_schemas::admits(types, x)) {
                let mut args = serde_json::Map::new();
                for r in schema.required() {
                    args.insert(r.to_string(), json!("x"));
                }
                args.insert(field.to_string(), value.clone());
                let (status, body) = s.call(Method::POST, "compute", &action, Some(json!({schema.action: args}))).await;
                assert_eq!(status, 400, "{}.{field} = {value}: {body}", schema.action);
                checked += 1;
            }
        }
    }
    assert!(checked > 150, "only {checked} bodies were tried");
    // Bodies that are no action at all.
    for body in [json!([]), json!("x"), json!({}), json!({"pause": null, "unpause": null}), json!({"no-such": {}})] {
        let (status, answer) = s.call(Method::POST, "compute", &action, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    // The server came through it all, and the API still serves.
    let (status, _) = s.call(Method::GET, "compute", &format!("/servers/{id}"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn external_events_of_the_wrong_shape_are_400s_not_dropped_connections() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = AllInOne::start(&dir.path().join("state"));
    let s = Session::admin(&cloud).await;
    let id = active_server(&s, "events").await;
    let path = "/os-server-external-events";
    for body in [
        json!({"events": ["x"]}),
        json!({"events": [1]}),
        json!({"events": []}),
        json!({"events": "x"}),
        json!({"events": [{"name": "network-changed"}]}),
        json!({"events": [{"name": "no-such-event", "server_uuid": id}]}),
        json!({"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]}),
        json!({"events": [{"name": "network-changed", "server_uuid": id, "extra": 1}]}),
        json!({}),
        json!([]),
    ] {
        let (status, answer) = s.call(Method::POST, "compute", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let one = |uuid: &str| json!({"name": "network-changed", "server_uuid": uuid});
    let unknown = common_uuid();
    let (status, answer) = s.call(Method::POST, "compute", path, Some(json!({"events": [one(&id)]}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["events"][0]["code"], 200);
    let (status, _) = s.call(Method::POST, "compute", path, Some(json!({"events": [one(&id), one(&unknown)]}))).await;
    assert_eq!(status, 207);
    let (status, _) = s.call(Method::POST, "compute", path, Some(json!({"events": [one(&unknown)]}))).await;
    assert_eq!(status, 404);
}

fn common_uuid() -> String {
    "0b7c2f2e-3c1d-4a8e-9d7e-2a9d5f3b8c11".into()
}
