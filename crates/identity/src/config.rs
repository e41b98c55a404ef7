//! Identity's options, with keystone.conf's sections and names.

use std::path::PathBuf;
use std::time::Duration;

use common::{Config, ConfigError, Opt};

pub const DATABASE_CONNECTION: Opt = Opt {
    section: "database",
    name: "connection",
    default: "sqlite:////var/lib/ferrostack/identity.db",
    help: "Database URL, oslo.db style: sqlite:////path.db, mysql+pymysql://user:pw@host/db\n\
           (MariaDB, MySQL) or postgresql://user:pw@host/db.",
};

pub const TOKEN_EXPIRATION: Opt =
    Opt { section: "token", name: "expiration", default: "3600", help: "How long a token is valid, in seconds." };

pub const TOKEN_CACHE_TIME: Opt = Opt {
    section: "token",
    name: "cache_time",
    default: "300",
    help: "How long, in seconds, a token validation is remembered. Any identity write in this process\n\
           forgets them all at once; another identity process sharing the database sees this one's\n\
           revocations after at most this long. 0 disables the cache.",
};

pub const KEY_REPOSITORY: Opt = Opt {
    section: "fernet_tokens",
    name: "key_repository",
    default: "/etc/keystone/fernet-keys/",
    help: "Directory of Fernet keys (0 staged, highest primary). Created with two keys when empty.",
};

pub const MAX_ACTIVE_KEYS: Opt = Opt {
    section: "fernet_tokens",
    name: "max_active_keys",
    default: "3",
    help: "Keys kept by a rotation, staged and primary included. Tokens signed with a key that\n\
           rotation drops stop validating, so keep it above expiration / rotation interval + 2.",
};

pub const CREDENTIAL_KEY_REPOSITORY: Opt = Opt {
    section: "credential",
    name: "key_repository",
    default: "/etc/keystone/credential-keys/",
    help: "Directory of Fernet keys that encrypt stored credentials (EC2 keys, TOTP secrets).",
};

pub const PASSWORD_HASH_ROUNDS: Opt = Opt {
    section: "identity",
    name: "password_hash_rounds",
    default: "2",
    help: "Argon2id passes per password hash (19 MiB each). Every password login pays for one\n\
           verification, so this is the main cost of issuing a token.",
};

pub const MAX_PASSWORD_LENGTH: Opt = Opt {
    section: "identity",
    name: "max_password_length",
    default: "4096",
    help: "Longest password accepted, in characters.",
};

pub const OPTS: &[Opt] = &[
    DATABASE_CONNECTION,
    TOKEN_EXPIRATION,
    TOKEN_CACHE_TIME,
    KEY_REPOSITORY,
    MAX_ACTIVE_KEYS,
    CREDENTIAL_KEY_REPOSITORY,
    PASSWORD_HASH_ROUNDS,
    MAX_PASSWORD_LENGTH,
];

/// Identity's settings, read from a [`Config`].
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub database: db::Connection,
    pub token_expiration: Duration,
    pub token_cache_time: Duration,
    pub key_repository: PathBuf,
    pub max_active_keys: usize,
    pub credential_key_repository: PathBuf,
    pub password_hash_rounds: u32,
    pub max_password_length: usize,
}

impl IdentityConfig {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        Ok(IdentityConfig {
            database: db::Connection::from_config(c, &DATABASE_CONNECTION)?,
            token_expiration: Duration::from_secs(TOKEN_EXPIRATION.get(c)?),
            token_cache_time: Duration::from_secs(TOKEN_CACHE_TIME.get(c)?),
            key_repository: KEY_REPOSITORY.get(c)?,
            max_active_keys: MAX_ACTIVE_KEYS.get(c)?,
            credential_key_repository: CREDENTIAL_KEY_REPOSITORY.get(c)?,
            password_hash_rounds: PASSWORD_HASH_ROUNDS.get(c)?,
            max_password_length: MAX_PASSWORD_LENGTH.get(c)?,
        })
    }
}
