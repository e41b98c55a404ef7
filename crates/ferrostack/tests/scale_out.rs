//! The scale-out form: identity and networking as separate processes, each from
//! its own config file; networking validates tokens with identity over HTTP.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ferrostack(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrostack"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

async fn wait_up(url: &str) {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never answered");
}

#[tokio::test]
async fn networking_alone_validates_tokens_with_identity_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ip, np) = (free_port(), free_port());
    let identity_conf = d.join("identity.conf");
    write(
        &identity_conf,
        &format!(
            "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {ip}\n[database]\nconnection = sqlite:///{}/identity.db\n\
             [fernet_tokens]\nkey_repository = {}/fernet\n[credential]\nkey_repository = {}/cred\n",
            d.display(),
            d.display(),
            d.display()
        ),
    );
    let status = ferrostack(&[
        "bootstrap",
        "--config-file",
        identity_conf.to_str().unwrap(),
        "--bootstrap-password",
        "pw",
        "--bootstrap-public-url",
        &format!("http://127.0.0.1:{ip}/v3"),
    ])
    .status()
    .unwrap();
    assert!(status.success());
    let _identity =
        Process(ferrostack(&["identity", "--config-file", identity_conf.to_str().unwrap()]).spawn().unwrap());

    let network_conf = d.join("neutron.conf");
    write(
        &network_conf,
        &format!(
            "[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {np}\nhost = net1\n[database]\nconnection = sqlite:///{}/network.db\n\
             [ml2]\ntenant_network_types = vxlan\n[ml2_type_vxlan]\nvni_ranges = 100:200\n\
             [keystone_authtoken]\nauth_url = http://127.0.0.1:{ip}/v3\nusername = admin\npassword = pw\nproject_name = admin\n",
            d.display()
        ),
    );
    let _network =
        Process(ferrostack(&["network-server", "--config-file", network_conf.to_str().unwrap()]).spawn().unwrap());
    wait_up(&format!("http://127.0.0.1:{ip}/v3")).await;
    wait_up(&format!("http://127.0.0.1:{np}/")).await;

    let client = reqwest::Client::new();
    let login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
        {"name": "admin", "domain": {"id": "default"}, "password": "pw"}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    let r = client.post(format!("http://127.0.0.1:{ip}/v3/auth/tokens")).json(&login).send().await.unwrap();
    let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();

    let r = client
        .post(format!("http://127.0.0.1:{np}/v2.0/networks"))
        .header("x-auth-token", &token)
        .json(&json!({"network": {"name": "remote"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["network"]["provider:segmentation_id"], 100);

    let r = client
        .get(format!("http://127.0.0.1:{np}/v2.0/networks"))
        .header("x-auth-token", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r =
        client.get(format!("http://127.0.0.1:{np}/v2.0/agents")).header("x-auth-token", &token).send().await.unwrap();
    let agents: Value = r.json().await.unwrap();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 3, "the stand-in agents of host net1 report");
}
