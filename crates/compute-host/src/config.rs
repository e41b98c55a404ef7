//! A compute host's options, with nova.conf's sections and names.

use std::path::PathBuf;
use std::time::Duration;

use common::{Config, ConfigError, Opt};

const fn opt(section: &'static str, name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt { section, name, default, help }
}

pub use compute_rpc::config::{HOST, REPORT_INTERVAL};
pub const COMPUTE_DRIVER: Opt =
    opt("DEFAULT", "compute_driver", "fake", "The virt driver: fake, or netns (each instance a network namespace).");
pub const INSTANCES_PATH: Opt = opt(
    "DEFAULT",
    "instances_path",
    "/var/lib/ferrostack/instances",
    "Where the host keeps its instances' files (the netns driver: console logs, served pages, pids).",
);
pub const CPU_RATIO: Opt = opt("DEFAULT", "cpu_allocation_ratio", "16.0", "vCPUs per physical core.");
pub const RAM_RATIO: Opt = opt("DEFAULT", "ram_allocation_ratio", "1.5", "Memory overcommit.");
pub const DISK_RATIO: Opt = opt("DEFAULT", "disk_allocation_ratio", "1.0", "Disk overcommit.");
pub const RESERVED_RAM: Opt =
    opt("DEFAULT", "reserved_host_memory_mb", "512", "Memory a host keeps for itself, in MiB.");
pub const RESERVED_DISK: Opt = opt("DEFAULT", "reserved_host_disk_mb", "0", "Disk a host keeps for itself, in MiB.");
pub const RESERVED_CPUS: Opt = opt("DEFAULT", "reserved_host_cpus", "0", "Cores a host keeps for itself.");
pub const MY_IP: Opt =
    opt("DEFAULT", "my_ip", "127.0.0.1", "This host's address on the management network, as it reports it.");
pub const VNC_SERVER_LISTEN: Opt =
    opt("vnc", "server_listen", "127.0.0.1", "Address the guests' VNC displays listen on.");
pub const VNC_SERVER_PROXYCLIENT_ADDRESS: Opt = opt(
    "vnc",
    "server_proxyclient_address",
    "127.0.0.1",
    "Address the console proxy connects to for the guests' displays.",
);
pub const FAKE_FAIL_HOSTS: Opt =
    opt("fake", "fail_hosts", "", "Fake hosts that fail every spawn (to exercise rescheduling), comma-separated.");
pub const FAKE_HOSTS: Opt = opt("fake", "hosts", "1", "Compute hosts the all-in-one simulates with the fake driver.");
pub const FAKE_HOST_PREFIX: Opt = opt(
    "fake",
    "host_prefix",
    "compute-",
    "Names of the simulated hosts: this, then 1 … [fake] hosts (give each compute process its own).",
);
pub const FAKE_VCPUS: Opt = opt("fake", "vcpus", "16", "Cores of each fake host.");
pub const FAKE_MEMORY_MB: Opt = opt("fake", "memory_mb", "65536", "Memory of each fake host, in MiB.");
pub const FAKE_LOCAL_GB: Opt = opt("fake", "local_gb", "1000", "Disk of each fake host, in GiB.");
pub const FAKE_SPAWN_MS: Opt = opt("fake", "spawn_ms", "0", "Milliseconds a fake guest takes to power on.");
pub const FAKE_STATE_PATH: Opt = opt(
    "fake",
    "state_path",
    "",
    "Where the fake hypervisors keep their guests, so they outlive the compute service as a real hypervisor's do (empty: in memory only).",
);

pub const OPTS: &[Opt] = &[
    HOST,
    COMPUTE_DRIVER,
    CPU_RATIO,
    RAM_RATIO,
    DISK_RATIO,
    RESERVED_RAM,
    RESERVED_DISK,
    RESERVED_CPUS,
    REPORT_INTERVAL,
    INSTANCES_PATH,
    MY_IP,
    VNC_SERVER_LISTEN,
    VNC_SERVER_PROXYCLIENT_ADDRESS,
    FAKE_FAIL_HOSTS,
    FAKE_HOSTS,
    FAKE_HOST_PREFIX,
    FAKE_VCPUS,
    FAKE_MEMORY_MB,
    FAKE_LOCAL_GB,
    FAKE_SPAWN_MS,
    FAKE_STATE_PATH,
];

/// A host's capacity and what it keeps back, as its compute service reports.
#[derive(Debug, Clone, PartialEq)]
pub struct HostResources {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub reserved_host_memory_mb: i64,
    pub reserved_host_disk_mb: i64,
    pub reserved_host_cpus: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub host: String,
    pub driver: String,
    pub fake_hosts: usize,
    pub fake_host_prefix: String,
    pub fake_spawn_ms: u64,
    pub fake_fail_hosts: Vec<String>,
    pub fake_state_path: Option<PathBuf>,
    pub instances_path: PathBuf,
    pub resources: HostResources,
    pub report_interval: Duration,
    pub addresses: Addresses,
}

/// Where a host is reached: its own address, and its guests' displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    pub my_ip: String,
    pub vnc_listen: std::net::IpAddr,
    pub vnc_proxyclient: String,
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses {
            my_ip: "127.0.0.1".into(),
            vnc_listen: std::net::Ipv4Addr::LOCALHOST.into(),
            vnc_proxyclient: "127.0.0.1".into(),
        }
    }
}

impl HostConfig {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        Ok(HostConfig {
            host: compute_rpc::config::host(c)?,
            driver: COMPUTE_DRIVER.get(c)?,
            fake_hosts: FAKE_HOSTS.get(c)?,
            fake_host_prefix: FAKE_HOST_PREFIX.get(c)?,
            fake_spawn_ms: FAKE_SPAWN_MS.get(c)?,
            fake_fail_hosts: FAKE_FAIL_HOSTS.get_list(c),
            fake_state_path: FAKE_STATE_PATH.get_str(c).filter(|p| !p.trim().is_empty()).map(PathBuf::from),
            instances_path: PathBuf::from(INSTANCES_PATH.get::<String>(c)?),
            resources: HostResources {
                vcpus: FAKE_VCPUS.get(c)?,
                memory_mb: FAKE_MEMORY_MB.get(c)?,
                local_gb: FAKE_LOCAL_GB.get(c)?,
                reserved_host_memory_mb: RESERVED_RAM.get(c)?,
                reserved_host_disk_mb: RESERVED_DISK.get(c)?,
                reserved_host_cpus: RESERVED_CPUS.get(c)?,
                cpu_allocation_ratio: CPU_RATIO.get(c)?,
                ram_allocation_ratio: RAM_RATIO.get(c)?,
                disk_allocation_ratio: DISK_RATIO.get(c)?,
            },
            report_interval: compute_rpc::config::report_interval(c)?,
            addresses: Addresses {
                my_ip: MY_IP.get(c)?,
                vnc_listen: VNC_SERVER_LISTEN.get(c)?,
                vnc_proxyclient: VNC_SERVER_PROXYCLIENT_ADDRESS.get(c)?,
            },
        })
    }

    /// Names of the hosts this configuration runs: the configured host
    /// alone, or `compute-1` … `compute-N` (`[fake] host_prefix`) when
    /// `[fake] hosts` simulates many.
    pub fn host_names(&self) -> Vec<String> {
        if self.fake_hosts <= 1 {
            vec![self.host.clone()]
        } else {
            (1..=self.fake_hosts).map(|i| format!("{}{i}", self.fake_host_prefix)).collect()
        }
    }
}
