//! Scanning a folder dataset's layout: which files are images of which class and split (names,
//! sizes and mtimes only; no image is opened), the seeded per-class train/test draw, and the cache
//! key made from the listing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::cache;
use crate::folder::options::{extension, FolderOptions, IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS};
use crate::report::Layout;
use crate::DataError;

/// Which split a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Part {
    Train,
    Test,
    Val,
}

impl Part {
    fn dir(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Test => "test",
            Part::Val => "val",
        }
    }
}

/// One candidate image file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Relative to the dataset's root, with '/' separators.
    pub rel: String,
    pub size: u64,
    pub mtime_ns: u128,
    pub class: usize,
    pub part: Part,
}

/// What scanning the folders found (no image is opened).
#[derive(Debug)]
pub(crate) struct Scan {
    pub root: PathBuf,
    pub layout: Layout,
    pub classes: Vec<String>,
    /// Sorted by (part, class, rel); class-folder layouts are already split.
    pub entries: Vec<Entry>,
    pub ignored: Vec<String>,
    pub notes: Vec<String>,
    pub problems: Vec<String>,
}

impl Scan {
    pub fn path(&self, e: &Entry) -> PathBuf {
        self.root.join(&e.rel)
    }

    /// The cache key: the sorted file list with sizes and mtimes, the layout and the options.
    pub fn key(&self, options: &FolderOptions) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(format!("nas-datasets folder cache {}\n", cache::VERSION));
        hash.update(format!("{:?}|{}\n", self.layout, options.key_text()));
        let mut files: Vec<&Entry> = self.entries.iter().collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        for e in files {
            hash.update(format!("{}\0{}\0{}\n", e.rel, e.size, e.mtime_ns));
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn is_candidate(name: &str) -> bool {
    !name.starts_with('.')
        && extension(name).is_some_and(|e| {
            IMAGE_EXTENSIONS.contains(&e.as_str()) || UNSUPPORTED_IMAGE_EXTENSIONS.contains(&e.as_str())
        })
}

/// A directory's entries, sorted by name: sub-directories, and files with their metadata when
/// it could be read (a dangling symlink has none). Symlinks are followed; everything else costs
/// one `stat` per file (`DirEntry::metadata`) and none per directory.
struct Listing {
    dirs: Vec<String>,
    files: Vec<(String, Option<std::fs::Metadata>)>,
}

fn list_dir(dir: &Path) -> Result<Listing, DataError> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let file_type = entry.file_type().map_err(|e| DataError::io(entry.path(), e))?;
        if file_type.is_dir() {
            dirs.push(name);
            continue;
        }
        let meta = if file_type.is_symlink() {
            std::fs::metadata(entry.path()).ok()
        } else if is_candidate(&name) {
            Some(entry.metadata().map_err(|e| DataError::io(entry.path(), e))?)
        } else {
            None
        };
        match meta {
            Some(m) if m.is_dir() => dirs.push(name),
            meta => files.push((name, meta)),
        }
    }
    dirs.sort();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Listing { dirs, files })
}

/// A file found by [`walk`]: (path relative to the root, size, mtime in ns).
type Found = (String, u64, u128);

/// Every candidate image under `root/rel` (recursively, as ImageFolder does) as (relative
/// path, size, mtime); other files go to `ignored`.
fn walk(
    root: &Path,
    rel: &str,
    depth: usize,
    out: &mut Vec<Found>,
    ignored: &mut Vec<String>,
) -> Result<(), DataError> {
    let listing = list_dir(&root.join(rel))?;
    for (name, meta) in listing.files {
        let rel_file = format!("{rel}/{name}");
        match meta {
            Some(meta) if is_candidate(&name) => {
                let mtime_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                out.push((rel_file, meta.len(), mtime_ns));
            }
            _ => ignored.push(rel_file),
        }
    }
    for name in listing.dirs {
        let rel_dir = format!("{rel}/{name}");
        if name.starts_with('.') || depth >= 32 {
            ignored.push(format!("{rel_dir}/"));
            continue;
        }
        walk(root, &rel_dir, depth + 1, out, ignored)?;
    }
    Ok(())
}

/// One class folder's candidate images and ignored files.
type Walked = (Vec<Found>, Vec<String>);

/// [`walk`] over several class folders in parallel: for each, its files and ignored files.
fn walk_all(root: &Path, rels: &[String]) -> Result<Vec<Walked>, DataError> {
    rels.par_iter()
        .map(|rel| {
            let (mut files, mut ignored) = (Vec::new(), Vec::new());
            walk(root, rel, 0, &mut files, &mut ignored)?;
            Ok((files, ignored))
        })
        .collect()
}

/// Lists the dataset's files and tells its layout; opens no image.
pub(crate) fn scan(root: &Path, options: &FolderOptions) -> Result<Scan, DataError> {
    let invalid = |problem: String| DataError::Invalid {
        path: root.to_path_buf(),
        problems: vec![problem],
    };
    let meta = std::fs::metadata(root).map_err(|e| {
        invalid(format!(
            "{} cannot be read ({e}): give a folder of class folders (PATH/<class>/<image>), one with train/ and test/, or a .npz file",
            root.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(invalid(format!(
            "{} is a file, not a folder: give a folder of class folders (PATH/<class>/<image>), one with train/<class>/ and test/<class>/, or a .npz file",
            root.display()
        )));
    }
    let Listing { dirs, files } = list_dir(root)?;
    let mut ignored: Vec<String> = files.into_iter().map(|(f, _)| f).collect();
    // (part, class folder) to walk
    let mut wanted: Vec<(Part, String)> = Vec::new();
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let has = |d: &str| dirs.iter().any(|x| x == d);

    // (part, class name) → files
    let mut found: BTreeMap<(Part, String), Vec<Found>> = BTreeMap::new();
    let layout;
    if has("train") {
        layout = Layout::SplitFolders;
        let mut parts = vec![Part::Train];
        if has("test") {
            parts.push(Part::Test);
            if has("val") {
                parts.push(Part::Val);
                notes.push("val/ is loaded and reported; the search trains on train/ and evaluates on test/".into());
            }
        } else if has("val") {
            return Err(invalid(format!(
                "{} has train/ and val/ but no test/: rename val/ to test/ (it is the split that children are evaluated on), or put the class folders directly in {} to have them split by test_fraction",
                root.display(),
                root.display()
            )));
        } else {
            return Err(invalid(format!(
                "{} has train/ but no test/: add test/<class>/ folders with test images, or put the class folders directly in {} to have them split by test_fraction",
                root.display(),
                root.display()
            )));
        }
        for d in &dirs {
            if !parts.iter().any(|p| p.dir() == d) {
                ignored.push(format!("{d}/"));
            }
        }
        for part in parts {
            let listing = list_dir(&root.join(part.dir()))?;
            ignored.extend(listing.files.iter().map(|(f, _)| format!("{}/{f}", part.dir())));
            for class in listing.dirs {
                if class.starts_with('.') {
                    ignored.push(format!("{}/{class}/", part.dir()));
                } else {
                    wanted.push((part, class));
                }
            }
        }
    } else {
        layout = Layout::ClassFolders;
        for class in &dirs {
            if class.starts_with('.') {
                ignored.push(format!("{class}/"));
            } else {
                wanted.push((Part::Train, class.clone()));
            }
        }
        if wanted.is_empty() {
            return Err(invalid(format!(
                "{} has no class folders: put each class's images in a folder named after it (PATH/<class>/<image>), or use PATH/train/<class>/ and PATH/test/<class>/",
                root.display()
            )));
        }
    }

    let rels: Vec<String> = wanted
        .iter()
        .map(|(part, class)| match layout {
            Layout::SplitFolders => format!("{}/{class}", part.dir()),
            _ => class.clone(),
        })
        .collect();
    for ((part, class), (files, more_ignored)) in wanted.into_iter().zip(walk_all(root, &rels)?) {
        ignored.extend(more_ignored);
        found.insert((part, class), files);
    }

    // Classes: the union over train and test, sorted; val may only use those.
    let classes: Vec<String> = found
        .keys()
        .filter(|(p, _)| *p != Part::Val)
        .map(|(_, c)| c.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let mut entries = Vec::new();
    for ((part, class), files) in &found {
        let Some(&label) = index.get(class.as_str()) else {
            problems.push(format!(
                "{}: class '{class}' is in val/ but in neither train/ nor test/: add it there or remove the folder",
                root.join("val").join(class).display()
            ));
            continue;
        };
        entries.extend(files.iter().map(|(rel, size, mtime_ns)| Entry {
            rel: rel.clone(),
            size: *size,
            mtime_ns: *mtime_ns,
            class: label,
            part: *part,
        }));
    }
    if layout == Layout::ClassFolders && options.test_fraction > 0.0 && options.test_fraction < 1.0 {
        split_by_class(&mut entries, &classes, options);
        notes.push(format!(
            "train/test drawn per class: test_fraction {} with split_seed {}",
            options.test_fraction, options.split_seed
        ));
    }
    entries.sort_by(|a, b| (a.part, a.class, &a.rel).cmp(&(b.part, b.class, &b.rel)));
    Ok(Scan {
        root: root.to_path_buf(),
        layout,
        classes,
        entries,
        ignored,
        notes,
        problems,
    })
}

/// Draws round(n × test_fraction) of each class's files into the test split (at least one, and
/// at least one left for training when the class has two or more), by a shuffle seeded with the
/// split seed and the class name, so a class's split does not depend on the other classes.
fn split_by_class(entries: &mut [Entry], classes: &[String], options: &FolderOptions) {
    use sha2::{Digest, Sha256};
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, e) in entries.iter().enumerate() {
        by_class[e.class].push(i);
    }
    for (class, mut members) in by_class.into_iter().enumerate() {
        let n = members.len();
        if n < 2 {
            continue; // one image stays in train; validation reports the class.
        }
        members.sort_by(|&a, &b| entries[a].rel.cmp(&entries[b].rel));
        let digest = Sha256::digest(format!("{}|{}", options.split_seed, classes[class]));
        let seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        members.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let n_test = ((n as f64 * options.test_fraction).round() as usize).clamp(1, n - 1);
        for &i in &members[..n_test] {
            entries[i].part = Part::Test;
        }
    }
}
