//! The agents' options, with Neutron's names (`linuxbridge_agent.ini`,
//! `dhcp_agent.ini`).

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

pub const STATE_PATH: Opt =
    opt("DEFAULT", "state_path", "/var/lib/neutron", "Where the agents keep their state (the DHCP agent's dhcp/).");
pub const INTERFACE_DRIVER: Opt = opt(
    "DEFAULT",
    "interface_driver",
    "",
    "How the DHCP agent plugs its ports: linuxbridge (a veth whose host end the Linux bridge agent wires). Unset: the DHCP agent only reports its state.",
);
pub const DHCP_CONFS: Opt =
    opt("DEFAULT", "dhcp_confs", "", "The dnsmasq files of each network (default: $state_path/dhcp).");
pub const RESYNC_INTERVAL: Opt =
    opt("DEFAULT", "resync_interval", "5", "Seconds before the DHCP agent retries after a failed resync.");
pub const DHCP_LEASE_DURATION: Opt =
    opt("DEFAULT", "dhcp_lease_duration", "86400", "DHCP lease length in seconds (-1: infinite).");
pub const DNS_DOMAIN: Opt = opt("DEFAULT", "dns_domain", "openstacklocal", "The domain of the names dnsmasq gives.");
pub const DNSMASQ_DNS_SERVERS: Opt =
    opt("DEFAULT", "dnsmasq_dns_servers", "", "Upstream DNS servers dnsmasq forwards to (comma-separated).");
pub const DNSMASQ_LOCAL_RESOLV: Opt =
    opt("DEFAULT", "dnsmasq_local_resolv", "false", "dnsmasq forwards to the host's resolvers.");
pub const DNSMASQ_LEASE_MAX: Opt =
    opt("DEFAULT", "dnsmasq_lease_max", "16777216", "The most leases one dnsmasq keeps.");
pub const DNSMASQ_CONFIG_FILE: Opt =
    opt("DEFAULT", "dnsmasq_config_file", "", "A dnsmasq configuration file every dnsmasq reads.");
pub const ENABLE_ISOLATED_METADATA: Opt = opt(
    "DEFAULT",
    "enable_isolated_metadata",
    "false",
    "Networks without a router reach the metadata service through their DHCP port.",
);
pub const FORCE_METADATA: Opt =
    opt("DEFAULT", "force_metadata", "false", "Every network reaches the metadata service through its DHCP port.");

pub const OPTS: &[Opt] = &[
    STATE_PATH,
    INTERFACE_DRIVER,
    DHCP_CONFS,
    RESYNC_INTERVAL,
    DHCP_LEASE_DURATION,
    DNS_DOMAIN,
    DNSMASQ_DNS_SERVERS,
    DNSMASQ_LOCAL_RESOLV,
    DNSMASQ_LEASE_MAX,
    DNSMASQ_CONFIG_FILE,
    ENABLE_ISOLATED_METADATA,
    FORCE_METADATA,
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

/// The DHCP agent's settings (`dhcp_agent.ini`).
#[derive(Debug, Clone)]
pub struct DhcpAgentConfig {
    /// Whether the agent serves DHCP (an `interface_driver` is set) or only
    /// reports its state.
    pub serves: bool,
    /// Each network's dnsmasq files under `<dhcp_confs>/<network id>/`.
    pub confs: std::path::PathBuf,
    pub resync_interval: std::time::Duration,
    pub dnsmasq: crate::dhcp::DnsmasqOptions,
}

impl DhcpAgentConfig {
    pub fn from_config(c: &Config) -> Result<DhcpAgentConfig, AgentConfigError> {
        let serves = match INTERFACE_DRIVER.get_str(c).unwrap_or_default().trim() {
            "" => false,
            "linuxbridge" | "neutron.agent.linux.interface.BridgeInterfaceDriver" => true,
            other => {
                return Err(AgentConfigError::Bad(
                    "DEFAULT",
                    "interface_driver",
                    format!("{other:?}: the DHCP agent plugs its ports with linuxbridge"),
                ))
            }
        };
        let state_path = STATE_PATH.get_str(c).unwrap_or("/var/lib/neutron");
        let confs = match DHCP_CONFS.get_str(c).map(str::trim).filter(|s| !s.is_empty()) {
            Some(dir) => dir.replace("$state_path", state_path).into(),
            None => std::path::Path::new(state_path).join("dhcp"),
        };
        let resync: u64 = RESYNC_INTERVAL.get(c)?;
        let dnsmasq = crate::dhcp::DnsmasqOptions {
            lease_duration: DHCP_LEASE_DURATION.get(c)?,
            dns_domain: DNS_DOMAIN.get_str(c).unwrap_or_default().trim().to_string(),
            lease_max: DNSMASQ_LEASE_MAX.get(c)?,
            dns_servers: DNSMASQ_DNS_SERVERS.get_list(c),
            local_resolv: DNSMASQ_LOCAL_RESOLV.get_bool(c)?,
            config_file: DNSMASQ_CONFIG_FILE.get_str(c).unwrap_or_default().to_string(),
            enable_isolated_metadata: ENABLE_ISOLATED_METADATA.get_bool(c)?,
            force_metadata: FORCE_METADATA.get_bool(c)?,
        };
        Ok(DhcpAgentConfig { serves, confs, resync_interval: std::time::Duration::from_secs(resync.max(1)), dnsmasq })
    }
}
