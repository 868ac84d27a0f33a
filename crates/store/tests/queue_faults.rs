//! The queue under faults (#22), on both backends: SQLite always, PostgreSQL on a throwaway
//! server (skipped with a note when PostgreSQL is not installed, unless `NAS_TEST_PG=1`).

mod common;

use common::pg::PgServer;
use common::{job, outcome};
use nas_store::{JobState, NewJob, Store};

fn sqlite() -> Store {
    Store::open(&common::temp_dir("queue").join("q.sqlite")).unwrap()
}

fn postgres(test: impl FnOnce(&Store)) {
    if let Some(server) = PgServer::start() {
        test(&Store::open(&server.database("faults")).unwrap());
    }
}

fn lease_secs_must_be_positive_and_finite(store: &Store) {
    store.enqueue(&job("k")).unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = store.claim("w", "cpu", bad).unwrap_err().to_string();
        assert!(error.contains("lease_secs"), "{error}");
    }
    let held = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let error = store.renew_lease(&held, "w", bad).unwrap_err().to_string();
        assert!(error.contains("lease_secs"), "{error}");
    }
    assert!(store.renew_lease(&held, "w", 0.5).unwrap());
}

#[test]
fn lease_secs_must_be_positive_and_finite_sqlite() {
    lease_secs_must_be_positive_and_finite(&sqlite());
}

#[test]
fn lease_secs_must_be_positive_and_finite_postgres() {
    postgres(lease_secs_must_be_positive_and_finite);
}

/// A `--no-cache` run whose two environments design the same architecture, the first already
/// trained: queueing it again must not reset the finished job the first still waits on.
fn a_requeue_leaves_the_finished_job_to_its_waiters(store: &Store) {
    let first_env = NewJob {
        keep_weights: true,
        ..job("k")
    };
    let first = store.enqueue(&first_env).unwrap();
    let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    let good = outcome(0.9);
    let trained = store
        .complete(&claimed, "w", &claimed.evaluation(1, &good), Some(&[7, 7]))
        .unwrap()
        .unwrap();

    let second_env = NewJob {
        origin: Some((1, 1)),
        keep_weights: true,
        ..job("k")
    };
    let second = store.enqueue(&second_env).unwrap();
    assert_ne!(second, first, "a new training is a new job");
    assert_eq!(
        store.job_states(&[first, second]).unwrap(),
        vec![
            (first, JobState::Done { evaluation_id: trained }),
            (second, JobState::Pending)
        ]
    );
    assert_eq!(
        store.take_job_weights(first).unwrap(),
        Some(vec![7, 7]),
        "the kept weights stay"
    );
    // While the new training is queued, more of the same join it.
    let third_env = NewJob {
        origin: Some((1, 2)),
        ..job("k")
    };
    assert_eq!(store.enqueue(&third_env).unwrap(), second);
    let again = store.claim("w", "cpu", 60.0).unwrap().unwrap();
    assert_eq!((again.id, again.attempt, again.origin), (second, 1, Some((1, 1))));
    assert_eq!(
        store.claim("w2", "cpu", 60.0).unwrap(),
        None,
        "trained once more, not twice"
    );
    let retrained = store
        .complete(&again, "w", &again.evaluation(1, &outcome(0.8)), None)
        .unwrap()
        .unwrap();
    assert_ne!(retrained, trained);
    assert_eq!(
        store.job_states(&[first, second]).unwrap(),
        vec![
            (first, JobState::Done { evaluation_id: trained }),
            (
                second,
                JobState::Done {
                    evaluation_id: retrained
                }
            )
        ]
    );
    assert_eq!(store.evaluation(trained).unwrap().outcome, good);
}

#[test]
fn a_requeue_leaves_the_finished_job_to_its_waiters_sqlite() {
    a_requeue_leaves_the_finished_job_to_its_waiters(&sqlite());
}

#[test]
fn a_requeue_leaves_the_finished_job_to_its_waiters_postgres() {
    postgres(a_requeue_leaves_the_finished_job_to_its_waiters);
}
