//! Searching on the user's own images (issue #23): a folder of class folders, inspected, searched,
//! exported and used by `predict`, which names the classes the folder named.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::plugin;
use common::process::BIN;
use rand::{Rng, SeedableRng};

const CLASSES: [&str; 3] = ["bright-top", "bright-left", "dark"];

/// A 12×12 grey image of `class`: half of it bright, or all of it dark, with noise.
fn image_of(class: usize, rng: &mut impl Rng) -> image::GrayImage {
    image::GrayImage::from_fn(12, 12, |x, y| {
        let bright = match class {
            0 => y < 6,
            1 => x < 6,
            _ => false,
        };
        let base: i32 = if bright { 200 } else { 40 };
        image::Luma([(base + rng.random_range(-30..30)).clamp(0, 255) as u8])
    })
}

/// `dir/<class>/<i>.png` (and every fifth a JPEG), `per_class` images per class.
fn write_folder(dir: &Path, per_class: usize) -> Vec<(PathBuf, &'static str)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut written = Vec::new();
    for (class, name) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        for i in 0..per_class {
            let extension = if i % 5 == 0 { "jpg" } else { "png" };
            let path = dir.join(name).join(format!("{i}.{extension}"));
            image_of(class, &mut rng).save(&path).unwrap();
            written.push((path, *name));
        }
    }
    written
}

/// Runs the binary with its caches (compiled plugins, decoded folders) under `cache`.
fn run(cache: &Path, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .env("NAS_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`nas-host {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_folder_of_images_is_inspected_searched_exported_and_predicted_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    let images = write_folder(&data, 25);
    let cache = dir.path().join("cache");
    let data_arg = data.to_str().unwrap();
    let db = dir.path().join("nas.sqlite");
    let db_arg = db.to_str().unwrap();

    let report = run(&cache, &["datasets", "inspect", data_arg]);
    for name in CLASSES {
        assert!(report.contains(name), "{report}");
    }

    run(
        &cache,
        &[
            "search",
            "--agent",
            plugin("random").to_str().unwrap(),
            "--reward",
            plugin("accuracy").to_str().unwrap(),
            "--dataset",
            data_arg,
            "--episodes",
            "3",
            "--epochs",
            "3",
            "--seed",
            "2",
            "--db",
            db_arg,
            "--json",
        ],
    );
    let out = dir.path().join("model");
    run(
        &cache,
        &[
            "export",
            "1",
            "--arch",
            "conv(10,3) fc(32)",
            "--epochs",
            "4",
            "--db",
            db_arg,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
    // Classes are the folder names, in sorted order.
    let mut sorted = CLASSES.to_vec();
    sorted.sort();
    assert_eq!(card["classes"], serde_json::json!(sorted));
    assert!(std::fs::read_to_string(out.join("model.py"))
        .unwrap()
        .contains("bright-left"));

    // One image of each class, predicted by name.
    let picks: Vec<&(PathBuf, &str)> = CLASSES
        .iter()
        .map(|c| {
            images
                .iter()
                .find(|(p, name)| name == c && p.extension().unwrap() == "png")
                .unwrap()
        })
        .collect();
    let mut args = vec!["predict", out.to_str().unwrap()];
    args.extend(picks.iter().map(|(p, _)| p.to_str().unwrap()));
    let predicted = run(&cache, &args);
    let mut right = 0;
    for (path, class) in picks {
        let line = predicted
            .lines()
            .find(|l| l.starts_with(path.to_str().unwrap()))
            .unwrap_or_else(|| panic!("no prediction for {}: {predicted}", path.display()));
        let name = line.split(": ").nth(1).unwrap().split(" (").next().unwrap();
        assert!(CLASSES.contains(&name), "{line}");
        right += usize::from(name == *class);
    }
    assert!(
        right >= 2,
        "the trained network names at most one easy image right: {predicted}"
    );
}

#[test]
fn a_folder_with_a_corrupt_image_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_folder(&data, 6);
    let broken = data.join("dark").join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let output = Command::new(BIN)
        .args(["show-arch", "conv(10,3)", "--dataset", data.to_str().unwrap()])
        .env("NAS_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    // Describing reads headers only; loading for a search decodes and refuses the file.
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "agent = {:?}\nreward = {:?}\ndataset = {:?}\nepisodes = 1\n",
            plugin("random").display().to_string(),
            plugin("accuracy").display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    let search = Command::new(BIN)
        .args(["search", "--config", config.to_str().unwrap(), "--db"])
        .arg(dir.path().join("nas.sqlite"))
        .env("NAS_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&search.stderr);
    assert!(!search.status.success(), "{stderr}");
    assert!(
        stderr.contains("broken.png"),
        "{stderr}\n(show-arch said: {})",
        String::from_utf8_lossy(&output.stderr)
    );
}
