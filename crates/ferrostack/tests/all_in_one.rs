//! The real binary: `ferrostack all-in-one` starts, writes what the CLI needs,
//! answers, stops cleanly on SIGTERM, and keeps everything across a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;

/// A running all-in-one, killed when dropped (a failing test leaves nothing).
struct AllInOne {
    child: Child,
    auth_url: String,
}

impl AllInOne {
    fn start(state: &Path) -> AllInOne {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrostack"))
            .args(["all-in-one", "--state-dir"])
            .arg(state)
            .args([
                "--identity-port",
                "0",
                "--network-port",
                "0",
                "--image-port",
                "0",
                "--compute-port",
                "0",
                "--admin-password",
                "s3cret!",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferrostack");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("ready line");
        assert!(line.contains("ready"), "{line}");
        let auth_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(|w| w.trim_end_matches([';', ',']).to_string())
            .expect("identity URL in the ready line");
        AllInOne { child, auth_url }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        self.child.wait().expect("wait")
    }
}

impl Drop for AllInOne {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn issue(client: &reqwest::Client, auth_url: &str) -> (reqwest::StatusCode, String) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
        {"name": "admin", "domain": {"name": "Default"}, "password": "s3cret!"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = client.post(format!("{auth_url}/auth/tokens")).json(&body).send().await.unwrap();
    let token = r.headers().get("x-subject-token").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status(), token)
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
