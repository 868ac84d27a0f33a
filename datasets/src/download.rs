//! Downloads of official dataset files, verified by checksum before they are moved into place.

use std::io::Read;
use std::path::Path;

use nas_core::checksum::sha256_hex;

use crate::DataError;

/// A checksum of a file's bytes.
#[derive(Debug, Clone)]
pub enum Checksum {
    Sha256(String),
    Md5(String),
}

impl Checksum {
    fn verify(&self, path: &Path, bytes: &[u8]) -> Result<(), DataError> {
        let (algorithm, expected, actual) = match self {
            Checksum::Sha256(expected) => ("sha256", expected.as_str(), sha256_hex(bytes)),
            Checksum::Md5(expected) => ("md5", expected.as_str(), format!("{:x}", md5::compute(bytes))),
        };
        if actual.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(DataError::Checksum {
                path: path.to_path_buf(),
                algorithm,
                expected: expected.to_string(),
                actual,
            })
        }
    }
}

/// One downloadable file: its name, the base URLs to try in order, and its checksum.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub name: String,
    pub base_urls: Vec<String>,
    pub checksum: Checksum,
}

/// Largest file we accept from the network (the CIFAR-10 archive is 162 MiB).
const MAX_DOWNLOAD_BYTES: u64 = 512 << 20;

/// Downloads `file` into `dest`, trying `mirror` (when given) and then each official base URL.
/// The bytes are checked against the checksum before `dest` is written; a bad download never lands.
pub fn download_verified(file: &RemoteFile, dest: &Path, mirror: Option<&str>) -> Result<(), String> {
    let mut errors = Vec::new();
    let bases: Vec<&str> = mirror
        .into_iter()
        .chain(file.base_urls.iter().map(String::as_str))
        .collect();
    for base in bases {
        let url = format!("{}/{}", base.trim_end_matches('/'), file.name);
        match fetch(&url) {
            Ok(bytes) => {
                file.checksum
                    .verify(Path::new(&url), &bytes)
                    .map_err(|e| e.to_string())?;
                write_atomically(dest, &bytes).map_err(|e| e.to_string())?;
                eprintln!("downloaded {url} -> {} (checksum ok)", dest.display());
                return Ok(());
            }
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    Err(errors.join("; "))
}

fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .new_agent();
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_DOWNLOAD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<(), DataError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let partial = dest.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(|e| DataError::io(&partial, e))?;
    std::fs::rename(&partial, dest).map_err(|e| DataError::io(dest, e))
}
