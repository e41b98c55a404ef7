//! The Fernet key repository, laid out as Keystone's: files named `0`, `1`, … in one
//! directory. `0` is the *staged* key (the next primary, already accepted so every
//! server knows it before it signs with it), the highest number is the *primary*
//! (new tokens are encrypted with it), the rest are *secondary* (still accepted).
//! Rotation promotes the staged key and drops the oldest beyond `max_active_keys`,
//! so a token outlives a rotation as long as its key is still in the repository.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use fernet::{Fernet, MultiFernet};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("fernet key repository {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("fernet key repository {0} holds no valid keys")]
    Empty(String),
    #[error("fernet key {path} is not a valid key")]
    BadKey { path: String },
}

/// A key repository on disk and the keys last read from it.
pub struct KeyRepository {
    dir: PathBuf,
    max_active_keys: usize,
    loaded: RwLock<Loaded>,
}

struct Loaded {
    modified: Option<SystemTime>,
    /// Primary first, as `MultiFernet` encrypts with its first key.
    keys: MultiFernet,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.display().to_string(), source }
}

impl KeyRepository {
    /// Opens `dir`, creating it with a staged and a primary key when it has none
    /// (what `keystone-manage fernet_setup` does).
    pub fn open(dir: &Path, max_active_keys: usize) -> Result<Self, KeyError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        set_mode(dir, 0o700);
        if key_indexes(dir)?.is_empty() {
            write_key(dir, 0)?;
            rotate_files(dir, max_active_keys.max(2))?;
        }
        let loaded = load(dir)?;
        Ok(KeyRepository {
            dir: dir.to_path_buf(),
            max_active_keys: max_active_keys.max(2),
            loaded: RwLock::new(loaded),
        })
    }

    /// Promotes the staged key to primary and stages a new one.
    pub fn rotate(&self) -> Result<(), KeyError> {
        rotate_files(&self.dir, self.max_active_keys)?;
        self.reload_if_changed()
    }

    /// Encrypts with the primary key.
    pub fn encrypt(&self, payload: &[u8]) -> Result<String, KeyError> {
        self.reload_if_changed()?;
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        Ok(loaded.keys.encrypt(payload))
    }

    /// Decrypts with any key in the repository; `None` if no key fits or the token
    /// was tampered with.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        // A failed reload keeps the keys we have; tokens they sign stay valid.
        if let Err(e) = self.reload_if_changed() {
            tracing::warn!(error = %e, "fernet key repository reload failed");
        }
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        loaded.keys.decrypt(token).ok()
    }

    /// Another process (an operator's `fernet-rotate`, or a key distribution tool)
    /// may rotate the repository; the directory's mtime tells us to reread it.
    fn reload_if_changed(&self) -> Result<(), KeyError> {
        let modified = fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        if self.loaded.read().unwrap_or_else(|p| p.into_inner()).modified == modified {
            return Ok(());
        }
        let fresh = load(&self.dir)?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

fn key_indexes(dir: &Path) -> Result<Vec<u64>, KeyError> {
    let mut out: Vec<u64> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    out.sort_unstable();
    Ok(out)
}

fn write_key(dir: &Path, index: u64) -> Result<(), KeyError> {
    let path = dir.join(index.to_string());
    let tmp = dir.join(format!(".{index}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    set_mode(&tmp, 0o600);
    f.write_all(Fernet::generate_key().as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

fn rotate_files(dir: &Path, max_active_keys: usize) -> Result<(), KeyError> {
    let indexes = key_indexes(dir)?;
    let next = indexes.last().copied().unwrap_or(0) + 1;
    let staged = dir.join("0");
    if staged.exists() {
        fs::rename(&staged, dir.join(next.to_string())).map_err(io_err(&staged))?;
    }
    write_key(dir, 0)?;
    // Keep the staged key, the primary and the newest secondaries.
    let mut indexes = key_indexes(dir)?;
    indexes.retain(|i| *i != 0);
    while indexes.len() + 1 > max_active_keys {
        let oldest = indexes.remove(0);
        let path = dir.join(oldest.to_string());
        fs::remove_file(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

fn load(dir: &Path) -> Result<Loaded, KeyError> {
    let modified = fs::metadata(dir).and_then(|m| m.modified()).ok();
    let mut indexes = key_indexes(dir)?;
    // Primary (highest) first, the staged key (0) last.
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    let mut keys = Vec::new();
    for i in indexes {
        let path = dir.join(i.to_string());
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let key = Fernet::new(text.trim()).ok_or_else(|| KeyError::BadKey { path: path.display().to_string() })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(KeyError::Empty(dir.display().to_string()));
    }
    Ok(Loaded { modified, keys: MultiFernet::new(keys) })
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_makes_a_staged_and_a_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        KeyRepository::open(dir.path(), 3).unwrap();
        assert_eq!(key_indexes(dir.path()).unwrap(), vec![0, 1]);
    }

    #[test]
    fn tokens_survive_rotations_until_their_key_is_purged() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open(dir.path(), 3).unwrap();
        let token = repo.encrypt(b"payload").unwrap();
        repo.rotate().unwrap();
        assert_eq!(repo.decrypt(&token).as_deref(), Some(&b"payload"[..]));
        assert_eq!(key_indexes(dir.path()).unwrap(), vec![0, 1, 2]);
        repo.rotate().unwrap();
        // Key 1 signed the token; with max 3 keys it is gone after two rotations.
        assert_eq!(key_indexes(dir.path()).unwrap(), vec![0, 2, 3]);
        assert_eq!(repo.decrypt(&token), None);
    }

    #[test]
    fn a_token_signed_with_the_staged_key_is_accepted() {
        // Another server may already have promoted the key we have staged.
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::open(dir.path(), 3).unwrap();
        let staged = fs::read_to_string(dir.path().join("0")).unwrap();
        let token = Fernet::new(staged.trim()).unwrap().encrypt(b"x");
        assert_eq!(repo.decrypt(&token).as_deref(), Some(&b"x"[..]));
        assert_eq!(repo.decrypt("garbage"), None);
    }
}
