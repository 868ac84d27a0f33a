//! The PostgreSQL run store, against a throwaway server: every command, the queue's leases, and
//! workers sharing it.

mod common;

use std::path::Path;
use std::process::Command;

use common::pg::PgServer;
use common::plugin;
use nas_host::evaluator::Outcome;
use nas_host::store::{JobState, NewJob, Store};

const BIN: &str = env!("CARGO_BIN_EXE_nas-host");

fn nas_host(args: &[&str], db: &Path) -> String {
    let output = Command::new(BIN).args(args).arg("--db").arg(db).output().unwrap();
    assert!(
        output.status.success(),
        "nas-host {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_command_works_against_postgres_and_gives_the_sqlite_results() {
    let server = PgServer::start();
    let pg = server.database("commands");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("nas.sqlite");
    let (agent, reward) = (plugin("ppo"), plugin("accuracy"));
    let search = [
        "search",
        "--agent",
        agent.to_str().unwrap(),
        "--reward",
        reward.to_str().unwrap(),
        "--evaluator",
        "synthetic",
        "--episodes",
        "150",
        "--seed",
        "3",
    ];
    for db in [&pg, &sqlite] {
        nas_host(&search, db);
        nas_host(&["search", "--resume", "1", "--episodes", "200"], db);
        nas_host(&["eval", "1", "--samples", "5"], db);
    }
    let runs = nas_host(&["runs"], &pg);
    assert!(runs.contains("finished") && runs.contains("200/200"), "{runs}");
    let report_dir = dir.path().join("report");
    let report = nas_host(&["report", "1", "--out", report_dir.to_str().unwrap()], &pg);
    assert!(report_dir.join("report.md").is_file(), "{report}");
    let table = nas_host(&["compare", "1"], &pg);
    assert!(table.contains("| 1 |"), "{table}");

    let (a, b) = (Store::open(&pg).unwrap(), Store::open(&sqlite).unwrap());
    assert_eq!(a.schema_version().unwrap(), b.schema_version().unwrap());
    assert_eq!(
        a.episodes(1).unwrap(),
        b.episodes(1).unwrap(),
        "the backend changes nothing"
    );
    assert_eq!(a.eval_samples(1).unwrap().len(), 5);
    assert_eq!(a.checkpoint(1).unwrap().unwrap(), b.checkpoint(1).unwrap().unwrap());
}

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
    }
}

fn outcome(accuracy: f64) -> Outcome {
    Outcome {
        accuracy,
        params: 10,
        seconds: 1.0,
        failure: None,
        transient: false,
    }
}

#[test]
fn a_worker_on_a_stale_lease_cannot_overwrite_the_result_of_the_worker_that_took_over() {
    let server = PgServer::start();
    let store = Store::open(&server.database("leases")).unwrap();
    let id = store.enqueue(&job("k")).unwrap();
    assert_eq!(store.enqueue(&job("k")).unwrap(), id, "one job per key in flight");
    let stale = store.claim("w1", "cpu", -1.0).unwrap().unwrap();
    let fresh = store.claim("w2", "cpu", 60.0).unwrap().unwrap();
    assert_eq!((fresh.id, fresh.attempt), (id, 2));
    assert!(!store.renew_lease(&stale, "w1", 60.0).unwrap());
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
    // A duplicated report of the same result is not recorded twice.
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

#[test]
fn concurrent_workers_each_claim_a_different_child() {
    let server = PgServer::start();
    let db = server.database("claims");
    let store = Store::open(&db).unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    for key in &keys {
        store.enqueue(&job(key)).unwrap();
    }
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                scope.spawn(move || {
                    let store = Store::open(&db).unwrap();
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
fn two_workers_train_through_a_postgres_store() {
    let server = PgServer::start();
    let db = server.database("workers");
    let dir = tempfile::tempdir().unwrap();
    let (agent, reward) = (plugin("random"), plugin("accuracy"));
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "search",
            "--agent",
            agent.to_str().unwrap(),
            "--reward",
            reward.to_str().unwrap(),
        ])
        .args([
            "--dataset",
            "synthetic",
            "--episodes",
            "6",
            "--epochs",
            "1",
            "--workers",
            "2",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    assert_eq!(
        episodes.iter().map(|e| e.index).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    assert_eq!(
        store.workers(0.0).unwrap().len(),
        0,
        "the workers stopped with the search"
    );
    assert!(dir.path().join("runs/worker-logs").is_dir());
}

#[test]
fn a_connection_failure_names_the_url_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql://nas:s3cret@localhost/nas?host={}&connect_timeout=1",
        dir.path().display()
    );
    let err = match Store::open(Path::new(&url)) {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("nas:***@localhost"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}
