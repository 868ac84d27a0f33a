//! Folder datasets in torchvision's ImageFolder layout, decoded once into a cache.
//!
//! Two layouts: `PATH/train/<class>/…` + `PATH/test/<class>/…` (an optional `PATH/val/<class>/…`
//! is loaded and reported), or `PATH/<class>/…`, split into train and test per class by a seeded
//! draw (stratified). Class names are the folder names, sorted; a class's label is its index.
//! Like ImageFolder, files whose extension is not an image's (notes.txt, .DS_Store) are ignored,
//! and the report says which.
//!
//! A load goes: scan the folders (names, sizes, mtimes) → look for the cache file keyed by that
//! listing and the options → on a miss, read every image's header (in parallel) to choose the
//! shape and check the memory, then decode every image (in parallel) straight into its place in
//! the split's NCHW buffer, then write the cache (temp file + rename).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::cache;
use crate::report::{human_bytes, ClassCount, ColourCount, DatasetReport, Layout, SizeCount};
use crate::{DataError, Split};

/// Extensions read as images (compared lower-case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// Image extensions this crate cannot decode: such files are bad images (an error unless
/// `skip_bad_images`), not silently ignored ones, since the user meant them as data.
const UNSUPPORTED_IMAGE_EXTENSIONS: [&str; 14] = [
    "tif", "tiff", "ppm", "pgm", "pbm", "pnm", "heic", "heif", "avif", "ico", "jxl", "svg", "jp2", "dng",
];

/// The filter used to resize images that are not the dataset's size.
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;
pub(crate) const RESIZE_FILTER_NAME: &str = "bilinear (image::imageops::FilterType::Triangle)";

/// How many bad or ignored files a report lists by name.
const EXAMPLES: usize = 10;

/// How a folder (or .npz) dataset is read. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// 1 (grey) or 3 (RGB). Default: 1 when every image is stored grey, else 3.
    pub channels: Option<u8>,
    /// (height, width) every image is resized to. Default: the most common size; images of
    /// other sizes are resized (bilinear) and counted in the report.
    pub image_size: Option<(u32, u32)>,
    /// Fraction of each class drawn into the test split when the folder has no train/ and test/
    /// (default 0.2; at least one image per class goes to each split).
    pub test_fraction: f64,
    /// Seed of that draw: the same seed and files give the same split.
    pub split_seed: u64,
    /// Skip unreadable image files (and report them) instead of failing.
    pub skip_bad_images: bool,
    /// Fewest images a class may have (train and test together; default 5).
    pub min_images_per_class: usize,
    /// Bytes the images may take; `None` reads MemAvailable (and the cgroup limit).
    pub memory_limit: Option<u64>,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            channels: None,
            image_size: None,
            test_fraction: 0.2,
            split_seed: 0,
            skip_bad_images: false,
            min_images_per_class: 5,
            memory_limit: None,
        }
    }
}

impl FolderOptions {
    /// The options that change the decoded bytes, as they enter the cache key.
    pub(crate) fn key_text(&self) -> String {
        format!(
            "channels={:?}|size={:?}|test_fraction={}|seed={}|skip_bad={}",
            self.channels,
            self.image_size,
            self.test_fraction.to_bits(),
            self.split_seed,
            self.skip_bad_images
        )
    }

    /// Problems with the options themselves.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = self.channels {
            if c != 1 && c != 3 {
                problems.push(format!("`[dataset] channels = {c}`: use 1 (grey) or 3 (RGB)"));
            }
        }
        if let Some((h, w)) = self.image_size {
            if h == 0 || w == 0 {
                problems.push(format!(
                    "`[dataset] image_size = [{h}, {w}]`: both sides must be at least 1"
                ));
            }
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            problems.push(format!(
                "`[dataset] test_fraction = {}`: use a fraction between 0 and 1 (e.g. 0.2)",
                self.test_fraction
            ));
        }
        problems
    }
}

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

fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
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

/// Problems found from the per-class counts alone (so they are checked again on a cache hit,
/// with the options of the day).
pub(crate) fn count_problems(
    root: &Path,
    layout: Layout,
    classes: &[ClassCount],
    options: &FolderOptions,
) -> Vec<String> {
    let mut problems = options.problems();
    let limit_hint = |n: usize| format!("or lower the limit with `[dataset] min_images_per_class = {n}`");
    let class_path = |part: Option<&str>, name: &str| match (layout, part) {
        (Layout::SplitFolders, Some(p)) => root.join(p).join(name).display().to_string(),
        (Layout::SplitFolders, None) => format!(
            "{} and {}",
            root.join("train").join(name).display(),
            root.join("test").join(name).display()
        ),
        (Layout::Npz, _) => format!("{} (label {name})", root.display()),
        _ => root.join(name).display().to_string(),
    };
    if classes.len() == 1 {
        problems.push(format!(
            "only one class ('{}') in {}: a classifier needs at least two classes{}",
            classes[0].name,
            root.display(),
            match layout {
                Layout::ClassFolders => " (each class is a folder: PATH/<class>/<image>)",
                Layout::SplitFolders => " (each class is a folder: PATH/train/<class>/<image>)",
                _ => "",
            }
        ));
    }
    if classes.len() > 256 {
        problems.push(format!(
            "{} has {} classes; at most 256 are supported (labels are bytes)",
            root.display(),
            classes.len()
        ));
    }
    for c in classes {
        let total = c.train + c.test;
        match layout {
            Layout::SplitFolders | Layout::Npz => {
                let other = if layout == Layout::Npz { "y_test" } else { "test/" };
                if c.train == 0 && c.test == 0 {
                    problems.push(format!(
                        "{} has no images: add images or remove the class folder",
                        class_path(None, &c.name)
                    ));
                    continue;
                }
                if c.train == 0 {
                    problems.push(format!(
                        "class '{}' has {} test images but none in {}: add training images there{}",
                        c.name,
                        c.test,
                        class_path(Some("train"), &c.name),
                        if layout == Layout::SplitFolders {
                            ", or remove the class from test/"
                        } else {
                            ""
                        }
                    ));
                } else if c.test == 0 {
                    problems.push(format!(
                        "class '{}' has {} training images but none in {}: add test images for it{}",
                        c.name,
                        c.train,
                        if layout == Layout::Npz {
                            other.to_string()
                        } else {
                            class_path(Some("test"), &c.name)
                        },
                        if layout == Layout::SplitFolders {
                            ", or remove the class from train/"
                        } else {
                            ""
                        }
                    ));
                }
                if c.train == 0 || c.test == 0 {
                    // An empty split is the problem to fix, whatever the total.
                    continue;
                }
            }
            _ => {
                if total == 0 {
                    problems.push(format!(
                        "{} has no images: add images or remove the folder",
                        class_path(None, &c.name)
                    ));
                    continue;
                }
                if total == 1 {
                    problems.push(format!(
                        "class '{}' has 1 image ({}), too few to split into train and test: add images",
                        c.name,
                        class_path(None, &c.name)
                    ));
                    continue;
                }
            }
        }
        if total < options.min_images_per_class {
            problems.push(format!(
                "class '{}' has only {total} image(s) ({}); each class needs at least {}: add images, {}",
                c.name,
                class_path(None, &c.name),
                options.min_images_per_class,
                limit_hint(total.max(2))
            ));
        }
    }
    problems
}

/// An image's stored colour type, simplified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Colour {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
}

impl Colour {
    pub fn name(self) -> &'static str {
        match self {
            Colour::Grey => "grey",
            Colour::GreyAlpha => "grey+alpha",
            Colour::Rgb => "rgb",
            Colour::Rgba => "rgba",
        }
    }

    fn of(c: image::ColorType) -> Colour {
        match (c.has_color(), c.has_alpha()) {
            (false, false) => Colour::Grey,
            (false, true) => Colour::GreyAlpha,
            (true, false) => Colour::Rgb,
            (true, true) => Colour::Rgba,
        }
    }

    fn is_grey(self) -> bool {
        matches!(self, Colour::Grey | Colour::GreyAlpha)
    }
}

/// An image's header: (height, width, colour).
type Probe = (u32, u32, Colour);

fn unsupported_reason(path: &Path) -> Option<String> {
    let ext = extension(&path.file_name()?.to_string_lossy())?;
    UNSUPPORTED_IMAGE_EXTENSIONS.contains(&ext.as_str()).then(|| {
        format!(
            "{} images are not supported (PNG, JPEG, BMP, GIF and WebP are): convert it to PNG",
            ext.to_ascii_uppercase()
        )
    })
}

/// An error as one line, for a report.
fn why(e: impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn open(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, String> {
    if let Some(reason) = unsupported_reason(path) {
        return Err(reason);
    }
    let reader = ImageReader::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let reader = reader.with_guessed_format().map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image in a known format (PNG, JPEG, BMP, GIF, WebP)".into());
    }
    Ok(reader)
}

/// Reads an image's header only.
fn probe(path: &Path) -> Result<Probe, String> {
    let decoder = open(path)?.into_decoder().map_err(why)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(format!("the image is empty ({w}x{h})"));
    }
    Ok((h, w, Colour::of(decoder.color_type())))
}

/// A JPEG must have its end-of-image marker (FFD9) after its first scan: the decoder fills a
/// cut-off scan with grey instead of failing (PIL fails). Usually the marker ends the file; when
/// it is not in the last 4 KiB (data appended after it, as in "motion photos"), the segments
/// are walked to the first scan and the marker looked for after it (in entropy-coded data an
/// FF byte is always followed by 00, so FFD9 there is the marker).
fn check_jpeg_complete(path: &Path) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let truncated = || "truncated JPEG (no end-of-image marker): the file was cut short; copy it again".to_string();
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map_err(why)?.len();
    let tail = len.min(4096);
    f.seek(SeekFrom::Start(len - tail)).map_err(why)?;
    let mut buf = Vec::with_capacity(tail as usize);
    f.read_to_end(&mut buf).map_err(why)?;
    if buf.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return Ok(()); // not a marker where one should be: leave it to the decoder
        }
        match bytes[i + 1] {
            0xFF => i += 1,
            0xDA => {
                return if bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]) {
                    Ok(())
                } else {
                    Err(truncated())
                };
            }
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => i += 2 + u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize,
        }
    }
    Err(truncated())
}

/// Decodes an image and writes it into `out` (channels × height × width), converted and resized
/// as needed; returns whether it was resized.
fn decode_into(path: &Path, channels: usize, (h, w): (u32, u32), out: &mut [u8]) -> Result<bool, String> {
    let reader = open(path)?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(path)?;
    }
    let img = reader.decode().map_err(why)?;
    Ok(write_planar(img, channels, (h, w), out))
}

/// Converts an image to `channels` (1 grey, 3 RGB; alpha is dropped), resizes it to (h, w) with
/// [`RESIZE_FILTER`] when it is another size, and writes it planar (CHW) into `out`.
pub(crate) fn write_planar(img: DynamicImage, channels: usize, (h, w): (u32, u32), out: &mut [u8]) -> bool {
    let resized = img.height() != h || img.width() != w;
    if channels == 1 {
        let mut grey = img.into_luma8();
        if resized {
            grey = image::imageops::resize(&grey, w, h, RESIZE_FILTER);
        }
        out.copy_from_slice(grey.as_raw());
    } else {
        let mut rgb = img.into_rgb8();
        if resized {
            rgb = image::imageops::resize(&rgb, w, h, RESIZE_FILTER);
        }
        let plane = (h * w) as usize;
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            r[i] = px[0];
            g[i] = px[1];
            b[i] = px[2];
        }
    }
    resized
}

/// Images of one split, in order, with the entries they came from.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub train: Split,
    pub test: Split,
    pub val: Option<Split>,
}

/// What to do with the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Load the images: fail on any problem.
    Load,
    /// Report everything; decode to find unreadable images when memory allows; never fail on
    /// the dataset's problems.
    Inspect,
    /// Shape and classes only: the cache header, else the image headers; nothing decoded.
    Describe,
}

pub(crate) struct Outcome {
    pub data: Option<Decoded>,
    pub report: DatasetReport,
}

fn counts(classes: &[String], entries: &[&Entry]) -> Vec<ClassCount> {
    let mut out: Vec<ClassCount> = classes
        .iter()
        .map(|name| ClassCount {
            name: name.clone(),
            train: 0,
            test: 0,
            val: 0,
        })
        .collect();
    for e in entries {
        let c = &mut out[e.class];
        match e.part {
            Part::Train => c.train += 1,
            Part::Test => c.test += 1,
            Part::Val => c.val += 1,
        }
    }
    out
}

fn most_common<K: Copy + Ord + std::hash::Hash>(items: impl Iterator<Item = K>) -> Vec<(K, usize)> {
    let mut map: HashMap<K, usize> = HashMap::new();
    for k in items {
        *map.entry(k).or_default() += 1;
    }
    let mut v: Vec<(K, usize)> = map.into_iter().collect();
    // Most common first; ties by the larger key, so the choice is deterministic.
    v.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    v
}

fn bad_examples(root: &Path, bad: &[(String, String)]) -> Vec<(String, String)> {
    bad.iter()
        .take(EXAMPLES)
        .map(|(rel, why)| (root.join(rel).display().to_string(), why.clone()))
        .collect()
}

/// Loads, inspects or describes a folder dataset.
pub(crate) fn run(
    root: &Path,
    options: &FolderOptions,
    cache_dir: Option<&Path>,
    mode: Mode,
) -> Result<Outcome, DataError> {
    let started = Instant::now();
    let scan = scan(root, options)?;
    let key = scan.key(options);
    let mut cache_note = None;
    let memory_available = options.memory_limit.or_else(crate::memory::available_memory);

    // A cache hit: the header has the report; the data follows it.
    if let Some(dir) = cache_dir {
        match cache::read(dir, &key, mode == Mode::Load) {
            Ok(Some((mut report, data))) => {
                report.problems = count_problems(root, report.layout, &report.classes, options);
                report.source = root.display().to_string();
                report.memory_available = memory_available;
                report.from_cache = true;
                report.seconds = started.elapsed().as_secs_f64();
                if mode == Mode::Load && !report.problems.is_empty() {
                    return Err(DataError::Invalid {
                        path: root.to_path_buf(),
                        problems: report.problems,
                    });
                }
                return Ok(Outcome { data, report });
            }
            Ok(None) => {}
            Err(reason) => cache_note = Some(reason),
        }
    }

    // Every image's header, in parallel.
    let probes: Vec<Result<Probe, String>> = scan.entries.par_iter().map(|e| probe(&scan.path(e))).collect();
    let mut bad: Vec<(String, String)> = Vec::new();
    let mut good: Vec<(&Entry, Probe)> = Vec::new();
    for (e, p) in scan.entries.iter().zip(probes) {
        match p {
            Ok(p) => good.push((e, p)),
            Err(why) => bad.push((e.rel.clone(), why)),
        }
    }
    let sizes = most_common(good.iter().map(|(_, (h, w, _))| (*h, *w)));
    let colours = most_common(good.iter().map(|(_, (_, _, c))| *c as u8));
    let (height, width) = options
        .image_size
        .or_else(|| sizes.first().map(|(s, _)| *s))
        .unwrap_or((1, 1));
    let channels = match options.channels {
        Some(c) => c as usize,
        None if good.iter().all(|(_, (_, _, c))| c.is_grey()) => 1,
        None => 3,
    };
    let image_len = channels * height as usize * width as usize;
    let to_resize = good.iter().filter(|(_, (h, w, _))| (*h, *w) != (height, width)).count();

    let mut report = DatasetReport {
        source: root.display().to_string(),
        layout: scan.layout,
        classes: counts(&scan.classes, &good.iter().map(|(e, _)| *e).collect::<Vec<_>>()),
        channels,
        height: height as usize,
        width: width as usize,
        sizes_found: sizes
            .iter()
            .map(|&((height, width), count)| SizeCount { height, width, count })
            .collect(),
        colours_found: colours
            .iter()
            .map(|&(c, count)| ColourCount {
                colour: [Colour::Grey, Colour::GreyAlpha, Colour::Rgb, Colour::Rgba][c as usize]
                    .name()
                    .to_string(),
                count,
            })
            .collect(),
        resized: to_resize,
        resize_filter: RESIZE_FILTER_NAME.to_string(),
        memory_needed: (good.len() * (image_len + 1)) as u64,
        memory_available,
        ignored_files: scan.ignored.len(),
        ignored_examples: scan.ignored.iter().take(EXAMPLES).cloned().collect(),
        bad_images: bad.len(),
        bad_examples: bad_examples(root, &bad),
        problems: scan.problems.clone(),
        notes: scan.notes.clone(),
        fingerprint: None,
        from_cache: false,
        cache_file: None,
        seconds: 0.0,
    };
    if let Some(reason) = cache_note {
        report.notes.push(reason);
    }
    if !scan.ignored.is_empty() {
        report.notes.push(format!(
            "{} file(s) without an image extension ignored ({}), as torchvision's ImageFolder does",
            scan.ignored.len(),
            IMAGE_EXTENSIONS.join(", ")
        ));
    }
    if to_resize > 0 {
        report.notes.push(format!(
            "{to_resize} image(s) are not {height}x{width} and are resized to it ({RESIZE_FILTER_NAME}){}",
            if options.image_size.is_none() {
                "; the size is the most common one: set `[dataset] image_size = [H, W]` to choose"
            } else {
                ""
            }
        ));
    }
    // What stops a load, by kind: the folders and their counts, unreadable images, memory.
    let mut structural = scan.problems.clone();
    structural.extend(count_problems(root, scan.layout, &report.classes, options));
    let bad_problem = |bad: &[(String, String)]| {
        (!bad.is_empty() && !options.skip_bad_images).then(|| {
            format!(
                "{} unreadable image(s), first {}: {}: fix or remove them, or set `[dataset] skip_bad_images = true`",
                bad.len(),
                root.join(&bad[0].0).display(),
                bad[0].1
            )
        })
    };
    let bad_images_error = |bad: &[(String, String)]| DataError::BadImages {
        path: root.to_path_buf(),
        count: bad.len(),
        first: bad_examples(root, bad)
            .into_iter()
            .map(|(p, why)| (PathBuf::from(p), why))
            .collect(),
    };
    let skipped_note = |n: usize| format!("{n} unreadable image(s) skipped");
    let fits = memory_available.is_none_or(|a| report.memory_needed <= a);
    let memory_problem = (!fits).then(|| {
        format!(
            "the images need {} as uint8 but only {} of memory is available: use fewer or smaller images (`[dataset] image_size = [H, W]`)",
            human_bytes(report.memory_needed),
            human_bytes(memory_available.unwrap_or(0))
        )
    });
    report.problems = structural
        .iter()
        .cloned()
        .chain(bad_problem(&bad))
        .chain(memory_problem)
        .collect();
    if !bad.is_empty() && options.skip_bad_images {
        report.notes.push(skipped_note(bad.len()));
    }

    match mode {
        Mode::Describe => {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(Outcome { data: None, report });
        }
        Mode::Load => {
            if !structural.is_empty() {
                return Err(DataError::Invalid {
                    path: root.to_path_buf(),
                    problems: structural,
                });
            }
            if bad_problem(&bad).is_some() {
                return Err(bad_images_error(&bad));
            }
            if !fits {
                return Err(DataError::OutOfMemory {
                    path: root.to_path_buf(),
                    needed: report.memory_needed,
                    available: memory_available.unwrap_or(0),
                    images: good.len(),
                    shape: format!("{channels}x{height}x{width}"),
                });
            }
        }
        Mode::Inspect if !fits => {
            report
                .notes
                .push("images not decoded: they would not fit in memory".into());
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(Outcome { data: None, report });
        }
        Mode::Inspect => {}
    }

    // Decode every readable image into its place, in parallel.
    let mut splits: Vec<(Part, Vec<&Entry>, Vec<u8>)> = Vec::new();
    for part in [Part::Train, Part::Test, Part::Val] {
        let entries: Vec<&Entry> = good.iter().filter(|(e, _)| e.part == part).map(|(e, _)| *e).collect();
        if part == Part::Val && entries.is_empty() {
            continue;
        }
        let images = vec![0u8; entries.len() * image_len];
        splits.push((part, entries, images));
    }
    let mut resized = 0;
    let mut decode_bad: Vec<(String, String)> = Vec::new();
    let mut out_splits: Vec<(Part, Split, Vec<&Entry>)> = Vec::new();
    for (part, entries, mut images) in splits {
        let results: Vec<Result<bool, String>> = images
            .par_chunks_mut(image_len.max(1))
            .zip(entries.par_iter())
            .map(|(out, e)| decode_into(&scan.path(e), channels, (height, width), out))
            .collect();
        let mut labels = Vec::with_capacity(entries.len());
        let mut kept = Vec::with_capacity(entries.len());
        let mut write = 0;
        for (i, (e, r)) in entries.iter().zip(results).enumerate() {
            match r {
                Ok(was_resized) => {
                    resized += was_resized as usize;
                    if write != i {
                        images.copy_within(i * image_len..(i + 1) * image_len, write * image_len);
                    }
                    write += 1;
                    labels.push(e.class as u8);
                    kept.push(*e);
                }
                Err(why) => decode_bad.push((e.rel.clone(), why)),
            }
        }
        images.truncate(write * image_len);
        out_splits.push((part, Split { images, labels }, kept));
    }
    report.resized = resized;
    if !decode_bad.is_empty() {
        // Headers that read but images that do not decode (a truncated JPEG).
        bad.extend(decode_bad);
        report.bad_images = bad.len();
        report.bad_examples = bad_examples(root, &bad);
        let kept: Vec<&Entry> = out_splits.iter().flat_map(|(_, _, k)| k.iter().copied()).collect();
        report.classes = counts(&scan.classes, &kept);
        report.memory_needed = (kept.len() * (image_len + 1)) as u64;
        // Skipping may have emptied a class or left it too small.
        structural = scan.problems.clone();
        structural.extend(count_problems(root, scan.layout, &report.classes, options));
        report.problems = structural.iter().cloned().chain(bad_problem(&bad)).collect();
        report.notes.retain(|n| !n.ends_with(" unreadable image(s) skipped"));
        if options.skip_bad_images {
            report.notes.push(skipped_note(bad.len()));
        }
        if mode == Mode::Load {
            if bad_problem(&bad).is_some() {
                return Err(bad_images_error(&bad));
            }
            if !structural.is_empty() {
                return Err(DataError::Invalid {
                    path: root.to_path_buf(),
                    problems: structural,
                });
            }
        }
    }

    let mut decoded = Decoded {
        classes: scan.classes.clone(),
        channels,
        height: height as usize,
        width: width as usize,
        train: Split::default(),
        test: Split::default(),
        val: None,
    };
    for (part, split, _) in out_splits {
        match part {
            Part::Train => decoded.train = split,
            Part::Test => decoded.test = split,
            Part::Val => decoded.val = Some(split),
        }
    }
    report.fingerprint = Some(crate::fingerprint_of(
        &crate::DataRef::Path(root.to_path_buf()),
        &decoded.classes,
        decoded.classes.len(),
        (decoded.channels, decoded.height, decoded.width),
        &decoded.train,
        &decoded.test,
    ));
    if let (Some(dir), true) = (cache_dir, report.problems.is_empty()) {
        match cache::write(dir, &key, root, &options.key_text(), &report, &decoded) {
            Ok(file) => report.cache_file = Some(file),
            Err(e) => report.notes.push(format!(
                "could not write the decode cache in {} ({e}); the images will be decoded again next time",
                dir.display()
            )),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        data: Some(decoded),
        report,
    })
}
