//! Security groups on an agent's host: which ports are filtered, and how.
//! The agent loop hands a firewall the ports it wires with their groups'
//! rules; the firewall makes the host enforce them. Two drivers, by
//! Neutron's `[securitygroup] firewall_driver` names: `iptables_hybrid`
//! (stateful, realised with nftables) and `noop`.

pub mod nftables;
pub mod noop;

use std::collections::BTreeSet;

use async_trait::async_trait;
use network_rpc::{DeviceDetails, SecurityGroupInfo};

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nft: {0}")]
    Nft(String),
    #[error("cannot run nft: {0}")]
    Spawn(String),
    #[error("{0}")]
    Netdev(#[from] netdev::NetdevError),
    #[error("more than {0} filtered ports on this host")]
    Full(usize),
}

pub type FirewallResult<T> = Result<T, FirewallError>;

#[async_trait]
pub trait Firewall: Send + Sync {
    /// Makes the host filter exactly these ports (at start and on resync),
    /// in one step: traffic on ports whose rules are unchanged is not
    /// interrupted, and established connections stay established.
    async fn sync(&self, ports: &[DeviceDetails], groups: &SecurityGroupInfo) -> FirewallResult<()>;

    /// Filters these ports by their groups' rules now (or stops filtering
    /// those whose port security is off), and refreshes the member sets in
    /// `groups`; other ports are left as they are.
    async fn update(&self, ports: &[DeviceDetails], groups: &SecurityGroupInfo) -> FirewallResult<()>;

    /// Stops filtering these ports (they left the host).
    async fn remove(&self, ports: &[String]) -> FirewallResult<()>;

    /// Whether it filters at all (else the agent need not fetch rules).
    fn enforces(&self) -> bool {
        true
    }
}

/// Whether a port is filtered at all: port security on, and not one of the
/// network's own ports (DHCP, routers), which Neutron trusts.
pub fn is_filtered(port: &DeviceDetails) -> bool {
    port.port_security_enabled && !port.device_owner.starts_with("network:")
}

/// The groups whose rules decide a port's filter, and the remote groups
/// those rules name (whose members it matches).
pub fn groups_of(port: &DeviceDetails, info: &SecurityGroupInfo) -> (BTreeSet<String>, BTreeSet<String>) {
    let own: BTreeSet<String> = port.security_groups.iter().cloned().collect();
    let remote = own
        .iter()
        .filter_map(|g| info.security_groups.get(g))
        .flatten()
        .filter_map(|r| r.remote_group_id.clone())
        .collect();
    (own, remote)
}

/// Whether two descriptions of a port filter it the same way.
pub fn same_filter(a: &DeviceDetails, b: &DeviceDetails) -> bool {
    a.port_security_enabled == b.port_security_enabled
        && a.security_groups == b.security_groups
        && a.mac_address == b.mac_address
        && a.fixed_ips == b.fixed_ips
        && a.allowed_address_pairs == b.allowed_address_pairs
        && a.network_id == b.network_id
        && a.device_owner == b.device_owner
}
