//! One network's dnsmasq as a process: started in the network's namespace
//! (it daemonises and writes its pid file), told of changed files by
//! SIGHUP, stopped by SIGTERM. The pid file is trusted only while
//! `/proc/<pid>/cmdline` still names the network's directory, so a
//! recycled pid is never signalled. A dnsmasq outlives the agent: a
//! restarted agent finds it by its pid file and keeps it.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::DhcpError;

/// The running dnsmasq of the network whose files are in `dir`.
pub fn running(dir: &Path) -> Option<(i32, Vec<String>)> {
    let pid: i32 = std::fs::read_to_string(dir.join("pid")).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let ours = args.first().is_some_and(|a| a.ends_with("dnsmasq"))
        && args.iter().any(|a| a.contains(&dir.display().to_string()));
    ours.then_some((pid, args))
}

/// Starts dnsmasq with `cmd` in `namespace`, and waits until it has
/// daemonised (dnsmasq's first process exits once the daemon is serving, or
/// with the reason it could not).
pub async fn start(namespace: &str, cmd: &[String]) -> Result<(), DhcpError> {
    let (program, args) = cmd.split_first().ok_or_else(|| DhcpError::Dnsmasq("empty command line".into()))?;
    let out = netdev::command_in(namespace, program)?
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| DhcpError::Dnsmasq(format!("{program}: {e}")))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(DhcpError::Dnsmasq(format!("dnsmasq exited with {}: {why}", out.status)));
    }
    Ok(())
}

/// Tells dnsmasq to re-read its hosts, addn_hosts and opts files.
pub fn reload(pid: i32) -> Result<(), DhcpError> {
    kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| DhcpError::Dnsmasq(format!("SIGHUP {pid}: {e}")))
}

/// Stops the network's dnsmasq, if one runs, waiting for it to go (SIGKILL
/// after a few seconds), so its namespace can be removed after it.
pub async fn stop(dir: &Path) -> Result<(), DhcpError> {
    let Some((pid, _)) = running(dir) else { return Ok(()) };
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    for _ in 0..50 {
        if running(dir).is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill(pid, Signal::SIGKILL);
    for _ in 0..20 {
        if running(dir).is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(DhcpError::Dnsmasq(format!("dnsmasq {pid} did not stop")))
}
