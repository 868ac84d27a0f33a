//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

pub mod pg;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use nas_core::record::Outcome;
use nas_store::{NewEvaluation, NewJob, NewRun, PluginRecord, Store, TableRecord};

/// A fresh directory under the system's temporary directory (left behind; they are small).
pub fn temp_dir(what: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "nas-store-{what}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A new run with placeholder plugins; a table run (`evaluator = "table"`) when `table` is given,
/// else a training run.
pub fn new_run(store: &Store, table: Option<&TableRecord>) -> i64 {
    let plugin = PluginRecord {
        name: "p".into(),
        version: "1".into(),
        path: "p.wasm".into(),
        sha256: "x".into(),
    };
    store
        .create_run(&NewRun {
            config_toml: "",
            dataset: "cifar5",
            evaluator: if table.is_some() { "table" } else { "train" },
            seed: 0,
            episodes_target: 1,
            agent: &plugin,
            reward: &plugin,
            assessor: None,
            device: "cpu",
            no_cache: false,
            table,
        })
        .unwrap()
}

pub fn job(key: &str) -> NewJob<'_> {
    NewJob {
        cache_key: key,
        architecture: "conv(10,3)",
        dataset: "mnist3",
        evaluator: "train",
        protocol_json: "{}",
        device: "cpu",
        origin: Some((1, 0)),
        keep_weights: false,
        data_sha256: "",
        watch_epochs: None,
        cost_json: None,
    }
}

pub fn outcome(accuracy: f64) -> Outcome {
    Outcome {
        accuracy,
        params: 10,
        seconds: 1.0,
        failure: None,
        transient: false,
        curve: Default::default(),
        predicted: false,
        cost: None,
    }
}

pub fn transient(reason: &str) -> Outcome {
    Outcome {
        failure: Some(reason.to_string()),
        transient: true,
        ..outcome(0.0)
    }
}

pub fn evaluation<'a>(key: &'a str, outcome: &'a Outcome, origin: Option<(i64, usize)>) -> NewEvaluation<'a> {
    NewEvaluation {
        cache_key: key,
        architecture: "conv(10,3)",
        dataset: "mnist3",
        evaluator: "train",
        protocol_json: "{}",
        depth: 1,
        outcome,
        origin,
    }
}
