//! `nas-host eval` trains the seed's 50 models: every sample afresh with its own training seed,
//! so repeated architectures are separate models and the std includes training noise.

mod common;

use common::{options, plugin, run};
use nas_config::EvaluatorKind;
use nas_config::RunConfig;
use nas_store::Store;

/// The hostile test agent in its default mode always takes the first valid action, so every
/// sample is the same architecture: the case where reusing the cache hides training noise.
fn repeated_architecture_run(db: std::path::PathBuf) -> i64 {
    let mut config = RunConfig {
        agent: plugin("hostile").display().to_string(),
        reward: plugin("accuracy").display().to_string(),
        dataset: nas_datasets::DatasetName::Synthetic.into(),
        episodes: 2,
        evaluator: EvaluatorKind::Train,
        ..RunConfig::default()
    };
    config.train.epochs = 1;
    run(config, db).0
}

#[test]
fn eval_trains_every_sample_afresh_unless_told_to_reuse_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.sqlite");
    let run_id = repeated_architecture_run(db.clone());

    let fresh = nas_search::frozen_policy::eval(run_id, Some(4), None, &options(db.clone())).unwrap();
    assert_eq!((fresh.trained, fresh.reused), (4, 0));
    let architectures: std::collections::BTreeSet<&str> =
        fresh.samples.iter().map(|s| s.architecture.as_str()).collect();
    assert_eq!(architectures.len(), 1, "one architecture, sampled 4 times");
    let ids: std::collections::BTreeSet<i64> = fresh.samples.iter().map(|s| s.evaluation_id).collect();
    let seeds: std::collections::BTreeSet<u64> = fresh.samples.iter().map(|s| s.train_seed.unwrap()).collect();
    assert_eq!((ids.len(), seeds.len()), (4, 4), "four models with four training seeds");
    // Each model is stored with its own protocol (its training seed), not shared through the cache.
    let protocols: std::collections::BTreeSet<String> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        ids.iter()
            .map(|id| {
                conn.query_row("SELECT protocol FROM evaluations WHERE id = ?1", [id], |r| r.get(0))
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(protocols.len(), 4);
    assert!(fresh.to_markdown().contains("4 trained for this evaluation, 0 reused"));
    // Stored with their seeds.
    let stored = Store::open(&db).unwrap().eval_samples(run_id).unwrap();
    assert_eq!(stored, fresh.samples);

    let reused = nas_search::frozen_policy::eval(run_id, Some(4), Some(true), &options(db.clone())).unwrap();
    assert_eq!((reused.trained, reused.reused), (0, 4));
    assert_eq!(reused.std_accuracy, 0.0);
    let markdown = reused.to_markdown();
    assert!(
        markdown.contains("0 trained for this evaluation, 4 reused") && markdown.contains("--reuse-cache"),
        "{markdown}"
    );
}
