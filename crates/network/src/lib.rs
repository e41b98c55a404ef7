//! Neutron v2.0: the networking control plane. The API (`api/`) validates and
//! authorizes; the plugin layer (`plugin/`) owns transactions and tells the
//! agents after commit; resources live in the store (`store/`); ML2 (`ml2/`) decides how
//! networks are realised and binds ports to hosts; IPAM (`ipam/`) hands out
//! addresses; agents (`agents/`) learn about changes over the bus.
//!
//! Start reading at [`Network::open`] and [`api::router`].

pub mod agents;
pub mod api;
pub mod config;
pub mod error;
pub mod ipam;
pub mod ml2;
pub mod plugin;
pub mod schema;
pub mod store;

use std::sync::Arc;

pub use config::NetworkConfig;
use error::{NetworkError, Result};
use ml2::Ml2;
use store::Store;

/// The network service: its database, its ML2 plugin and its link to the
/// agents.
pub struct Network {
    pub store: Store,
    pub ml2: Ml2,
    pub config: NetworkConfig,
    pub notifier: agents::Notifier,
}

impl Network {
    pub async fn open(config: NetworkConfig, bus: bus::Bus) -> Result<Arc<Network>> {
        let ml2 = Ml2::new(&config).map_err(NetworkError::bad_request)?;
        let db = Arc::new(config.database.open().await?);
        let store = Store::open(db).await?;
        let notifier = agents::Notifier::new(bus);
        Ok(Arc::new(Network { store, ml2, config, notifier }))
    }
}
