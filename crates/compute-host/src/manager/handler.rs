//! The host's side of its bus interface: each method under the instance's
//! lock, its errors carried back with their kind.

use bus::{CallContext, RemoteError};
use compute_rpc::host::*;
use compute_rpc::model::{ConsoleEndpoint, Vif};
use serde_json::Value;

use super::actions::Action;
use super::Host;

type Answer<T> = Result<T, RemoteError>;

fn request_id(ctx: &CallContext) -> String {
    ctx.request_id.clone().unwrap_or_else(common::id::new_request_id)
}

impl Host {
    /// A user's action: done in the background of the cast, its failure
    /// recorded on the instance action rather than answered.
    async fn act(&self, ctx: &CallContext, uuid: &str, action: Action) -> Answer<()> {
        let rid = request_id(ctx);
        let _ = self.on_instance(uuid, self.instance_action(uuid, action, &rid)).await;
        Ok(())
    }
}

impl ComputeHostHandler for Host {
    async fn prepare_image(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::prepare_image(self, &a.instance)).await?)
    }

    async fn create_disk(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::create_disk(self, &a.instance)).await?)
    }

    async fn delete_disk(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::delete_disk(self, &a.instance)).await?)
    }

    async fn define_guest(&self, _: &CallContext, a: GuestArgs) -> Answer<()> {
        let work = Host::define_guest(self, &a.instance, &a.vifs, a.admin_password.as_deref());
        Ok(self.on_instance(&a.instance.uuid, work).await?)
    }

    async fn undefine_guest(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::undefine_guest(self, &a.instance)).await?)
    }

    async fn plug_vifs(&self, _: &CallContext, a: GuestArgs) -> Answer<Vec<Vif>> {
        Ok(self.on_instance(&a.instance.uuid, Host::plug_vifs(self, &a.instance, &a.vifs)).await?)
    }

    async fn unplug_vifs(&self, _: &CallContext, a: GuestArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::unplug_vifs(self, &a.instance, &a.vifs)).await?)
    }

    async fn power_on(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::power_on(self, &a.instance)).await?)
    }

    async fn power_off(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::power_off(self, &a.instance)).await?)
    }

    async fn pause_guest(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::pause_guest(self, &a.instance)).await?)
    }

    async fn destroy_guest(&self, _: &CallContext, a: InstanceArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::destroy_guest(self, &a.instance)).await?)
    }

    async fn snapshot_guest(&self, _: &CallContext, a: SnapshotArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::snapshot_guest(self, &a.instance, &a.image_id)).await?)
    }

    async fn live_migrate(&self, _: &CallContext, a: LiveMigrateArgs) -> Answer<()> {
        Ok(self.on_instance(&a.instance.uuid, Host::live_migrate(self, &a.instance, &a.dest)).await?)
    }

    async fn guest_power_state(&self, _: &CallContext, a: InstanceArgs) -> Answer<Option<i64>> {
        Ok(Host::guest_power_state(self, &a.instance).await?)
    }

    async fn start_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Start).await
    }

    async fn stop_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Stop).await
    }

    async fn reboot_instance(&self, ctx: &CallContext, a: RebootArgs) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Reboot { hard: a.reboot_type.eq_ignore_ascii_case("HARD") }).await
    }

    async fn pause_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Pause).await
    }

    async fn unpause_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Unpause).await
    }

    async fn suspend_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Suspend).await
    }

    async fn resume_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Resume).await
    }

    async fn rescue_instance(&self, ctx: &CallContext, a: PasswordArgs) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Rescue).await
    }

    async fn unrescue_instance(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Unrescue).await
    }

    async fn rebuild_instance(&self, ctx: &CallContext, a: PasswordArgs) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Rebuild { admin_password: a.admin_password }).await
    }

    async fn inject_network_info(&self, ctx: &CallContext, a: InstanceRef) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::InjectNetworkInfo).await
    }

    async fn attach_interface(&self, _: &CallContext, a: AttachArgs) -> Answer<Vif> {
        Ok(self.on_instance(&a.uuid.clone(), Host::attach_interface(self, &a)).await?)
    }

    async fn detach_interface(&self, ctx: &CallContext, a: DetachArgs) -> Answer<()> {
        self.act(ctx, &a.uuid, Action::Detach { port_id: a.port_id.clone() }).await
    }

    async fn get_console_output(&self, _: &CallContext, a: InstanceRef) -> Answer<String> {
        Ok(self.console_output(&a.uuid).await?)
    }

    async fn get_diagnostics(&self, _: &CallContext, a: InstanceRef) -> Answer<Value> {
        Ok(self.diagnostics(&a.uuid).await?)
    }

    async fn get_vnc_console(&self, _: &CallContext, a: InstanceRef) -> Answer<ConsoleEndpoint> {
        Ok(self.vnc_console(&a.uuid).await?)
    }
}
