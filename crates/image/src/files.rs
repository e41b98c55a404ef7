//! The file store: image data as one file per image under a directory
//! (Glance's `filesystem` store). Data is written to a temporary file while its
//! MD5 and SHA-512 are computed, and renamed into place only when complete, so a
//! broken upload leaves nothing behind.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use md5::{Digest as _, Md5};
use sha2::Sha512;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("image store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("upload interrupted: {0}")]
    Upload(String),
    #[error("image data exceeds the size limit of {0} bytes")]
    TooLarge(u64),
}

/// What a completed upload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    pub md5: String,
    pub sha512: String,
}

pub struct FileStore {
    dir: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FileStore {
    pub fn open(dir: &Path) -> std::io::Result<FileStore> {
        std::fs::create_dir_all(dir)?;
        Ok(FileStore { dir: dir.to_path_buf() })
    }

    pub fn path(&self, image_id: &str) -> PathBuf {
        self.dir.join(image_id)
    }

    /// Writes a stream of chunks as the image's data.
    pub async fn write<S, E>(&self, image_id: &str, mut data: S, limit: u64) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp = self.dir.join(format!(".{image_id}.{}.part", uuid::Uuid::new_v4().simple()));
        let result = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            let (mut md5, mut sha) = (Md5::new(), Sha512::new());
            let mut size: u64 = 0;
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|e| StoreError::Upload(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(StoreError::TooLarge(limit));
                }
                md5.update(&chunk);
                sha.update(&chunk);
                f.write_all(&chunk).await?;
            }
            f.sync_all().await?;
            Ok(Stored { size, md5: hex(&md5.finalize()), sha512: hex(&sha.finalize()) })
        }
        .await;
        match result {
            Ok(stored) => {
                tokio::fs::rename(&tmp, self.path(image_id)).await?;
                Ok(stored)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    /// Removes an image's data; missing data is not an error.
    pub async fn remove(&self, image_id: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(image_id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_hash_and_size_and_drops_partial_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let chunks: Vec<Result<axum::body::Bytes, String>> = vec![Ok("hello ".into()), Ok("world".into())];
        let s = store.write("img", futures::stream::iter(chunks), 1 << 20).await.unwrap();
        assert_eq!(s.size, 11);
        assert_eq!(s.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert!(s.sha512.starts_with("309ecc489c12d6eb4cc40f50c902f2b4"));
        assert_eq!(std::fs::read(store.path("img")).unwrap(), b"hello world");

        let broken: Vec<Result<axum::body::Bytes, String>> = vec![Ok("part".into()), Err("connection reset".into())];
        assert!(store.write("img2", futures::stream::iter(broken), 1 << 20).await.is_err());
        let too_big: Vec<Result<axum::body::Bytes, String>> = vec![Ok("12345".into())];
        assert!(matches!(store.write("img3", futures::stream::iter(too_big), 4).await, Err(StoreError::TooLarge(4))));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("img")], "nothing but the complete image");
    }
}
