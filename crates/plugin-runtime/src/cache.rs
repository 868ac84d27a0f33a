//! The compile cache: plugins compiled to native code once and loaded from disk afterwards.
//!
//! Loading a cached entry runs its bytes as native code outside the sandbox, so an entry is only
//! trusted when nobody else could have written it: the cache directory is created `0700`, an
//! entry (and the directory) must belong to the current user and be writable by nobody else, and
//! its bytes must match the sha256 recorded in the directory's index when this user compiled it.
//! Anything else is ignored with a warning and compiled again over.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use nas_core::checksum::sha256_hex;

/// Entry name → sha256 of its bytes, written when the entry was compiled.
const INDEX: &str = "index.json";

/// Whether `meta` belongs to this user and only this user may write it.
fn private(meta: &fs::Metadata) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    meta.uid() == me && meta.permissions().mode() & 0o022 == 0
}

/// A compile cache directory.
pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf) -> CompileCache {
        CompileCache { dir }
    }

    /// The directory, created `0700` when missing; `None` (with a warning) when it exists but
    /// others could write to it.
    fn trusted_dir(&self) -> Option<&Path> {
        if !self.dir.exists() {
            if let Err(e) = fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir) {
                tracing::warn!("cannot create the compile cache {}: {e}", self.dir.display());
                return None;
            }
        }
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() && private(&meta) => Some(&self.dir),
            Ok(_) => {
                tracing::warn!(
                    "not using the compile cache {}: it belongs to another user or others may write to it (make it yours, mode 0700)",
                    self.dir.display()
                );
                None
            }
            Err(e) => {
                tracing::warn!("cannot read the compile cache {}: {e}", self.dir.display());
                None
            }
        }
    }

    fn index(dir: &Path) -> BTreeMap<String, String> {
        let path = dir.join(INDEX);
        match fs::metadata(&path) {
            Ok(meta) if private(&meta) => fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default(),
            Ok(_) => {
                tracing::warn!(
                    "ignoring {}: it belongs to another user or others may write to it",
                    path.display()
                );
                BTreeMap::new()
            }
            Err(_) => BTreeMap::new(),
        }
    }

    /// The bytes of entry `name`, when it is trusted (see the module's documentation).
    pub(crate) fn get(&self, name: &str) -> Option<Vec<u8>> {
        let dir = self.trusted_dir()?;
        let path = dir.join(name);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || !private(&meta) {
            tracing::warn!(
                "ignoring compiled plugin {}: it belongs to another user or others may write to it; compiling again",
                path.display()
            );
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        match Self::index(dir).get(name) {
            Some(recorded) if *recorded == sha256_hex(&bytes) => Some(bytes),
            _ => {
                tracing::warn!(
                    "ignoring compiled plugin {}: its contents are not what this user compiled; compiling again",
                    path.display()
                );
                None
            }
        }
    }

    /// Stores entry `name` (mode 0600) and records its digest.
    pub(crate) fn put(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let dir = self.trusted_dir().context("the compile cache is not usable")?;
        let write_private = |path: &Path, bytes: &[u8]| -> anyhow::Result<()> {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, path)?;
            Ok(())
        };
        write_private(&dir.join(name), bytes)?;
        // Concurrent writers may drop each other's index lines; a missing line only means a
        // recompilation later.
        let mut index = Self::index(dir);
        index.insert(name.to_string(), sha256_hex(bytes));
        write_private(&dir.join(INDEX), &serde_json::to_vec_pretty(&index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_this_user_wrote_are_trusted() {
        let root = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(root.path().join("compiled"));
        cache.put("a.cwasm", b"native code").unwrap();
        assert_eq!(cache.get("a.cwasm").unwrap(), b"native code");
        let dir = root.path().join("compiled");
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

        // A file planted under an entry's name, even one with the right owner and mode.
        fs::write(dir.join("a.cwasm"), b"planted").unwrap();
        fs::set_permissions(dir.join("a.cwasm"), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(cache.get("a.cwasm").is_none());

        // An entry others may write.
        cache.put("b.cwasm", b"code").unwrap();
        fs::set_permissions(dir.join("b.cwasm"), fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.get("b.cwasm").is_none());

        // An entry that belongs to another user (needs root to hand it over).
        cache.put("c.cwasm", b"code").unwrap();
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(dir.join("c.cwasm"), Some(65534), None).unwrap();
            assert!(cache.get("c.cwasm").is_none());
        }

        // A directory others may write is not used at all.
        cache.put("d.cwasm", b"code").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(cache.get("d.cwasm").is_none());
    }
}
