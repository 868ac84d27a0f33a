//! Assessors (early stopping): the median rule through the host, stopped children in the store and
//! the cache, resume, real training with curves and the report, hostile assessors, contract 0.1
//! plugins beside them, and children that workers train.

mod common;

use std::path::{Path, PathBuf};

use common::{plugin, synthetic_config};
use nas_config::RunConfig;
use nas_config::SandboxLimits;
use nas_core::arch::Architecture;
use nas_core::record::EpisodeRecord;
use nas_plugin_runtime::{AssessorPlugin, CurveInput, Runtime, Verdict};
use nas_search::options::SearchOptions;
use nas_search::search;
use nas_search::search::Start;
use nas_store::Store;

/// The outcome stored for each episode of `run`, in episode order.
fn outcomes(db: &Path, run: i64) -> Vec<nas_core::record::Outcome> {
    let store = Store::open(db).unwrap();
    store
        .episode_evaluations(run)
        .unwrap()
        .into_values()
        .map(|id| store.evaluation(id).unwrap().outcome)
        .collect()
}

fn with_assessor(mut config: RunConfig, assessor: &str, section: &str) -> RunConfig {
    let path = if assessor.ends_with(".wasm") {
        PathBuf::from(assessor)
    } else {
        plugin(assessor)
    };
    config.assessor = path.display().to_string();
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    config.plugins.insert(name, toml::from_str(section).unwrap());
    config
}

fn search(config: RunConfig, db: &Path) -> anyhow::Result<(i64, Vec<EpisodeRecord>)> {
    search::search(Start::New(Box::new(config)), &SearchOptions::new(db.to_path_buf())).map(|s| (s.run, s.episodes))
}

/// median_stop through the sandbox, on the hand-made population of its unit tests.
#[test]
fn the_median_rule_through_the_host() {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let loaded = rt.load(&plugin("median_stop")).unwrap();
    assert_eq!(loaded.kind, nas_plugin_runtime::PluginKind::Assessor);
    let mut assessor = AssessorPlugin::instantiate(&rt, &loaded, SandboxLimits::default(), 0).unwrap();
    assessor.init(r#"{"min_completed": 3, "start_epoch": 1}"#).unwrap();
    let arch: Architecture = "conv(32,3) fc(64)".parse().unwrap();
    let curve = |accuracy: &'static [f64]| CurveInput {
        architecture: &arch,
        params: 1000,
        accuracy,
        epochs: 3,
    };
    assert_eq!(
        assessor.assess(&curve(&[0.1])).unwrap(),
        Verdict::Continue,
        "nobody completed yet"
    );
    for done in [&[0.5, 0.7, 0.75][..], &[0.6, 0.8, 0.85], &[0.9, 0.95, 0.97]] {
        assessor.completed(&curve(done)).unwrap();
    }
    assert_eq!(
        assessor.assess(&curve(&[0.55])).unwrap(),
        Verdict::Stop,
        "below the median 0.6"
    );
    assert_eq!(
        assessor.assess(&curve(&[0.6])).unwrap(),
        Verdict::Continue,
        "at the median"
    );
    assert_eq!(assessor.assess(&curve(&[0.61, 0.79])).unwrap(), Verdict::Stop);
    let e = assessor.init(r#"{"start_epoch": 0}"#).unwrap_err().to_string();
    assert!(
        e.starts_with("plugin median_stop 0.1.0, call init:") && e.contains("start_epoch"),
        "{e}"
    );
}

/// A search with median_stop stops children; a run without an assessor that designs the same
/// architectures (the random agent designs the same ones for the same seed, whatever the rewards)
/// is served only the children that trained to the end from the cache, and trains the stopped ones
/// fully. The reward of a stopped child is its last measured score.
#[test]
fn stopped_children_are_never_cache_hits_for_a_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let watched = with_assessor(synthetic_config("random", 120, 3), "median_stop", "min_completed = 5");
    let (run_a, a) = search(watched, &db).unwrap();
    let a_outcomes = outcomes(&db, run_a);
    let stopped: Vec<usize> = (0..a.len()).filter(|&i| a_outcomes[i].curve.stopped).collect();
    assert!(stopped.len() > 10, "median_stop stopped only {} of 120", stopped.len());
    for &i in &stopped {
        let o = &a_outcomes[i];
        assert!(o.curve.accuracy.len() < 5);
        assert_eq!(a[i].accuracy, *o.curve.accuracy.last().unwrap());
        assert_eq!(
            a[i].reward, a[i].accuracy,
            "accuracy shapes a stopped child from its last score"
        );
    }
    for (i, o) in a_outcomes.iter().enumerate().filter(|(_, o)| !o.curve.stopped) {
        assert_eq!(
            o.curve.accuracy.len(),
            5,
            "episode {i} trained to the end has a whole curve"
        );
    }

    let (run_b, b) = search(synthetic_config("random", 120, 3), &db).unwrap();
    let b_outcomes = outcomes(&db, run_b);
    let full_in_a: std::collections::HashSet<&str> = (0..a.len())
        .filter(|&i| !a_outcomes[i].curve.stopped)
        .map(|i| a[i].architecture.as_str())
        .collect();
    for (i, episode) in b.iter().enumerate() {
        assert_eq!(episode.architecture, a[i].architecture, "the same designs");
        assert!(
            !b_outcomes[i].curve.stopped,
            "episode {i}: a full run got a stopped evaluation"
        );
        if stopped.contains(&i)
            && !full_in_a.contains(episode.architecture.as_str())
            && !b[..i].iter().any(|e| e.architecture == episode.architecture)
        {
            assert!(
                !episode.cache_hit,
                "episode {i}: a child stopped in run A was served from the cache"
            );
            assert!(
                episode.accuracy > a[i].accuracy,
                "episode {i}: trained to the end, it scores its full score"
            );
        }
        if full_in_a.contains(episode.architecture.as_str()) {
            assert!(episode.cache_hit, "episode {i}: a child A trained fully is a cache hit");
        }
    }
}

/// An extended run (resumed with a larger target) replays the completed curves to its assessor,
/// so its episodes equal those of an uninterrupted run: stop decisions included.
#[test]
fn a_resumed_run_stops_the_same_children() {
    let dir = tempfile::tempdir().unwrap();
    let config = |episodes| with_assessor(synthetic_config("ppo", episodes, 4), "median_stop", "min_completed = 5");
    let whole_db = dir.path().join("whole.sqlite");
    let (whole_run, whole) = search(config(150), &whole_db).unwrap();
    let cut_db = dir.path().join("cut.sqlite");
    let (cut_run, _) = search(config(60), &cut_db).unwrap();
    let resumed = search::search(
        Start::Resume {
            run: cut_run,
            force: false,
            episodes: Some(150),
        },
        &SearchOptions::new(cut_db.clone()),
    )
    .unwrap();
    let key = |e: &EpisodeRecord| (e.architecture.clone(), e.reward.to_bits(), e.cache_hit);
    assert_eq!(
        whole.iter().map(key).collect::<Vec<_>>(),
        resumed.episodes.iter().map(key).collect::<Vec<_>>()
    );
    let stopped = |db: &Path, run| outcomes(db, run).iter().map(|o| o.curve.stopped).collect::<Vec<_>>();
    let whole_stopped = stopped(&whole_db, whole_run);
    assert!(whole_stopped[60..].iter().any(|s| *s), "children stopped after the cut");
    assert_eq!(whole_stopped, stopped(&cut_db, cut_run));
}

/// Real training (tiny synthetic dataset, 3 epochs) with an assessor that stops on every call:
/// every child trains one epoch, its reward is that epoch's accuracy, the curve is stored, and
/// the report shows the curves and the time saved. The `none` plugin records whole curves.
#[test]
fn real_training_records_curves_and_the_report_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let mut config = synthetic_config("random", 4, 2);
    config.evaluator = nas_config::EvaluatorKind::Train;
    config.dataset = nas_datasets::DatasetName::Synthetic.into();
    config.train.epochs = 3;
    let mut stopping = with_assessor(config.clone(), "hostile_assessor", r#"mode = "stop-always""#);
    stopping.search.keep_weights = 2;
    let (run, episodes) = search(stopping, &db).unwrap();
    let store = Store::open(&db).unwrap();
    for ((episode, outcome), id) in episodes
        .iter()
        .zip(outcomes(&db, run))
        .zip(store.episode_evaluations(run).unwrap().into_values())
    {
        assert!(
            outcome.curve.stopped && outcome.curve.accuracy.len() == 1,
            "{outcome:?}"
        );
        assert_eq!(episode.accuracy, outcome.curve.accuracy[0]);
        assert!(outcome.failure.is_none());
        assert!(episode.stopped);
        assert_eq!(
            store.kept_weights(run, id).unwrap(),
            None,
            "a child stopped after 1 of 3 epochs is not the protocol's model"
        );
    }
    // So exporting the best one trains it for the protocol's 3 epochs.
    let exported = nas_outputs::export::export(
        &store,
        &nas_outputs::export::ExportRequest {
            run,
            choice: nas_outputs::export::Choice::Top(1),
            epochs: None,
            out: dir.path().join("export"),
            force: false,
            data_dir: None,
            device: nas_config::DeviceChoice::Cpu,
        },
        &mut nas_outputs::export::Quiet,
    )
    .unwrap();
    assert!(!exported[0].from_search && exported[0].card.protocol.epochs == 3);
    let out = dir.path().join("report");
    let md = std::fs::read_to_string(nas_outputs::report::write_report(&Store::open(&db).unwrap(), run, &out).unwrap())
        .unwrap();
    assert!(out.join("learning_curves.png").is_file() && out.join("learning_curves.svg").is_file());
    assert!(md.contains("| assessor | hostile_assessor 0.1.0 |"), "{md}");
    assert!(
        md.contains("The assessor stopped it early") && md.contains("(stopped early) |"),
        "the best child was stopped, and the report says so: {md}"
    );
    let trained = episodes.iter().filter(|e| !e.cache_hit).count();
    assert!(
        md.contains(&format!("stopped {trained} of the {trained} children"))
            && md.contains(&format!("{trained} of the {} epochs", 3 * trained)),
        "{md}"
    );

    let (run, episodes) = search(with_assessor(config, "none", ""), &db).unwrap();
    for (episode, outcome) in episodes.iter().zip(outcomes(&db, run)) {
        assert!(
            !outcome.curve.stopped && outcome.curve.accuracy.len() == 3,
            "{outcome:?}"
        );
        assert_eq!(episode.accuracy, outcome.curve.accuracy[2]);
        assert!(
            !episode.cache_hit,
            "stopped children of the first run are trained again"
        );
    }
}

/// A hostile assessor is stopped like any plugin: the search ends with an error naming the
/// plugin and the call, and keeps every committed episode; the in-flight child is not recorded.
#[test]
fn a_hostile_assessor_is_contained() {
    for (mode, expect) in [
        ("panic", "panicked at"),
        ("infinite-loop", "time limit"),
        ("memory-bomb", "memory cap"),
        ("error", "hostile assessor refuses to judge"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nas.sqlite");
        let mut config = with_assessor(
            synthetic_config("random", 30, 1),
            "hostile_assessor",
            &format!("mode = \"{mode}\"\nafter = 20"),
        );
        config.sandbox.call_timeout_secs = 0.5;
        config.sandbox.memory_mib = 64;
        let e = format!("{:#}", search(config, &db).unwrap_err());
        assert!(
            e.contains("plugin hostile_assessor 0.1.0, call assess:") && e.contains(expect),
            "{mode}: {e}"
        );
        assert!(e.contains("--resume 1"), "{mode}: {e}");
        let store = Store::open(&db).unwrap();
        let kept = store.episodes(1).unwrap();
        // 20 assess calls behave: each child trained is asked 4 times (5 epochs), so 5 children
        // complete (and any cache hits among them), and the search stops at a later one.
        assert!(kept.len() >= 5 && kept.len() < 30, "{mode}: {} kept", kept.len());
        assert_eq!(store.run(1).unwrap().status, "failed");
    }
}

/// Answers no SDK can give: a verdict or result tag out of range is refused as a failure of the
/// plugin, not read as some verdict.
#[test]
fn out_of_range_verdicts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    let arch: Architecture = "fc(64)".parse().unwrap();
    let curve = CurveInput {
        architecture: &arch,
        params: 10,
        accuracy: &[0.5],
        epochs: 5,
    };
    let assessor = |tag: u8, verdict: u8| {
        let path = common::wat::wat_assessor(dir.path(), &format!("wat_{tag}_{verdict}"), tag, verdict);
        let mut a = AssessorPlugin::instantiate(&rt, &rt.load(&path).unwrap(), SandboxLimits::default(), 0).unwrap();
        a.init("{}").unwrap();
        a
    };
    assert_eq!(assessor(0, 0).assess(&curve).unwrap(), Verdict::Continue);
    assert_eq!(assessor(0, 1).assess(&curve).unwrap(), Verdict::Stop);
    let e = assessor(1, 0).assess(&curve).unwrap_err();
    assert!(!e.fatal && e.to_string().contains("no verdict"), "{e}");
    for (tag, verdict) in [(0, 2), (0, 255), (2, 0)] {
        let mut a = assessor(tag, verdict);
        let e = a.assess(&curve).unwrap_err();
        assert!(
            e.fatal && e.to_string().starts_with("plugin wat_assessor 0.1.0, call assess:"),
            "{e}"
        );
        // The instance is never entered again.
        assert!(a
            .assess(&curve)
            .unwrap_err()
            .to_string()
            .contains("stopped after an earlier failure"));
    }
}

/// Plugins built against contract 0.1.0 (before assessors) load and run beside a 0.2 assessor,
/// and the 0.1 reward shaper is told stopped children without the fields its contract lacks.
#[test]
fn contract_0_1_plugins_run_beside_an_assessor() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/contract-0.1.0");
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(dir.path().join("cache"))).unwrap();
    for name in ["random", "accuracy"] {
        let loaded = rt.load(&fixtures.join(format!("{name}.wasm"))).unwrap();
        assert_eq!(loaded.contract_version, "0.1.0", "{name}");
    }
    let db = dir.path().join("nas.sqlite");
    let mut config = with_assessor(synthetic_config("random", 80, 3), "median_stop", "min_completed = 5");
    config.agent = fixtures.join("random.wasm").display().to_string();
    config.reward = fixtures.join("accuracy.wasm").display().to_string();
    let (run, old) = search(config, &db).unwrap();
    let stopped = outcomes(&db, run).iter().filter(|o| o.curve.stopped).count();
    assert!(stopped > 0);
    // The same search with the current plugins: the same episodes.
    let db2 = dir.path().join("nas2.sqlite");
    let (_, new) = search(
        with_assessor(synthetic_config("random", 80, 3), "median_stop", "min_completed = 5"),
        &db2,
    )
    .unwrap();
    let key = |e: &EpisodeRecord| (e.architecture.clone(), e.reward.to_bits());
    assert_eq!(
        old.iter().map(key).collect::<Vec<_>>(),
        new.iter().map(key).collect::<Vec<_>>()
    );
}

/// Runs `nas-host search` (workers are processes of the binary) with `config` and `extra` flags.
fn search_binary(config: &RunConfig, db: &Path, extra: &[&str]) -> Vec<EpisodeRecord> {
    let file = db.with_extension("toml");
    std::fs::write(&file, toml::to_string(config).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args([
            "search",
            "--config",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .args(extra)
        .env("NAS_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "search failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Store::open(db).unwrap().episodes(1).unwrap()
}

/// Children that workers train are watched too: each worker posts the curve after every epoch
/// and waits for the verdict the search's assessor gives. A 2-worker `sync` run equals the run
/// that trains its 2 environments in the search process, stop decisions included; with real
/// training, the workers stop where the assessor says.
#[test]
fn an_assessor_watches_children_that_workers_train() {
    let dir = tempfile::tempdir().unwrap();
    let config = with_assessor(synthetic_config("ppo", 60, 4), "median_stop", "min_completed = 5");
    let (in_process, workers) = (dir.path().join("in-process.sqlite"), dir.path().join("workers.sqlite"));
    let a = search_binary(&config, &in_process, &["--envs", "2"]);
    let b = search_binary(&config, &workers, &["--workers", "2"]);
    let key = |e: &EpisodeRecord| (e.index, e.env, e.architecture.clone(), e.reward.to_bits());
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        b.iter().map(key).collect::<Vec<_>>()
    );
    let stopped = |db: &Path| outcomes(db, 1).iter().map(|o| o.curve.stopped).collect::<Vec<_>>();
    assert_eq!(stopped(&in_process), stopped(&workers));
    let n_stopped = stopped(&workers).iter().filter(|s| **s).count();
    assert!(n_stopped >= 10, "only {n_stopped} of 60 stopped");
    let conn = rusqlite::Connection::open(&workers).unwrap();
    let (jobs, watched): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE watch_epochs = 5 AND verdict_epochs > 0) FROM queue",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        jobs > 0 && watched == jobs,
        "{watched} of {jobs} queued children were judged"
    );

    let mut config = synthetic_config("random", 6, 2);
    config.evaluator = nas_config::EvaluatorKind::Train;
    config.dataset = nas_datasets::DatasetName::Synthetic.into();
    config.train.epochs = 3;
    let config = with_assessor(config, "hostile_assessor", r#"mode = "stop-always""#);
    let real = dir.path().join("real.sqlite");
    let episodes = search_binary(&config, &real, &["--workers", "2"]);
    assert_eq!(episodes.len(), 6);
    for (episode, outcome) in episodes.iter().zip(outcomes(&real, 1)) {
        assert!(
            outcome.curve.stopped && outcome.curve.accuracy.len() == 1 && outcome.failure.is_none(),
            "{outcome:?}"
        );
        assert_eq!(episode.accuracy, outcome.curve.accuracy[0]);
    }
}

/// A worker whose search no longer answers (killed outright) gives up waiting for a verdict
/// after its idle limit, saying why, and puts the child back in the queue untrained.
#[test]
fn a_worker_without_verdicts_gives_the_child_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let store = Store::open(&db).unwrap();
    let settings = serde_json::to_string(&nas_config::SyntheticConfig::default()).unwrap();
    let job = store
        .enqueue(&nas_store::NewJob {
            cache_key: "k",
            architecture: "conv(10,3) fc(64)",
            dataset: "mnist3",
            evaluator: "synthetic",
            protocol_json: &settings,
            device: "none",
            origin: Some((1, 0)),
            keep_weights: false,
            data_sha256: "",
            watch_epochs: Some(5),
            cost_json: None,
        })
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args(["worker", "--idle-exit", "1", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no verdict from the search's assessor within 1 s") && stderr.contains("conv(10,3) fc(64)"),
        "{stderr}"
    );
    assert_eq!(store.job_states(&[job]).unwrap()[0].1, nas_store::JobState::Pending);
    assert!(store.evaluation_of_episode("k", 1, 0).unwrap().is_none());
    let curve = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT curve FROM queue", [], |r| r.get::<_, Option<String>>(0))
        .unwrap();
    assert_eq!(
        curve.map(|c| serde_json::from_str::<Vec<f64>>(&c).unwrap().len()),
        Some(1),
        "it posted epoch 1 and waited there"
    );
}
