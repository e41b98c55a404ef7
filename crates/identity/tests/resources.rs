//! Identity resources through the REST API: CRUD, the errors clients rely on,
//! who may see what, and role assignments.

mod common;

use common::Cloud;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn unknown_ids_and_names_are_404s_duplicates_409s_bad_fields_400s() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    for path in [
        "/v3/users/nobody",
        "/v3/projects/not-a-uuid",
        "/v3/domains/x",
        "/v3/roles/admin",
        "/v3/groups/g",
        "/v3/nothing",
    ] {
        let (s, b) = cloud.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
        assert_eq!(b["error"]["code"], 404, "{path}");
    }
    let p = json!({"project": {"name": "dup"}});
    assert_eq!(cloud.call(Method::POST, "/v3/projects", Some(&admin), Some(p.clone())).await.0, StatusCode::CREATED);
    assert_eq!(cloud.call(Method::POST, "/v3/projects", Some(&admin), Some(p)).await.0, StatusCode::CONFLICT);

    let (_, before) = cloud.call(Method::GET, "/v3/users", Some(&admin), None).await;
    for (body, field) in [
        (json!({"user": {"name": "u", "enabled": "yes"}}), "user.enabled"),
        (json!({"user": {"name": ""}}), "user.name"),
        (json!({"user": {"name": "u", "options": {"bogus": true}}}), "user.options"),
        (json!({"user": {"name": 7}}), "user.name"),
        (json!({"person": {}}), "user"),
    ] {
        let (s, b) = cloud.call(Method::POST, "/v3/users", Some(&admin), Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b["error"]["message"].as_str().unwrap().contains(field), "{field}: {b}");
    }
    let (s, b) = cloud
        .client
        .post(format!("{}/v3/users", cloud.base))
        .header("x-auth-token", &admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.headers().contains_key("x-openstack-request-id"));
    let (_, after) = cloud.call(Method::GET, "/v3/users", Some(&admin), None).await;
    assert_eq!(ids(&before, "users"), ids(&after, "users"), "bad requests change nothing");

    let endpoint =
        json!({"endpoint": {"service_id": "x", "interface": "public", "url": "http://a:1", "enabled": "True"}});
    assert_eq!(
        cloud.call(Method::POST, "/v3/endpoints", Some(&admin), Some(endpoint)).await.0,
        StatusCode::BAD_REQUEST
    );
    cloud.stop().await;
}

#[tokio::test]
async fn members_see_themselves_and_their_project_but_administer_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let (erin, project) = cloud.member(&admin, "erin", "erin-pw", "member").await;
    let (_, other) = cloud.member(&admin, "frank", "frank-pw", "member").await;
    let (token, _) = cloud.login("erin", "erin-pw", Some("erin")).await;
    let forbidden = [
        (Method::GET, "/v3/users".to_string()),
        (Method::GET, "/v3/projects".to_string()),
        (Method::GET, format!("/v3/projects/{other}")),
        (Method::GET, "/v3/roles".to_string()),
        (Method::DELETE, format!("/v3/projects/{project}")),
        (Method::GET, "/v3/role_assignments".to_string()),
    ];
    for (m, path) in forbidden {
        let (s, b) = cloud.call(m.clone(), &path, Some(&token), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {path}: {b}");
    }
    let (s, _) = cloud.call(Method::POST, "/v3/projects", Some(&token), Some(json!({"project": {"name": "x"}}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for path in [
        format!("/v3/users/{erin}"),
        format!("/v3/projects/{project}"),
        format!("/v3/users/{erin}/projects"),
        "/v3/domains/default".to_string(),
        "/v3/auth/projects".to_string(),
        format!("/v3/role_assignments?user.id={erin}"),
    ] {
        let (s, b) = cloud.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
    }
    let (_, mine) = cloud.call(Method::GET, "/v3/auth/projects", Some(&token), None).await;
    assert_eq!(ids(&mine, "projects"), [project]);
    cloud.stop().await;
}

#[tokio::test]
async fn effective_assignments_expand_groups_inheritance_and_implied_roles() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let call = |m: Method, p: String, b: Option<Value>| {
        let (cloud, admin) = (&cloud, admin.clone());
        async move { cloud.call(m, &p, Some(&admin), b).await }
    };
    let (_, d) = call(Method::POST, "/v3/domains".into(), Some(json!({"domain": {"name": "d1"}}))).await;
    let d = d["domain"]["id"].as_str().unwrap().to_string();
    let (_, p) =
        call(Method::POST, "/v3/projects".into(), Some(json!({"project": {"name": "top", "domain_id": d}}))).await;
    let top = p["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(p["project"]["parent_id"], d.as_str(), "top-level projects name their domain as parent");
    let (_, p) =
        call(Method::POST, "/v3/projects".into(), Some(json!({"project": {"name": "leaf", "parent_id": top}}))).await;
    let leaf = p["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(p["project"]["domain_id"], d.as_str());
    let (_, u) = call(Method::POST, "/v3/users".into(), Some(json!({"user": {"name": "gina", "password": "g"}}))).await;
    let user = u["user"]["id"].as_str().unwrap().to_string();
    let (_, g) = call(Method::POST, "/v3/groups".into(), Some(json!({"group": {"name": "ops", "domain_id": d}}))).await;
    let group = g["group"]["id"].as_str().unwrap().to_string();
    assert_eq!(call(Method::PUT, format!("/v3/groups/{group}/users/{user}"), None).await.0, StatusCode::NO_CONTENT);
    let member = cloud.role_id(&admin, "member").await;
    let reader = cloud.role_id(&admin, "reader").await;

    // The group gets member on the domain, inherited by every project in it.
    let grant = format!("/v3/OS-INHERIT/domains/{d}/groups/{group}/roles/{member}/inherited_to_projects");
    assert_eq!(call(Method::PUT, grant.clone(), None).await.0, StatusCode::NO_CONTENT);
    let (s, a) =
        call(Method::GET, format!("/v3/role_assignments?user.id={user}&scope.project.id={leaf}&effective"), None).await;
    assert_eq!(s, StatusCode::OK);
    let roles: Vec<&str> =
        a["role_assignments"].as_array().unwrap().iter().map(|x| x["role"]["id"].as_str().unwrap()).collect();
    assert!(roles.contains(&member.as_str()) && roles.contains(&reader.as_str()), "member implies reader: {a}");
    assert!(a["role_assignments"][0]["links"]["membership"].is_string(), "{a}");

    // Without effective, the inherited group grant shows as such.
    let (_, raw) = call(Method::GET, format!("/v3/role_assignments?group.id={group}&include_names"), None).await;
    let row = &raw["role_assignments"][0];
    assert_eq!(row["scope"]["OS-INHERIT:inherited_to"], "projects");
    assert_eq!(row["scope"]["domain"]["name"], "d1");
    assert_eq!(row["role"]["name"], "member");
    assert_eq!(row["group"]["name"], "ops");

    // The token for the leaf project carries the inherited roles.
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "g"}}},
        "scope": {"project": {"id": leaf}}}});
    let (s, t) = cloud.call(Method::POST, "/v3/auth/tokens", None, Some(body.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");

    // Revoking the grant empties the effective view and refuses the scope.
    assert_eq!(call(Method::DELETE, grant, None).await.0, StatusCode::NO_CONTENT);
    let (_, a) =
        call(Method::GET, format!("/v3/role_assignments?user.id={user}&scope.project.id={leaf}&effective"), None).await;
    assert_eq!(a["role_assignments"].as_array().unwrap().len(), 0);
    assert_eq!(cloud.call(Method::POST, "/v3/auth/tokens", None, Some(body)).await.0, StatusCode::UNAUTHORIZED);

    // A domain is deleted only when disabled, and takes its contents with it.
    assert_eq!(call(Method::DELETE, format!("/v3/domains/{d}"), None).await.0, StatusCode::FORBIDDEN);
    call(Method::PATCH, format!("/v3/domains/{d}"), Some(json!({"domain": {"enabled": false}}))).await;
    assert_eq!(call(Method::DELETE, format!("/v3/domains/{d}"), None).await.0, StatusCode::NO_CONTENT);
    for path in [format!("/v3/projects/{leaf}"), format!("/v3/projects/{top}"), format!("/v3/groups/{group}")] {
        assert_eq!(call(Method::GET, path.clone(), None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    cloud.stop().await;
}

#[tokio::test]
async fn project_hierarchy_rules_hold() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let (_, p) =
        cloud.call(Method::POST, "/v3/projects", Some(&admin), Some(json!({"project": {"name": "parent"}}))).await;
    let parent = p["project"]["id"].as_str().unwrap().to_string();
    let child = json!({"project": {"name": "child", "parent_id": parent}});
    let (_, c) = cloud.call(Method::POST, "/v3/projects", Some(&admin), Some(child)).await;
    let child = c["project"]["id"].as_str().unwrap().to_string();
    // Not a leaf: refused.
    let (s, _) = cloud.call(Method::DELETE, &format!("/v3/projects/{parent}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, shown) = cloud
        .call(Method::GET, &format!("/v3/projects/{parent}?subtree_as_ids&parents_as_ids"), Some(&admin), None)
        .await;
    assert_eq!(shown["project"]["subtree"], json!({child.clone(): null}));
    assert_eq!(shown["project"]["parents"], json!({"default": null}));
    // A project may not move, nor change domain.
    let (s, _) = cloud
        .call(
            Method::PATCH,
            &format!("/v3/projects/{child}"),
            Some(&admin),
            Some(json!({"project": {"parent_id": "default"}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v3/projects/{child}"), Some(&admin), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        cloud.call(Method::DELETE, &format!("/v3/projects/{parent}"), Some(&admin), None).await.0,
        StatusCode::NO_CONTENT
    );
    cloud.stop().await;
}

#[tokio::test]
async fn lists_page_by_limit_and_marker() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    for name in ["pa", "pb", "pc"] {
        cloud.call(Method::POST, "/v3/projects", Some(&admin), Some(json!({"project": {"name": name}}))).await;
    }
    let (_, all) = cloud.call(Method::GET, "/v3/projects", Some(&admin), None).await;
    let mut seen = Vec::new();
    let mut path = "/v3/projects?limit=2".to_string();
    loop {
        let (s, page) = cloud.call(Method::GET, &path, Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(ids(&page, "projects"));
        match page["links"]["next"].as_str() {
            Some(next) => path = next.trim_start_matches(&cloud.base).to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all, "projects"));
    let (s, _) = cloud.call(Method::GET, "/v3/projects?limit=-3", Some(&admin), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    cloud.stop().await;
}
