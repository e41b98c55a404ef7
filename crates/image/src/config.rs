//! The image service's options, with glance-api.conf's names.

use std::path::PathBuf;

use common::{Config, ConfigError, Opt};

pub const DATABASE_CONNECTION: Opt = Opt {
    section: "database",
    name: "connection",
    default: "sqlite:////var/lib/ferrostack/image.db",
    help: "Database URL, oslo.db style (sqlite:////path.db).",
};

pub const FILESYSTEM_STORE_DATADIR: Opt = Opt {
    section: "glance_store",
    name: "filesystem_store_datadir",
    default: "/var/lib/ferrostack/images/",
    help: "Directory that holds image data, one file per image.",
};

pub const IMAGE_SIZE_CAP: Opt = Opt {
    section: "DEFAULT",
    name: "image_size_cap",
    default: "1099511627776",
    help: "Largest image data accepted, in bytes (1 TiB).",
};

pub const OPTS: &[Opt] = &[DATABASE_CONNECTION, FILESYSTEM_STORE_DATADIR, IMAGE_SIZE_CAP];

#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub database: db::Connection,
    pub datadir: PathBuf,
    pub size_cap: u64,
}

impl ImageConfig {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        Ok(ImageConfig {
            database: db::Connection::from_config(c, &DATABASE_CONNECTION)?,
            datadir: FILESYSTEM_STORE_DATADIR.get(c)?,
            size_cap: IMAGE_SIZE_CAP.get(c)?,
        })
    }
}
