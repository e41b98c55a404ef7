//! Booting many servers is what a cloud is judged by. This starts a fresh
//! all-in-one (this very binary, as a child process) on `--hosts` fake
//! hypervisors, boots `--servers` through the REST API as a client would, waits
//! for every one to leave BUILD, deletes them all, and checks that no port and
//! no claim is left behind. Every step goes through the real API, scheduler,
//! conductor, compute hosts and networking.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::json;

use super::client::Client;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Servers to boot.
    #[arg(long, default_value_t = 100)]
    servers: usize,
    /// Fake compute hosts in the cloud.
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    /// Create requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Flavor of every server (m1.tiny).
    #[arg(long, default_value = "1")]
    flavor: String,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Let the fake hypervisors keep their guests in state files, as the
    /// all-in-one does.
    #[arg(long)]
    hypervisor_state: bool,
    /// Keep the cloud's log here (each request with its service and time).
    #[arg(long)]
    log: Option<std::path::PathBuf>,
    /// Boot on this running cloud (its clouds.yaml, as `scripts/cloud up` or
    /// the all-in-one writes it) instead of a fresh all-in-one; the admin
    /// project's quotas are lifted first. `--hosts` is then what it has.
    #[arg(long)]
    cloud: Option<std::path::PathBuf>,
}

const PASSWORD: &str = "bench-Secret1";

/// The all-in-one child; killed when dropped so a failed run leaves nothing.
struct Cloud {
    child: Child,
    auth_url: String,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cloud(dir: &std::path::Path, args: &Args) -> anyhow::Result<Cloud> {
    // Quotas off: the point is the machinery, not the limits. Unless asked
    // (`--hypervisor-state`), the fake hypervisors keep their guests in memory
    // only: their state file stands in for libvirt's own and is no cost of
    // the control plane.
    let conf = dir.join("bench.conf");
    std::fs::write(
        &conf,
        format!(
            "[fake]\n{}hosts = {}\n[quota]\ninstances = -1\ncores = -1\nram = -1\n[quotas]\nquota_port = -1\n",
            if args.hypervisor_state { "" } else { "state_path =\n" },
            args.hosts
        ),
    )?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["all-in-one", "--state-dir"])
        .arg(dir.join("state"))
        .args(["--identity-port", "0", "--network-port", "0", "--image-port", "0", "--compute-port", "0"])
        .args(["--console-port", "0"])
        .args(["--admin-password", PASSWORD, "--config-file"])
        .arg(&conf)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(args.log.clone().unwrap_or_else(|| dir.join("server.log")))?)
        .spawn()
        .context("starting the all-in-one")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let auth_url =
        line.split_whitespace().find(|w| w.starts_with("http://")).map(|w| w.trim_end_matches([';', ',']).to_string());
    let cloud = Cloud { child, auth_url: auth_url.unwrap_or_default() };
    if !line.contains("ready") || cloud.auth_url.is_empty() {
        bail!("the all-in-one did not come up: {line:?} (log in {})", dir.join("server.log").display());
    }
    Ok(cloud)
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or_default()
}

/// Polls `count` until it answers zero; returns the seconds it took.
async fn until_zero<F, Fut>(what: &str, timeout: Duration, count: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    let started = Instant::now();
    loop {
        let left = count().await?;
        if left == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > timeout {
            bail!("{left} {what} after {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.servers > 4000 {
        bail!("--servers is at most 4000 (one /20 tenant subnet)");
    }
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (cloud, c) = match &args.cloud {
        None => {
            let cloud = start_cloud(dir.path(), &args)?;
            let c = Client::login(&cloud.auth_url, PASSWORD).await?;
            (Some(cloud), c)
        }
        Some(file) => {
            let c = Client::from_clouds_yaml(file).await?;
            c.lift_quotas().await?;
            (None, c)
        }
    };
    let startup_ms = started.elapsed().as_millis();
    let c = Arc::new(c);
    let timeout = Duration::from_secs(args.timeout);

    let net = c.call(Method::POST, format!("{}/v2.0/networks", c.network), Some(json!({"network": {"name": "bench"}})));
    let net = net.await?["network"]["id"].as_str().unwrap_or_default().to_string();
    let subnet = json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/20", "name": "bench"}});
    c.call(Method::POST, format!("{}/v2.0/subnets", c.network), Some(subnet)).await?;
    let images = c.call(Method::GET, format!("{}/v2/images?name=ferrostack-blank", c.image), None).await?;
    let image = images["images"][0]["id"].as_str().context("the default image")?.to_string();

    // Boot: each create is answered at once (202); the build goes on behind it.
    let boot_started = Instant::now();
    let submitted_at = now_micros();
    let body = Arc::new(json!({"server": {"name": "bench", "imageRef": image, "flavorRef": args.flavor,
        "networks": [{"uuid": net}]}}));
    let created = super::run_concurrently(args.servers, args.concurrency, {
        let (c, body) = (c.clone(), body.clone());
        move |_| {
            let (c, body) = (c.clone(), body.clone());
            async move {
                let r = c.call(Method::POST, format!("{}/servers", c.compute), Some((*body).clone())).await?;
                Ok(r["server"]["id"].as_str().unwrap_or_default().to_string())
            }
        }
    })
    .await?;
    let submit_secs = boot_started.elapsed().as_secs_f64();
    let (ids, create_lat): (Vec<String>, Vec<u64>) = created.into_iter().unzip();
    until_zero("servers still in BUILD", timeout, || async {
        let r = c.call(Method::GET, format!("{}/servers?status=BUILD&limit=1000", c.compute), None).await?;
        Ok(r["servers"].as_array().map_or(0, Vec::len))
    })
    .await?;
    let boot_secs = boot_started.elapsed().as_secs_f64();

    // Outcome per server, and each one's time from the first submission to launch.
    let mut active = 0;
    let mut errors = 0;
    let mut to_active = Vec::new();
    let mut per_host = std::collections::BTreeMap::<String, usize>::new();
    let mut marker: Option<String> = None;
    loop {
        let page = match &marker {
            Some(m) => format!("{}/servers/detail?limit=1000&marker={m}", c.compute),
            None => format!("{}/servers/detail?limit=1000", c.compute),
        };
        let r = c.call(Method::GET, page, None).await?;
        let servers = r["servers"].as_array().cloned().unwrap_or_default();
        for s in &servers {
            match s["status"].as_str() {
                Some("ACTIVE") => active += 1,
                _ => errors += 1,
            }
            if let Some(t) = s["OS-SRV-USG:launched_at"].as_str().and_then(common::time::parse_iso) {
                to_active.push((t - submitted_at).max(0) as u64);
            }
            *per_host.entry(s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or("-").to_string()).or_default() += 1;
        }
        marker = servers.last().and_then(|s| s["id"].as_str()).map(String::from);
        if servers.len() < 1000 {
            break;
        }
    }

    // Delete them all, then look for anything left behind.
    let delete_started = Instant::now();
    let ids = Arc::new(ids);
    let deleted = super::run_concurrently(ids.len(), args.concurrency, {
        let (c, ids) = (c.clone(), ids.clone());
        move |i| {
            let (c, ids) = (c.clone(), ids.clone());
            async move {
                c.call(Method::DELETE, format!("{}/servers/{}", c.compute, ids[i]), None).await?;
                Ok(String::new())
            }
        }
    })
    .await?;
    let delete_lat: Vec<u64> = deleted.into_iter().map(|(_, l)| l).collect();
    until_zero("servers not yet deleted", timeout, || async {
        let r = c.call(Method::GET, format!("{}/servers?limit=1000", c.compute), None).await?;
        Ok(r["servers"].as_array().map_or(0, Vec::len))
    })
    .await?;
    let delete_secs = delete_started.elapsed().as_secs_f64();
    let ports =
        c.call(Method::GET, format!("{}/v2.0/ports?network_id={net}&device_owner=compute:nova", c.network), None);
    let leaked_ports = ports.await?["ports"].as_array().map_or(0, Vec::len);
    // The 2.87 view still shows what each hypervisor has claimed.
    let hypervisors = c.call_at("2.87", Method::GET, format!("{}/os-hypervisors/detail", c.compute), None).await?;
    let hypervisors = hypervisors["hypervisors"].as_array().cloned().unwrap_or_default();
    let claimed_vcpus: u64 = hypervisors.iter().filter_map(|h| h["vcpus_used"].as_u64()).sum();
    let left_vms = c.call(Method::GET, format!("{}/servers?all_tenants=1", c.compute), None);
    let left_vms = left_vms.await?["servers"].as_array().map_or(0, Vec::len);

    let out = json!({
        "benchmark": "boot",
        "servers": args.servers,
        "cloud": args.cloud.as_ref().map_or("a fresh all-in-one".into(), |f| f.display().to_string()),
        "hosts": if args.cloud.is_some() { hypervisors.len() } else { args.hosts },
        "concurrency": args.concurrency,
        "startup_ms": startup_ms,
        "submit": {
            "per_second": args.servers as f64 / submit_secs,
            "latency_ms": super::percentiles(create_lat),
        },
        "boot": {
            "seconds": boot_secs,
            "servers_per_second": args.servers as f64 / boot_secs,
            "active": active,
            "error": errors,
            "time_to_active_ms": super::percentiles(to_active),
            "hosts_used": per_host.len(),
            "hypervisors": hypervisors.len(),
        },
        "delete": {
            "seconds": delete_secs,
            "latency_ms": super::percentiles(delete_lat),
        },
        "leaked": {"ports": leaked_ports, "servers": left_vms, "claimed_vcpus": claimed_vcpus},
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if cloud.is_none() {
        // A running cloud is left as it was found.
        c.call(Method::DELETE, format!("{}/v2.0/networks/{net}", c.network), None).await?;
    }
    drop(cloud);
    Ok(())
}
