//! The real binary: `ferrostack all-in-one` starts, writes what the CLI needs,
//! answers, stops cleanly on SIGTERM, and keeps everything across a restart.

mod common;

use common::{login, AllInOne};
use serde_json::json;

async fn issue(client: &reqwest::Client, auth_url: &str) -> (reqwest::StatusCode, String) {
    let (status, token, _) = login(client, auth_url).await;
    (status, token)
}

#[tokio::test]
async fn starts_serves_stops_and_restarts_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let client = reqwest::Client::new();

    let cloud = AllInOne::start(&state);
    let clouds = std::fs::read_to_string(state.join("clouds.yaml")).unwrap();
    assert!(clouds.contains("ferrostack:") && clouds.contains(&cloud.auth_url), "{clouds}");
    assert!(std::fs::read_to_string(state.join("openrc")).unwrap().contains("OS_AUTH_URL"));
    let (status, token) = issue(&client, &cloud.auth_url).await;
    assert_eq!(status, 201);
    let created = client
        .post(format!("{}/projects", cloud.auth_url))
        .header("x-auth-token", &token)
        .json(&json!({"project": {"name": "kept"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(cloud.terminate().success(), "SIGTERM is a clean exit");

    let cloud = AllInOne::start(&state);
    let shown = client
        .get(format!("{}/projects?name=kept", cloud.auth_url))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200, "the old token is still valid");
    let body: serde_json::Value = shown.json().await.unwrap();
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
    assert!(cloud.terminate().success());
}
