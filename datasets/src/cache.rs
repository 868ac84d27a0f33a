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
/// returns the file's path.
pub(crate) fn write(
    dir: &Path,
    key: &str,
    root: &Path,
    options: &str,
    report: &DatasetReport,
    data: &Decoded,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = file_for(dir, key);
    let mut report = report.clone();
    report.cache_file = None;
    report.from_cache = false;
    let header = Header {
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
    let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{nanos}",
        path.file_name().expect("a file name").to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
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
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    remove_stale(dir, &path, &header.source, &header.options);
    Ok(path)
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
