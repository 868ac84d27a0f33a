//! Folder (ImageFolder) datasets, built on the fly in temp folders: both layouts, grey and colour,
//! every format, resizing, bad input, the decode cache, inspect.

mod common;

use std::path::{Path, PathBuf};

use common::{class_folders, error, first_pixels, image, load, opts, save};
use image::{DynamicImage, RgbImage};
use nas_datasets::{inspect, load_path, DataError, DataRef, FolderOptions, Layout};

#[test]
fn class_folders_are_split_per_class_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("dog", 10), ("cat", 10), ("bird", 6)], false, (8, 8));
    let loaded = load(dir.path(), &opts(), None);
    let d = &loaded.dataset;
    assert_eq!(d.class_names, ["bird", "cat", "dog"]);
    assert_eq!((d.channels, d.height, d.width, d.num_classes), (1, 8, 8, 3));
    assert_eq!(d.name, DataRef::Path(dir.path().to_path_buf()));
    assert_eq!(loaded.report.layout, Layout::ClassFolders);
    // round(n × 0.2) of each class in test.
    let counts: Vec<(usize, usize)> = loaded.report.classes.iter().map(|c| (c.train, c.test)).collect();
    assert_eq!(counts, [(5, 1), (8, 2), (8, 2)]);
    assert_eq!((d.train.len(), d.test.len()), (21, 5));
    // Labels travel with their images: bird (folder index 2) is label 0, and so on.
    for split in [&d.train, &d.test] {
        let pixels = first_pixels(&split.images, d.image_len());
        for (&label, pixel) in split.labels.iter().zip(pixels) {
            let folder_index = ["dog", "cat", "bird"]
                .iter()
                .position(|n| *n == d.class_names[label as usize])
                .unwrap();
            assert_eq!(pixel, folder_index as u8 * 40 + 20);
        }
    }

    // The same options give the same bytes.
    assert_eq!(load(dir.path(), &opts(), None).dataset.fingerprint(), d.fingerprint());
}

#[test]
fn the_split_follows_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    // Each file its own grey level, so the test split shows which files it took.
    for (c, name) in ["a", "b"].iter().enumerate() {
        for i in 0..20u8 {
            save(
                &dir.path().join(name).join(format!("{i:02}.png")),
                &image(4, 4, c as u8 * 100 + i, false),
            );
        }
    }
    let test_of = |seed: u64| {
        let d = load(
            dir.path(),
            &FolderOptions {
                split_seed: seed,
                ..opts()
            },
            None,
        )
        .dataset;
        first_pixels(&d.test.images, d.image_len())
    };
    let one = test_of(1);
    assert_eq!(one.len(), 8); // 4 of each class
    assert_eq!(one.iter().filter(|&&p| p < 100).count(), 4);
    assert_eq!(one, test_of(1));
    assert_ne!(one, test_of(2));
    let quarter = load(
        dir.path(),
        &FolderOptions {
            test_fraction: 0.25,
            ..opts()
        },
        None,
    );
    assert_eq!(quarter.dataset.test.len(), 10);
}

#[test]
fn split_folders_with_val_grey_and_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let formats = ["png", "jpg", "bmp", "gif", "webp"];
    for part in ["train", "test", "val"] {
        for (c, class) in ["zero", "one"].iter().enumerate() {
            for (i, ext) in formats.iter().enumerate() {
                if part != "train" && i > 1 {
                    continue;
                }
                let value = if c == 0 { 30 } else { 200 };
                save(
                    &root.join(part).join(class).join(format!("{i}.{ext}")),
                    &image(6, 5, value, false),
                );
            }
        }
    }
    let loaded = load(root, &FolderOptions::default(), None);
    let d = &loaded.dataset;
    assert_eq!(loaded.report.layout, Layout::SplitFolders);
    assert_eq!(d.class_names, ["one", "zero"]);
    assert_eq!((d.train.len(), d.test.len()), (10, 4));
    assert_eq!(loaded.val.as_ref().map(|v| v.len()), Some(4));
    assert_eq!(loaded.report.val_total(), 4);
    // GIF decodes as RGBA, so not every image is grey: 3 channels, each plane the grey value.
    assert_eq!((d.channels, d.height, d.width), (3, 6, 5));
    let plane = 30;
    for (k, &label) in d.train.labels.iter().enumerate() {
        let img = &d.train.images[k * d.image_len()..(k + 1) * d.image_len()];
        let want = if d.class_names[label as usize] == "zero" {
            30i32
        } else {
            200
        };
        for ch in 0..3 {
            let px = img[ch * plane] as i32;
            assert!(
                (px - want).abs() <= 3,
                "train image {k} channel {ch}: {px}, want {want}"
            );
        }
    }
    // Grey only when asked for, or when every file is grey.
    let grey = load(
        root,
        &FolderOptions {
            channels: Some(1),
            ..Default::default()
        },
        None,
    );
    assert_eq!(grey.dataset.channels, 1);
    assert!(loaded.report.to_string().contains("val"));
}

#[test]
fn grey_files_give_one_channel_and_colour_files_three_in_rgb_planes() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(&dir.path().join("grey"), &[("a", 5), ("b", 5)], false, (4, 4));
    class_folders(&dir.path().join("colour"), &[("a", 5), ("b", 5)], true, (4, 4));
    let grey = load(&dir.path().join("grey"), &opts(), None).dataset;
    assert_eq!(grey.channels, 1);
    assert_eq!(grey.train.images.len(), grey.train.len() * 16);
    let colour = load(&dir.path().join("colour"), &opts(), None).dataset;
    assert_eq!(colour.channels, 3);
    // Class a: value 20 → planes R=20, G=10, B=235.
    let k = colour.train.labels.iter().position(|&l| l == 0).unwrap();
    let img = &colour.train.images[k * 48..(k + 1) * 48];
    assert_eq!((img[0], img[16], img[32]), (20, 10, 235));
    assert!(img[..16].iter().all(|&p| p == 20) && img[32..].iter().all(|&p| p == 235));
}

#[test]
fn mixed_sizes_are_resized_to_the_most_common_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 6), ("b", 6)], false, (8, 8));
    save(&dir.path().join("a/big.png"), &image(12, 10, 20, false));
    save(&dir.path().join("b/small.png"), &image(4, 6, 60, false));
    let loaded = load(dir.path(), &opts(), None);
    assert_eq!((loaded.dataset.height, loaded.dataset.width), (8, 8));
    assert_eq!(loaded.report.resized, 2);
    assert_eq!(loaded.report.sizes_found[0].count, 12);
    assert_eq!(loaded.report.sizes_found.len(), 3);
    assert!(
        loaded.report.notes.iter().any(|n| n.contains("resized")),
        "{:?}",
        loaded.report.notes
    );
    // A solid image stays solid through the bilinear resize.
    let d = &loaded.dataset;
    for split in [&d.train, &d.test] {
        for (k, img) in split.images.chunks_exact(64).enumerate() {
            let want = if split.labels[k] == 0 { 20 } else { 60 };
            assert!(img.iter().all(|&p| p == want));
        }
    }
    // A size given in the options: everything resized.
    let sized = load(
        dir.path(),
        &FolderOptions {
            image_size: Some((5, 7)),
            ..opts()
        },
        None,
    );
    assert_eq!((sized.dataset.height, sized.dataset.width), (5, 7));
    assert_eq!(sized.report.resized, 14);
    let text = sized.report.to_string();
    assert!(text.contains("resized   14 image(s) to 5x7"), "{text}");
}

fn truncated_jpeg(dir: &Path) -> PathBuf {
    let path = dir.join("b/broken.jpg");
    // A noisy image so the JPEG has a long scan to cut.
    let mut img = RgbImage::new(32, 32);
    for (i, px) in img.pixels_mut().enumerate() {
        *px = image::Rgb([(i * 37 % 251) as u8, (i * 91 % 253) as u8, (i * 13 % 255) as u8]);
    }
    save(&path, &DynamicImage::ImageRgb8(img));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    path
}

#[test]
fn a_truncated_jpeg_is_an_error_naming_it_or_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 6), ("b", 6)], true, (32, 32));
    let broken = truncated_jpeg(dir.path());
    let e = error(dir.path(), &opts());
    assert!(e.contains(&broken.display().to_string()), "{e}");
    assert!(e.contains("skip_bad_images"), "{e}");
    assert!(e.to_lowercase().contains("truncated"), "{e}");

    let skipping = FolderOptions {
        skip_bad_images: true,
        ..opts()
    };
    let loaded = load(dir.path(), &skipping, None);
    assert_eq!(loaded.report.bad_images, 1);
    assert_eq!(loaded.report.bad_examples[0].0, broken.display().to_string());
    assert_eq!(loaded.dataset.train.len() + loaded.dataset.test.len(), 12);
    let text = loaded.report.to_string();
    assert!(text.contains("broken.jpg"), "{text}");
}

/// A bad image found while decoding stops the cache file written during the decode (the images
/// after it move up); the cache is then written whole, and reads back the same.
#[test]
fn a_bad_image_found_while_decoding_with_a_cache_still_caches_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 6), ("b", 6)], true, (32, 32));
    truncated_jpeg(dir.path());
    let skipping = FolderOptions {
        skip_bad_images: true,
        ..opts()
    };
    let first = load(dir.path(), &skipping, Some(cache.path()));
    assert!(!first.report.from_cache);
    assert_eq!(first.report.bad_images, 1);
    let second = load(dir.path(), &skipping, Some(cache.path()));
    assert!(second.report.from_cache);
    assert_eq!(second.report.bad_images, 1);
    assert_eq!(second.dataset.train, first.dataset.train);
    assert_eq!(second.dataset.test, first.dataset.test);
    assert_eq!(second.report.fingerprint, Some(first.dataset.fingerprint()));
    // Only the cache file: no temp file left behind.
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
}

#[test]
fn a_text_file_named_png_is_a_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 6), ("b", 6)], false, (4, 4));
    std::fs::write(dir.path().join("a/fake.png"), "not an image").unwrap();
    std::fs::write(dir.path().join("a/scan.tiff"), "II*\0").unwrap();
    let e = error(dir.path(), &opts());
    assert!(
        e.contains("2 image file(s)") && e.contains("fake.png") && e.contains("scan.tiff"),
        "{e}"
    );
    assert!(e.contains("TIFF images are not supported"), "{e}");
}

#[test]
fn non_image_files_are_ignored_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 5), ("b", 5)], false, (4, 4));
    std::fs::write(dir.path().join("a/notes.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("b/.DS_Store"), [0u8; 8]).unwrap();
    std::fs::write(dir.path().join("README"), "readme").unwrap();
    let loaded = load(dir.path(), &opts(), None);
    assert_eq!(loaded.dataset.train.len() + loaded.dataset.test.len(), 10);
    assert_eq!(loaded.report.ignored_files, 3);
    let text = loaded.report.to_string();
    assert!(text.contains("a/notes.txt") && text.contains("b/.DS_Store"), "{text}");
}

#[test]
fn a_class_missing_from_test_is_an_error_naming_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(
        &dir.path().join("train"),
        &[("a", 5), ("b", 5), ("c", 5)],
        false,
        (4, 4),
    );
    class_folders(&dir.path().join("test"), &[("a", 2), ("b", 2)], false, (4, 4));
    let e = error(dir.path(), &opts());
    let missing = dir.path().join("test").join("c");
    assert!(
        e.contains("class 'c'") && e.contains(&missing.display().to_string()),
        "{e}"
    );
    // And the other way round: a class only in test.
    class_folders(&dir.path().join("test"), &[("d", 2)], false, (4, 4));
    let e = error(dir.path(), &opts());
    assert!(e.contains("class 'd' has 2 test images but none in"), "{e}");
    // inspect reports both without failing.
    let report = inspect(dir.path(), &opts(), None).unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(!report.is_usable());
    assert!(report.to_string().contains("problems (2)"));
}

#[test]
fn an_empty_class_folder_a_single_class_and_too_few_images_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 5), ("b", 5)], false, (4, 4));
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let e = error(dir.path(), &opts());
    assert!(
        e.contains(&format!("{} has no images", dir.path().join("empty").display())),
        "{e}"
    );

    let single = tempfile::tempdir().unwrap();
    class_folders(single.path(), &[("only", 8)], false, (4, 4));
    let e = error(single.path(), &opts());
    assert!(e.contains("only one class ('only')"), "{e}");

    let few = tempfile::tempdir().unwrap();
    class_folders(few.path(), &[("a", 5), ("b", 3)], false, (4, 4));
    let e = error(few.path(), &opts());
    assert!(e.contains("class 'b' has only 3 image(s)"), "{e}");
    assert!(e.contains("[dataset] min_images_per_class = 3"), "{e}");
    let lowered = FolderOptions {
        min_images_per_class: 3,
        ..opts()
    };
    assert_eq!(load(few.path(), &lowered, None).dataset.num_classes, 2);
}

#[test]
fn odd_layouts_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(&dir.path().join("train"), &[("a", 5), ("b", 5)], false, (4, 4));
    let e = error(dir.path(), &opts());
    assert!(e.contains("has train/ but no test/"), "{e}");
    let flat = tempfile::tempdir().unwrap();
    save(&flat.path().join("x.png"), &image(4, 4, 1, false));
    let e = error(flat.path(), &opts());
    assert!(e.contains("has no class folders"), "{e}");
    let e = error(&flat.path().join("nowhere"), &opts());
    assert!(e.contains("nowhere") && e.contains("cannot be read"), "{e}");
    let e = error(
        dir.path(),
        &FolderOptions {
            test_fraction: 1.5,
            ..opts()
        },
    );
    assert!(e.contains("test_fraction"), "{e}");
}

#[test]
fn too_little_memory_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 5), ("b", 5)], true, (8, 8));
    let tight = FolderOptions {
        memory_limit: Some(1000),
        ..opts()
    };
    match load_path(dir.path(), &tight, None) {
        Err(e @ DataError::OutOfMemory { .. }) => {
            let text = e.to_string();
            assert!(text.contains("image_size"), "{text}");
            assert!(text.contains("1.88 KiB"), "{text}"); // 10 × (192 + 1) bytes
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    let report = inspect(dir.path(), &tight, None).unwrap();
    assert_eq!(report.memory_needed, 10 * 193);
    assert!(report.fingerprint.is_none());
}

fn nasd_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "nasd"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_cache_is_hit_while_the_files_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    class_folders(&dir.path().join("train"), &[("a", 6), ("b", 6)], true, (8, 8));
    class_folders(&dir.path().join("test"), &[("a", 2), ("b", 2)], true, (8, 8));
    class_folders(&dir.path().join("val"), &[("a", 1), ("b", 1)], true, (8, 8));
    save(&dir.path().join("train/a/odd.png"), &image(9, 9, 20, true));

    let first = load(dir.path(), &opts(), Some(cache.path()));
    assert!(!first.report.from_cache);
    assert_eq!(nasd_files(cache.path()).len(), 1);
    assert_eq!(
        first.report.cache_file.as_deref(),
        Some(nasd_files(cache.path())[0].as_path())
    );

    let second = load(dir.path(), &opts(), Some(cache.path()));
    assert!(second.report.from_cache);
    assert_eq!(second.dataset.train, first.dataset.train);
    assert_eq!(second.dataset.test, first.dataset.test);
    assert_eq!(second.val, first.val);
    assert_eq!(second.dataset.class_names, first.dataset.class_names);
    assert_eq!(second.report.resized, 1);
    // The fingerprint in the cache is the content's.
    assert_eq!(second.report.fingerprint, Some(first.dataset.fingerprint()));
    assert_eq!(second.dataset.fingerprint(), first.dataset.fingerprint());
    assert!(inspect(dir.path(), &opts(), Some(cache.path())).unwrap().from_cache);
    assert_eq!(
        DataRef::Path(dir.path().to_path_buf())
            .describe(&opts(), Some(cache.path()))
            .unwrap()
            .image_shape(),
        (3, 8, 8)
    );

    // Other options, another cache file.
    let grey = load(
        dir.path(),
        &FolderOptions {
            channels: Some(1),
            ..opts()
        },
        Some(cache.path()),
    );
    assert!(!grey.report.from_cache);
    assert_eq!(nasd_files(cache.path()).len(), 2, "one per options");

    // Touch a file: decoded again, and the stale cache file removed.
    let touched = dir.path().join("test/b/000.png");
    let file = std::fs::File::options().write(true).open(&touched).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let third = load(dir.path(), &opts(), Some(cache.path()));
    assert!(!third.report.from_cache);
    assert_eq!(third.dataset.test, first.dataset.test);
    let fourth = load(dir.path(), &opts(), Some(cache.path()));
    assert!(fourth.report.from_cache);
    assert_eq!(
        nasd_files(cache.path()).len(),
        2,
        "the stale file of these options is removed"
    );

    // A new file: decoded again.
    save(&dir.path().join("train/b/new.png"), &image(8, 8, 60, true));
    let fifth = load(dir.path(), &opts(), Some(cache.path()));
    assert!(!fifth.report.from_cache);
    assert_eq!(fifth.dataset.train.len(), first.dataset.train.len() + 1);

    // A damaged cache file is decoded again, not trusted.
    let file = fifth.report.cache_file.clone().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let sixth = load(dir.path(), &opts(), Some(cache.path()));
    assert!(!sixth.report.from_cache);
    assert_eq!(sixth.dataset.train, fifth.dataset.train);
    assert!(
        sixth.report.notes.iter().any(|n| n.contains("unreadable")),
        "{:?}",
        sixth.report.notes
    );

    // A raised min_images_per_class is checked on a cache hit too.
    let strict = FolderOptions {
        min_images_per_class: 50,
        ..opts()
    };
    match load_path(dir.path(), &strict, Some(cache.path())) {
        Err(DataError::Invalid { problems, .. }) => assert!(problems[0].contains("at least 50")),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn inspect_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("daisy", 10), ("rose", 5)], true, (8, 8));
    let report = inspect(dir.path(), &opts(), Some(cache.path())).unwrap();
    assert!(report.is_usable());
    assert!(!report.from_cache);
    let text = report.to_string();
    for want in [
        "daisy",
        "rose",
        "total",
        "3 x 8 x 8",
        "sha256",
        "no problems found",
        "rgb (15)",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // inspect wrote the cache, so the load that follows reads it.
    assert!(load(dir.path(), &opts(), Some(cache.path())).report.from_cache);
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"daisy\""));
}

#[test]
fn a_jpeg_with_data_after_its_end_is_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 6), ("b", 6)], true, (32, 32));
    let path = dir.path().join("b/trailer.jpg");
    save(&path, &image(32, 32, 90, true));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(7u8, 10_000)); // a "motion photo" trailer
    std::fs::write(&path, bytes).unwrap();
    let loaded = load(dir.path(), &opts(), None);
    assert_eq!(loaded.report.bad_images, 0);
    assert_eq!(loaded.dataset.train.len() + loaded.dataset.test.len(), 13);
}

#[test]
fn an_animated_gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let dir = tempfile::tempdir().unwrap();
    class_folders(dir.path(), &[("a", 5), ("b", 5)], true, (4, 4));
    let file = std::fs::File::create(dir.path().join("a/anim.gif")).unwrap();
    let mut encoder = GifEncoder::new(file);
    let frames = [10u8, 250].map(|v| {
        Frame::from_parts(
            RgbaImage::from_pixel(4, 4, image::Rgba([v, v, v, 255])),
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )
    });
    encoder.encode_frames(frames).unwrap();
    drop(encoder);
    let d = load(
        dir.path(),
        &FolderOptions {
            test_fraction: 0.01,
            ..opts()
        },
        None,
    )
    .dataset;
    // The GIF is the only image of class a whose red plane is 10.
    let found = d
        .train
        .images
        .chunks_exact(48)
        .chain(d.test.images.chunks_exact(48))
        .filter(|img| img[0] == 10 && img[16] == 10)
        .count();
    assert_eq!(found, 1);
}
