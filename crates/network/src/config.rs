//! Networking's options, with neutron.conf's and ml2_conf.ini's sections and
//! names.

use std::time::Duration;

use common::{Config, ConfigError, Opt};

pub const DATABASE_CONNECTION: Opt = Opt {
    section: "database",
    name: "connection",
    default: "sqlite:////var/lib/ferrostack/network.db",
    help: "Database URL, oslo.db style (sqlite:////path.db).",
};

pub const BASE_MAC: Opt = Opt {
    section: "DEFAULT",
    name: "base_mac",
    default: "fa:16:3e:00:00:00",
    help: "MAC addresses of new ports start with this prefix; the zero octets are random.",
};

pub const GLOBAL_PHYSNET_MTU: Opt = Opt {
    section: "DEFAULT",
    name: "global_physnet_mtu",
    default: "1500",
    help: "MTU of the underlying physical network. Tunnelled networks get it less the tunnel overhead.",
};

pub const AGENT_DOWN_TIME: Opt = Opt {
    section: "DEFAULT",
    name: "agent_down_time",
    default: "75",
    help: "Seconds without a heartbeat after which an agent is considered down (keep it at least\n\
           twice the agents' report_interval).",
};

pub const TYPE_DRIVERS: Opt = Opt {
    section: "ml2",
    name: "type_drivers",
    default: "local,flat,vlan,vxlan,gre",
    help: "Network type drivers to load.",
};

pub const TENANT_NETWORK_TYPES: Opt = Opt {
    section: "ml2",
    name: "tenant_network_types",
    default: "local",
    help: "Network types for project networks, in order of preference: a network gets the first\n\
           type that still has a free segment.",
};

pub const MECHANISM_DRIVERS: Opt = Opt {
    section: "ml2",
    name: "mechanism_drivers",
    default: "openvswitch,linuxbridge,l2population",
    help: "Mechanism drivers, in order: those that bind ports (tried in turn) and l2population (overlay forwarding entries for the agents).",
};

pub const PATH_MTU: Opt = Opt {
    section: "ml2",
    name: "path_mtu",
    default: "0",
    help: "Largest MTU the tunnel underlay carries; 0 means global_physnet_mtu.",
};

pub const PHYSICAL_NETWORK_MTUS: Opt = Opt {
    section: "ml2",
    name: "physical_network_mtus",
    default: "",
    help: "Per physical network MTUs, as physnet:mtu pairs, for flat and VLAN networks.",
};

pub const FLAT_NETWORKS: Opt = Opt {
    section: "ml2_type_flat",
    name: "flat_networks",
    default: "*",
    help: "Physical networks flat networks may use; * allows any.",
};

pub const NETWORK_VLAN_RANGES: Opt = Opt {
    section: "ml2_type_vlan",
    name: "network_vlan_ranges",
    default: "",
    help: "physnet:min:max ranges project VLAN networks are allocated from (a bare physnet allows\n\
           only provider networks on it).",
};

pub const VNI_RANGES: Opt = Opt {
    section: "ml2_type_vxlan",
    name: "vni_ranges",
    default: "",
    help: "min:max ranges of VXLAN ids for project networks.",
};

pub const TUNNEL_ID_RANGES: Opt = Opt {
    section: "ml2_type_gre",
    name: "tunnel_id_ranges",
    default: "",
    help: "min:max ranges of GRE keys for project networks.",
};

macro_rules! quota_opt {
    ($name:ident, $key:literal, $default:literal, $what:literal) => {
        pub const $name: Opt = Opt {
            section: "quotas",
            name: $key,
            default: $default,
            help: concat!("Default number of ", $what, " a project may have; -1 is unlimited."),
        };
    };
}

quota_opt!(QUOTA_NETWORK, "quota_network", "100", "networks");
quota_opt!(QUOTA_SUBNET, "quota_subnet", "100", "subnets");
quota_opt!(QUOTA_PORT, "quota_port", "500", "ports");
quota_opt!(QUOTA_ROUTER, "quota_router", "10", "routers");
quota_opt!(QUOTA_FLOATINGIP, "quota_floatingip", "50", "floating IPs");
quota_opt!(QUOTA_SECURITY_GROUP, "quota_security_group", "10", "security groups");
quota_opt!(QUOTA_SECURITY_GROUP_RULE, "quota_security_group_rule", "100", "security group rules");
quota_opt!(QUOTA_SUBNETPOOL, "quota_subnetpool", "-1", "subnet pools");

pub const OPTS: &[Opt] = &[
    HOST,
    DATABASE_CONNECTION,
    BASE_MAC,
    GLOBAL_PHYSNET_MTU,
    AGENT_DOWN_TIME,
    TYPE_DRIVERS,
    TENANT_NETWORK_TYPES,
    MECHANISM_DRIVERS,
    PATH_MTU,
    PHYSICAL_NETWORK_MTUS,
    FLAT_NETWORKS,
    NETWORK_VLAN_RANGES,
    VNI_RANGES,
    TUNNEL_ID_RANGES,
    QUOTA_NETWORK,
    QUOTA_SUBNET,
    QUOTA_PORT,
    QUOTA_ROUTER,
    QUOTA_FLOATINGIP,
    QUOTA_SECURITY_GROUP,
    QUOTA_SECURITY_GROUP_RULE,
    QUOTA_SUBNETPOOL,
];

/// Networking's settings, read from a [`Config`].
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub database: db::Connection,
    pub base_mac: String,
    pub global_physnet_mtu: u32,
    pub agent_down_time: Duration,
    pub type_drivers: Vec<String>,
    pub tenant_network_types: Vec<String>,
    pub mechanism_drivers: Vec<String>,
    pub path_mtu: u32,
    pub physical_network_mtus: Vec<String>,
    pub flat_networks: Vec<String>,
    pub network_vlan_ranges: Vec<String>,
    pub vni_ranges: Vec<String>,
    pub tunnel_id_ranges: Vec<String>,
    /// (resource, default limit) in the order quotas are listed.
    pub quotas: Vec<(&'static str, i64)>,
}

impl NetworkConfig {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        let quota = |o: &Opt| -> Result<(&'static str, i64), ConfigError> {
            Ok((o.name.trim_start_matches("quota_"), o.get(c)?))
        };
        Ok(NetworkConfig {
            database: db::Connection::from_config(c, &DATABASE_CONNECTION)?,
            base_mac: BASE_MAC.get(c)?,
            global_physnet_mtu: GLOBAL_PHYSNET_MTU.get(c)?,
            agent_down_time: Duration::from_secs(AGENT_DOWN_TIME.get(c)?),
            type_drivers: TYPE_DRIVERS.get_list(c),
            tenant_network_types: TENANT_NETWORK_TYPES.get_list(c),
            mechanism_drivers: MECHANISM_DRIVERS.get_list(c),
            path_mtu: PATH_MTU.get(c)?,
            physical_network_mtus: PHYSICAL_NETWORK_MTUS.get_list(c),
            flat_networks: FLAT_NETWORKS.get_list(c),
            network_vlan_ranges: NETWORK_VLAN_RANGES.get_list(c),
            vni_ranges: VNI_RANGES.get_list(c),
            tunnel_id_ranges: TUNNEL_ID_RANGES.get_list(c),
            quotas: vec![
                quota(&QUOTA_NETWORK)?,
                quota(&QUOTA_SUBNET)?,
                quota(&QUOTA_PORT)?,
                quota(&QUOTA_ROUTER)?,
                quota(&QUOTA_FLOATINGIP)?,
                quota(&QUOTA_SECURITY_GROUP)?,
                quota(&QUOTA_SECURITY_GROUP_RULE)?,
                quota(&QUOTA_SUBNETPOOL)?,
            ],
        })
    }
}

pub const HOST: Opt = Opt {
    section: "DEFAULT",
    name: "host",
    default: "",
    help: "This host's name, as agents and bindings know it; empty means the system's host name.",
};

/// The configured host name, or the system's.
pub fn host(c: &Config) -> String {
    match HOST.get_str(c) {
        Some(h) => h.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into()),
    }
}
