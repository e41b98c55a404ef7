//! The options every compute service reads alike, controller and host.

use std::time::Duration;

use common::{Config, ConfigError, Opt};

pub const HOST: Opt = Opt {
    section: "DEFAULT",
    name: "host",
    default: "",
    help: "This service's host name (default: the machine's hostname).",
};
pub const REPORT_INTERVAL: Opt = Opt {
    section: "DEFAULT",
    name: "report_interval",
    default: "10",
    help: "Seconds between a service's heartbeats and resource reports.",
};

/// `[DEFAULT] host`, or the machine's host name when it is empty.
pub fn host(c: &Config) -> Result<String, ConfigError> {
    let host: String = HOST.get(c)?;
    if !host.is_empty() {
        return Ok(host);
    }
    Ok(std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into()))
}

pub fn report_interval(c: &Config) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(REPORT_INTERVAL.get::<u64>(c)?.max(1)))
}
