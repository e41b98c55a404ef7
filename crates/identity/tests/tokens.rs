//! Tokens through the REST API: issue, validate, revoke, and every way a token
//! dies (password change, disabled user, revoked role, deleted project).

mod common;

use common::{Cloud, ADMIN_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn discovery_answers_300_and_names_the_host_the_client_used() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let (s, h, body) = cloud.call_full(Method::GET, "/", None, None).await;
    assert_eq!(s, StatusCode::MULTIPLE_CHOICES);
    assert!(h.contains_key("x-openstack-request-id"));
    let href = body["versions"]["values"][0]["links"][0]["href"].as_str().unwrap();
    assert_eq!(href, format!("{}/v3/", cloud.base));
    let (s, body) = cloud.call(Method::GET, "/v3", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["version"]["status"], "stable");
    cloud.stop().await;
}

#[tokio::test]
async fn password_token_carries_scope_roles_catalog_and_a_strict_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let (token, t) = cloud.login("admin", ADMIN_PASSWORD, Some("admin")).await;
    assert!(token.len() < 300, "tokens stay short: {}", token.len());
    let expires = t["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == "2026-01-02T03:04:05.000000Z".len(), "{expires}");
    assert_eq!(t["project"]["name"], "admin");
    assert_eq!(t["project"]["domain"]["id"], "default");
    let roles: Vec<&str> = t["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    for implied in ["admin", "manager", "member", "reader"] {
        assert!(roles.contains(&implied), "{roles:?}");
    }
    assert_eq!(t["catalog"][0]["type"], "identity");
    assert_eq!(t["catalog"][0]["endpoints"][0]["region_id"], "RegionOne");

    // Unscoped: no catalog, no roles.
    let (_, unscoped) = cloud.login("admin", ADMIN_PASSWORD, None).await;
    assert!(unscoped.get("catalog").is_none() && unscoped.get("roles").is_none(), "{unscoped}");
    cloud.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_401s_in_keystones_format_and_bad_bodies_400s() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let wrong = json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "nope"}}}}});
    let (s, h, body) = cloud.call_full(Method::POST, "/v3/auth/tokens", None, Some(wrong)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(h.contains_key("x-openstack-request-id"));
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["title"], "Unauthorized");
    assert!(body["error"]["message"].is_string());

    let no_domain = json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"name": "admin", "domain": {"name": "Nowhere"}, "password": ADMIN_PASSWORD}}}}});
    assert_eq!(cloud.call(Method::POST, "/v3/auth/tokens", None, Some(no_domain)).await.0, StatusCode::UNAUTHORIZED);

    let (s, body) = cloud
        .call(Method::POST, "/v3/auth/tokens", None, Some(json!({"auth": {"identity": {"methods": "password"}}})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("auth.identity.methods"), "{body}");

    let (s, _) = cloud.call(Method::GET, "/v3/users", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = cloud.call(Method::GET, "/v3/users", Some("gAAAAA-not-a-token"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    cloud.stop().await;
}

#[tokio::test]
async fn validate_returns_what_was_issued_and_revoke_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let (token, issued) = cloud.login("admin", ADMIN_PASSWORD, Some("admin")).await;
    let resp = cloud
        .client
        .get(format!("{}/v3/auth/tokens", cloud.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-subject-token"].to_str().unwrap(), token);
    let validated: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(validated["token"], issued);

    let revoke = cloud
        .client
        .delete(format!("{}/v3/auth/tokens", cloud.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_eq!(cloud.validate(&admin, &token).await, StatusCode::NOT_FOUND);
    // The revoked token no longer authenticates requests either.
    assert_eq!(cloud.call(Method::GET, "/v3/users", Some(&token), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(cloud.validate(&admin, &admin).await, StatusCode::OK);
    cloud.stop().await;
}

#[tokio::test]
async fn rescoping_keeps_expiry_and_revoking_the_child_spares_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let (_, project) = cloud.member(&admin, "alice", "alice-pw", "member").await;
    let (unscoped, first) = cloud.login("alice", "alice-pw", None).await;
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"id": project}}}});
    let (s, h, t) = cloud.call_full(Method::POST, "/v3/auth/tokens", None, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let scoped = h["x-subject-token"].to_str().unwrap().to_string();
    assert_eq!(t["token"]["expires_at"], first["expires_at"]);
    let methods: Vec<&str> = t["token"]["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(methods.contains(&"token") && methods.contains(&"password"), "{methods:?}");
    assert_eq!(t["token"]["audit_ids"][1], first["audit_ids"][0]);

    let revoke = cloud
        .client
        .delete(format!("{}/v3/auth/tokens", cloud.base))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &scoped)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_eq!(cloud.validate(&admin, &scoped).await, StatusCode::NOT_FOUND);
    assert_eq!(cloud.validate(&admin, &unscoped).await, StatusCode::OK);
    cloud.stop().await;
}

#[tokio::test]
async fn password_change_disable_and_role_revocation_each_kill_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let (bob, project) = cloud.member(&admin, "bob", "bob-pw", "member").await;

    // Password change (by the user, proving the old one).
    let (t1, _) = cloud.login("bob", "bob-pw", Some("bob")).await;
    let change = json!({"user": {"original_password": "bob-pw", "password": "bob-pw2"}});
    let (s, _) = cloud.call(Method::POST, &format!("/v3/users/{bob}/password"), Some(&t1), Some(change)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(cloud.validate(&admin, &t1).await, StatusCode::NOT_FOUND);
    let wrong = json!({"user": {"original_password": "bob-pw", "password": "x"}});
    let (s, _) = cloud.call(Method::POST, &format!("/v3/users/{bob}/password"), None, Some(wrong)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Disabling the user.
    let (t2, _) = cloud.login("bob", "bob-pw2", Some("bob")).await;
    let (s, _) = cloud
        .call(Method::PATCH, &format!("/v3/users/{bob}"), Some(&admin), Some(json!({"user": {"enabled": false}})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cloud.validate(&admin, &t2).await, StatusCode::NOT_FOUND);
    cloud
        .call(Method::PATCH, &format!("/v3/users/{bob}"), Some(&admin), Some(json!({"user": {"enabled": true}})))
        .await;
    assert_eq!(cloud.validate(&admin, &t2).await, StatusCode::NOT_FOUND, "re-enabling does not resurrect tokens");

    // Revoking the only role on the project.
    let (t3, _) = cloud.login("bob", "bob-pw2", Some("bob")).await;
    let member = cloud.role_id(&admin, "member").await;
    let (s, _) = cloud
        .call(Method::DELETE, &format!("/v3/projects/{project}/users/{bob}/roles/{member}"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(cloud.validate(&admin, &t3).await, StatusCode::NOT_FOUND);
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
        {"id": bob, "password": "bob-pw2"}}}, "scope": {"project": {"id": project}}}});
    assert_eq!(cloud.call(Method::POST, "/v3/auth/tokens", None, Some(body)).await.0, StatusCode::UNAUTHORIZED);
    cloud.stop().await;
}

#[tokio::test]
async fn tokens_and_rows_survive_a_restart_and_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    cloud.member(&admin, "carol", "carol-pw", "reader").await;
    let (token, _) = cloud.login("carol", "carol-pw", Some("carol")).await;
    cloud.stop().await;

    let cloud = Cloud::start(dir.path()).await;
    assert_eq!(cloud.validate(&admin, &token).await, StatusCode::OK);
    cloud.identity.tokens.keys().rotate().unwrap();
    assert_eq!(cloud.validate(&admin, &token).await, StatusCode::OK, "a rotation keeps older keys");
    let (s, users) = cloud.call(Method::GET, "/v3/users?name=carol", Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    cloud.stop().await;
}

#[tokio::test]
async fn application_credentials_act_for_their_user_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(dir.path()).await;
    let admin = cloud.admin().await;
    let (dave, project) = cloud.member(&admin, "dave", "dave-pw", "member").await;
    let (token, _) = cloud.login("dave", "dave-pw", Some("dave")).await;
    let reader = cloud.role_id(&admin, "reader").await;
    let body = json!({"application_credential": {"name": "ci", "roles": [{"id": reader}],
        "expires_at": "2099-01-02T03:04:05.000000"}});
    let (s, c) =
        cloud.call(Method::POST, &format!("/v3/users/{dave}/application_credentials"), Some(&token), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["application_credential"]["expires_at"], "2099-01-02T03:04:05.000000");
    let (id, secret) = (c["application_credential"]["id"].clone(), c["application_credential"]["secret"].clone());

    // A role the token does not hold cannot be delegated.
    let admin_role = cloud.role_id(&admin, "admin").await;
    let escalate = json!({"application_credential": {"name": "up", "roles": [{"id": admin_role}]}});
    let (s, _) = cloud
        .call(Method::POST, &format!("/v3/users/{dave}/application_credentials"), Some(&token), Some(escalate))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let auth = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": id, "secret": secret}}}});
    let (s, t) = cloud.call(Method::POST, "/v3/auth/tokens", None, Some(auth.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["token"]["project"]["id"], project);
    let roles: Vec<&str> =
        t["token"]["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(roles, ["reader"]);

    let (s, shown) = cloud
        .call(
            Method::GET,
            &format!("/v3/users/{dave}/application_credentials/{}", id.as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(shown["application_credential"].get("secret").is_none());
    let (s, _) = cloud
        .call(
            Method::DELETE,
            &format!("/v3/users/{dave}/application_credentials/{}", id.as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(cloud.call(Method::POST, "/v3/auth/tokens", None, Some(auth)).await.0, StatusCode::UNAUTHORIZED);
    cloud.stop().await;
}
