//! The directory backend: one file per object under a root directory, for a
//! single machine (the default, under `store.data_dir`).
//!
//! Keys like `sha256/ab/ab12…` map to paths under the root. A put renames the
//! synced spool file into place (the spool lives in `<root>/.spool`, on the same
//! file system, so the rename is atomic) and syncs the directory, so an object
//! is either whole or absent even after a power loss.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use tokio::io::AsyncReadExt;

use super::MediaError;
use super::backend::{MediaBackend, ObjectBody};

/// Bytes read per chunk when streaming an object out.
const READ_CHUNK: usize = 64 * 1024;

fn io_error(what: &str, path: &Path, e: std::io::Error) -> MediaError {
    MediaError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// Objects as files under a directory.
#[derive(Debug, Clone)]
pub struct FsBackend {
    root: PathBuf,
}

impl FsBackend {
    /// A backend rooted at `root` (created when missing).
    pub async fn open(root: &Path) -> Result<FsBackend, MediaError> {
        tokio::fs::create_dir_all(root)
            .await
            .map_err(|e| io_error("creating", root, e))?;
        Ok(FsBackend {
            root: root.to_path_buf(),
        })
    }

    /// Where spool files are written: inside the root, so renames stay on one
    /// file system.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join(".spool")
    }

    /// The file of `key`. Keys come from [`crate::media::MediaStore`] (hex and
    /// slashes only); anything else is refused rather than joined.
    fn path_of(&self, key: &str) -> Result<PathBuf, MediaError> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !safe {
            return Err(MediaError::Unavailable(format!(
                "invalid object key {key:?}"
            )));
        }
        Ok(self.root.join(key))
    }
}

async fn sync_dir(dir: &Path) -> Result<(), MediaError> {
    let handle = tokio::fs::File::open(dir)
        .await
        .map_err(|e| io_error("opening", dir, e))?;
    handle
        .sync_all()
        .await
        .map_err(|e| io_error("syncing", dir, e))
}

#[async_trait]
impl MediaBackend for FsBackend {
    fn name(&self) -> &'static str {
        "fs"
    }

    async fn ping(&self) -> Result<(), MediaError> {
        let dir = self.spool_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_error("creating", &dir, e))?;
        let probe = dir.join(format!("ping-{}.part", uuid::Uuid::now_v7().simple()));
        tokio::fs::write(&probe, b"ok")
            .await
            .map_err(|e| io_error("writing", &probe, e))?;
        let _ = tokio::fs::remove_file(&probe).await;
        Ok(())
    }

    async fn put_file(&self, key: &str, file: &Path, _size: u64) -> Result<(), MediaError> {
        let target = self.path_of(key)?;
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            // Same key, same content: keep the one already there.
            return Ok(());
        }
        let parent = target.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| io_error("creating", &parent, e))?;
        tokio::fs::rename(file, &target)
            .await
            .map_err(|e| io_error("moving into place", &target, e))?;
        sync_dir(&parent).await
    }

    async fn get(&self, key: &str) -> Result<ObjectBody, MediaError> {
        let path = self.path_of(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MediaError::NotFound(key.to_string()));
            }
            Err(e) => return Err(io_error("opening", &path, e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| io_error("reading", &path, e))?
            .len();
        let chunks = stream::unfold(Some((file, path)), |state| async move {
            let (mut file, path) = state?;
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            match file.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok::<Bytes, MediaError>(buf.freeze()), Some((file, path)))),
                Err(e) => Some((Err(io_error("reading", &path, e)), None)),
            }
        });
        Ok(ObjectBody {
            size,
            stream: chunks.boxed(),
        })
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, MediaError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading", &path, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, MediaError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("deleting", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_cannot_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsBackend::open(dir.path()).await.unwrap();
        for bad in ["", "../x", "a/../b", "/etc/passwd", "a//b", "a/./b", "a b"] {
            assert!(fs.get(bad).await.is_err(), "{bad:?}");
            assert!(fs.size(bad).await.is_err(), "{bad:?}");
        }
        assert!(matches!(
            fs.get("sha256/ab/abcd").await,
            Err(MediaError::NotFound(_))
        ));
        fs.ping().await.unwrap();
    }
}
