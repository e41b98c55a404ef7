//! Glance v2: image records (`api/images.rs`), their data in a file store
//! (`files.rs`, `api/data.rs`), visibility and members (`api/members.rs`).
//!
//! Start reading at [`ImageService::open`] and [`api::router`].

pub mod api;
pub mod config;
pub mod error;
pub mod files;
pub mod schema;

use std::sync::Arc;

use db::records::Kind;
use db::Db;

pub use config::ImageConfig;
use error::Result;
use files::FileStore;

pub const IMAGE: Kind = Kind { table: "image", name: "image", not_found: "ImageNotFound", keys: &[] };

pub struct ImageService {
    pub db: Arc<Db>,
    pub files: FileStore,
    pub config: ImageConfig,
}

impl ImageService {
    pub async fn open(config: ImageConfig) -> Result<Arc<ImageService>> {
        let db = Arc::new(config.database.open().await?);
        db.migrate(schema::MIGRATIONS).await?;
        let files = FileStore::open(&config.datadir).map_err(files::StoreError::from)?;
        Ok(Arc::new(ImageService { db, files, config }))
    }
}
