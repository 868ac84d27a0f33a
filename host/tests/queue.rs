//! The queue's guarantees, checked on both store backends (SQLite, and PostgreSQL on a
//! throwaway server): one job per key in flight, only the lease holder records a result, a
//! duplicated report is not recorded twice, concurrent workers claim each child once, a child
//! that kills its workers is given up, and a watched child's curve and verdicts pass between its
//! worker and its run.

mod common;

use std::path::Path;

use common::pg::PgServer;
use nas_core::record::Outcome;
use nas_store::queue::MAX_ATTEMPTS;
use nas_store::{Awaited, CurveToJudge, JobState, NewJob, Store};

fn job(key: &str) -> NewJob<'_> {
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

fn outcome(accuracy: f64) -> Outcome {
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

fn only_the_lease_holder_records_a_result(store: &Store) {
    // The search wants the weights back with the result.
    let id = store
        .enqueue(&NewJob {
            keep_weights: true,
            ..job("k")
        })
        .unwrap();
    assert_eq!(store.enqueue(&job("k")).unwrap(), id, "one job per key in flight");
    assert_eq!(
        store.claim("w1", "cuda", 10.0).unwrap(),
        None,
        "a cpu child is not for a cuda worker"
    );
    // w1's lease runs out almost at once (50 ms); w2 takes the child over.
    let stale = store.claim("w1", "cpu", 0.05).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let fresh = store.claim("w2", "cpu", 60.0).unwrap().unwrap();
    assert_eq!((stale.id, fresh.id, fresh.attempt), (id, id, 2));
    assert!(!store.renew_lease(&stale, "w1", 60.0).unwrap());
    assert!(store.renew_lease(&fresh, "w2", 60.0).unwrap());
    let late = outcome(0.1);
    assert_eq!(
        store.complete(&stale, "w1", &stale.evaluation(1, &late), None).unwrap(),
        None
    );
    let good = outcome(0.9);
    let evaluation = store
        .complete(&fresh, "w2", &fresh.evaluation(1, &good), Some(&[1, 2, 3]))
        .unwrap()
        .unwrap();
    // A duplicated report of the same result, and the stale worker's late one, change nothing.
    assert_eq!(
        store.complete(&fresh, "w2", &fresh.evaluation(1, &good), None).unwrap(),
        None
    );
    assert_eq!(
        store.complete(&stale, "w1", &stale.evaluation(1, &late), None).unwrap(),
        None
    );
    assert_eq!(
        store.job_states(&[id]).unwrap(),
        vec![(
            id,
            JobState::Done {
                evaluation_id: evaluation
            }
        )]
    );
    assert_eq!(store.cached_evaluation("k").unwrap().unwrap().outcome, good);
    assert_eq!(store.take_job_weights(id).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(store.take_job_weights(id).unwrap(), None);
}

fn a_child_that_kills_its_workers_is_given_up(store: &Store) {
    let id = store.enqueue(&job("deadly")).unwrap();
    for attempt in 1..=MAX_ATTEMPTS {
        let claimed = store.claim("w", "cpu", 60.0).unwrap().unwrap();
        assert_eq!(claimed.attempt, attempt);
        assert_eq!(
            store
                .requeue_owner("w", "worker w died", nas_store::OwnerGone::Died)
                .unwrap(),
            1
        );
    }
    assert_eq!(store.claim("w", "cpu", 60.0).unwrap(), None);
    assert!(matches!(store.job_states(&[id]).unwrap()[0].1, JobState::Done { .. }));
    let failed = store.evaluation_of_episode("deadly", 1, 0).unwrap().unwrap();
    assert!(failed.outcome.transient);
    assert!(failed.outcome.failure.unwrap().contains("worker w died"));
    // Queued again, it is trained afresh.
    store.enqueue(&job("deadly")).unwrap();
    assert_eq!(store.claim("w", "cpu", 60.0).unwrap().unwrap().attempt, 1);
}

fn watched(key: &str, run: i64, episode: usize) -> NewJob<'_> {
    NewJob {
        origin: Some((run, episode)),
        watch_epochs: Some(3),
        cost_json: None,
        ..job(key)
    }
}

fn a_watched_child_is_its_runs_own_and_verdicts_reach_its_lease_holder(store: &Store) {
    let mine = store.enqueue(&watched("w", 1, 0)).unwrap();
    assert_eq!(
        store.enqueue(&watched("w", 1, 1)).unwrap(),
        mine,
        "the run's own environments join it"
    );
    let unwatched = store.enqueue(&job("w")).unwrap();
    let other_run = store.enqueue(&watched("w", 2, 0)).unwrap();
    assert!(
        unwatched != mine && other_run != mine && other_run != unwatched,
        "no other run waits on a training this run's assessor may stop"
    );
    // w1 claims it with a lease that runs out almost at once, so w2 takes it over below.
    let stale = store.claim("w1", "cpu", 0.05).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(
        (stale.id, stale.cache_key.as_str(), stale.watch_epochs),
        (mine, "w", Some(3))
    );
    assert_eq!(store.curves_to_judge(&[mine]).unwrap(), vec![]);
    assert!(store.post_curve(&stale, "w1", &[0.5]).unwrap());
    assert_eq!(store.awaited_verdict(&stale, "w1", 1).unwrap(), Awaited::Pending);
    let first = store.curves_to_judge(&[mine, unwatched]).unwrap();
    assert_eq!(
        first,
        vec![CurveToJudge {
            job: mine,
            attempt: 1,
            accuracy: vec![0.5]
        }]
    );
    store.give_verdict(&first[0], false).unwrap();
    assert_eq!(store.awaited_verdict(&stale, "w1", 1).unwrap(), Awaited::Continue);
    assert_eq!(store.curves_to_judge(&[mine]).unwrap(), vec![], "judged once");
    assert!(store.post_curve(&stale, "w1", &[0.5, 0.55]).unwrap());
    assert_eq!(store.awaited_verdict(&stale, "w1", 2).unwrap(), Awaited::Pending);
    let second = store.curves_to_judge(&[mine]).unwrap();

    // w2 takes the child over and trains it afresh: w1's curve and verdicts are gone, a verdict on
    // w1's curve does not reach w2, and w1 learns that its lease is lost.
    let fresh = store.claim("w2", "cpu", 60.0).unwrap().unwrap();
    assert_eq!((fresh.id, fresh.attempt), (mine, 2));
    assert_eq!(store.curves_to_judge(&[mine]).unwrap(), vec![]);
    store.give_verdict(&second[0], true).unwrap();
    assert!(!store.post_curve(&stale, "w1", &[0.5, 0.55]).unwrap());
    assert_eq!(store.awaited_verdict(&stale, "w1", 2).unwrap(), Awaited::LeaseLost);
    assert!(store.post_curve(&fresh, "w2", &[0.4]).unwrap());
    assert_eq!(store.awaited_verdict(&fresh, "w2", 1).unwrap(), Awaited::Pending);
    let judged = store.curves_to_judge(&[mine]).unwrap();
    assert_eq!((judged[0].attempt, judged[0].accuracy.clone()), (2, vec![0.4]));
    store.give_verdict(&judged[0], true).unwrap();
    assert_eq!(store.awaited_verdict(&fresh, "w2", 1).unwrap(), Awaited::Stop);

    // Stopped, it is recorded under its episode's own key, never as the architecture's.
    let mut stopped = outcome(0.4);
    stopped.curve.accuracy = vec![0.4];
    stopped.curve.stopped = true;
    store
        .complete(&fresh, "w2", &fresh.evaluation(1, &stopped), None)
        .unwrap()
        .unwrap();
    assert!(store.cached_evaluation("w").unwrap().is_none());
    assert!(
        store
            .evaluation_of_episode("w", 1, 0)
            .unwrap()
            .unwrap()
            .outcome
            .curve
            .stopped
    );
}

fn concurrent_workers_each_claim_a_different_child(db: &Path) {
    let store = Store::open(db).unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    for key in &keys {
        store.enqueue(&job(key)).unwrap();
    }
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                scope.spawn(move || {
                    let store = Store::open(db).unwrap();
                    let mut mine = Vec::new();
                    while let Some(job) = store.claim(&format!("w{w}"), "cpu", 60.0).unwrap() {
                        mine.push(job.id);
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claimed.concat();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(
        (before, all.len()),
        (40, 40),
        "every child claimed exactly once: {claimed:?}"
    );
}

#[test]
fn the_sqlite_queue_keeps_its_guarantees() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("a.sqlite")).unwrap();
    only_the_lease_holder_records_a_result(&store);
    a_child_that_kills_its_workers_is_given_up(&store);
    a_watched_child_is_its_runs_own_and_verdicts_reach_its_lease_holder(&store);
    concurrent_workers_each_claim_a_different_child(&dir.path().join("b.sqlite"));
}

#[test]
fn the_postgres_queue_keeps_its_guarantees() {
    let Some(server) = PgServer::start() else { return };
    let store = Store::open(&server.database("leases")).unwrap();
    only_the_lease_holder_records_a_result(&store);
    a_child_that_kills_its_workers_is_given_up(&store);
    a_watched_child_is_its_runs_own_and_verdicts_reach_its_lease_holder(&store);
    concurrent_workers_each_claim_a_different_child(&server.database("claims"));
}
