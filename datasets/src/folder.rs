//! Folder datasets in torchvision's ImageFolder layout, decoded once into a cache.
//!
//! Two layouts: `PATH/train/<class>/…` + `PATH/test/<class>/…` (an optional `PATH/val/<class>/…`
//! is loaded and reported), or `PATH/<class>/…`, split into train and test per class by a seeded
//! draw (stratified). Class names are the folder names, sorted; a class's label is its index.
//! Like ImageFolder, files whose extension is not an image's (notes.txt, .DS_Store) are ignored,
//! and the report says which.
//!
//! A load goes: scan the folders (names, sizes, mtimes) → look for the cache file keyed by that
//! listing and the options → on a miss, read every image file (in parallel) and its header to
//! choose the shape and check the memory, then decode every image from those bytes (in parallel)
//! straight into its place in the split's NCHW buffer while another thread writes the decoded
//! steps to the cache's temp file, then the labels, header and fingerprint, and rename it.
//!
//! The parts: `options` (the `[dataset]` options and image extensions), `scan` (the folder
//! layout, opening no image), `decode` (image headers and pixels, in parallel) and `checks`
//! (problems found from the class counts). This module runs them in order and builds the report.

mod checks;
mod decode;
mod options;
mod scan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::cache;
use crate::decoded::{Decoded, Mode, Outcome};
use crate::report::{human_bytes, ClassCount, ColourCount, DatasetReport, SizeCount};
use crate::{DataError, Split};

pub(crate) use checks::count_problems;
pub(crate) use decode::write_planar;
use decode::{decode_splits, probe, read_image_file, Colour, DecodedSplits, Kept, Probe};
pub(crate) use options::RESIZE_FILTER_NAME;
pub use options::{FolderOptions, IMAGE_EXTENSIONS};
use scan::{scan, Entry, Part};

/// How many bad or ignored files a report lists by name.
const EXAMPLES: usize = 10;

/// The most image-file bytes kept in memory between the header read and the decode.
const KEEP_BYTES_MAX: u64 = 1 << 30;

/// Each phase's seconds on stderr when `NAS_DATASETS_TIMINGS` is set (for profiling the first
/// decode; `decode_bench` documents it).
struct Timings(Option<Instant>);

impl Timings {
    fn new() -> Timings {
        Timings(std::env::var_os("NAS_DATASETS_TIMINGS").map(|_| Instant::now()))
    }

    fn phase(&mut self, name: &str) {
        if let Some(t) = &mut self.0 {
            eprintln!("phase {name:<12} {:.3} s", t.elapsed().as_secs_f64());
            *t = Instant::now();
        }
    }
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
    let mut timings = Timings::new();
    let scan = scan(root, options)?;
    let key = scan.key(options);
    timings.phase("scan");
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
        timings.phase("cache look");
    }

    // Every image's header, in parallel. Each file is read whole, and its bytes kept for the
    // decode when all the files fit in KEEP_BYTES_MAX (and a quarter of the memory), so that
    // each is read once: on the CIFAR-10 JPEGs (2 cores, load ~3) this and the header read from
    // the frame marker took the headers phase from ~1.3 s to ~0.5 s, and the decode's two
    // opens per file away (BENCHMARKS.md, "Own images").
    let total_bytes: u64 = scan.entries.iter().map(|e| e.size).sum();
    let keep = total_bytes <= KEEP_BYTES_MAX && memory_available.is_none_or(|a| total_bytes <= a / 4);
    let probes: Vec<Result<(Probe, Kept), String>> = scan
        .entries
        .par_iter()
        .map(|e| {
            let path = scan.path(e);
            let bytes = read_image_file(&path)?;
            let p = probe(&path, &bytes)?;
            Ok((p, keep.then_some(bytes)))
        })
        .collect();
    timings.phase("headers");
    let mut bad: Vec<(String, String)> = Vec::new();
    let mut good: Vec<(&Entry, Probe)> = Vec::new();
    let mut good_bytes: Vec<Kept> = Vec::new();
    for (e, p) in scan.entries.iter().zip(probes) {
        match p {
            Ok((p, bytes)) => {
                good.push((e, p));
                good_bytes.push(bytes);
            }
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
    let readable: Vec<(&Entry, Kept)> = good.iter().map(|(e, _)| *e).zip(good_bytes).collect();
    // The cache file is written while the images are decoded when it will be written at all
    // (nothing stops the load so far); see `decode_splits`.
    let stream = cache_dir
        .filter(|_| report.problems.is_empty())
        .and_then(|dir| cache::Stream::start(dir, &key, &report, &scan.classes).ok());
    let DecodedSplits {
        splits: out_splits,
        resized,
        bad: decode_bad,
        streamed,
    } = decode_splits(root, readable, channels, (height, width), stream.as_ref());
    let stream = match stream {
        Some(stream) if streamed => Some(stream),
        Some(stream) => {
            stream.abandon();
            None
        }
        None => None,
    };
    timings.phase("decode");
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
    let fingerprint = || {
        crate::fingerprint_of(
            &crate::DataRef::Path(root.to_path_buf()),
            &decoded.classes,
            decoded.classes.len(),
            (decoded.channels, decoded.height, decoded.width),
            &decoded.train,
            &decoded.test,
        )
    };
    if let (Some(dir), true) = (cache_dir, report.problems.is_empty()) {
        let (fingerprint, written) = match stream {
            Some(stream) => stream.finish(&key, root, &options.key_text(), &report, &decoded, fingerprint),
            None => cache::write(dir, &key, root, &options.key_text(), &report, &decoded, fingerprint),
        };
        report.fingerprint = Some(fingerprint);
        match written {
            Ok(file) => report.cache_file = Some(file),
            Err(e) => report.notes.push(format!(
                "could not write the decode cache in {} ({e}); the images will be decoded again next time",
                dir.display()
            )),
        }
        timings.phase("fingerprint + cache write");
    } else {
        if let Some(stream) = stream {
            stream.abandon();
        }
        report.fingerprint = Some(fingerprint());
        timings.phase("fingerprint");
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        data: Some(decoded),
        report,
    })
}
