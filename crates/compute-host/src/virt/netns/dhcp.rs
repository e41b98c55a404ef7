//! A netns instance's DHCP client, as a cloud guest's: one busybox `udhcpc`
//! per interface, started at power-on, renewing for as long as the instance
//! runs. Power-on waits for the first lease (a few tries), then the client
//! goes on in the background.
//!
//! The instance shares the host's filesystem, so its client script touches
//! only the instance's own interface and routes (it runs inside the
//! instance's namespace) and keeps what DHCP said — the lease, DNS servers,
//! MTU, routes — under the instance's directory (`dhcp-<interface>.lease`,
//! `resolv.conf`), never in the host's `/etc`.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

/// What udhcpc runs on each event, with `$dir` the instance's directory.
const SCRIPT: &str = r#"#!/bin/sh
# udhcpc's script for a netns instance: the instance's own interface and
# routes only; what DHCP said is kept under the instance's directory.
dir=$(dirname "$0")
ip() { busybox ip "$@"; }
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    rm -f "$dir/dhcp-$interface.lease"
    ;;
bound|renew)
    if ! ip -4 addr show dev "$interface" | grep -q " $ip/$mask "; then
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/$mask" dev "$interface"
    fi
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then
                ip route replace "$1" dev "$interface"
            else
                ip route replace "$1" via "$2" dev "$interface"
            fi
            shift 2
        done
    elif [ -n "$router" ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
    env | grep -E '^(interface|ip|mask|router|dns|domain|mtu|hostname|staticroutes|lease|serverid|opt[0-9]+)=' \
        | sort > "$dir/dhcp-$interface.lease"
    {
        [ -n "$domain" ] && echo "search $domain"
        for s in $dns; do echo "nameserver $s"; done
    } > "$dir/resolv.conf"
    ;;
esac
exit 0
"#;

/// The client of `interface` in the instance whose directory is `home`.
fn pid_file(home: &Path, interface: &str) -> PathBuf {
    home.join(format!("udhcpc-{interface}.pid"))
}

/// The pid of the interface's client, if it runs (and is this instance's).
fn running(home: &Path, interface: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(home, interface)).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (cmdline.contains("udhcpc") && cmdline.contains(&home.display().to_string())).then_some(pid)
}

/// Starts the interface's client in `namespace` unless it runs, and waits
/// for its first lease (or its first tries to fail: it then goes on trying
/// in the background). What it says goes to the instance's console.
pub async fn start(namespace: &str, home: &Path, interface: &str, hostname: &str) -> std::io::Result<bool> {
    if running(home, interface).is_some() {
        return Ok(true);
    }
    let script = home.join("udhcpc.sh");
    std::fs::write(&script, SCRIPT)?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let console = std::fs::OpenOptions::new().create(true).append(true).open(home.join("console.log"))?;
    let mut cmd = netdev::command_in(namespace, "busybox").map_err(std::io::Error::other)?;
    cmd.args(["udhcpc", "-i", interface, "-b", "-t", "4", "-T", "1", "-A", "2", "-O", "mtu", "-O", "staticroutes"])
        .arg("-p")
        .arg(pid_file(home, interface))
        .arg("-s")
        .arg(&script)
        .arg("-x")
        .arg(format!("hostname:{hostname}"))
        .stdin(std::process::Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console);
    cmd.status().await?;
    Ok(home.join(format!("dhcp-{interface}.lease")).exists())
}

/// Sends `signal` to every client of the instance.
pub fn signal_all(home: &Path, signal: Signal) {
    for interface in interfaces(home) {
        if let Some(pid) = running(home, &interface) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }
}

/// Stops the interface's client (its address stays until the interface
/// goes or the next lease replaces it).
pub fn stop(home: &Path, interface: &str) {
    if let Some(pid) = running(home, interface) {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        // A paused instance's client is stopped: let it take the signal.
        let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
    }
    let _ = std::fs::remove_file(pid_file(home, interface));
}

pub fn stop_all(home: &Path) {
    for interface in interfaces(home) {
        stop(home, &interface);
    }
}

/// The interfaces with a client's pid file.
fn interfaces(home: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(home) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("udhcpc-")?.strip_suffix(".pid").map(String::from))
        .collect()
}
