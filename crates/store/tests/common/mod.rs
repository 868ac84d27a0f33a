//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

pub mod pg;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use nas_core::record::Outcome;
use nas_store::{NewEvaluation, NewJob};

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
