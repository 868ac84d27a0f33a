//! The table itself: the CSV, its rows and lookups by canonical architecture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nas_core::arch::Architecture;
use nas_core::checksum::sha256_hex;
use serde::{Deserialize, Serialize};

use crate::{Result, TableError};

/// One CSV row as written: one training run of one architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// The architecture in canonical text form, e.g. `conv(32,3) pool(5,3) fc(64)`.
    pub architecture: String,
    /// Test accuracy in [0, 1].
    pub accuracy: f64,
    /// Trainable parameters (with the classifier).
    pub params: u64,
    /// Multiply-adds for one example.
    pub mult_adds: u64,
    /// Wall-clock seconds the training run took.
    pub seconds: f64,
    /// The data set's name, e.g. `cifar5`.
    pub dataset: String,
    /// The training protocol in short, e.g. `cifar5 2500x1 relu lr0.001 seed0`.
    pub protocol: String,
}

/// One architecture of the table: its rows merged.
#[derive(Debug, Clone, PartialEq)]
pub struct TableEntry {
    /// Parsed, so that its text is canonical whatever spacing or case the CSV had.
    pub architecture: Architecture,
    /// The recorded accuracy; with several rows, their mean. With one row it is the recorded
    /// value bit for bit.
    pub accuracy: f64,
    pub params: u64,
    pub mult_adds: u64,
    /// The recorded seconds; with several rows, their mean.
    pub seconds: f64,
    pub dataset: String,
    pub protocol: String,
    /// How many rows were merged into this entry.
    pub runs: usize,
    /// The 1-based file line of its first row (0 for a table built in memory).
    pub line: u64,
}

/// A benchmark table: one [`TableEntry`] per architecture, in order of first appearance.
///
/// Several rows of one architecture (repeated training runs under one protocol) are merged into
/// one entry whose accuracy and seconds are the means of the rows; they must agree on dataset,
/// protocol, params and mult-adds, or loading fails naming both lines — a table is one protocol's
/// record, and averaging runs of different protocols would answer with neither.
#[derive(Debug, Clone, Default)]
pub struct BenchTable {
    entries: Vec<TableEntry>,
    index: HashMap<Architecture, usize>,
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    /// SHA-256 (hex) of the bytes it was parsed from; empty for a table built in memory. Taken
    /// from the same read as the rows, so a file appended to meanwhile cannot pair one version's
    /// rows with another's checksum.
    pub sha256: String,
}

/// The table's bytes, read under a shared lock on `FILE.lock` when that file exists:
/// `bench/build_table.py` appends each row under an exclusive lock on it (flock(2), as std's
/// `File::lock` takes it), so a search started while its table grows never reads half a row. No
/// lock file means no build ever wrote into this table, and nothing to wait for.
fn read_whole_rows(path: &Path) -> Result<Vec<u8>> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    // Dropping the handle releases the lock, after the read.
    let _held = match std::fs::File::open(&lock_path) {
        Ok(lock) => {
            lock.lock_shared().map_err(|source| TableError::Io {
                path: lock_path.clone(),
                source,
            })?;
            Some(lock)
        }
        Err(_) => None,
    };
    std::fs::read(path).map_err(|source| TableError::Io {
        path: path.to_owned(),
        source,
    })
}

impl BenchTable {
    /// Reads a table. Every malformed row is reported with the file and its line; see
    /// [`BenchTable`] for how repeated architectures merge.
    pub fn load(path: impl AsRef<Path>) -> Result<BenchTable> {
        let path = path.as_ref();
        let bytes = read_whole_rows(path)?;
        let row_error = |line: u64, message: String| TableError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let headers = reader
            .headers()
            .map_err(|e| row_error(1, format!("cannot read the header: {e}")))?
            .clone();
        let mut table = BenchTable {
            path: Some(path.to_owned()),
            sha256: sha256_hex(&bytes),
            ..BenchTable::default()
        };
        // Sums of accuracy and seconds per entry, divided once at the end.
        let mut sums: Vec<(f64, f64)> = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    return Err(row_error(line, e.to_string()));
                }
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != headers.len() {
                let hint = if record.len() > headers.len() {
                    " (an architecture's text has commas: quote it, e.g. \"conv(32,3) pool(5,3)\")"
                } else {
                    ""
                };
                return Err(row_error(
                    line,
                    format!("{} fields where the header has {}{hint}", record.len(), headers.len()),
                ));
            }
            let row: BenchRow = record.deserialize(Some(&headers)).map_err(|e| {
                row_error(
                    line,
                    format!("{e} (columns: architecture,accuracy,params,mult_adds,seconds,dataset,protocol)"),
                )
            })?;
            let entry = TableEntry::from_row(row, line).map_err(|m| row_error(line, m))?;
            match table.index.get(&entry.architecture) {
                None => {
                    table.index.insert(entry.architecture.clone(), table.entries.len());
                    sums.push((entry.accuracy, entry.seconds));
                    table.entries.push(entry);
                }
                Some(&i) => {
                    let first = &mut table.entries[i];
                    let differs = [
                        ("dataset", first.dataset != entry.dataset),
                        ("protocol", first.protocol != entry.protocol),
                        ("params", first.params != entry.params),
                        ("mult_adds", first.mult_adds != entry.mult_adds),
                    ];
                    if let Some((column, _)) = differs.iter().find(|(_, d)| *d) {
                        return Err(row_error(
                            line,
                            format!(
                                "`{}` repeats line {} with a different {column}: one table holds one protocol's runs",
                                entry.architecture, first.line
                            ),
                        ));
                    }
                    first.runs += 1;
                    sums[i].0 += entry.accuracy;
                    sums[i].1 += entry.seconds;
                }
            }
        }
        if table.entries.is_empty() {
            return Err(TableError::Empty { path: path.to_owned() });
        }
        for (entry, (accuracy, seconds)) in table.entries.iter_mut().zip(sums) {
            // A single row keeps its recorded values untouched.
            if entry.runs > 1 {
                entry.accuracy = accuracy / entry.runs as f64;
                entry.seconds = seconds / entry.runs as f64;
            }
        }
        Ok(table)
    }

    /// Writes rows as a table CSV (with its header), architectures in canonical form. Floats are
    /// written in Rust's shortest round-trip form, so [`BenchTable::load`] reads back the same bits.
    pub fn write(path: impl AsRef<Path>, rows: &[BenchRow]) -> Result<()> {
        let path = path.as_ref();
        let io = |source: std::io::Error| TableError::Io {
            path: path.to_owned(),
            source,
        };
        let mut writer = csv::Writer::from_path(path).map_err(|e| io(e.into()))?;
        for (i, row) in rows.iter().enumerate() {
            let canonical = row
                .architecture
                .parse::<Architecture>()
                .map_err(|m| TableError::Row {
                    path: path.to_owned(),
                    line: i as u64 + 2,
                    message: m,
                })?
                .to_string();
            writer
                .serialize(BenchRow {
                    architecture: canonical,
                    ..row.clone()
                })
                .map_err(|e| io(e.into()))?;
        }
        writer.flush().map_err(io)
    }

    /// The entry of an architecture, if the table has one.
    pub fn get(&self, arch: &Architecture) -> Option<&TableEntry> {
        self.index.get(arch).map(|&i| &self.entries[i])
    }

    /// Every entry, in order of first appearance.
    pub fn entries(&self) -> &[TableEntry] {
        &self.entries
    }

    /// Number of distinct architectures.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (architecture, accuracy) of every entry: the samples a [`crate::Surrogate`] fits.
    pub fn samples(&self) -> Vec<(Architecture, f64)> {
        self.entries
            .iter()
            .map(|e| (e.architecture.clone(), e.accuracy))
            .collect()
    }
}

impl TableEntry {
    fn from_row(row: BenchRow, line: u64) -> Result<TableEntry, String> {
        let architecture: Architecture = row.architecture.parse()?;
        if !(row.accuracy.is_finite() && (0.0..=1.0).contains(&row.accuracy)) {
            return Err(format!("accuracy {} is not in [0, 1]", row.accuracy));
        }
        if !(row.seconds.is_finite() && row.seconds >= 0.0) {
            return Err(format!("seconds {} is not a finite non-negative number", row.seconds));
        }
        Ok(TableEntry {
            architecture,
            accuracy: row.accuracy,
            params: row.params,
            mult_adds: row.mult_adds,
            seconds: row.seconds,
            dataset: row.dataset,
            protocol: row.protocol,
            runs: 1,
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    const HEADER: &str = "architecture,accuracy,params,mult_adds,seconds,dataset,protocol\n";

    #[test]
    fn lookups_are_canonical() {
        let f = file(&format!(
            "{HEADER}\" CONV( 32 , 3 )pool(5,3)  fc(64) \",0.5,100,200,3.5,cifar5,p\n"
        ));
        let table = BenchTable::load(f.path()).unwrap();
        let arch: Architecture = "conv(32,3) pool(5,3) fc(64)".parse().unwrap();
        assert_eq!(table.get(&arch).unwrap().accuracy, 0.5);
        assert_eq!(
            table.entries()[0].architecture.to_string(),
            "conv(32,3) pool(5,3) fc(64)"
        );
    }

    #[test]
    fn repeated_rows_average() {
        let f = file(&format!(
            "{HEADER}\"conv(10,3)\",0.5,1,2,4,cifar5,p\n\"conv(10,3)\",0.7,1,2,6,cifar5,p\n\"fc(64)\",0.3,1,2,1,cifar5,p\n"
        ));
        let table = BenchTable::load(f.path()).unwrap();
        assert_eq!(table.len(), 2);
        let e = table.get(&"conv(10,3)".parse().unwrap()).unwrap();
        assert_eq!(e.runs, 2);
        assert!((e.accuracy - 0.6).abs() < 1e-12);
        assert_eq!(e.seconds, 5.0);
    }

    #[test]
    fn a_row_being_appended_is_waited_for() {
        // bench/build_table.py holds `FILE.lock` exclusively while it appends a row; a load
        // meanwhile must wait for the whole row, not fail on (or drop) half of it.
        let f = file(&format!("{HEADER}\"conv(10,3)\",0.5,1,2,4,cifar5,p\n"));
        let lock_path = format!("{}.lock", f.path().display());
        let lock = std::fs::File::create(&lock_path).unwrap();
        lock.lock().unwrap();
        let mut table_file = std::fs::OpenOptions::new().append(true).open(f.path()).unwrap();
        table_file.write_all(b"\"conv(20,5)\",0.7").unwrap();
        let path = f.path().to_owned();
        let loading = std::thread::spawn(move || BenchTable::load(path));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !loading.is_finished(),
            "the load read the table while a row was being written"
        );
        table_file.write_all(b"5,1,2,4,cifar5,p\n").unwrap();
        lock.unlock().unwrap();
        let table = loading.join().unwrap().unwrap();
        assert_eq!(table.len(), 2);
        let appended = table.get(&"conv(20,5)".parse().unwrap()).unwrap();
        assert_eq!(appended.accuracy, 0.75);
        std::fs::remove_file(&lock_path).unwrap();
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let f = file(&format!(
            "{HEADER}\"conv(10,3)\",0.5,1,2,4,cifar5,p\n\"conv(10)\",0.5,1,2,4,cifar5,p\n"
        ));
        let message = BenchTable::load(f.path()).unwrap_err().to_string();
        assert!(message.contains(&f.path().display().to_string()), "{message}");
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("conv(FILTERS,KERNEL)"), "{message}");

        let f = file(&format!("{HEADER}\"conv(10,3)\",high,1,2,4,cifar5,p\n"));
        assert!(BenchTable::load(f.path()).unwrap_err().to_string().contains("line 2"));
        let f = file(&format!("{HEADER}\"conv(10,3)\",1.5,1,2,4,cifar5,p\n"));
        assert!(BenchTable::load(f.path()).unwrap_err().to_string().contains("[0, 1]"));
        let f = file(&format!("{HEADER}conv(10,3),0.5,1,2,4,cifar5,p\n"));
        let message = BenchTable::load(f.path()).unwrap_err().to_string();
        assert!(message.contains("line 2") && message.contains("quote it"), "{message}");
        let f = file(&format!("{HEADER}\"conv(10,3)\",0.5,1,2,4,cifar5\n"));
        assert!(BenchTable::load(f.path()).unwrap_err().to_string().contains("line 2"));
        let f = file(&format!(
            "{HEADER}\"conv(10,3)\",0.5,1,2,4,cifar5,p\n\"conv(10,3)\",0.5,1,2,4,cifar5,q\n"
        ));
        let message = BenchTable::load(f.path()).unwrap_err().to_string();
        assert!(
            message.contains("line 3") && message.contains("line 2") && message.contains("protocol"),
            "{message}"
        );
        let f = file(HEADER);
        assert!(BenchTable::load(f.path()).unwrap_err().to_string().contains("no rows"));
        assert!(BenchTable::load("/nonexistent/table.csv")
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/table.csv"));
    }

    #[test]
    fn write_then_load_round_trips_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.csv");
        let accuracy = 0.1 + 0.2; // 0.30000000000000004: needs every digit
        let rows = vec![BenchRow {
            architecture: "conv(32, 3)  pool(5,3)".into(),
            accuracy,
            params: 123,
            mult_adds: 456,
            seconds: 1.0 / 3.0,
            dataset: "cifar5".into(),
            protocol: "cifar5 2500x1 relu lr0.001 seed0".into(),
        }];
        BenchTable::write(&path, &rows).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with(HEADER));
        let table = BenchTable::load(&path).unwrap();
        let e = &table.entries()[0];
        assert_eq!(e.architecture.to_string(), "conv(32,3) pool(5,3)");
        assert_eq!(e.accuracy.to_bits(), accuracy.to_bits());
        assert_eq!(e.seconds.to_bits(), (1.0f64 / 3.0).to_bits());
        assert_eq!(e.protocol, "cifar5 2500x1 relu lr0.001 seed0");
        // The checksum is of the file's bytes (`sha256sum`'s), and changes with them.
        let bytes = std::fs::read(&path).unwrap();
        let expected = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(table.sha256, expected);
        std::fs::write(&path, [bytes.as_slice(), b"\n"].concat()).unwrap();
        assert_ne!(BenchTable::load(&path).unwrap().sha256, expected);
    }
}
