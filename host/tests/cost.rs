//! Hardware-aware search (#28): each child's cost is measured, stored and told to reward shapers
//! (contract 0.3); `latency_target` on hand-worked numbers; 0.2 plugins still load; latency tables.
//! Latency itself is noisy: nothing here asserts a latency's value, only its structure.

mod common;

use std::path::Path;

use common::{options, plugin, run, synthetic_config};
use nas_config::{EvaluatorKind, SandboxLimits};
use nas_core::arch::Architecture;
use nas_core::cost::{space_layers, structural_cost, LatencyTable};
use nas_core::record::{Cost, Latency};
use nas_plugin_runtime::{AssessorPlugin, EvaluationInput, RewardPlugin, Runtime};
use nas_search::options::SearchOptions;
use nas_search::search::{search, Start};
use nas_store::Store;

fn runtime() -> (Runtime, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    (Runtime::new(Some(cache.path().to_path_buf())).unwrap(), cache)
}

fn reward(rt: &Runtime, path: &Path, config: &str) -> RewardPlugin {
    let mut r = RewardPlugin::instantiate(rt, &rt.load(path).unwrap(), SandboxLimits::default(), 0).unwrap();
    r.init(config).unwrap();
    r
}

fn latency(ms: f64) -> Latency {
    Latency {
        device: "cpu".into(),
        batch: 1,
        runs: 30,
        threads: 1,
        median_ms: ms,
        p90_ms: ms * 1.1,
        min_ms: ms * 0.9,
        throughput: None,
        seconds: 0.0,
    }
}

fn input<'a>(arch: &'a Architecture, accuracy: f64, cost: &'a Cost) -> EvaluationInput<'a> {
    EvaluationInput {
        architecture: arch,
        accuracy,
        params: 1000,
        train_seconds: 1.0,
        failure: None,
        epochs_trained: 5,
        epochs: 5,
        stopped: false,
        cost,
    }
}

#[test]
fn latency_target_on_hand_worked_numbers() {
    let (rt, _cache) = runtime();
    let arch: Architecture = "conv(32,3) pool(2,2)".parse().unwrap();
    let with = |ms: f64| Cost {
        mult_adds: 1,
        activation_bytes: 1,
        latency: Some(latency(ms)),
    };
    let mut soft = reward(&rt, &plugin("latency_target"), r#"{"target_ms": 2.0}"#);
    // At the target: the accuracy; half of it: × 0.5^−0.07 = 1.049717; twice: × 2^−0.07 = 0.952638.
    assert_eq!(soft.shape(&input(&arch, 0.9, &with(2.0))).unwrap(), 0.9);
    assert!((soft.shape(&input(&arch, 0.9, &with(1.0))).unwrap() - 0.944_745_0).abs() < 1e-6);
    assert!((soft.shape(&input(&arch, 0.9, &with(4.0))).unwrap() - 0.857_374_2).abs() < 1e-6);

    let mut hard = reward(&rt, &plugin("latency_target"), r#"{"target_ms": 2.0, "hard": true}"#);
    assert_eq!(hard.shape(&input(&arch, 0.9, &with(0.5))).unwrap(), 0.9);
    assert!((hard.shape(&input(&arch, 0.9, &with(3.0))).unwrap() - 0.6).abs() < 1e-12);

    // Without a latency the shaper says what to configure instead of guessing.
    let unmeasured = Cost {
        mult_adds: 1,
        activation_bytes: 1,
        latency: None,
    };
    let e = soft.shape(&input(&arch, 0.9, &unmeasured)).unwrap_err().to_string();
    assert!(e.contains("[cost]"), "{e}");
    let e = RewardPlugin::instantiate(
        &rt,
        &rt.load(&plugin("latency_target")).unwrap(),
        SandboxLimits::default(),
        0,
    )
    .unwrap()
    .init(r#"{"target_ms": 0}"#)
    .unwrap_err()
    .to_string();
    assert!(e.contains("target_ms must be a positive"), "{e}");
}

#[test]
fn size_penalty_can_count_multiply_adds() {
    let (rt, _cache) = runtime();
    let arch: Architecture = "conv(32,3)".parse().unwrap();
    let cost = Cost {
        mult_adds: 1_000_000,
        activation_bytes: 1,
        latency: None,
    };
    let mut by_params = reward(&rt, &plugin("size_penalty"), "{}");
    let mut by_madds = reward(&rt, &plugin("size_penalty"), r#"{"measure": "mult_adds"}"#);
    let penalty = |x: f64| 0.01 * (1e-8 * x + x.ln());
    assert!((by_params.shape(&input(&arch, 0.9, &cost)).unwrap() - (0.9 - penalty(1000.0))).abs() < 1e-12);
    assert!((by_madds.shape(&input(&arch, 0.9, &cost)).unwrap() - (0.9 - penalty(1e6))).abs() < 1e-12);
}

/// A reward shaper and an assessor built against contract 0.2.0 (before evaluations carried
/// their cost; prebuilt under tests/fixtures/contract-0.2.0) load and run.
#[test]
fn contract_0_2_plugins_still_load() {
    let (rt, _cache) = runtime();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/contract-0.2.0");
    let loaded = rt.load(&fixtures.join("size_penalty.wasm")).unwrap();
    assert_eq!(loaded.contract_version, "0.2.0");
    let mut old = reward(&rt, &fixtures.join("size_penalty.wasm"), "{}");
    let arch: Architecture = "conv(32,3)".parse().unwrap();
    let cost = structural_cost(&arch, (1, 28, 28), 3);
    let mut current = reward(&rt, &plugin("size_penalty"), "{}");
    assert_eq!(
        old.shape(&input(&arch, 0.9, &cost)).unwrap(),
        current.shape(&input(&arch, 0.9, &cost)).unwrap()
    );
    let assessor = rt.load(&fixtures.join("median_stop.wasm")).unwrap();
    assert_eq!(assessor.contract_version, "0.2.0");
    let mut assessor = AssessorPlugin::instantiate(&rt, &assessor, SandboxLimits::default(), 0).unwrap();
    assessor.init("{}").unwrap();
    assert_eq!(assessor.info().name, "median_stop");
}

/// Real training on the tiny synthetic dataset with `latency_target`: every child's cost is
/// stored with its evaluation (latency on the CPU, p90 ≥ median, its multiply-adds and
/// activation memory as planned), and its reward is the shaper's formula of that stored latency,
/// so the shaper was told it.
#[test]
fn figures_are_stored_and_served_to_plugins() {
    figures_are_stored_and_served(0);
}

/// A child a worker trains is timed there, on the device it trained on, with the run's `[cost]`
/// (the job carries it), and stored and served as the search's own.
#[test]
fn children_trained_by_workers_are_timed_too() {
    figures_are_stored_and_served(1);
}

fn figures_are_stored_and_served(workers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let mut config = synthetic_config("random", 3, 4);
    config.parallel.workers = workers;
    config.evaluator = EvaluatorKind::Train;
    config.dataset = nas_datasets::DatasetName::Synthetic.into();
    config.train.epochs = 1;
    config.cost.runs = 5;
    config.cost.warmup = 1;
    config.cost.throughput_batch = 8;
    config.reward = plugin("latency_target").display().to_string();
    config
        .plugins
        .insert("latency_target".into(), toml::from_str("target_ms = 0.5").unwrap());
    let info = config.dataset.describe().unwrap();
    let options = SearchOptions {
        worker_exe: Some(env!("CARGO_BIN_EXE_nas-host").into()),
        ..options(db.clone())
    };
    let summary = search(Start::New(Box::new(config)), &options).unwrap();
    let (run_id, episodes) = (summary.run, summary.episodes);
    if workers > 0 {
        let log = std::fs::read_to_string(dir.path().join("worker-logs/worker-0.log")).unwrap();
        assert!(log.contains("training "), "the worker trained the children: {log}");
    }
    let store = Store::open(&db).unwrap();
    let ids = store.episode_evaluations(run_id).unwrap();
    for episode in &episodes {
        let outcome = store.evaluation(ids[&episode.index]).unwrap().outcome;
        let arch: Architecture = episode.architecture.parse().unwrap();
        let cost = outcome.cost.expect("the cost is stored");
        let planned = structural_cost(&arch, info.image_shape(), info.num_classes());
        assert_eq!(
            (cost.mult_adds, cost.activation_bytes),
            (planned.mult_adds, planned.activation_bytes)
        );
        let l = cost.latency.expect("the latency is measured");
        assert_eq!((l.device.as_str(), l.batch, l.runs, l.threads), ("cpu", 1, 5, 1));
        assert!(
            l.median_ms > 0.0 && l.p90_ms >= l.median_ms && l.min_ms <= l.median_ms,
            "{l:?}"
        );
        let t = l.throughput.expect("the throughput batch is timed");
        assert!(t.batch == 8 && t.per_second > 0.0);
        let expected = outcome.accuracy * (l.median_ms / 0.5).powf(-0.07);
        assert!(
            (episode.reward - expected).abs() < 1e-9,
            "{} vs {expected}",
            episode.reward
        );
    }
}

/// A latency table stands in for measurement: each child's latency is the sum of its layers'
/// (here 0.25 ms each, the classifier included), recorded as the table's; a table lacking a
/// layer the search designs stops the search with an error naming the layer.
#[test]
fn a_latency_table_is_summed_per_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = synthetic_config("random", 6, 5);
    let info = config.dataset.describe().unwrap();
    let mdp = nas_core::mdp::Mdp::new(config.mdp.clone(), info.height as u32);
    let (c, h, w) = info.image_shape();
    let table = LatencyTable {
        device: "test phone".into(),
        batch: 1,
        input: [c as u64, h as u64, w as u64],
        classes: info.num_classes(),
        runs: 1,
        layers: space_layers(&mdp, info.image_shape())
            .into_keys()
            .map(|k| (k, 0.25))
            .collect(),
    };
    let file = dir.path().join("phone.json");
    std::fs::write(&file, serde_json::to_string(&table).unwrap()).unwrap();
    config.cost.latency_table = Some(file.clone());
    let db = dir.path().join("nas.sqlite");
    let (run_id, episodes) = run(config.clone(), db.clone());
    let store = Store::open(&db).unwrap();
    let ids = store.episode_evaluations(run_id).unwrap();
    for episode in &episodes {
        let cost = store.evaluation(ids[&episode.index]).unwrap().outcome.cost.unwrap();
        let l = cost.latency.unwrap();
        assert_eq!(l.device, "table:phone.json");
        assert_eq!(
            l.median_ms,
            0.25 * (episode.depth + 1) as f64,
            "{}",
            episode.architecture
        );
    }

    let mut partial = table.clone();
    partial.layers.retain(|k, _| !k.starts_with("classifier"));
    std::fs::write(&file, serde_json::to_string(&partial).unwrap()).unwrap();
    let e = nas_search::search::search(
        nas_search::search::Start::New(Box::new(config)),
        &options(dir.path().join("other.sqlite")),
    )
    .err()
    .unwrap();
    let text = format!("{e:#}");
    assert!(
        text.contains("phone.json has no latency for layer `classifier @")
            && text.contains("nas-host cost measure-layers"),
        "{text}"
    );
}
