//! `export` hands over trained, portable models: PyTorch (TorchScript, and model.py with
//! safetensors) and onnxruntime load them and agree with nas-host; `predict` classifies images.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{options, plugin};
use nas_config::EvaluatorKind;
use nas_config::RunConfig;
use nas_outputs::export;
use nas_outputs::export::{Choice, ExportRequest, ModelCard, Quiet};
use nas_search::search;
use nas_search::search::Start;
use nas_store::Store;

/// The Python with PyTorch, safetensors and onnxruntime that `make test` prepares.
fn python() -> PathBuf {
    let path = std::env::var_os("NAS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/nas-host/torch-venv/bin/python"));
    assert!(
        path.is_file(),
        "{} is missing: run `make test`, which sets up PyTorch, safetensors and onnxruntime",
        path.display()
    );
    path
}

/// A tiny real-training search on the synthetic dataset, keeping the weights of its `keep` best.
fn trained_run(db: &Path, keep: usize) -> i64 {
    let config = RunConfig {
        agent: plugin("random").display().to_string(),
        reward: plugin("accuracy").display().to_string(),
        dataset: nas_datasets::DatasetName::Synthetic.into(),
        evaluator: EvaluatorKind::Train,
        episodes: 3,
        seed: 1,
        train: nas_config::TrainConfig {
            epochs: 1,
            ..Default::default()
        },
        search: nas_config::SearchConfig { keep_weights: keep },
        ..RunConfig::default()
    };
    search::search(Start::New(Box::new(config)), &options(db.to_path_buf()))
        .unwrap()
        .run
}

/// Runs tests/python/check_export.py on an exported model (PyTorch, model.py and onnxruntime must
/// reproduce nas-host's logits; with a split, its accuracy); returns what it measured.
fn check_with_python(model: &Path, split: Option<&Path>) -> serde_json::Value {
    let mut command = Command::new(python());
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/check_export.py"))
        .arg(model);
    if let Some(split) = split {
        command.arg("--split").arg(split);
    }
    let checked = command.output().unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    serde_json::from_str(report.trim()).unwrap()
}

/// The synthetic test split as `images` (uint8 [N, C, H, W]) and `labels`, for the Python side.
fn write_test_split(path: &Path) {
    let data = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let (n, c, h, w) = (
        data.test.len() as i64,
        data.channels as i64,
        data.height as i64,
        data.width as i64,
    );
    let images = tch::Tensor::from_slice(&data.test.images).view([n, c, h, w]);
    let labels = tch::Tensor::from_slice(&data.test.labels).to_kind(tch::Kind::Int64);
    tch::Tensor::write_safetensors(&[("images", &images), ("labels", &labels)], path).unwrap();
}

#[test]
fn exported_models_load_in_pytorch_and_onnxruntime_with_the_same_logits_and_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.sqlite");
    let run = trained_run(&db, 0);
    let store = Store::open(&db).unwrap();
    let out = dir.path().join("export");
    let request = ExportRequest {
        run,
        choice: Choice::Top(2),
        epochs: None,
        out: out.clone(),
        force: false,
        data_dir: None,
        device: nas_config::DeviceChoice::Cpu,
    };
    let models = export::export(&store, &request, &mut Quiet).unwrap();
    assert_eq!(models.len(), 2);
    assert!(
        models.iter().all(|m| !m.from_search),
        "the run kept no weights: each was trained"
    );
    let episodes = store.episodes(run).unwrap();
    let split = dir.path().join("test-split.safetensors");
    write_test_split(&split);
    for (rank, model) in models.iter().enumerate() {
        assert_eq!(model.dir, out.join(format!("top-{}", rank + 1)));
        for file in [
            "model.pt",
            "model.onnx",
            "weights.safetensors",
            "model.py",
            "model.json",
            "check.safetensors",
        ] {
            assert!(model.dir.join(file).is_file(), "{file} in {}", model.dir.display());
        }
        let card: ModelCard =
            serde_json::from_str(&std::fs::read_to_string(model.dir.join("model.json")).unwrap()).unwrap();
        assert_eq!(card, model.card);
        let arch: nas_core::arch::Architecture = card.architecture.parse().unwrap();
        assert_eq!(card.params, arch.param_count((1, 28, 28), 3));
        // Trained with the run's own protocol and seed, the export is the child the search trained.
        let searched = episodes.iter().find(|e| e.architecture == card.architecture).unwrap();
        assert!(
            (searched.accuracy - card.accuracy).abs() < 1e-9,
            "{} vs {}",
            searched.accuracy,
            card.accuracy
        );

        let measured = check_with_python(&model.dir, Some(&split));
        assert_eq!(
            measured["python_accuracy"].as_f64().unwrap(),
            card.accuracy,
            "{measured}"
        );
    }

    // An existing output directory is refused without --force; other bad requests name the problem.
    let e = export::export(&store, &request, &mut Quiet).unwrap_err().to_string();
    assert!(e.contains("already exists") && e.contains("--force"), "{e}");
    let missing = ExportRequest {
        run: 99,
        ..request.clone()
    };
    let e = format!("{:#}", export::export(&store, &missing, &mut Quiet).unwrap_err());
    assert!(e.contains("no run 99"), "{e}");
    let invalid = ExportRequest {
        choice: Choice::Arch("pool(5,3) pool(5,3) pool(5,3)".parse().unwrap()),
        out: dir.path().join("other"),
        ..request.clone()
    };
    let e = export::export(&store, &invalid, &mut Quiet).unwrap_err().to_string();
    assert!(
        e.contains("cannot be exported") && e.contains("pool(5,3) pool(5,3) pool(5,3)"),
        "{e}"
    );
}

#[test]
fn predict_classifies_images_of_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.sqlite");
    let run = trained_run(&db, 0);
    let out = dir.path().join("model");
    let exported = Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args(["export", &run.to_string(), "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&exported.stdout);
    assert!(
        exported.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert!(stdout.contains("import model; net = model.load()"), "{stdout}");

    // Test images of the synthetic dataset as PNG: one at the model's size, one at twice it in RGB.
    let data = nas_datasets::generate_synthetic(&nas_datasets::SyntheticOptions::default());
    let pixels = &data.test.images[..28 * 28];
    let grey = image::GrayImage::from_raw(28, 28, pixels.to_vec()).unwrap();
    let exact = dir.path().join("exact.png");
    grey.save(&exact).unwrap();
    let big = dir.path().join("big.png");
    image::DynamicImage::ImageLuma8(grey)
        .resize_exact(56, 56, image::imageops::FilterType::Nearest)
        .to_rgb8()
        .save(&big)
        .unwrap();
    let predictions = nas_outputs::predict::predict(&out, &[exact.clone(), big.clone()]).unwrap();
    let truth = data.test.labels[0] as usize;
    assert_eq!(predictions[0].class, truth);
    assert_eq!(predictions[0].resized_from, None);
    assert_eq!(predictions[1].resized_from, Some((56, 56)));
    assert!(predictions.iter().all(|p| (0.0..=1.0).contains(&p.probability)));

    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let e = format!("{:#}", nas_outputs::predict::predict(&out, &[junk]).err().unwrap());
    assert!(e.contains("junk.png") && e.contains("not a PNG or JPEG"), "{e}");
    let e = format!(
        "{:#}",
        nas_outputs::predict::predict(dir.path(), &[exact]).err().unwrap()
    );
    assert!(e.contains("model.json") && e.contains("exported model"), "{e}");
}

/// With `[search] keep_weights = K`, `export --top K` uses the children the search trained.
#[test]
fn kept_weights_are_exported_without_training_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    let run = trained_run(&db, 2);
    let store = Store::open(&db).unwrap();
    let evaluations = store.episode_evaluations(run).unwrap();
    let kept = evaluations
        .values()
        .filter(|&&id| store.kept_weights(run, id).unwrap().is_some())
        .count();
    assert_eq!(kept, 2, "the two best of three children keep their weights");
    let request = ExportRequest {
        run,
        choice: Choice::Top(2),
        epochs: None,
        out: dir.path().join("kept"),
        force: false,
        data_dir: None,
        device: nas_config::DeviceChoice::Cpu,
    };
    let models = export::export(&store, &request, &mut Quiet).unwrap();
    let episodes = store.episodes(run).unwrap();
    for model in &models {
        assert!(model.from_search, "{}", model.card.architecture);
        let searched = episodes
            .iter()
            .find(|e| e.architecture == model.card.architecture)
            .unwrap();
        assert_eq!(searched.accuracy, model.card.accuracy);
    }
    check_with_python(&models[0].dir, None);
    // Another protocol trains again.
    let longer = ExportRequest {
        epochs: Some(2),
        choice: Choice::Top(1),
        out: dir.path().join("longer"),
        ..request
    };
    assert!(!export::export(&store, &longer, &mut Quiet).unwrap()[0].from_search);
}
