//! The compute service's options, with nova.conf's sections and names.

use common::{Config, ConfigError, Opt};

use crate::scheduler::SchedulerOptions;

const fn opt(section: &'static str, name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt { section, name, default, help }
}

pub const DATABASE_CONNECTION: Opt =
    opt("database", "connection", "sqlite:////var/lib/ferrostack/compute.db", "Database URL, oslo.db style.");
pub const HOST: Opt = opt("DEFAULT", "host", "", "This compute host's name (default: the machine's hostname).");
pub const COMPUTE_DRIVER: Opt = opt("DEFAULT", "compute_driver", "fake", "The virt driver: fake.");
pub const CPU_RATIO: Opt = opt("DEFAULT", "cpu_allocation_ratio", "16.0", "vCPUs per physical core.");
pub const RAM_RATIO: Opt = opt("DEFAULT", "ram_allocation_ratio", "1.5", "Memory overcommit.");
pub const DISK_RATIO: Opt = opt("DEFAULT", "disk_allocation_ratio", "1.0", "Disk overcommit.");
pub const RESERVED_RAM: Opt =
    opt("DEFAULT", "reserved_host_memory_mb", "512", "Memory a host keeps for itself, in MiB.");
pub const RESERVED_DISK: Opt = opt("DEFAULT", "reserved_host_disk_mb", "0", "Disk a host keeps for itself, in MiB.");
pub const RESERVED_CPUS: Opt = opt("DEFAULT", "reserved_host_cpus", "0", "Cores a host keeps for itself.");
pub const REPORT_INTERVAL: Opt =
    opt("DEFAULT", "report_interval", "10", "Seconds between a service's heartbeats and resource reports.");
pub const SERVICE_DOWN_TIME: Opt =
    opt("DEFAULT", "service_down_time", "60", "Seconds without a heartbeat after which a service is down.");
pub const ALLOW_RESIZE_TO_SAME_HOST: Opt =
    opt("DEFAULT", "allow_resize_to_same_host", "false", "Whether a resize may stay on the server's host.");
pub const FAKE_FAIL_HOSTS: Opt =
    opt("fake", "fail_hosts", "", "Fake hosts that fail every spawn (to exercise rescheduling), comma-separated.");
pub const FAKE_HOSTS: Opt = opt("fake", "hosts", "1", "Compute hosts the all-in-one simulates with the fake driver.");
pub const VNC_ENABLED: Opt = opt("vnc", "enabled", "true", "Whether servers' VNC consoles are offered.");
pub const NOVNCPROXY_BASE_URL: Opt = opt(
    "vnc",
    "novncproxy_base_url",
    "http://127.0.0.1:6080/vnc_auto.html",
    "The noVNC page console URLs point at; the token follows in its `path`.",
);
pub const NOVNC_WEB: Opt =
    opt("vnc", "novnc_web", "/usr/share/novnc", "Where the console proxy finds the noVNC page it serves.");
pub const CONSOLE_TOKEN_TTL: Opt = opt("consoleauth", "token_ttl", "600", "Seconds a console token stays valid.");
pub const FAKE_VCPUS: Opt = opt("fake", "vcpus", "16", "Cores of each fake host.");
pub const FAKE_MEMORY_MB: Opt = opt("fake", "memory_mb", "65536", "Memory of each fake host, in MiB.");
pub const FAKE_LOCAL_GB: Opt = opt("fake", "local_gb", "1000", "Disk of each fake host, in GiB.");
pub const FAKE_SPAWN_MS: Opt = opt("fake", "spawn_ms", "0", "Milliseconds a fake spawn takes.");
pub const SERVICE_AUTH_URL: Opt =
    opt("service_user", "auth_url", "http://127.0.0.1:5000/v3", "Identity endpoint for the service's own token.");
pub const SERVICE_USERNAME: Opt = opt("service_user", "username", "nova", "The compute service's user.");
pub const SERVICE_PASSWORD: Opt = opt("service_user", "password", "", "The compute service user's password.");
pub const SERVICE_PROJECT: Opt = opt("service_user", "project_name", "service", "The service user's project.");
pub const SERVICE_USER_DOMAIN: Opt = opt("service_user", "user_domain_name", "Default", "The service user's domain.");
pub const SERVICE_PROJECT_DOMAIN: Opt =
    opt("service_user", "project_domain_name", "Default", "The service project's domain.");
pub const REGION: Opt = opt("service_user", "region_name", "RegionOne", "Region of the endpoints used.");
pub const QUOTA_INSTANCES: Opt = opt("quota", "instances", "10", "Servers per project.");
pub const QUOTA_CORES: Opt = opt("quota", "cores", "20", "vCPUs per project.");
pub const QUOTA_RAM: Opt = opt("quota", "ram", "51200", "Memory per project, in MiB.");
pub const QUOTA_METADATA_ITEMS: Opt = opt("quota", "metadata_items", "128", "Metadata items per server.");
pub const QUOTA_KEY_PAIRS: Opt = opt("quota", "key_pairs", "100", "Key pairs per user.");
pub const QUOTA_SERVER_GROUPS: Opt = opt("quota", "server_groups", "10", "Server groups per project.");
pub const QUOTA_SERVER_GROUP_MEMBERS: Opt = opt("quota", "server_group_members", "10", "Servers per server group.");
pub const QUOTA_INJECTED_FILES: Opt = opt("quota", "injected_files", "5", "Personality files per server.");
pub const QUOTA_INJECTED_FILE_CONTENT: Opt =
    opt("quota", "injected_file_content_bytes", "10240", "Bytes per personality file.");
pub const QUOTA_INJECTED_FILE_PATH: Opt =
    opt("quota", "injected_file_path_length", "255", "Characters per personality file path.");

pub const OPTS: &[Opt] = &[
    DATABASE_CONNECTION,
    HOST,
    COMPUTE_DRIVER,
    CPU_RATIO,
    RAM_RATIO,
    DISK_RATIO,
    RESERVED_RAM,
    RESERVED_DISK,
    RESERVED_CPUS,
    REPORT_INTERVAL,
    SERVICE_DOWN_TIME,
    ALLOW_RESIZE_TO_SAME_HOST,
    FAKE_FAIL_HOSTS,
    FAKE_HOSTS,
    VNC_ENABLED,
    NOVNCPROXY_BASE_URL,
    NOVNC_WEB,
    CONSOLE_TOKEN_TTL,
    FAKE_VCPUS,
    FAKE_MEMORY_MB,
    FAKE_LOCAL_GB,
    FAKE_SPAWN_MS,
    SERVICE_AUTH_URL,
    SERVICE_USERNAME,
    SERVICE_PASSWORD,
    SERVICE_PROJECT,
    SERVICE_USER_DOMAIN,
    SERVICE_PROJECT_DOMAIN,
    REGION,
    QUOTA_INSTANCES,
    QUOTA_CORES,
    QUOTA_RAM,
    QUOTA_METADATA_ITEMS,
    QUOTA_KEY_PAIRS,
    QUOTA_SERVER_GROUPS,
    QUOTA_SERVER_GROUP_MEMBERS,
    QUOTA_INJECTED_FILES,
    QUOTA_INJECTED_FILE_CONTENT,
    QUOTA_INJECTED_FILE_PATH,
];

/// How the service finds and proves itself to the other services.
#[derive(Debug, Clone)]
pub struct ServiceUser {
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub region: String,
}

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
pub struct ComputeConfig {
    pub database_url: String,
    pub host: String,
    pub driver: String,
    pub fake_hosts: usize,
    pub fake_spawn_ms: u64,
    pub fake_fail_hosts: Vec<String>,
    pub allow_resize_to_same_host: bool,
    pub resources: HostResources,
    pub report_interval: std::time::Duration,
    pub service_down_time: std::time::Duration,
    pub service_user: ServiceUser,
    pub scheduler: SchedulerOptions,
    /// Default quota limits by Nova's resource names.
    pub quotas: Vec<(&'static str, i64)>,
    pub vnc_enabled: bool,
    pub novncproxy_base_url: String,
    pub novnc_web: Option<std::path::PathBuf>,
    pub console_token_ttl: std::time::Duration,
}

/// The machine's host name, for `[DEFAULT] host` left empty.
pub fn machine_hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl ComputeConfig {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        let host: String = HOST.get(c)?;
        let quota = |o: &Opt| -> Result<(&'static str, i64), ConfigError> { Ok((o.name, o.get(c)?)) };
        Ok(ComputeConfig {
            database_url: DATABASE_CONNECTION.get(c)?,
            host: if host.is_empty() { machine_hostname() } else { host },
            driver: COMPUTE_DRIVER.get(c)?,
            fake_hosts: FAKE_HOSTS.get(c)?,
            fake_spawn_ms: FAKE_SPAWN_MS.get(c)?,
            fake_fail_hosts: FAKE_FAIL_HOSTS.get_list(c),
            allow_resize_to_same_host: ALLOW_RESIZE_TO_SAME_HOST.get_bool(c)?,
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
            report_interval: std::time::Duration::from_secs(REPORT_INTERVAL.get::<u64>(c)?.max(1)),
            service_down_time: std::time::Duration::from_secs(SERVICE_DOWN_TIME.get::<u64>(c)?.max(1)),
            service_user: ServiceUser {
                auth_url: SERVICE_AUTH_URL.get(c)?,
                username: SERVICE_USERNAME.get(c)?,
                password: SERVICE_PASSWORD.get(c)?,
                project_name: SERVICE_PROJECT.get(c)?,
                user_domain_name: SERVICE_USER_DOMAIN.get(c)?,
                project_domain_name: SERVICE_PROJECT_DOMAIN.get(c)?,
                region: REGION.get(c)?,
            },
            scheduler: SchedulerOptions::from_config(c)?,
            vnc_enabled: VNC_ENABLED.get_bool(c)?,
            novncproxy_base_url: NOVNCPROXY_BASE_URL.get(c)?,
            novnc_web: NOVNC_WEB.get_str(c).map(std::path::PathBuf::from).filter(|p| p.is_dir()),
            console_token_ttl: std::time::Duration::from_secs(CONSOLE_TOKEN_TTL.get::<u64>(c)?.max(1)),
            quotas: vec![
                quota(&QUOTA_INSTANCES)?,
                quota(&QUOTA_CORES)?,
                quota(&QUOTA_RAM)?,
                quota(&QUOTA_METADATA_ITEMS)?,
                quota(&QUOTA_KEY_PAIRS)?,
                quota(&QUOTA_SERVER_GROUPS)?,
                quota(&QUOTA_SERVER_GROUP_MEMBERS)?,
                quota(&QUOTA_INJECTED_FILES)?,
                quota(&QUOTA_INJECTED_FILE_CONTENT)?,
                // The API calls this limit injected_file_path_bytes.
                ("injected_file_path_bytes", QUOTA_INJECTED_FILE_PATH.get(c)?),
            ],
        })
    }
}
