//! Evaluations are immutable once written (#22 item 3): a new result for an architecture is a new
//! row, so a transient failure, a given-up child or a `--no-cache` retrain never changes what an
//! earlier episode recorded; the cache serves the newest result that is not transient.

mod common;

use common::pg::PgServer;
use common::{evaluation, job, outcome, transient};
use nas_store::queue::{OwnerGone, MAX_ATTEMPTS};
use nas_store::Store;

fn a_new_result_is_a_new_row(store: &Store) {
    // A surrogate's prediction stays marked as one through the store (#24).
    let predicted = nas_core::record::Outcome {
        predicted: true,
        cost: None,
        ..outcome(0.7)
    };
    let id = store.insert_evaluation(&evaluation("p", &predicted, None)).unwrap();
    assert!(store.evaluation(id).unwrap().outcome.predicted);

    // A child's cost (#28) comes back whole: multiply-adds, activations and the latency measured.
    let costed = nas_core::record::Outcome {
        cost: Some(nas_core::record::Cost {
            mult_adds: 123_456_789_012,
            activation_bytes: 4096,
            latency: Some(nas_core::record::Latency {
                device: "cuda".into(),
                batch: 1,
                runs: 30,
                threads: 1,
                median_ms: 0.25,
                p90_ms: 0.5,
                min_ms: 0.125,
                throughput: Some(nas_core::record::Throughput {
                    batch: 64,
                    median_ms: 2.0,
                    per_second: 32_000.0,
                }),
                seconds: 0.01,
            }),
        }),
        ..outcome(0.7)
    };
    let id = store.insert_evaluation(&evaluation("c", &costed, None)).unwrap();
    assert_eq!(store.evaluation(id).unwrap().outcome, costed);
    assert!(
        !store
            .evaluation(store.insert_evaluation(&evaluation("q", &outcome(0.7), None)).unwrap())
            .unwrap()
            .outcome
            .predicted
    );

    let good = outcome(0.9);
    let first = store.insert_evaluation(&evaluation("k", &good, Some((1, 0)))).unwrap();
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, first);

    // A later attempt fails transiently: recorded, not served, and the good result stays.
    let oom = transient("out of memory: CUDA");
    let failed = store.insert_evaluation(&evaluation("k", &oom, Some((2, 0)))).unwrap();
    assert_ne!(failed, first);
    assert_eq!(store.evaluation(first).unwrap().outcome, good);
    assert_eq!(store.evaluation(failed).unwrap().outcome, oom);
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, first);

    // A child the workers died on is given up: a transient row of its own.
    let deadly = nas_store::NewJob {
        origin: Some((3, 0)),
        ..job("k")
    };
    store.enqueue(&deadly).unwrap();
    for _ in 0..MAX_ATTEMPTS {
        store.claim("w", "cpu", 60.0).unwrap().unwrap();
        store.requeue_owner("w", "worker w died", OwnerGone::Died).unwrap();
    }
    assert_eq!(store.claim("w", "cpu", 60.0).unwrap(), None);
    let given_up = store.evaluation_of_episode("k", 3, 0).unwrap().unwrap();
    assert!(given_up.outcome.transient);
    assert!(given_up.id != first && given_up.id != failed);
    assert_eq!(store.evaluation(first).unwrap().outcome, good);
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, first);

    // A `--no-cache` retrain: a new row, which the cache now serves.
    let retrained = outcome(0.8);
    let newest = store
        .insert_evaluation(&evaluation("k", &retrained, Some((4, 0))))
        .unwrap();
    assert!(![first, failed, given_up.id].contains(&newest));
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, newest);
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().outcome, retrained);
    // Every episode still finds what it recorded.
    assert_eq!(store.evaluation_of_episode("k", 1, 0).unwrap().unwrap().id, first);
    assert_eq!(store.evaluation_of_episode("k", 2, 0).unwrap().unwrap().id, failed);
    assert_eq!(store.evaluation_of_episode("k", 4, 0).unwrap().unwrap().id, newest);
    assert_eq!(store.evaluation(first).unwrap().outcome, good);

    // A failure that is a property of the architecture (divergence), newer, is served.
    let diverged = nas_core::record::Outcome {
        failure: Some("diverged".into()),
        ..outcome(0.0)
    };
    let last = store
        .insert_evaluation(&evaluation("k", &diverged, Some((5, 0))))
        .unwrap();
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().id, last);

    // A worker's result for a job is a new row too.
    let other = nas_store::NewJob {
        origin: Some((6, 0)),
        ..job("k")
    };
    store.enqueue(&other).unwrap();
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    let worked = outcome(0.7);
    let by_worker = store
        .complete(&claimed, "w", &claimed.evaluation(1, &worked), None)
        .unwrap()
        .unwrap();
    assert!(![first, failed, given_up.id, newest, last].contains(&by_worker));
    assert_eq!(store.evaluation(newest).unwrap().outcome, retrained);
    assert_eq!(store.evaluation(last).unwrap().outcome, diverged);
}

#[test]
fn a_new_result_is_a_new_row_sqlite() {
    a_new_result_is_a_new_row(&Store::open(&common::temp_dir("evaluations").join("e.sqlite")).unwrap());
}

#[test]
fn a_new_result_is_a_new_row_postgres() {
    if let Some(server) = PgServer::start() {
        a_new_result_is_a_new_row(&Store::open(&server.database("evaluations")).unwrap());
    }
}
