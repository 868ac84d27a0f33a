//! `--evaluator table:FILE` (#24): a search answered from a benchmark table serves recorded
//! accuracies exactly, marks the surrogate's predictions in the store, and says how good the
//! surrogate is.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::plugin;
use common::process::BIN;
use nas_bench_table::{BenchRow, BenchTable};
use nas_core::arch::Architecture;
use nas_core::mdp::{Mdp, MdpConfig};
use nas_store::Store;
use rand::SeedableRng;

fn search(dir: &std::path::Path, db: &str, evaluator: &str) -> String {
    let output = Command::new(BIN)
        .current_dir(dir)
        .env("NAS_LOG", "info")
        .args([
            "search",
            "--dataset",
            "mnist3",
            "--evaluator",
            evaluator,
            "--episodes",
            "12",
        ])
        .args(["--seed", "5", "--db", db, "--agent"])
        .arg(plugin("random"))
        .arg("--reward")
        .arg(plugin("accuracy"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "search failed: {log}");
    log
}

/// `nas-host report 1`'s report.md.
fn report_of_run_1(dir: &std::path::Path, db: &std::path::Path) -> String {
    let out = dir.join("report");
    let report = Command::new(BIN)
        .args([
            "report",
            "1",
            "--db",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    std::fs::read_to_string(out.join("report.md")).unwrap()
}

fn row(arch: &Architecture, accuracy: f64) -> BenchRow {
    let summary = arch.summary((1, 28, 28), 3);
    BenchRow {
        architecture: arch.to_string(),
        accuracy,
        params: summary.total_params(),
        mult_adds: summary.total_mult_adds(),
        seconds: 2.5,
        dataset: "mnist3".into(),
        protocol: "test".into(),
    }
}

#[test]
fn a_table_search_serves_recorded_accuracies_exactly_and_marks_predictions() {
    let dir = tempfile::tempdir().unwrap();
    // The random agent designs the same architectures for a seed whatever their rewards: a
    // synthetic run shows which, and the table records half of them.
    let first = dir.path().join("first.sqlite");
    search(dir.path(), first.to_str().unwrap(), "synthetic");
    let designed: Vec<Architecture> = Store::open(&first)
        .unwrap()
        .episodes(1)
        .unwrap()
        .iter()
        .map(|e| e.architecture.parse().unwrap())
        .collect();
    let mut rows = Vec::new();
    let mut recorded = BTreeMap::new();
    for (i, arch) in designed.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        // Values with many significant bits, to see they come back bit for bit.
        let accuracy = 0.5 + (i as f64) / 97.0;
        recorded.insert(arch.to_string(), accuracy);
        rows.push(row(arch, accuracy));
    }
    // Enough other architectures for a surrogate.
    let mdp = Mdp::new(MdpConfig::default(), 28);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    while rows.len() < 40 {
        let arch = mdp.sample_architecture(&mut rng);
        if !designed.contains(&arch) && !rows.iter().any(|r| r.architecture == arch.to_string()) {
            let accuracy = 0.4 + 0.05 * arch.depth() as f64;
            rows.push(row(&arch, accuracy));
        }
    }
    let table = dir.path().join("mnist3-test.csv");
    BenchTable::write(&table, &rows).unwrap();

    let db = dir.path().join("table.sqlite");
    let log = search(dir.path(), db.to_str().unwrap(), &format!("table:{}", table.display()));
    assert!(
        log.contains("table evaluator: 40 architectures") && log.contains("Kendall"),
        "the surrogate's held-out quality is said: {log}"
    );
    let store = Store::open(&db).unwrap();
    let evaluations = store.episode_evaluations(1).unwrap();
    let (mut exact, mut predicted) = (0, 0);
    for episode in store.episodes(1).unwrap() {
        let outcome = store.evaluation(evaluations[&episode.index]).unwrap().outcome;
        match recorded.get(&episode.architecture) {
            Some(accuracy) => {
                assert_eq!(
                    outcome.accuracy.to_bits(),
                    accuracy.to_bits(),
                    "{}",
                    episode.architecture
                );
                assert!(!outcome.predicted);
                exact += 1;
            }
            None => {
                assert!(outcome.predicted, "{} is not in the table", episode.architecture);
                assert!((0.0..=1.0).contains(&outcome.accuracy));
                predicted += 1;
            }
        }
    }
    assert!(exact > 0 && predicted > 0, "{exact} recorded, {predicted} predicted");

    // The report says which rewards are predictions, and how good the surrogate is.
    let text = report_of_run_1(dir.path(), &db);
    assert!(
        text.contains(&format!("{predicted} of 12 rewards were predicted")) && text.contains("Kendall"),
        "{text}"
    );
    // And so does `compare`, beside the table's results; with --plots it draws the anytime
    // curves against episodes and against distinct architectures.
    let plots = db.with_file_name("plots");
    let compare = Command::new(BIN)
        .args([
            "compare",
            "1",
            "--db",
            db.to_str().unwrap(),
            "--plots",
            plots.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&compare.stdout);
    assert!(compare.status.success(), "{}", String::from_utf8_lossy(&compare.stderr));
    assert!(
        text.contains("**Rewards predicted** by its surrogate")
            && text.contains(&format!("run 1 {predicted} of 12;"))
            && text.contains("Kendall"),
        "{text}"
    );
    for plot in [
        "anytime.png",
        "anytime.svg",
        "anytime-distinct.png",
        "anytime-distinct.svg",
    ] {
        assert!(plots.join(plot).is_file(), "no {plot} in {}", plots.display());
    }
    let agents = std::fs::read_to_string(plots.join("anytime.md")).unwrap();
    assert!(agents.contains("distinct architectures"), "{agents}");
}

#[test]
fn a_table_of_another_dataset_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("cifar.csv");
    let arch: Architecture = "conv(10,3)".parse().unwrap();
    BenchTable::write(
        &table,
        &[BenchRow {
            dataset: "cifar5".into(),
            ..row(&arch, 0.5)
        }],
    )
    .unwrap();
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args(["search", "--dataset", "mnist3", "--episodes", "2", "--db", "t.sqlite"])
        .arg("--evaluator")
        .arg(format!("table:{}", table.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("cifar5") && text.contains("mnist3"), "{text}");
}

/// A run answered from a table records the table (its checksum and the surrogate's quality) and
/// resumes only on that table: a grown or edited table would mix two benchmarks in one run.
#[test]
fn a_resumed_table_run_refuses_a_changed_table_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let mdp = Mdp::new(MdpConfig::default(), 28);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut rows: Vec<BenchRow> = Vec::new();
    while rows.len() < 41 {
        let arch = mdp.sample_architecture(&mut rng);
        if !rows.iter().any(|r| r.architecture == arch.to_string()) {
            rows.push(row(&arch, 0.4 + 0.05 * arch.depth() as f64));
        }
    }
    let table = dir.path().join("mnist3-test.csv");
    BenchTable::write(&table, &rows[..40]).unwrap();
    let db = dir.path().join("table.sqlite");
    search(dir.path(), db.to_str().unwrap(), &format!("table:{}", table.display()));
    let sha = |path: &std::path::Path| nas_core::checksum::sha256_hex(&std::fs::read(path).unwrap());
    let started_with = sha(&table);
    let recorded = Store::open(&db)
        .unwrap()
        .run(1)
        .unwrap()
        .table
        .expect("the run records its table");
    assert_eq!(recorded.sha256, started_with);
    let quality = recorded.surrogate_quality.expect("40 rows make a surrogate");
    assert!(
        quality.starts_with("surrogate held-out Kendall τ ") && quality.ends_with("40 rows)"),
        "{quality}"
    );

    // The table grows by a row (as a table still being built does).
    BenchTable::write(&table, &rows).unwrap();
    let resume = |force: bool| {
        let mut command = Command::new(BIN);
        command.current_dir(dir.path()).args([
            "search",
            "--resume",
            "1",
            "--episodes",
            "16",
            "--db",
            db.to_str().unwrap(),
        ]);
        if force {
            command.arg("--force");
        }
        command.output().unwrap()
    };
    let refused = resume(false);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("mnist3-test.csv changed since run 1 started") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(Store::open(&db).unwrap().episodes(1).unwrap().len(), 12, "nothing ran");

    // The report quotes the quality the run's predictions had, and says the file changed.
    let text = report_of_run_1(dir.path(), &db);
    assert!(text.contains(&quality), "{text}");
    assert!(
        text.contains(&format!("sha256 {} — the file has changed since", &started_with[..12])),
        "{text}"
    );

    // Forced, the run continues on the new table and records it.
    let forced = resume(true);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    let store = Store::open(&db).unwrap();
    assert_eq!(store.episodes(1).unwrap().len(), 16);
    let now = store.run(1).unwrap().table.unwrap();
    assert_eq!(now.sha256, sha(&table));
    assert!(now.surrogate_quality.unwrap().ends_with("41 rows)"));
}
