//! The decode cache: one file per (folder listing, options), named by its key.
//!
//! Layout: 8-byte magic `NASDSET\0`, u32 LE format version, u64 LE header length, a JSON header
//! (the key, the source folder, the shape, the split sizes and the whole [`DatasetReport`], which
//! carries the content fingerprint), then the raw bytes: train images, train labels, test images,
//! test labels, and val images and labels when there is a val split. Written to a temp file in
//! the same folder and renamed into place, so a reader never sees half a file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decoded::Decoded;
use crate::report::DatasetReport;
use crate::Split;

pub(crate) const VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"NASDSET\0";
const PREFIX_LEN: usize = 8 + 4 + 8;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    key: String,
    /// The folder, canonicalised, and the options, so that caches of the same folder and
    /// options made from older files can be removed.
    source: String,
    options: String,
    classes: Vec<String>,
    channels: usize,
    height: usize,
    width: usize,
    train: usize,
    test: usize,
    val: Option<usize>,
    report: DatasetReport,
}

impl Header {
    fn data_len(&self) -> u64 {
        let image_len = (self.channels * self.height * self.width + 1) as u64;
        (self.train + self.test + self.val.unwrap_or(0)) as u64 * image_len
    }
}

/// The cache file for a key.
pub(crate) fn file_for(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{}.nasd", &key[..32.min(key.len())]))
}

fn canonical(root: &Path) -> String {
    std::fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

fn read_header(file: &mut File) -> std::io::Result<Header> {
    let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let mut prefix = [0u8; PREFIX_LEN];
    file.read_exact(&mut prefix)?;
    if &prefix[..8] != MAGIC {
        return Err(bad("not a nas-datasets cache file".into()));
    }
    let version = u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(format!("cache format {version}, this build reads {VERSION}")));
    }
    let header_len = u64::from_le_bytes(prefix[12..20].try_into().expect("8 bytes"));
    if header_len > 64 << 20 {
        return Err(bad(format!("header of {header_len} bytes")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)?;
    serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))
}

fn read_split(file: &mut File, count: usize, image_len: usize) -> std::io::Result<Split> {
    let mut images = vec![0u8; count * image_len];
    file.read_exact(&mut images)?;
    let mut labels = vec![0u8; count];
    file.read_exact(&mut labels)?;
    Ok(Split { images, labels })
}

/// Reads the cache file for `key` in `dir`: `Ok(None)` when there is none; `Err` (a note for the
/// report) when one is there but unreadable, in which case it is removed. With `with_data`
/// false only the header is read.
pub(crate) fn read(dir: &Path, key: &str, with_data: bool) -> Result<Option<(DatasetReport, Option<Decoded>)>, String> {
    let path = file_for(dir, key);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cache file {} unreadable ({e}); decoded again", path.display())),
    };
    let result = (|| -> std::io::Result<Option<(DatasetReport, Option<Decoded>)>> {
        let header = read_header(&mut file)?;
        if header.key != key {
            return Ok(None);
        }
        let len = file.metadata()?.len();
        let header_end = {
            use std::io::Seek;
            file.stream_position()?
        };
        if len != header_end + header.data_len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{len} bytes, expected {}", header_end + header.data_len()),
            ));
        }
        let mut report = header.report;
        report.cache_file = Some(path.clone());
        if !with_data {
            return Ok(Some((report, None)));
        }
        let image_len = header.channels * header.height * header.width;
        let train = read_split(&mut file, header.train, image_len)?;
        let test = read_split(&mut file, header.test, image_len)?;
        let val = header.val.map(|n| read_split(&mut file, n, image_len)).transpose()?;
        Ok(Some((
            report,
            Some(Decoded {
                classes: header.classes,
                channels: header.channels,
                height: header.height,
                width: header.width,
                train,
                test,
                val,
            }),
        )))
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&path);
        format!(
            "cache file {} was unreadable ({e}) and is decoded again",
            path.display()
        )
    })
}

/// Writes the cache file for `key` atomically and removes older cache files of the same folder;
/// returns the content fingerprint (`fingerprint()`, which goes into the header's report) and
/// the file's path.
///
/// The fingerprint (a SHA-256 of the data, ~0.15 s for CIFAR-10) is computed on another thread
/// while the data is written and synced (`sync_data`, the slow part): the header is written
/// first with a placeholder fingerprint of the same length, then overwritten in place with the
/// real one and synced again before the rename. The file only gets its name once complete and
/// synced, as before, so a crash at any point leaves no cache file, only a temp file.
pub(crate) fn write(
    dir: &Path,
    key: &str,
    root: &Path,
    options: &str,
    report: &DatasetReport,
    data: &Decoded,
    fingerprint: impl FnOnce() -> String + Send,
) -> (String, std::io::Result<PathBuf>) {
    std::thread::scope(|s| {
        let fingerprint = s.spawn(fingerprint);
        let written = write_with(dir, key, root, options, report, data, || {
            fingerprint.join().expect("the fingerprint thread does not panic")
        });
        match written {
            Ok((fingerprint, path)) => (fingerprint, Ok(path)),
            Err((fingerprint, e)) => (fingerprint, Err(e)),
        }
    })
}

/// The fingerprint's placeholder: as long as the real one (64 hex digits).
const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

type Written = Result<(String, PathBuf), (String, std::io::Error)>;

fn write_with(
    dir: &Path,
    key: &str,
    root: &Path,
    options: &str,
    report: &DatasetReport,
    data: &Decoded,
    fingerprint: impl FnOnce() -> String,
) -> Written {
    // Taken once: in the middle of the write, or after it when it failed before that.
    let mut fingerprint = Some(fingerprint);
    let mut fingerprint_value: Option<String> = None;
    let path = file_for(dir, key);
    let mut report = report.clone();
    report.cache_file = None;
    report.from_cache = false;
    report.fingerprint = Some(PLACEHOLDER.to_string());
    let mut header = Header {
        key: key.to_string(),
        source: canonical(root),
        options: options.to_string(),
        classes: data.classes.clone(),
        channels: data.channels,
        height: data.height,
        width: data.width,
        train: data.train.len(),
        test: data.test.len(),
        val: data.val.as_ref().map(Split::len),
        report,
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{nanos}",
        path.file_name().expect("a file name").to_string_lossy(),
        std::process::id()
    ));
    let write_all = |file: &mut File, header: &Header| -> std::io::Result<usize> {
        let json = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        let mut prefix = Vec::with_capacity(PREFIX_LEN + json.len());
        prefix.extend_from_slice(MAGIC);
        prefix.extend_from_slice(&VERSION.to_le_bytes());
        prefix.extend_from_slice(&(json.len() as u64).to_le_bytes());
        prefix.extend_from_slice(&json);
        file.write_all(&prefix)?;
        for split in [Some(&data.train), Some(&data.test), data.val.as_ref()]
            .into_iter()
            .flatten()
        {
            file.write_all(&split.images)?;
            file.write_all(&split.labels)?;
        }
        Ok(json.len())
    };
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut file = File::create(&tmp)?;
        let placeholder_len = write_all(&mut file, &header)?;
        file.sync_data()?;
        let value = (fingerprint.take().expect("taken once"))();
        fingerprint_value = Some(value.clone());
        header.report.fingerprint = Some(value);
        let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        if json.len() == placeholder_len {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(PREFIX_LEN as u64))?;
            file.write_all(&json)?;
        } else {
            // Not a 64-digit fingerprint (never so far): the whole file again.
            use std::io::{Seek, SeekFrom};
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            write_all(&mut file, &header)?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    let fingerprint = match (fingerprint_value, fingerprint) {
        (Some(value), _) => value,
        (None, Some(f)) => f(),
        (None, None) => unreachable!("the fingerprint is taken only with its value kept"),
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err((fingerprint, e));
    }
    remove_stale(dir, &path, &header.source, &header.options);
    Ok((fingerprint, path))
}

/// Removes the other cache files of the same folder and options (made from files since
/// changed); those of other options stay, so switching options back and forth does not
/// decode again each time.
fn remove_stale(dir: &Path, keep: &Path, source: &str, options: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == keep || path.extension().is_none_or(|e| e != "nasd") {
            continue;
        }
        let same_source = File::open(&path)
            .and_then(|mut f| read_header(&mut f))
            .is_ok_and(|h| h.source == source && h.options == options);
        if same_source {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Layout;

    fn report() -> DatasetReport {
        DatasetReport {
            source: "here".into(),
            layout: Layout::ClassFolders,
            classes: Vec::new(),
            channels: 1,
            height: 2,
            width: 2,
            sizes_found: Vec::new(),
            colours_found: Vec::new(),
            resized: 0,
            resize_filter: String::new(),
            memory_needed: 0,
            memory_available: None,
            ignored_files: 0,
            ignored_examples: Vec::new(),
            bad_images: 0,
            bad_examples: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
            fingerprint: None,
            from_cache: false,
            cache_file: None,
            seconds: 0.0,
        }
    }

    fn decoded() -> Decoded {
        Decoded {
            classes: vec!["a".into(), "b".into()],
            channels: 1,
            height: 2,
            width: 2,
            train: Split {
                images: (0..12).collect(),
                labels: vec![0, 1, 0],
            },
            test: Split {
                images: (20..24).collect(),
                labels: vec![1],
            },
            val: None,
        }
    }

    /// The fingerprint is computed while the data is written: until the write is complete
    /// and synced there is no cache file to read (a crash there leaves only the temp file), and
    /// the finished file's header has the real fingerprint, not the placeholder.
    #[test]
    fn no_cache_file_until_complete_and_the_header_has_the_real_fingerprint() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = "k".repeat(64);
        let data = decoded();
        let report = report();
        let (fingerprint, written) = write(dir.path(), &key, dir.path(), "opts", &report, &data, || {
            // Mid-write (as a crash here would leave it): nothing readable under the key.
            assert!(matches!(read(dir.path(), &key, true), Ok(None)));
            "f".repeat(64)
        });
        assert_eq!(fingerprint, "f".repeat(64));
        let path = written.expect("written");
        let (report, back) = read(dir.path(), &key, true).expect("readable").expect("a hit");
        assert_eq!(report.cache_file, Some(path));
        assert_eq!(report.fingerprint, Some("f".repeat(64)));
        let back = back.expect("data");
        assert_eq!((back.train, back.test), (data.train, data.test));
        // Only the cache file is left: no temp file.
        assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 1);
    }

    #[test]
    fn a_fingerprint_of_another_length_rewrites_the_whole_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = "k".repeat(64);
        let data = decoded();
        let (_, written) = write(dir.path(), &key, dir.path(), "opts", &report(), &data, || {
            "short".into()
        });
        written.expect("written");
        let (report, _) = read(dir.path(), &key, false).expect("readable").expect("a hit");
        assert_eq!(report.fingerprint.as_deref(), Some("short"));
    }
}
