//! MNIST in the official IDX format, gzipped (`*.gz`, as distributed) or raw.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::download::{download_verified, Checksum, RemoteFile};
use crate::{DataError, DataSource, Split};
use nas_core::checksum::sha256_hex;

const BASE_URLS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist",
    "https://yann.lecun.com/exdb/mnist",
];

/// One official MNIST file: the md5 of the official `.gz` download and the sha256 of its
/// decompressed content (which identifies the data whatever gzip header a copy carries).
struct MnistFile {
    stem: &'static str,
    gz_md5: &'static str,
    content_sha256: &'static str,
}

const TRAIN_IMAGES: MnistFile = MnistFile {
    stem: "train-images-idx3-ubyte",
    gz_md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    content_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
};
const TRAIN_LABELS: MnistFile = MnistFile {
    stem: "train-labels-idx1-ubyte",
    gz_md5: "d53e105ee54ea40749a09fcbcd1e9432",
    content_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
const TEST_IMAGES: MnistFile = MnistFile {
    stem: "t10k-images-idx3-ubyte",
    gz_md5: "9fb629c4189551a2d022fa330f9573f3",
    content_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
};
const TEST_LABELS: MnistFile = MnistFile {
    stem: "t10k-labels-idx1-ubyte",
    gz_md5: "ec29112dd5afa0611ce80d1b7f02629c",
    content_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const SIDE: usize = 28;

pub(crate) fn load(source: &DataSource) -> Result<(Split, Split), DataError> {
    let dir = source.data_dir.join("mnist");
    let files = [&TRAIN_IMAGES, &TRAIN_LABELS, &TEST_IMAGES, &TEST_LABELS];
    ensure_present(&dir, &files, source)?;
    let train = read_split(&dir, &TRAIN_IMAGES, &TRAIN_LABELS)?;
    let test = read_split(&dir, &TEST_IMAGES, &TEST_LABELS)?;
    Ok((train, test))
}

/// The path of a file if present, gzipped or raw.
fn existing(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
}

fn ensure_present(dir: &Path, files: &[&MnistFile], source: &DataSource) -> Result<(), DataError> {
    let missing: Vec<&&MnistFile> = files.iter().filter(|f| existing(dir, f.stem).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let paths: Vec<PathBuf> = missing.iter().map(|f| dir.join(format!("{}.gz", f.stem))).collect();
    if !source.download {
        return Err(DataError::Missing {
            files: paths,
            sources: BASE_URLS.join(", "),
            reason: "downloads are off (NAS_OFFLINE=1)".into(),
        });
    }
    for (file, path) in missing.iter().zip(&paths) {
        let remote = RemoteFile {
            name: format!("{}.gz", file.stem),
            base_urls: BASE_URLS.iter().map(|b| b.to_string()).collect(),
            checksum: Checksum::Md5(file.gz_md5.into()),
        };
        download_verified(&remote, path, source.mirror.as_deref()).map_err(|reason| DataError::Missing {
            files: paths.clone(),
            sources: BASE_URLS.join(", "),
            reason,
        })?;
    }
    Ok(())
}

/// Reads a whole file, decompressing it when its name ends in `.gz`.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::corrupt(path, format!("not a valid gzip file ({e})")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn read_verified(dir: &Path, file: &MnistFile) -> Result<(PathBuf, Vec<u8>), DataError> {
    let path = existing(dir, file.stem).expect("presence checked before reading");
    let bytes = read_maybe_gz(&path)?;
    let actual = sha256_hex(&bytes);
    if actual != file.content_sha256 {
        return Err(DataError::Checksum {
            path,
            algorithm: "sha256 of the decompressed content",
            expected: file.content_sha256.into(),
            actual,
        });
    }
    Ok((path, bytes))
}

fn read_split(dir: &Path, images: &MnistFile, labels: &MnistFile) -> Result<Split, DataError> {
    let (images_path, image_bytes) = read_verified(dir, images)?;
    let (labels_path, label_bytes) = read_verified(dir, labels)?;
    parse_split(&images_path, &image_bytes, &labels_path, &label_bytes)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses an IDX image file and label file into one split, checking magic numbers, sizes, counts and
/// label range.
pub fn parse_split(images_path: &Path, images: &[u8], labels_path: &Path, labels: &[u8]) -> Result<Split, DataError> {
    let header =
        |p: &Path, b: &[u8], at| be_u32(b, at).ok_or_else(|| DataError::corrupt(p, "file is shorter than its header"));
    let magic = header(images_path, images, 0)?;
    if magic != IMAGES_MAGIC {
        return Err(DataError::corrupt(
            images_path,
            format!("wrong magic number {magic:#010x}, expected {IMAGES_MAGIC:#010x} (IDX images)"),
        ));
    }
    let count = header(images_path, images, 4)? as usize;
    let (rows, cols) = (
        header(images_path, images, 8)? as usize,
        header(images_path, images, 12)? as usize,
    );
    if rows != SIDE || cols != SIDE {
        return Err(DataError::corrupt(
            images_path,
            format!("images are {rows}x{cols}, expected {SIDE}x{SIDE}"),
        ));
    }
    let expected_len = 16 + count * SIDE * SIDE;
    if images.len() != expected_len {
        return Err(DataError::corrupt(
            images_path,
            format!(
                "truncated or padded: {} bytes, the header promises {count} images = {expected_len} bytes",
                images.len()
            ),
        ));
    }
    let magic = header(labels_path, labels, 0)?;
    if magic != LABELS_MAGIC {
        return Err(DataError::corrupt(
            labels_path,
            format!("wrong magic number {magic:#010x}, expected {LABELS_MAGIC:#010x} (IDX labels)"),
        ));
    }
    let label_count = header(labels_path, labels, 4)? as usize;
    if label_count != count {
        return Err(DataError::corrupt(
            labels_path,
            format!("{label_count} labels for {count} images in {}", images_path.display()),
        ));
    }
    if labels.len() != 8 + count {
        return Err(DataError::corrupt(
            labels_path,
            format!(
                "truncated or padded: {} bytes, the header promises {count} labels = {} bytes",
                labels.len(),
                8 + count
            ),
        ));
    }
    let label_slice = &labels[8..];
    if let Some((i, &bad)) = label_slice.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(DataError::corrupt(
            labels_path,
            format!("label {bad} at index {i} is out of range 0..=9"),
        ));
    }
    Ok(Split {
        images: images[16..].to_vec(),
        labels: label_slice.to_vec(),
    })
}
