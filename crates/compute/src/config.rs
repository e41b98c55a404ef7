//! The compute service's options, with nova.conf's sections and names.

use std::time::Duration;

use common::{Config, ConfigError, Opt};

use crate::scheduler::SchedulerOptions;

const fn opt(section: &'static str, name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt { section, name, default, help }
}

pub const DATABASE_CONNECTION: Opt =
    opt("database", "connection", "sqlite:////var/lib/ferrostack/compute.db", "Database URL, oslo.db style.");
pub use compute_rpc::config::{HOST, REPORT_INTERVAL};
pub const RPC_RESPONSE_TIMEOUT: Opt =
    opt("DEFAULT", "rpc_response_timeout", "60", "Seconds to wait for the answer to an ordinary RPC call.");
pub const LONG_RPC_TIMEOUT: Opt = opt(
    "DEFAULT",
    "long_rpc_timeout",
    "1800",
    "Seconds to wait for the answer to a call that does long work: each step a workflow asks of a compute host.",
);
pub const INSTANCE_BUILD_TIMEOUT: Opt = opt(
    "DEFAULT",
    "instance_build_timeout",
    "0",
    "Seconds a build may take from the request before the server goes to ERROR (0: no limit).",
);
pub const SERVICE_DOWN_TIME: Opt =
    opt("DEFAULT", "service_down_time", "60", "Seconds without a heartbeat after which a service is down.");
pub const ALLOW_RESIZE_TO_SAME_HOST: Opt =
    opt("DEFAULT", "allow_resize_to_same_host", "false", "Whether a resize may stay on the server's host.");
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
    REPORT_INTERVAL,
    RPC_RESPONSE_TIMEOUT,
    LONG_RPC_TIMEOUT,
    INSTANCE_BUILD_TIMEOUT,
    SERVICE_DOWN_TIME,
    ALLOW_RESIZE_TO_SAME_HOST,
    VNC_ENABLED,
    NOVNCPROXY_BASE_URL,
    NOVNC_WEB,
    CONSOLE_TOKEN_TTL,
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

pub use compute_rpc::session::ServiceUser;

#[derive(Debug, Clone)]
pub struct ComputeConfig {
    pub database: db::Connection,
    /// The controller's host name (the conductor's and scheduler's server).
    pub host: String,
    pub allow_resize_to_same_host: bool,
    pub report_interval: Duration,
    pub rpc_response_timeout: Duration,
    pub long_rpc_timeout: Duration,
    /// `None`: builds may take as long as they take.
    pub instance_build_timeout: Option<Duration>,
    pub service_down_time: Duration,
    pub service_user: ServiceUser,
    pub scheduler: SchedulerOptions,
    /// Default quota limits by Nova's resource names.
    pub quotas: Vec<(&'static str, i64)>,
    pub vnc_enabled: bool,
    pub novncproxy_base_url: String,
    pub novnc_web: Option<std::path::PathBuf>,
    pub console_token_ttl: Duration,
}

fn seconds(c: &Config, o: &Opt) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(o.get::<u64>(c)?.max(1)))
}

impl ComputeConfig {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        let quota = |o: &Opt| -> Result<(&'static str, i64), ConfigError> { Ok((o.name, o.get(c)?)) };
        let build_timeout: u64 = INSTANCE_BUILD_TIMEOUT.get(c)?;
        Ok(ComputeConfig {
            database: db::Connection::from_config(c, &DATABASE_CONNECTION)?,
            host: compute_rpc::config::host(c)?,
            allow_resize_to_same_host: ALLOW_RESIZE_TO_SAME_HOST.get_bool(c)?,
            report_interval: compute_rpc::config::report_interval(c)?,
            rpc_response_timeout: seconds(c, &RPC_RESPONSE_TIMEOUT)?,
            long_rpc_timeout: seconds(c, &LONG_RPC_TIMEOUT)?,
            instance_build_timeout: (build_timeout > 0).then(|| Duration::from_secs(build_timeout)),
            service_down_time: seconds(c, &SERVICE_DOWN_TIME)?,
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
            console_token_ttl: seconds(c, &CONSOLE_TOKEN_TTL)?,
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
