//! The compute host's interface (`compute.<host>` on the bus): every method a
//! host serves, with its arguments, in one place.
//!
//! Two kinds of method. The steps of the conductor's sagas (prepare the
//! image, make the disk, define the guest, plug, power, destroy, snapshot)
//! are calls, each idempotent and each with its opposite, so a saga can run
//! one again after a crash or undo it whether or not it ran; the host keeps
//! no record of workflows. The server actions a user asks for (start, stop,
//! reboot, …) are casts: the host does the work and writes the outcome
//! through the conductor.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ConsoleEndpoint, Instance, Vif};

/// The compute host's service name, as `os-services` lists it.
pub const BINARY: &str = "nova-compute";

/// An instance, as the conductor has it now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceArgs {
    pub instance: Instance,
}

/// An instance with the interfaces it gets (and, for a first boot, its
/// admin password).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestArgs {
    pub instance: Instance,
    pub vifs: Vec<Vif>,
    #[serde(default)]
    pub admin_password: Option<String>,
}

/// The guest's disk saved into an image the conductor registered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotArgs {
    pub instance: Instance,
    pub image_id: String,
}

/// The source side of a live migration: hand the running guest to `dest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveMigrateArgs {
    pub instance: Instance,
    pub dest: String,
}

/// A server action on the instance `uuid` (the host reads it afresh).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRef {
    pub uuid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RebootArgs {
    pub uuid: String,
    /// `SOFT` or `HARD`.
    pub reboot_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordArgs {
    pub uuid: String,
    #[serde(default)]
    pub admin_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachArgs {
    pub uuid: String,
    #[serde(default)]
    pub net_id: Option<String>,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub fixed_ip: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetachArgs {
    pub uuid: String,
    pub port_id: String,
}

bus::interface! {
    /// A compute host.
    pub interface ComputeHost {
        topic: "compute",
        version: (1, 0),
        client: ComputeHostClient,
        handler: ComputeHostHandler,
        methods: {
            /// Fetches the instance's image into the host's image cache.
            call prepare_image(InstanceArgs) -> ();
            /// Makes the instance's disk (an overlay on the cached image).
            call create_disk(InstanceArgs) -> ();
            call delete_disk(InstanceArgs) -> ();
            /// Writes the machine definition with its interfaces.
            call define_guest(GuestArgs) -> ();
            call undefine_guest(InstanceArgs) -> ();
            /// Plugs the interfaces and waits until the host's L2 agent has
            /// them up; answers them with their port state.
            call plug_vifs(GuestArgs) -> Vec<Vif>;
            call unplug_vifs(GuestArgs) -> ();
            call power_on(InstanceArgs) -> ();
            call power_off(InstanceArgs) -> ();
            /// Pauses a running guest (a live-migrated paused server).
            call pause_guest(InstanceArgs) -> ();
            /// Everything of the guest on this host goes: power, interfaces,
            /// definition, disk. Nothing there is not an error.
            call destroy_guest(InstanceArgs) -> ();
            /// Uploads the guest's disk into an image.
            call snapshot_guest(SnapshotArgs) -> ();
            /// Sends the running guest to `dest`, which has it defined.
            call live_migrate(LiveMigrateArgs) -> ();
            /// Whether the guest exists here, and its power state.
            call guest_power_state(InstanceArgs) -> Option<i64>;

            cast start_instance(InstanceRef) -> ();
            cast stop_instance(InstanceRef) -> ();
            cast reboot_instance(RebootArgs) -> ();
            cast pause_instance(InstanceRef) -> ();
            cast unpause_instance(InstanceRef) -> ();
            cast suspend_instance(InstanceRef) -> ();
            cast resume_instance(InstanceRef) -> ();
            cast rescue_instance(PasswordArgs) -> ();
            cast unrescue_instance(InstanceRef) -> ();
            /// Rebuilds the guest from the image now on the instance.
            cast rebuild_instance(PasswordArgs) -> ();
            cast inject_network_info(InstanceRef) -> ();
            call attach_interface(AttachArgs) -> Vif;
            cast detach_interface(DetachArgs) -> ();
            call get_console_output(InstanceRef) -> String;
            call get_diagnostics(InstanceRef) -> Value;
            call get_vnc_console(InstanceRef) -> ConsoleEndpoint;
        }
    }
}
