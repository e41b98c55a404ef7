//! `ferrostack bench dhcp --cloud clouds.yaml`: netns instances of a running
//! netns cloud (`scripts/cloud up --compute-driver netns`) booted one after
//! another on a VXLAN network whose DHCP another host's agent serves: the
//! time from `POST /servers` to ACTIVE, which for a netns instance includes
//! taking its first DHCP lease, and whether each really holds its port's
//! address on its interface (read inside its namespace). Everything it
//! makes goes at the end, also when it fails.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netdev::Netlink;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::datapath::{network, Cleanup};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The netns cloud's clouds.yaml.
    #[arg(long)]
    cloud: PathBuf,
    /// Servers booted, one after another.
    #[arg(long, default_value_t = 100)]
    servers: usize,
    /// The host they boot on (its network namespace, as scripts/cloud names it).
    #[arg(long, default_value = "host-1")]
    host: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let c = Client::from_clouds_yaml(&args.cloud).await?;
    c.lift_quotas().await?;
    let mut cleanup = Cleanup::default();
    let result = measure(&args, &c, &mut cleanup).await;
    cleanup.run(&c).await;
    let out = result?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn measure(args: &Args, c: &Client, cleanup: &mut Cleanup) -> anyhow::Result<Value> {
    let net = network(c, cleanup, "bench-dhcp", "10.97.0.0/16").await?;
    let dhcp = c.call(Method::GET, format!("{}/v2.0/networks/{net}/dhcp-agents", c.network), None).await?;
    let dhcp_host = dhcp["agents"][0]["host"].as_str().unwrap_or("none").to_string();
    let (image, flavor) = c.blank_image_and_nano_flavor().await?;
    let mut to_active = Vec::new();
    let mut leased = 0;
    let mut without = Vec::new();
    for n in 0..args.servers {
        let body = json!({"server": {"name": format!("bench-dhcp-{n}"), "imageRef": image, "flavorRef": flavor,
            "networks": [{"uuid": net}], "availability_zone": format!("nova:{}", args.host)}});
        let started = Instant::now();
        let server = c.call(Method::POST, format!("{}/servers", c.compute), Some(body)).await?;
        let id = server["server"]["id"].as_str().context("server id")?.to_string();
        let url = format!("{}/servers/{id}", c.compute);
        cleanup.urls.push(url.clone());
        let shown = until_active(c, &url).await?;
        to_active.push(started.elapsed().as_micros() as u64);
        if holds_its_address(&shown).await? {
            leased += 1;
        } else {
            without.push(id);
        }
    }
    Ok(json!({
        "benchmark": "dhcp",
        "servers": args.servers,
        "host": args.host,
        "dhcp_agent_host": dhcp_host,
        "create_to_active_with_lease_ms": super::percentiles(to_active),
        "holding_their_port_address": leased,
        "without_it": without,
    }))
}

/// Polls the server every 10 ms until it is ACTIVE.
async fn until_active(c: &Client, url: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let s = c.call(Method::GET, url.to_string(), None).await?;
        match s["server"]["status"].as_str() {
            Some("ACTIVE") => return Ok(s["server"].clone()),
            Some("BUILD") => tokio::time::sleep(Duration::from_millis(10)).await,
            other => bail!("{url} went {other:?}: {}", s["server"]["fault"]),
        }
    }
    bail!("{url} did not become ACTIVE")
}

/// Whether the instance's `eth0` holds the address its port was given.
async fn holds_its_address(server: &Value) -> anyhow::Result<bool> {
    let ns = server["OS-EXT-SRV-ATTR:instance_name"].as_str().context("instance_name")?;
    let want: IpAddr = server["addresses"]
        .as_object()
        .and_then(|a| a.values().next())
        .and_then(|a| a[0]["addr"].as_str())
        .context("an address")?
        .parse()?;
    let nl = Netlink::in_namespace(ns).await?;
    let Some(eth0) = nl.link("eth0").await? else { return Ok(false) };
    Ok(nl.addresses(eth0.index).await?.iter().any(|(ip, _)| *ip == want))
}
