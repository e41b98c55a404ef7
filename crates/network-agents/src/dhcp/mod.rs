//! The DHCP agent's driver: one dnsmasq per network, in the network's
//! `qdhcp-<network id>` namespace, on the network's DHCP port.
//! [`dnsmasq`] says what each one is given, [`device`] makes the namespace
//! and the port's device, [`process`] runs dnsmasq; [`LocalDhcp`] puts the
//! three together for the agent: serve a network as the server describes
//! it, or stop serving it.
//!
//! dnsmasq drops its privileges to `nobody` and re-reads its files as
//! `nobody` on SIGHUP, so the directory they are in must be reachable by
//! everyone; [`LocalDhcp::new`] refuses a directory that is not.

pub mod agent;
pub mod device;
pub mod dnsmasq;
pub mod process;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use netdev::Netlink;
use network_rpc::{DhcpNetwork, DhcpPort};

pub use dnsmasq::DnsmasqOptions;

#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error(transparent)]
    Netdev(#[from] netdev::NetdevError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("DHCP device: {0}")]
    Device(String),
    #[error("{0}")]
    Dnsmasq(String),
    #[error("{0} cannot be read by dnsmasq, which runs as nobody: every directory above it needs o+x")]
    Unreadable(PathBuf),
}

/// What [`LocalDhcp::enable`] did to the network's dnsmasq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// Started it (none ran, or its command line had to change).
    Started,
    /// Told it of changed files.
    Reloaded,
    /// Nothing had changed.
    Unchanged,
}

/// The DHCP of the networks this host serves, with their files under
/// `root/<network id>/` (Neutron's `dhcp_confs`).
pub struct LocalDhcp {
    root: PathBuf,
    options: DnsmasqOptions,
    host: Netlink,
}

impl LocalDhcp {
    /// The DHCP of the host `host` speaks netlink in (where the ports'
    /// host ends stay).
    pub fn new(root: &Path, options: DnsmasqOptions, host: Netlink) -> Result<LocalDhcp, DhcpError> {
        std::fs::create_dir_all(root)?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        let root = root.canonicalize()?;
        for dir in root.ancestors() {
            if std::fs::metadata(dir)?.permissions().mode() & 0o001 == 0 {
                return Err(DhcpError::Unreadable(dir.to_path_buf()));
            }
        }
        Ok(LocalDhcp { root, options, host })
    }

    fn dir(&self, network_id: &str) -> PathBuf {
        self.root.join(network_id)
    }

    /// The networks whose files are here (served, or left by a crash):
    /// directories named by a network id, nothing else under the root.
    pub fn networks(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let is_id = |n: &str| n.len() == 36 && n.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_id(n))
            .collect()
    }

    /// Serves `net` on its DHCP port `port` (one of `net.ports`, bound to
    /// this host): the device, the files, and dnsmasq started — or, if one
    /// runs with the same command line, reloaded when a file changed, so the
    /// leases it gave stay.
    pub async fn enable(&self, net: &DhcpNetwork, port: &DhcpPort) -> Result<Served, DhcpError> {
        device::ensure(&self.host, net, port).await?;
        let dir = self.dir(&net.id);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let local: BTreeMap<String, String> =
            port.fixed_ips.iter().map(|f| (f.subnet_id.clone(), f.ip_address.clone())).collect();
        let files = dnsmasq::files(net, &self.options, &local);
        let mut changed = false;
        for (kind, text) in [("host", &files.host), ("addn_hosts", &files.addn_hosts), ("opts", &files.opts)] {
            changed |= write_if_changed(&dir.join(kind), text)?;
        }
        let cmd = dnsmasq::command_line(net, &self.options, &dir);
        match process::running(&dir) {
            Some((_, args)) if args == cmd && !changed => return Ok(Served::Unchanged),
            Some((pid, args)) if args == cmd => {
                self.release_unused(net, port, &dir).await;
                process::reload(pid)?;
                return Ok(Served::Reloaded);
            }
            Some(_) => process::stop(&dir).await?,
            None => {}
        }
        let leases = dir.join("leases");
        let existing = std::fs::read_to_string(&leases).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        write_if_changed(&leases, &dnsmasq::initial_leases(net, &self.options, &existing, now))?;
        process::start(&device::namespace_name(&net.id), &cmd).await?;
        Ok(Served::Started)
    }

    /// Gives back (`dhcp_release`, from dnsmasq-utils) the leases of ports
    /// that went, so their addresses can go to new ports at once. Without
    /// the tool, an address comes free when its lease ends.
    async fn release_unused(&self, net: &DhcpNetwork, port: &DhcpPort, dir: &Path) {
        let leases = std::fs::read_to_string(dir.join("leases")).unwrap_or_default();
        let namespace = device::namespace_name(&net.id);
        let device = device::device_name(&port.id);
        for (ip, mac, client_id) in dnsmasq::unused_leases(net, &self.options, &leases) {
            let mut cmd = match netdev::command_in(&namespace, "dhcp_release") {
                Ok(cmd) => cmd,
                Err(e) => {
                    tracing::warn!(network = %net.id, error = %e, "cannot release unused leases");
                    return;
                }
            };
            cmd.args([device.as_str(), ip.as_str(), mac.as_str()]).args(client_id.as_deref());
            match cmd.output().await {
                Ok(out) if out.status.success() => tracing::debug!(network = %net.id, %ip, %mac, "lease released"),
                Ok(out) => tracing::warn!(network = %net.id, %ip, status = %out.status, "dhcp_release failed"),
                Err(e) => {
                    tracing::warn!(network = %net.id, error = %e, "dhcp_release (dnsmasq-utils) cannot run");
                    return;
                }
            }
        }
    }

    /// Stops serving the network: dnsmasq stopped, the namespace (and the
    /// port's device) and the files removed. A network not served is fine.
    pub async fn disable(&self, network_id: &str) -> Result<(), DhcpError> {
        let dir = self.dir(network_id);
        process::stop(&dir).await?;
        device::remove(network_id).await?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Replaces the file's contents (atomically, readable by all) unless they
/// are already `text`; says whether it wrote.
fn write_if_changed(path: &Path, text: &str) -> Result<bool, DhcpError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}
