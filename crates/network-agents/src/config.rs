//! The agents' options, with Neutron's names (`linuxbridge_agent.ini`).

use common::config::Opt;
use common::Config;

const fn opt(section: &'static str, name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt { section, name, default, help }
}

pub const REPORT_INTERVAL: Opt = opt("agent", "report_interval", "30", "Seconds between an agent's state reports.");
pub const PHYSICAL_INTERFACE_MAPPINGS: Opt = opt(
    "linux_bridge",
    "physical_interface_mappings",
    "",
    "physnet:interface pairs: the interface each flat (or VLAN) physical network leaves this host on.",
);
pub const ENABLE_VXLAN: Opt = opt("vxlan", "enable_vxlan", "true", "Carry VXLAN networks (needs local_ip).");
pub const LOCAL_IP: Opt =
    opt("vxlan", "local_ip", "", "This host's tunnel endpoint: the address VXLAN packets leave from.");
pub const L2_POPULATION: Opt =
    opt("vxlan", "l2_population", "true", "Forwarding entries and ARP answers from the server (no multicast group).");
pub const FIREWALL_DRIVER: Opt = opt(
    "securitygroup",
    "firewall_driver",
    "iptables_hybrid",
    "How ports are filtered: iptables_hybrid (stateful security groups, realised with nftables) or noop.",
);
pub const ENABLE_SECURITY_GROUP: Opt =
    opt("securitygroup", "enable_security_group", "true", "Enforce security groups (false: no port is filtered).");

pub const OPTS: &[Opt] = &[
    REPORT_INTERVAL,
    PHYSICAL_INTERFACE_MAPPINGS,
    ENABLE_VXLAN,
    LOCAL_IP,
    L2_POPULATION,
    FIREWALL_DRIVER,
    ENABLE_SECURITY_GROUP,
];

/// Which firewall driver the options choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallDriver {
    /// `iptables_hybrid` (and `iptables`): nftables on the host's bridges.
    Nftables,
    Noop,
}

impl FirewallDriver {
    pub fn from_config(c: &Config) -> Result<FirewallDriver, AgentConfigError> {
        if !ENABLE_SECURITY_GROUP.get_bool(c)? {
            return Ok(FirewallDriver::Noop);
        }
        let name = FIREWALL_DRIVER.get_str(c).unwrap_or_default();
        match name.trim() {
            "iptables_hybrid" | "iptables" => Ok(FirewallDriver::Nftables),
            "noop" | "" => Ok(FirewallDriver::Noop),
            other => Err(AgentConfigError::Bad(
                "securitygroup",
                "firewall_driver",
                format!("{other:?}: the Linux bridge agent knows iptables_hybrid, iptables and noop"),
            )),
        }
    }
}

/// The Linux bridge agent's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LinuxBridgeConfig {
    /// physnet → interface.
    pub interface_mappings: Vec<(String, String)>,
    pub enable_vxlan: bool,
    pub local_ip: Option<std::net::Ipv4Addr>,
    pub l2_population: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    #[error("{0}")]
    Config(#[from] common::config::ConfigError),
    #[error("[{0}] {1}: {2}")]
    Bad(&'static str, &'static str, String),
}

impl LinuxBridgeConfig {
    pub fn from_config(c: &Config) -> Result<LinuxBridgeConfig, AgentConfigError> {
        let mut interface_mappings = Vec::new();
        for entry in PHYSICAL_INTERFACE_MAPPINGS.get_list(c) {
            let (physnet, iface) = entry.split_once(':').ok_or_else(|| {
                AgentConfigError::Bad(
                    "linux_bridge",
                    "physical_interface_mappings",
                    format!("{entry:?} is not physnet:interface"),
                )
            })?;
            interface_mappings.push((physnet.trim().to_string(), iface.trim().to_string()));
        }
        let enable_vxlan = ENABLE_VXLAN.get_bool(c)?;
        let local_ip =
            match LOCAL_IP.get_str(c).filter(|s| !s.is_empty()) {
                Some(ip) => Some(ip.parse().map_err(|_| {
                    AgentConfigError::Bad("vxlan", "local_ip", format!("{ip:?} is not an IPv4 address"))
                })?),
                None => None,
            };
        if enable_vxlan && local_ip.is_none() {
            return Err(AgentConfigError::Bad("vxlan", "local_ip", "VXLAN is enabled but local_ip is not set".into()));
        }
        Ok(LinuxBridgeConfig { interface_mappings, enable_vxlan, local_ip, l2_population: L2_POPULATION.get_bool(c)? })
    }
}
