//! A local temporary file that takes a stream of bytes, hashing and counting as
//! it goes, so the content address is known before anything is stored and a
//! 100 MB video never sits in memory.
//!
//! A spool that is dropped before it was handed to a backend removes its file.
//! Files left by a crash (`*.part`) are swept by [`sweep`] when the store opens.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{ContentHash, MediaError};

/// Spool files older than this are leftovers of a crash.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

fn io_error(what: &str, path: &Path, e: std::io::Error) -> MediaError {
    MediaError::Unavailable(format!("{what} {}: {e}", path.display()))
}

/// A spool being written.
pub struct Spool {
    file: tokio::fs::File,
    path: Option<PathBuf>,
    hasher: Sha256,
    size: u64,
    max: u64,
}

/// A finished spool: a synced file with its hash and size.
pub struct Spooled {
    path: Option<PathBuf>,
    /// SHA-256 of the content.
    pub hash: ContentHash,
    /// Size in bytes.
    pub size: u64,
}

impl Spool {
    /// Creates an empty spool file in `dir` that accepts at most `max` bytes.
    pub async fn create(dir: &Path, max: u64) -> Result<Spool, MediaError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| io_error("creating", dir, e))?;
        let path = dir.join(format!("{}.part", uuid::Uuid::now_v7().simple()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io_error("creating", &path, e))?;
        Ok(Spool {
            file,
            path: Some(path),
            hasher: Sha256::new(),
            size: 0,
            max,
        })
    }

    /// Appends a chunk; [`MediaError::TooLarge`] as soon as the total passes the
    /// limit (nothing beyond it is written).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaError> {
        let size = self.size + chunk.len() as u64;
        if size > self.max {
            return Err(MediaError::TooLarge {
                size,
                max: self.max,
            });
        }
        self.hasher.update(chunk);
        let path = self.path.as_deref().unwrap_or(Path::new(""));
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| io_error("writing", path, e))?;
        self.size = size;
        Ok(())
    }

    /// Flushes and syncs the file (so a rename after it survives a power loss)
    /// and returns it with its hash.
    pub async fn finish(mut self) -> Result<Spooled, MediaError> {
        let path = self.path.take();
        let shown = path.clone().unwrap_or_default();
        self.file
            .flush()
            .await
            .map_err(|e| io_error("flushing", &shown, e))?;
        self.file
            .sync_all()
            .await
            .map_err(|e| io_error("syncing", &shown, e))?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_slice());
        Ok(Spooled {
            path,
            hash: ContentHash::from_bytes(bytes),
            size: self.size,
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Spooled {
    /// The file's path (valid until this value is dropped).
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // A backend that moved the file makes this a no-op (NotFound is ignored).
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes `*.part` files older than a day from `dir` (leftovers of a crash in
/// the middle of a download; a live spool is minutes old). Returns how many.
pub async fn sweep(dir: &Path) -> usize {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return 0;
    };
    let mut removed = 0;
    let now = SystemTime::now();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "part") {
            continue;
        }
        let old = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old && tokio::fs::remove_file(&path).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_counts_limits_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path(), 6).await.unwrap();
        spool.write(b"abc").await.unwrap();
        spool.write(b"def").await.unwrap();
        let done = spool.finish().await.unwrap();
        assert_eq!(done.size, 6);
        assert_eq!(
            done.hash.to_string(),
            "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
        );
        assert_eq!(std::fs::read(done.path()).unwrap(), b"abcdef");
        let path = done.path().to_path_buf();
        drop(done);
        assert!(!path.exists());

        let mut spool = Spool::create(dir.path(), 4).await.unwrap();
        spool.write(b"abc").await.unwrap();
        assert!(matches!(
            spool.write(b"de").await,
            Err(MediaError::TooLarge { size: 5, max: 4 })
        ));
        drop(spool);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn sweep_keeps_fresh_spools() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fresh.part"), b"x").unwrap();
        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        let old = std::fs::File::create(dir.path().join("old.part")).unwrap();
        old.set_modified(SystemTime::now() - 2 * STALE_AFTER)
            .unwrap();
        drop(old);
        assert_eq!(sweep(dir.path()).await, 1);
        assert!(dir.path().join("fresh.part").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(sweep(&dir.path().join("missing")).await, 0);
    }
}
