//! Times a folder dataset's first decode (every image decoded in parallel, then the cache
//! written) and a cached load, for comparison with torchvision's ImageFolder.
//!
//! ```sh
//! cargo run --release -p nas-datasets --example decode_bench -- FOLDER CACHE_DIR
//! ```
//!
//! The cache goes to `CACHE_DIR/decode-bench/` (its `.nasd` files are removed first, so the
//! first load really decodes). `RAYON_NUM_THREADS` sets the decode threads; with
//! `NAS_DATASETS_TIMINGS=1` each load prints its phases' seconds on stderr (scan, cache look,
//! headers, decode with the streamed cache write, fingerprint + the end of the cache write).

use std::path::PathBuf;
use std::time::Instant;

use nas_datasets::{human_bytes, load_path, FolderOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [folder, cache] = &args[..] else {
        eprintln!("usage: decode_bench FOLDER CACHE_DIR");
        std::process::exit(2);
    };
    let folder = PathBuf::from(folder);
    let cache = PathBuf::from(cache).join("decode-bench");
    if let Ok(entries) = std::fs::read_dir(&cache) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "nasd") {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    let options = FolderOptions::default();

    let t = Instant::now();
    let first = load_path(&folder, &options, Some(&cache))?;
    let first_s = t.elapsed().as_secs_f64();
    assert!(!first.report.from_cache);

    let t = Instant::now();
    let cached = load_path(&folder, &options, Some(&cache))?;
    let cached_s = t.elapsed().as_secs_f64();
    assert!(cached.report.from_cache);
    assert_eq!(cached.dataset.train, first.dataset.train);

    // A cache hit without the data: the folder scan (a stat per file) and the header.
    let t = Instant::now();
    let header_only = nas_datasets::inspect(&folder, &options, Some(&cache))?;
    let check_s = t.elapsed().as_secs_f64();
    assert!(header_only.from_cache);

    let t = Instant::now();
    let fingerprint = cached.dataset.fingerprint();
    let fingerprint_s = t.elapsed().as_secs_f64();

    let d = &cached.dataset;
    let images = d.train.len() + d.test.len() + cached.val.as_ref().map_or(0, |v| v.len());
    let bytes = d.train.images.len() + d.test.images.len() + cached.val.as_ref().map_or(0, |v| v.images.len());
    let cache_file = cached.report.cache_file.clone().expect("a cache file");
    let cache_bytes = std::fs::metadata(&cache_file)?.len();
    println!("{}", first.report);
    println!("threads          {}", rayon::current_num_threads());
    println!(
        "images           {images} ({} train, {} test)",
        d.train.len(),
        d.test.len()
    );
    println!("bytes            {bytes} ({})", human_bytes(bytes as u64));
    println!(
        "first decode     {first_s:.2} s ({:.0} images/s)",
        images as f64 / first_s
    );
    println!(
        "cached load      {cached_s:.3} s ({:.3} s per 100 MB; cache file {})",
        cached_s / (cache_bytes as f64 / 100e6),
        human_bytes(cache_bytes)
    );
    println!("of which scan    {check_s:.3} s (listing {images} files, cache header; `inspect` on a cache hit)");
    println!("fingerprint      {fingerprint_s:.2} s ({fingerprint})");
    Ok(())
}
