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

/// The header for a cache file of `data`.
fn header_for(key: &str, root: &Path, options: &str, report: &DatasetReport, data: &Decoded) -> Header {
    let mut report = report.clone();
    report.cache_file = None;
    report.from_cache = false;
    Header {
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
    }
}

/// The splits in the file's order.
fn splits(data: &Decoded) -> impl Iterator<Item = &Split> {
    [Some(&data.train), Some(&data.test), data.val.as_ref()]
        .into_iter()
        .flatten()
}

/// The prefix: magic, version and the header's length (`header_len`, at least the JSON's; the
/// JSON is padded with spaces, which the reader's JSON parser skips).
fn prefix(json: &[u8], header_len: usize) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(PREFIX_LEN + header_len);
    prefix.extend_from_slice(MAGIC);
    prefix.extend_from_slice(&VERSION.to_le_bytes());
    prefix.extend_from_slice(&(header_len as u64).to_le_bytes());
    prefix.extend_from_slice(json);
    prefix.resize(PREFIX_LEN + header_len, b' ');
    prefix
}

/// Writes the whole file from the start: prefix, header and data; returns the header's length.
fn write_whole(file: &mut File, header: &Header, data: &Decoded) -> std::io::Result<usize> {
    use std::io::{Seek, SeekFrom};
    let json = serde_json::to_vec(header).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&prefix(&json, json.len()))?;
    for split in splits(data) {
        file.write_all(&split.images)?;
        file.write_all(&split.labels)?;
    }
    Ok(json.len())
}

fn temp_for(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(
        ".{}.tmp-{}-{nanos}",
        path.file_name().expect("a file name").to_string_lossy(),
        std::process::id()
    ))
}

/// The fingerprint's placeholder: as long as the real one (64 hex digits).
const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    let path = file_for(dir, key);
    let tmp = temp_for(&path);
    let mut header = header_for(key, root, options, report, data);
    header.report.fingerprint = Some(PLACEHOLDER.to_string());
    finish(
        &path,
        &tmp,
        header,
        fingerprint,
        |header| {
            std::fs::create_dir_all(dir)?;
            let mut file = File::create(&tmp)?;
            let header_len = write_whole(&mut file, header, data)?;
            file.sync_data()?;
            Ok((file, header_len))
        },
        data,
    )
}

/// Runs `start` (which writes the temp file with a placeholder header of `header_len` bytes and
/// syncs it) while `fingerprint` is computed on another thread; then writes the real header over
/// the placeholder (or the whole file again when it does not fit), syncs, renames the temp file
/// into place and removes stale cache files. On an error the temp file is removed.
fn finish(
    path: &Path,
    tmp: &Path,
    mut header: Header,
    fingerprint: impl FnOnce() -> String + Send,
    start: impl FnOnce(&Header) -> std::io::Result<(File, usize)>,
    data: &Decoded,
) -> (String, std::io::Result<PathBuf>) {
    std::thread::scope(|s| {
        let fingerprint = s.spawn(fingerprint);
        let started = start(&header);
        let value = fingerprint.join().expect("the fingerprint thread does not panic");
        header.report.fingerprint = Some(value.clone());
        let written = started.and_then(|(mut file, header_len)| {
            let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
            if json.len() <= header_len {
                use std::io::{Seek, SeekFrom};
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&prefix(&json, header_len))?;
            } else {
                write_whole(&mut file, &header, data)?;
            }
            file.sync_all()?;
            std::fs::rename(tmp, path)
        });
        match written {
            Ok(()) => {
                remove_stale(path.parent().expect("a folder"), path, &header.source, &header.options);
                (value, Ok(path.to_path_buf()))
            }
            Err(e) => {
                let _ = std::fs::remove_file(tmp);
                (value, Err(e))
            }
        }
    })
}

/// A cache file written while the images are decoded (`folder::decode::decode_splits`): a temp
/// file with room for the header at the start, the images written at their places as they are
/// decoded, then [`Stream::finish`] writes the labels and the header, syncs and renames it into
/// place. As with [`write`], there is no cache file under the key until it is complete and
/// synced; a crash leaves only the temp file.
pub(crate) struct Stream {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    /// Bytes kept for the header: twice the report's and class names' JSON, and 8 KiB more
    /// (the header is the report after the decode, which adds little).
    reserved: usize,
}

impl Stream {
    pub fn start(dir: &Path, key: &str, report: &DatasetReport, classes: &[String]) -> std::io::Result<Stream> {
        std::fs::create_dir_all(dir)?;
        let path = file_for(dir, key);
        let tmp = temp_for(&path);
        let file = File::create(&tmp)?;
        let estimate = serde_json::to_vec(report).map_err(std::io::Error::other)?.len()
            + serde_json::to_vec(classes).map_err(std::io::Error::other)?.len();
        Ok(Stream {
            path,
            tmp,
            file,
            reserved: 2 * estimate + 8192,
        })
    }

    /// Where the data starts in the file.
    pub fn data_start(&self) -> u64 {
        (PREFIX_LEN + self.reserved) as u64
    }

    /// Writes `bytes` at `offset` (a positional write: the file's cursor is not involved).
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, bytes, offset)
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Removes the temp file (the images were not all written in place).
    pub fn abandon(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.tmp);
    }

    /// Completes the file for `data`, whose images are in place: as [`write`] from there.
    pub fn finish(
        self,
        key: &str,
        root: &Path,
        options: &str,
        report: &DatasetReport,
        data: &Decoded,
        fingerprint: impl FnOnce() -> String + Send,
    ) -> (String, std::io::Result<PathBuf>) {
        let Stream {
            path,
            tmp,
            file,
            reserved,
        } = self;
        let data_start = (PREFIX_LEN + reserved) as u64;
        let header = header_for(key, root, options, report, data);
        finish(
            &path,
            &tmp,
            header,
            fingerprint,
            |_| {
                let mut offset = data_start;
                for split in splits(data) {
                    offset += split.images.len() as u64;
                    std::os::unix::fs::FileExt::write_all_at(&file, &split.labels, offset)?;
                    offset += split.labels.len() as u64;
                }
                file.set_len(offset)?;
                file.sync_data()?;
                Ok((file, reserved))
            },
            data,
        )
    }
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

    pub(super) fn report() -> DatasetReport {
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

    pub(super) fn decoded() -> Decoded {
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

#[cfg(test)]
mod stream_tests {
    use super::tests::{decoded, report};
    use super::*;

    /// Images streamed in place while "decoding", then finished: the file reads back as the
    /// data; before `finish` (a crash mid-decode) there is no cache file under the key.
    #[test]
    fn a_streamed_file_reads_back_and_is_absent_until_finished() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = "s".repeat(64);
        let data = decoded();
        let stream = Stream::start(dir.path(), &key, &report(), &data.classes).expect("started");
        let mut offset = stream.data_start();
        for split in splits(&data) {
            // In two steps, the second first (the order does not matter).
            let half = split.images.len() / 2;
            stream
                .write_at(offset + half as u64, &split.images[half..])
                .expect("written");
            stream.write_at(offset, &split.images[..half]).expect("written");
            stream.sync().expect("synced");
            offset += (split.images.len() + split.labels.len()) as u64;
        }
        assert!(matches!(read(dir.path(), &key, true), Ok(None)));
        let (fingerprint, written) = stream.finish(&key, dir.path(), "opts", &report(), &data, || "e".repeat(64));
        assert_eq!(fingerprint, "e".repeat(64));
        let path = written.expect("written");
        let (report, back) = read(dir.path(), &key, true).expect("readable").expect("a hit");
        assert_eq!(report.cache_file, Some(path));
        assert_eq!(report.fingerprint, Some("e".repeat(64)));
        let back = back.expect("data");
        assert_eq!((back.train, back.test), (data.train, data.test));
        assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 1);
    }

    #[test]
    fn an_abandoned_stream_leaves_nothing() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = "a".repeat(64);
        let stream = Stream::start(dir.path(), &key, &report(), &[]).expect("started");
        stream.write_at(stream.data_start(), &[1, 2, 3]).expect("written");
        stream.abandon();
        assert!(matches!(read(dir.path(), &key, true), Ok(None)));
        assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 0);
    }

    /// A header longer than the room kept for it: the whole file is written again.
    #[test]
    fn a_header_too_long_for_its_room_rewrites_the_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = "l".repeat(64);
        let data = decoded();
        let stream = Stream::start(dir.path(), &key, &report(), &[]).expect("started");
        let mut offset = stream.data_start();
        for split in splits(&data) {
            stream.write_at(offset, &split.images).expect("written");
            offset += (split.images.len() + split.labels.len()) as u64;
        }
        let mut long = report();
        long.notes = vec!["n".repeat(100_000)];
        let (_, written) = stream.finish(&key, dir.path(), "opts", &long, &data, || "e".repeat(64));
        written.expect("written");
        let (back_report, back) = read(dir.path(), &key, true).expect("readable").expect("a hit");
        assert_eq!(back_report.notes, long.notes);
        let back = back.expect("data");
        assert_eq!((back.train, back.test), (data.train, data.test));
    }
}
