//! The agent loop, one for every kind of L2 agent (and the state-only
//! stand-ins of the DHCP and L3 agents): it reports the agent's state on a
//! period; it listens to the server's port, network and l2population
//! notifications; and it keeps the datapath equal to what the server says is
//! bound to its host(s). One task applies every change, in order, so the
//! datapath is never driven from two places at once.
//!
//! Resync (at start, and after any failure): ask the server for every port
//! bound here, wire what is missing, remove what the datapath made for ports
//! and networks that are gone — leaving alone what is already right, so
//! traffic on unchanged ports keeps flowing.
//!
//! Security groups: a port is filtered before it is wired (so it never
//! passes unfiltered traffic), with the rules the server gives for its
//! groups; when a group's rules or members change the server says so and
//! the loop refilters the ports that name that group.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, CallContext, RemoteError, ServeOptions};
use network_rpc::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::datapath::{Datapath, Wiring};
use crate::firewall::{groups_of, same_filter, Firewall};

/// Who the agent says it is in its reports.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub agent_type: String,
    pub binary: String,
    pub topic: String,
    pub availability_zone: Option<String>,
    pub report_interval: Duration,
}

/// An agent: its identity, the hosts it serves (one, or the simulated
/// hypervisors beside a compute process simulating many), and its datapath.
pub struct Agent {
    pub identity: AgentIdentity,
    pub hosts: Vec<String>,
    pub datapath: Arc<dyn Datapath>,
    /// What enforces the ports' security groups.
    pub firewall: Arc<dyn Firewall>,
    /// Whether it wires ports (the L2 kind); the others only report.
    pub wires_ports: bool,
}

/// What the loop is told.
#[derive(Debug)]
enum Event {
    /// The port as the server describes it, and whether the server shows
    /// it down (a rebinding in place wants it reported up again).
    PortUpdate(Box<DeviceDetails>, bool),
    PortDelete(String),
    NetworkDelete(String),
    FdbAdd(Vec<FdbEntry>),
    FdbRemove(Vec<FdbEntry>),
    /// These groups' rules (or, if `members`, their members) changed.
    SecurityGroups {
        groups: Vec<String>,
        members: bool,
    },
    DeviceAppeared(String),
    Resync,
}

/// How long a failed resync waits before the next, at most.
const RESYNC_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Ports waiting for their device are retried at least this often (links
/// are watched; this covers a missed event).
const WAITING_RETRY: Duration = Duration::from_secs(1);

impl Agent {
    /// Starts the agent; its tasks run until the bus goes.
    pub async fn start(self, bus: Bus) -> Result<Vec<JoinHandle<()>>, bus::BusError> {
        let mut tasks = Vec::new();
        let configurations = self.datapath.configurations();
        for host in &self.hosts {
            tasks.push(report(
                self.identity.clone(),
                host.clone(),
                configurations.clone(),
                PluginReportsClient::new(&bus),
            ));
        }
        if !self.wires_ports {
            return Ok(tasks);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = Arc::new(Listener { hosts: self.hosts.iter().cloned().collect(), tx: tx.clone() });
        let server = format!("{}.{}", self.hosts.first().map(String::as_str).unwrap_or("agent"), self.identity.binary);
        let opts = ServeOptions::default;
        tasks.push(PortUpdates::serve(&bus, &server, listener.clone(), opts()).await?);
        tasks.push(PortDeletes::serve(&bus, &server, listener.clone(), opts()).await?);
        tasks.push(NetworkDeletes::serve(&bus, &server, listener.clone(), opts()).await?);
        tasks.push(L2population::serve(&bus, &server, listener.clone(), opts()).await?);
        tasks.push(SecurityGroupUpdates::serve(&bus, &server, listener, opts()).await?);
        if let Some(mut appeared) = self.datapath.watch() {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(name) = appeared.recv().await {
                    if tx.send(Event::DeviceAppeared(name)).is_err() {
                        break;
                    }
                }
            }));
        }
        let _ = tx.send(Event::Resync);
        let state = Wirer {
            hosts: self.hosts.clone(),
            datapath: self.datapath,
            firewall: self.firewall,
            plugin: PluginClient::new(&bus),
            wanted: HashMap::new(),
            wired: HashMap::new(),
            filtered: HashMap::new(),
            groups: SecurityGroupInfo::default(),
            fdb: HashMap::new(),
            agent_type: self.identity.agent_type.clone(),
        };
        tasks.push(tokio::spawn(state.run(rx, tx)));
        Ok(tasks)
    }
}

/// Reports the agent's state on `host` every interval (the first with
/// `start_flag`, as Neutron's agents do).
pub(crate) fn report(
    identity: AgentIdentity,
    host: String,
    configurations: Value,
    reports: PluginReportsClient,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut first = true;
        loop {
            match reports.report_state(&state_report(&identity, &host, &configurations, first)).await {
                Ok(_) => first = false,
                Err(e) => tracing::warn!(agent = %identity.agent_type, error = %e, "state report failed"),
            }
            tokio::time::sleep(identity.report_interval).await;
        }
    })
}

/// One state report of the agent on `host` (`start_flag` on its first).
pub(crate) fn state_report(identity: &AgentIdentity, host: &str, configurations: &Value, first: bool) -> ReportState {
    // oslo's nesting: the argument `agent_state` holds `{"agent_state": {...}}`.
    let state = json!({"agent_state": {
        "agent_type": identity.agent_type,
        "binary": identity.binary,
        "topic": identity.topic,
        "host": host,
        "configurations": configurations,
        "availability_zone": identity.availability_zone,
        "start_flag": first,
    }});
    ReportState { agent_state: state, time: None }
}

/// The notifications, turned into events for the loop.
struct Listener {
    hosts: HashSet<String>,
    tx: mpsc::UnboundedSender<Event>,
}

impl Listener {
    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }
}

impl PortUpdatesHandler for Listener {
    async fn port_update(&self, _ctx: &CallContext, update: PortUpdate) -> Result<(), RemoteError> {
        let details = DeviceDetails::from_port_update(&update);
        if self.hosts.contains(&details.host) && is_bound(Some(&details.vif_type)) {
            let down = update.port.get("status").and_then(Value::as_str) != Some("ACTIVE");
            self.send(Event::PortUpdate(Box::new(details), down));
        } else {
            // Bound elsewhere (or unbound) now: if it was here, it goes.
            self.send(Event::PortDelete(details.device));
        }
        Ok(())
    }
}

impl PortDeletesHandler for Listener {
    async fn port_delete(&self, _ctx: &CallContext, args: PortDelete) -> Result<(), RemoteError> {
        self.send(Event::PortDelete(args.port_id));
        Ok(())
    }
}

impl NetworkDeletesHandler for Listener {
    async fn network_delete(&self, _ctx: &CallContext, args: NetworkDelete) -> Result<(), RemoteError> {
        self.send(Event::NetworkDelete(args.network_id));
        Ok(())
    }
}

impl L2populationHandler for Listener {
    async fn add_fdb_entries(&self, _ctx: &CallContext, args: FdbEntries) -> Result<(), RemoteError> {
        self.send(Event::FdbAdd(args.entries));
        Ok(())
    }

    async fn remove_fdb_entries(&self, _ctx: &CallContext, args: FdbEntries) -> Result<(), RemoteError> {
        self.send(Event::FdbRemove(args.entries));
        Ok(())
    }
}

impl SecurityGroupUpdatesHandler for Listener {
    async fn security_groups_rule_updated(&self, _ctx: &CallContext, args: SecurityGroups) -> Result<(), RemoteError> {
        self.send(Event::SecurityGroups { groups: args.security_groups, members: false });
        Ok(())
    }

    async fn security_groups_member_updated(
        &self,
        _ctx: &CallContext,
        args: SecurityGroups,
    ) -> Result<(), RemoteError> {
        self.send(Event::SecurityGroups { groups: args.security_groups, members: true });
        Ok(())
    }
}

/// The loop's state: what should be wired, what is, what is filtered (and
/// by which rules), and the overlay entries of each network wired here.
struct Wirer {
    hosts: Vec<String>,
    datapath: Arc<dyn Datapath>,
    firewall: Arc<dyn Firewall>,
    plugin: PluginClient,
    wanted: HashMap<String, DeviceDetails>,
    wired: HashMap<String, DeviceDetails>,
    /// Ports whose filter is in place, as they were described then.
    filtered: HashMap<String, DeviceDetails>,
    /// The rules of the groups of the filtered ports, as last fetched.
    groups: SecurityGroupInfo,
    fdb: HashMap<String, HashSet<FdbEntry>>,
    agent_type: String,
}

/// What a batch of events asks of the loop, done once for all of them.
#[derive(Default)]
struct Batch {
    resync: bool,
    converge: bool,
    fdb_touched: HashSet<String>,
    rule_groups: Vec<String>,
    member_groups: Vec<String>,
    /// Wired ports whose filter changed.
    refilter: HashMap<String, DeviceDetails>,
    /// Wired ports the server shows down.
    report_up: HashMap<String, DeviceDetails>,
}

/// At most this many events are applied together.
const BATCH_MAX: usize = 1024;

impl Wirer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>, tx: mpsc::UnboundedSender<Event>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let waiting = self.wanted.keys().any(|p| !self.wired.contains_key(p));
            let event = if waiting {
                match tokio::time::timeout(WAITING_RETRY, rx.recv()).await {
                    Ok(e) => e,
                    Err(_) => Some(Event::DeviceAppeared(String::new())),
                }
            } else {
                rx.recv().await
            };
            let Some(event) = event else { return };
            // Whatever else is already waiting goes with it: a thousand
            // ports bound at once are filtered, wired and refreshed in a
            // few passes, not a thousand.
            let mut events = vec![event];
            while events.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(e) => events.push(e),
                    Err(_) => break,
                }
            }
            let mut batch = Batch::default();
            for e in events {
                self.note(e, &mut batch);
            }
            match self.apply(batch).await {
                Ok(()) => backoff = Duration::from_millis(500),
                Err(e) => {
                    tracing::warn!(agent = %self.agent_type, error = %e, retry_in = ?backoff, "resyncing after a failure");
                    let tx = tx.clone();
                    let wait = backoff;
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        let _ = tx.send(Event::Resync);
                    });
                    backoff = (backoff * 2).min(RESYNC_BACKOFF_MAX);
                }
            }
        }
    }

    /// Takes in one event's change of what is wanted, leaving the work to
    /// [`Wirer::apply`].
    fn note(&mut self, event: Event, batch: &mut Batch) {
        match event {
            Event::PortUpdate(port, down) => {
                if self.wired.get(&port.device).is_some_and(|w| same_wiring(w, &port)) {
                    // Wired already: its filter may have changed, and the
                    // server's record may need it up again.
                    if !self.filtered.get(&port.device).is_some_and(|f| same_filter(f, &port)) {
                        batch.refilter.insert(port.device.clone(), (*port).clone());
                    }
                    if down {
                        batch.report_up.insert(port.device.clone(), (*port).clone());
                    }
                    self.wanted.insert(port.device.clone(), *port);
                    return;
                }
                self.wired.remove(&port.device);
                batch.refilter.remove(&port.device);
                batch.report_up.remove(&port.device);
                self.wanted.insert(port.device.clone(), *port);
                batch.converge = true;
            }
            Event::PortDelete(id) => {
                batch.refilter.remove(&id);
                batch.report_up.remove(&id);
                if self.wanted.remove(&id).is_some() {
                    batch.converge = true;
                }
            }
            Event::NetworkDelete(network_id) => {
                self.wanted.retain(|_, p| p.network_id != network_id);
                batch.refilter.retain(|_, p| p.network_id != network_id);
                batch.report_up.retain(|_, p| p.network_id != network_id);
                batch.converge = true;
            }
            Event::FdbAdd(entries) => {
                for e in entries.into_iter().filter(|e| !self.hosts.contains(&e.host)) {
                    if let Some(set) = self.fdb.get_mut(&e.network_id) {
                        // The same port at a new place replaces its old entry.
                        set.retain(|x| x.port_id != e.port_id);
                        batch.fdb_touched.insert(e.network_id.clone());
                        set.insert(e);
                    }
                }
            }
            Event::FdbRemove(entries) => {
                for e in entries {
                    if let Some(set) = self.fdb.get_mut(&e.network_id) {
                        if set.remove(&e) {
                            batch.fdb_touched.insert(e.network_id.clone());
                        }
                    }
                }
            }
            Event::SecurityGroups { groups, members } => {
                let list = if members { &mut batch.member_groups } else { &mut batch.rule_groups };
                list.extend(groups.into_iter().filter(|g| !list.contains(g)).collect::<Vec<_>>());
            }
            Event::DeviceAppeared(name) => {
                let waiting =
                    self.wanted.keys().any(|p| !self.wired.contains_key(p) && (name.is_empty() || tap_name(p) == name));
                batch.converge |= waiting;
            }
            Event::Resync => batch.resync = true,
        }
    }

    /// Does what a batch of events asks, in order: resync (which covers the
    /// rest), or converge, overlay entries, refilters and reports.
    async fn apply(&mut self, batch: Batch) -> Result<(), String> {
        if batch.resync {
            return self.resync().await;
        }
        if batch.converge {
            self.converge().await?;
        }
        self.push_fdb(batch.fdb_touched).await?;
        if !batch.rule_groups.is_empty() {
            self.refilter(&batch.rule_groups, false).await?;
        }
        if !batch.member_groups.is_empty() {
            self.refilter(&batch.member_groups, true).await?;
        }
        let refilter: Vec<DeviceDetails> =
            batch.refilter.into_values().filter(|p| self.wired.contains_key(&p.device)).collect();
        if !refilter.is_empty() {
            self.filter(refilter).await?;
        }
        let up: Vec<DeviceDetails> =
            batch.report_up.into_values().filter(|p| self.wired.contains_key(&p.device)).collect();
        self.report_up(&up).await
    }

    /// Asks the server for everything bound here, wires it, and removes what
    /// is no longer wanted.
    async fn resync(&mut self) -> Result<(), String> {
        let mut wanted = HashMap::new();
        for host in &self.hosts {
            let ports = self.plugin.get_ports_on_host(&Host { host: host.clone() }).await.map_err(|e| e.to_string())?;
            wanted.extend(ports.into_iter().map(|p| (p.device.clone(), p)));
        }
        // A port whose wiring the server now describes differently is wired again.
        self.wired.retain(|id, w| wanted.get(id).is_some_and(|p| same_wiring(w, p)));
        self.wanted = wanted;
        self.fdb.clear();
        // Every filter at once, replacing whatever was there.
        let ports: Vec<DeviceDetails> = self.wanted.values().cloned().collect();
        self.groups = self.group_info(&ports).await?;
        self.firewall.sync(&ports, &self.groups).await.map_err(|e| e.to_string())?;
        self.filtered = self.wanted.clone();
        self.converge().await?;
        let networks: HashSet<String> = self.wanted.values().map(|p| p.network_id.clone()).collect();
        let ports: HashSet<String> = self.wanted.keys().cloned().collect();
        self.datapath.remove_stale(&networks, &ports).await.map_err(|e| e.to_string())?;
        tracing::info!(agent = %self.agent_type, ports = self.wanted.len(), networks = networks.len(), "resynced");
        Ok(())
    }

    /// Wires what is wanted and not wired, unwires what is wired and not
    /// wanted, and keeps each network's overlay entries.
    async fn converge(&mut self) -> Result<(), String> {
        let gone: Vec<DeviceDetails> =
            self.wired.iter().filter(|(id, _)| !self.wanted.contains_key(*id)).map(|(_, p)| p.clone()).collect();
        for port in gone {
            self.datapath.unwire(&port).await.map_err(|e| e.to_string())?;
            self.wired.remove(&port.device);
            tracing::info!(port = %port.device, "unwired");
        }
        let unfiltered: Vec<String> =
            self.filtered.keys().filter(|id| !self.wanted.contains_key(*id)).cloned().collect();
        if !unfiltered.is_empty() {
            self.firewall.remove(&unfiltered).await.map_err(|e| e.to_string())?;
            self.filtered.retain(|id, _| !unfiltered.contains(id));
        }
        let mut failed = None;
        let pending: Vec<DeviceDetails> =
            self.wanted.values().filter(|p| !self.wired.contains_key(&p.device)).cloned().collect();
        // Filtered before wired: a port never passes traffic its groups refuse.
        let to_filter: Vec<DeviceDetails> = pending
            .iter()
            .filter(|p| !self.filtered.get(&p.device).is_some_and(|f| same_filter(f, p)))
            .cloned()
            .collect();
        if !to_filter.is_empty() {
            self.filter(to_filter).await?;
        }
        let mut up = Vec::new();
        for port in pending {
            match self.datapath.wire(&port).await {
                Ok(Wiring::Wired) => {
                    tracing::info!(port = %port.device, network = %port.network_id, "wired");
                    up.push(port);
                }
                Ok(Wiring::NoDevice) => {}
                Err(crate::datapath::DatapathError::CannotWire { port, reason }) => {
                    // Not retried: the binding should not have chosen this host.
                    tracing::error!(port, reason, "cannot wire the port here");
                    self.wanted.remove(&port);
                    if self.filtered.remove(&port).is_some() {
                        if let Err(e) = self.firewall.remove(&[port]).await {
                            failed = Some(e.to_string());
                        }
                    }
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        // Reported up together (one round trip, one transaction), and only
        // then counted as wired: a failed report is wired and reported again.
        self.report_up(&up).await?;
        for port in up {
            self.wired.insert(port.device.clone(), port);
        }
        // Networks with nothing left here lose their devices; new ones get
        // their overlay table.
        let networks: HashSet<String> = self.wanted.values().map(|p| p.network_id.clone()).collect();
        let dropped: Vec<String> = self.fdb.keys().filter(|n| !networks.contains(*n)).cloned().collect();
        for n in dropped {
            self.fdb.remove(&n);
            self.datapath.remove_network(&n).await.map_err(|e| e.to_string())?;
        }
        let mut fresh = HashSet::new();
        let new: Vec<String> = networks.iter().filter(|n| !self.fdb.contains_key(*n)).cloned().collect();
        for n in new {
            let Some(host) = self.hosts.first().cloned() else { break };
            let entries = self
                .plugin
                .get_network_fdb(&NetworkOnHost { network_id: n.clone(), host })
                .await
                .map_err(|e| e.to_string())?;
            let local: HashSet<&String> = self.hosts.iter().collect();
            self.fdb.insert(n.clone(), entries.into_iter().filter(|e| !local.contains(&e.host)).collect());
            fresh.insert(n.clone());
        }
        self.push_fdb(fresh).await?;
        failed.map_or(Ok(()), Err)
    }

    /// The server's rules for the ports' groups, and their remote groups'
    /// members.
    async fn group_info(&self, ports: &[DeviceDetails]) -> Result<SecurityGroupInfo, String> {
        if ports.is_empty() || !self.firewall.enforces() {
            return Ok(SecurityGroupInfo::default());
        }
        let host = self.hosts.first().cloned().unwrap_or_default();
        let args = DevicesOnHost { devices: ports.iter().map(|p| p.device.clone()).collect(), agent_id: None, host };
        self.plugin.security_group_info_for_devices(&args).await.map_err(|e| e.to_string())
    }

    /// Filters these ports with their groups' current rules.
    async fn filter(&mut self, ports: Vec<DeviceDetails>) -> Result<(), String> {
        let info = self.group_info(&ports).await?;
        self.groups.merge(info);
        self.firewall.update(&ports, &self.groups).await.map_err(|e| e.to_string())?;
        for p in ports {
            self.filtered.insert(p.device.clone(), p);
        }
        Ok(())
    }

    /// Groups changed: the ports in them are filtered again with their new
    /// rules, or (`members`) the member sets of the ports whose rules name
    /// them as remote are refreshed.
    async fn refilter(&mut self, groups: &[String], members: bool) -> Result<(), String> {
        let names = |p: &DeviceDetails| {
            let (own, remote) = groups_of(p, &self.groups);
            groups.iter().any(|g| if members { remote.contains(g) } else { own.contains(g) })
        };
        let affected: Vec<DeviceDetails> = self.filtered.values().filter(|p| names(p)).cloned().collect();
        if affected.is_empty() {
            return Ok(());
        }
        if !members {
            return self.filter(affected).await;
        }
        // One port naming each group is enough to be told its members.
        let mut askers: Vec<DeviceDetails> = Vec::new();
        for g in groups {
            if let Some(p) = affected.iter().find(|p| groups_of(p, &self.groups).1.contains(g)) {
                if !askers.iter().any(|a| a.device == p.device) {
                    askers.push(p.clone());
                }
            }
        }
        let mut info = self.group_info(&askers).await?;
        info.sg_member_ips.retain(|g, _| groups.contains(g));
        self.groups.sg_member_ips.extend(info.sg_member_ips.clone());
        info.security_groups.clear();
        self.firewall.update(&[], &info).await.map_err(|e| e.to_string())
    }

    /// Tells the server these ports are wired (Neutron's `update_device_list`).
    async fn report_up(&self, ports: &[DeviceDetails]) -> Result<(), String> {
        let mut by_host: HashMap<&str, Vec<String>> = HashMap::new();
        for p in ports {
            by_host.entry(p.host.as_str()).or_default().push(p.device.clone());
        }
        for (host, devices) in by_host {
            let list = DeviceList {
                devices_up: devices,
                devices_down: Vec::new(),
                agent_id: Some(host.into()),
                host: host.into(),
            };
            self.plugin.update_device_list(&list).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn push_fdb(&self, networks: HashSet<String>) -> Result<(), String> {
        for n in networks {
            let entries: Vec<FdbEntry> = self.fdb.get(&n).map(|s| s.iter().cloned().collect()).unwrap_or_default();
            self.datapath.set_fdb(&n, &entries).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Whether two descriptions of a port wire it the same way (what the
/// datapath looks at), so an update that changes neither is not rewired.
fn same_wiring(a: &DeviceDetails, b: &DeviceDetails) -> bool {
    a.network_id == b.network_id
        && a.network_type == b.network_type
        && a.segmentation_id == b.segmentation_id
        && a.physical_network == b.physical_network
        && a.mac_address == b.mac_address
        && a.host == b.host
}
