//! CIFAR-10 in the official binary layout (`cifar-10-batches-bin/`): records of one label byte and
//! 3072 pixel bytes, channel-major.

use std::path::{Path, PathBuf};

use crate::download::{download_verified, Checksum, RemoteFile};
use crate::{DataError, DataSource, Split};

pub(crate) const DIR: &str = "cifar-10-batches-bin";
const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_FILE: &str = "test_batch.bin";
pub(crate) const RECORD_LEN: usize = 1 + 3 * 32 * 32;
const RECORDS_PER_FILE: usize = 10_000;

const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";
const ARCHIVE_BASE_URL: &str = "https://www.cs.toronto.edu/~kriz";
const ARCHIVE_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

pub(crate) fn load(source: &DataSource) -> Result<(Split, Split), DataError> {
    let dir = source.data_dir.join(DIR);
    ensure_present(&source.data_dir, &dir, source)?;
    let mut train = Split {
        images: Vec::new(),
        labels: Vec::new(),
    };
    for name in TRAIN_FILES {
        let part = read_batch(&dir.join(name))?;
        train.images.extend(part.images);
        train.labels.extend(part.labels);
    }
    let test = read_batch(&dir.join(TEST_FILE))?;
    Ok((train, test))
}

fn ensure_present(data_dir: &Path, dir: &Path, source: &DataSource) -> Result<(), DataError> {
    let missing: Vec<PathBuf> = TRAIN_FILES
        .iter()
        .chain(std::iter::once(&TEST_FILE))
        .map(|n| dir.join(n))
        .filter(|p| !p.exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sources = format!("{ARCHIVE_BASE_URL}/{ARCHIVE_NAME}");
    if !source.download {
        return Err(DataError::Missing {
            files: missing,
            sources,
            reason: "downloads are off (NAS_OFFLINE=1)".into(),
        });
    }
    let remote = RemoteFile {
        name: ARCHIVE_NAME.into(),
        base_urls: vec![ARCHIVE_BASE_URL.into()],
        checksum: Checksum::Md5(ARCHIVE_MD5.into()),
    };
    let archive = data_dir.join(ARCHIVE_NAME);
    download_verified(&remote, &archive, source.mirror.as_deref()).map_err(|reason| DataError::Missing {
        files: missing.clone(),
        sources: sources.clone(),
        reason,
    })?;
    let file = std::fs::File::open(&archive).map_err(|e| DataError::io(&archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(data_dir)
        .map_err(|e| DataError::corrupt(&archive, format!("cannot unpack ({e})")))?;
    Ok(())
}

/// Reads one batch file, checking its size and every label.
pub fn read_batch(path: &Path) -> Result<Split, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_batch(path, &bytes)
}

pub(crate) fn parse_batch(path: &Path, bytes: &[u8]) -> Result<Split, DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_LEN) {
        return Err(DataError::corrupt(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD_LEN}-byte records (truncated?)",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / RECORD_LEN;
    if count != RECORDS_PER_FILE {
        return Err(DataError::corrupt(
            path,
            format!("{count} records, an official batch file has {RECORDS_PER_FILE}"),
        ));
    }
    let mut images = Vec::with_capacity(count * (RECORD_LEN - 1));
    let mut labels = Vec::with_capacity(count);
    for (i, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        if record[0] > 9 {
            return Err(DataError::corrupt(
                path,
                format!("label {} in record {i} is out of range 0..=9", record[0]),
            ));
        }
        labels.push(record[0]);
        images.extend_from_slice(&record[1..]);
    }
    Ok(Split { images, labels })
}
