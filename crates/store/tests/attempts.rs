//! A child's attempts count only the workers that died on it (#22 item 2): a child handed back
//! for a reason that is not its fault (Ctrl-C or an error stopping the pool, a killed search
//! reclaimed on resume, a worker refusing its data, a worker giving up on a verdict) goes back to
//! the queue as often as it takes; [`MAX_ATTEMPTS`] deaths (a worker that exited while training
//! it, or stopped heartbeating) give it up. On both backends.

mod common;

use common::pg::PgServer;
use common::{job, outcome};
use nas_store::queue::{OwnerGone, MAX_ATTEMPTS};
use nas_store::{JobState, Store};

fn sqlite() -> Store {
    Store::open(&common::temp_dir("attempts").join("q.sqlite")).unwrap()
}

fn postgres(test: impl FnOnce(&Store)) {
    if let Some(server) = PgServer::start() {
        test(&Store::open(&server.database("attempts")).unwrap());
    }
}

fn interruptions_use_up_no_attempts(store: &Store) {
    let id = store.enqueue(&job("k")).unwrap();
    let mut last_attempt = 0;
    for round in 0..2 * MAX_ATTEMPTS {
        let claimed = store.claim("w", "cpu", 60.0).unwrap().expect("still queued");
        assert!(claimed.attempt > last_attempt, "each lease is a new generation");
        last_attempt = claimed.attempt;
        match round % 3 {
            // The pool stopped (Ctrl-C), or a killed search's worker reclaimed on resume.
            0 => assert_eq!(
                store
                    .requeue_owner("w", "worker w was stopped", OwnerGone::Stopped)
                    .unwrap(),
                1
            ),
            // The worker refused the child's data, or gave up waiting for a verdict.
            1 => assert!(store
                .hand_back(&claimed, "w", "this worker's copy of mnist3 has another checksum")
                .unwrap()),
            _ => assert_eq!(
                store
                    .requeue_owner("w", "worker w stopped with an error", OwnerGone::Stopped)
                    .unwrap(),
                1
            ),
        }
    }
    let claimed = store.claim("w", "cpu", 60.0).unwrap().expect("never given up");
    let evaluation = store
        .complete(&claimed, "w", &claimed.evaluation(1, &outcome(0.9)), None)
        .unwrap()
        .expect("the holder's result is recorded");
    assert_eq!(
        store.job_states(&[id]).unwrap(),
        vec![(
            id,
            JobState::Done {
                evaluation_id: evaluation
            }
        )]
    );
    assert_eq!(store.evaluation(evaluation).unwrap().outcome.failure, None);
}

#[test]
fn interruptions_use_up_no_attempts_sqlite() {
    interruptions_use_up_no_attempts(&sqlite());
}

#[test]
fn interruptions_use_up_no_attempts_postgres() {
    postgres(interruptions_use_up_no_attempts);
}

fn deaths_give_a_child_up(store: &Store) {
    store.enqueue(&job("deadly")).unwrap();
    let mut deaths = 0;
    let mut round = 0;
    while deaths < MAX_ATTEMPTS {
        let claimed = store.claim("w", "cpu", 60.0).unwrap().expect("not given up yet");
        // Deaths and interruptions interleaved: only the deaths count.
        if round % 2 == 0 {
            assert!(store.hand_back(&claimed, "w", "no verdict in time").unwrap());
        } else {
            assert_eq!(
                store
                    .requeue_owner("w", "worker w exited (signal 9)", OwnerGone::Died)
                    .unwrap(),
                1
            );
            deaths += 1;
        }
        round += 1;
    }
    assert_eq!(store.claim("w", "cpu", 60.0).unwrap(), None);
    let failed = store.evaluation_of_episode("deadly", 1, 0).unwrap().unwrap();
    assert!(failed.outcome.transient);
    let reason = failed.outcome.failure.unwrap();
    assert!(reason.contains("worker w exited (signal 9)"), "{reason}");
    assert!(reason.contains(&format!("{MAX_ATTEMPTS} workers died")), "{reason}");
}

#[test]
fn deaths_give_a_child_up_sqlite() {
    deaths_give_a_child_up(&sqlite());
}

#[test]
fn deaths_give_a_child_up_postgres() {
    postgres(deaths_give_a_child_up);
}

fn expired_leases_count_as_deaths(store: &Store) {
    store.enqueue(&job("silent")).unwrap();
    for n in 0..MAX_ATTEMPTS {
        let claimed = store
            .claim(&format!("w{n}"), "cpu", 0.05)
            .unwrap()
            .expect("not given up yet");
        if n == 0 {
            // A hand-back in between does not count.
            assert!(store.hand_back(&claimed, "w0", "stopped").unwrap());
            store.claim("w0", "cpu", 0.05).unwrap().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(120));
    }
    assert_eq!(store.claim("w", "cpu", 60.0).unwrap(), None);
    let failed = store.evaluation_of_episode("silent", 1, 0).unwrap().unwrap();
    let reason = failed.outcome.failure.unwrap();
    assert!(reason.contains("stopped heartbeating"), "{reason}");
}

#[test]
fn expired_leases_count_as_deaths_sqlite() {
    expired_leases_count_as_deaths(&sqlite());
}

#[test]
fn expired_leases_count_as_deaths_postgres() {
    postgres(expired_leases_count_as_deaths);
}

fn only_the_lease_holder_hands_a_child_back(store: &Store) {
    store.enqueue(&job("k")).unwrap();
    let first = store.claim("w", "cpu", 0.05).unwrap().unwrap();
    assert!(!store.hand_back(&first, "other", "not mine").unwrap());
    std::thread::sleep(std::time::Duration::from_millis(120));
    let second = store.claim("w2", "cpu", 60.0).unwrap().unwrap();
    // The first lease expired and the child went to w2: w's hand-back changes nothing.
    assert!(!store.hand_back(&first, "w", "late").unwrap());
    assert_eq!(
        store.job_states(&[second.id]).unwrap()[0].1,
        JobState::Running { owner: "w2".into() }
    );
    assert!(store.hand_back(&second, "w2", "stopping").unwrap());
    assert_eq!(store.job_states(&[second.id]).unwrap()[0].1, JobState::Pending);
    // A handed-back lease is over: its holder can no longer record a result.
    assert_eq!(
        store
            .complete(&second, "w2", &second.evaluation(1, &outcome(0.5)), None)
            .unwrap(),
        None
    );
}

#[test]
fn only_the_lease_holder_hands_a_child_back_sqlite() {
    only_the_lease_holder_hands_a_child_back(&sqlite());
}

#[test]
fn only_the_lease_holder_hands_a_child_back_postgres() {
    postgres(only_the_lease_holder_hands_a_child_back);
}
