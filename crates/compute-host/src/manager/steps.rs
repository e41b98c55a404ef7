//! The steps the conductor's sagas ask of this host. Each is idempotent (a
//! saga resumed after a crash runs it again) and has its opposite (the undo),
//! which succeeds whether or not the step ran.

use compute_rpc::model::{Instance, Vif};
use compute_rpc::ports::{Ports, PLUG_TIMEOUT};
use compute_rpc::{ComputeError, Result};
use reqwest::StatusCode;

use super::{driver_error, Host};
use crate::virt::gone_is_fine;

impl Host {
    pub(super) async fn prepare_image(&self, i: &Instance) -> Result<()> {
        self.driver.prepare_image(i).await.map_err(driver_error)
    }

    pub(super) async fn create_disk(&self, i: &Instance) -> Result<()> {
        self.driver.create_disk(i).await.map_err(driver_error)
    }

    pub(super) async fn delete_disk(&self, i: &Instance) -> Result<()> {
        gone_is_fine(self.driver.delete_disk(i).await).map_err(driver_error)
    }

    pub(super) async fn define_guest(&self, i: &Instance, vifs: &[Vif], admin_password: Option<&str>) -> Result<()> {
        self.driver.define(i, vifs, admin_password).await.map_err(driver_error)
    }

    pub(super) async fn undefine_guest(&self, i: &Instance) -> Result<()> {
        gone_is_fine(self.driver.power_off(i).await).map_err(driver_error)?;
        gone_is_fine(self.driver.undefine(i).await).map_err(driver_error)
    }

    /// Plugs the interfaces, then waits for this host's L2 agent to have
    /// every port up.
    pub(super) async fn plug_vifs(&self, i: &Instance, vifs: &[Vif]) -> Result<Vec<Vif>> {
        self.driver.plug_vifs(i, vifs).await.map_err(driver_error)?;
        let ports = Ports { session: &self.session };
        let mut plugged = vifs.to_vec();
        for v in &mut plugged {
            let port = ports.wait_active(&v.port_id, &self.host, PLUG_TIMEOUT).await?;
            v.port_state = port["status"].as_str().unwrap_or("ACTIVE").to_string();
        }
        Ok(plugged)
    }

    pub(super) async fn unplug_vifs(&self, i: &Instance, vifs: &[Vif]) -> Result<()> {
        gone_is_fine(self.driver.unplug_vifs(i, vifs).await).map_err(driver_error)
    }

    pub(super) async fn power_on(&self, i: &Instance) -> Result<()> {
        self.driver.power_on(i).await.map_err(driver_error)
    }

    pub(super) async fn power_off(&self, i: &Instance) -> Result<()> {
        gone_is_fine(self.driver.power_off(i).await).map_err(driver_error)
    }

    pub(super) async fn pause_guest(&self, i: &Instance) -> Result<()> {
        self.driver.pause(i).await.map_err(driver_error)
    }

    pub(super) async fn destroy_guest(&self, i: &Instance) -> Result<()> {
        self.driver.destroy(i).await.map_err(driver_error)
    }

    /// Uploads the guest's disk into `image_id`. An image already holding
    /// data (the upload of an earlier run that was not recorded) is done.
    pub(super) async fn snapshot_guest(&self, i: &Instance, image_id: &str) -> Result<()> {
        let data = self.driver.snapshot(i).await.map_err(driver_error)?;
        let status = self
            .session
            .put_bytes("image", &format!("/v2/images/{image_id}/file"), "application/octet-stream", data)
            .await?;
        match status {
            StatusCode::NO_CONTENT => Ok(()),
            StatusCode::CONFLICT => {
                tracing::info!(instance = %i.uuid, image_id, "the image has its data already");
                Ok(())
            }
            other => Err(ComputeError::Upstream(format!("uploading the disk to image {image_id} answered {other}"))),
        }
    }

    pub(super) async fn live_migrate(&self, i: &Instance, dest: &str) -> Result<()> {
        self.driver.live_migrate(i, dest).await.map_err(driver_error)
    }

    pub(super) async fn guest_power_state(&self, i: &Instance) -> Result<Option<i64>> {
        match self.driver.power_state(i).await {
            Ok(p) => Ok(Some(p)),
            Err(crate::virt::DriverError::NotFound(_)) => Ok(None),
            Err(e) => Err(driver_error(e)),
        }
    }
}
