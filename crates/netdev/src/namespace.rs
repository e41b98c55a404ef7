//! Network namespaces the way `ip netns` keeps them: a namespace made by a
//! thread that unshares its network and bind-mounts it at
//! `/run/netns/NAME`, so that it outlives the thread and `ip netns exec NAME`
//! finds it. Only that one thread ever changes namespace; the runtime's
//! threads stay where they are.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::{NetdevError, Netlink, Result};

const NETNS_DIR: &str = "/run/netns";

fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

fn ns_error(name: &str, e: impl std::fmt::Display) -> NetdevError {
    NetdevError::Namespace(name.to_string(), e.to_string())
}

pub(crate) fn open(name: &str) -> Result<File> {
    File::open(path(name)).map_err(|e| ns_error(name, e))
}

pub fn namespace_exists(name: &str) -> bool {
    path(name).exists()
}

/// Makes the namespace (with its loopback up); one that exists is kept.
pub async fn create_namespace(name: &str) -> Result<()> {
    if !namespace_exists(name) {
        let owned = name.to_string();
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(NETNS_DIR)?;
            let target = path(&owned);
            File::create(&target)?;
            // A thread of its own: unsharing moves only the calling thread.
            let mounted = std::thread::spawn(move || -> std::result::Result<(), String> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare: {e}"))?;
                mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| format!("bind mount: {e}"))
            })
            .join()
            .map_err(|_| ns_error(&owned, "namespace thread panicked"))?;
            mounted.map_err(|e| {
                let _ = std::fs::remove_file(path(&owned));
                ns_error(&owned, e)
            })
        })
        .await
        .map_err(|e| ns_error(name, e))??;
    }
    let nl = Netlink::in_namespace(name).await?;
    if let Some(lo) = nl.link("lo").await? {
        nl.set_up(lo.index).await?;
    }
    Ok(())
}

/// Removes the namespace (its devices go with it); a missing one is fine.
pub async fn delete_namespace(name: &str) -> Result<()> {
    let target = path(name);
    if !target.exists() {
        return Ok(());
    }
    let owned = name.to_string();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let _ = umount2(&target, MntFlags::MNT_DETACH);
        match std::fs::remove_file(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ns_error(&owned, e)),
            _ => Ok(()),
        }
    })
    .await
    .map_err(|e| ns_error(name, e))?
}

/// A netlink connection whose socket lives in the namespace: made on a thread
/// that enters the namespace and ends, the socket staying behind.
pub(crate) async fn connect_in(name: &str) -> Result<Netlink> {
    let file = open(name)?;
    let runtime = tokio::runtime::Handle::current();
    let owned = name.to_string();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> Result<Netlink> {
            let _entered = runtime.enter();
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ns_error(&owned, format!("setns: {e}")))?;
            let (connection, handle, _) = rtnetlink::new_connection()?;
            runtime.spawn(connection);
            Ok(Netlink { handle })
        })
        .join()
        .map_err(|_| NetdevError::Namespace(String::new(), "namespace thread panicked".into()))?
    })
    .await
    .map_err(|e| ns_error(name, e))?
}

/// Runs `f` inside the namespace, on a thread of its own that enters it and
/// ends (sockets `f` opens belong to the namespace and can be used from
/// anywhere afterwards).
pub async fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let file = open(name)?;
    let owned = name.to_string();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> Result<T> {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ns_error(&owned, format!("setns: {e}")))?;
            Ok(f())
        })
        .join()
        .map_err(|_| NetdevError::Namespace(String::new(), "namespace thread panicked".into()))?
    })
    .await
    .map_err(|e| ns_error(name, e))?
}

/// A command that runs inside the namespace (as `ip netns exec` would, for
/// the network only).
pub fn command_in(name: &str, program: &str) -> Result<tokio::process::Command> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    let file = open(name)?;
    let mut cmd = tokio::process::Command::new(program);
    let fd = file.as_raw_fd();
    // SAFETY: between fork and exec the child only calls setns(2), which is
    // async-signal-safe; the file stays open in the parent (moved into the
    // closure) until the command is dropped.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &file;
            setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    Ok(cmd)
}
