//! Token issue is on the path of every `openstack` command (each one logs in
//! afresh), and validation on the path of every API call. This starts a fresh
//! identity service on a free port and measures both through HTTP.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use common::Config;
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Tokens to issue (and as many validations).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::empty();
    config.set("database", "connection", format!("sqlite:///{}", dir.path().join("identity.db").display()));
    config.set("fernet_tokens", "key_repository", dir.path().join("fernet").display().to_string());
    config.set("credential", "key_repository", dir.path().join("cred").display().to_string());
    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    let listener = api::server::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let catalog =
        vec![CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: format!("{base}/v3") }];
    identity::bootstrap(&identity, &Bootstrap { admin_password: "bench".into(), region: "RegionOne".into(), catalog })
        .await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::server::serve(listener, identity::api::router(identity), async {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::new();
    let body = Arc::new(json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "bench"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}));
    let issue_url = Arc::new(format!("{base}/v3/auth/tokens"));

    // Issue.
    let started = Instant::now();
    let results = super::run_concurrently(args.requests, args.concurrency, {
        let (client, body, url) = (client.clone(), body.clone(), issue_url.clone());
        move |_| {
            let (client, body, url) = (client.clone(), body.clone(), url.clone());
            async move {
                let r = client.post(url.as_str()).json(&*body).send().await?;
                anyhow::ensure!(r.status() == 201, "token issue answered {}", r.status());
                Ok(r.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string())
            }
        }
    })
    .await?;
    let issue_secs = started.elapsed().as_secs_f64();
    let (tokens, issue_lat): (Vec<String>, Vec<u64>) = results.into_iter().unzip();

    // Validate each token with another.
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let results = super::run_concurrently(args.requests, args.concurrency, {
        let (client, tokens, url) = (client.clone(), tokens.clone(), issue_url.clone());
        move |i| {
            let (client, tokens, url) = (client.clone(), tokens.clone(), url.clone());
            async move {
                let r = client
                    .get(url.as_str())
                    .header("x-auth-token", &tokens[0])
                    .header("x-subject-token", &tokens[i])
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == 200, "token validation answered {}", r.status());
                Ok(String::new())
            }
        }
    })
    .await?;
    let validate_secs = started.elapsed().as_secs_f64();
    let validate_lat: Vec<u64> = results.into_iter().map(|(_, l)| l).collect();

    let _ = stop_tx.send(());
    let _ = server.await;
    let out = json!({
        "benchmark": "tokens",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "issue": {
            "per_second": args.requests as f64 / issue_secs,
            "latency_ms": super::percentiles(issue_lat),
        },
        "validate": {
            "per_second": args.requests as f64 / validate_secs,
            "latency_ms": super::percentiles(validate_lat),
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
