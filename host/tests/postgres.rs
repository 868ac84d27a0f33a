//! The PostgreSQL run store, against a throwaway server: every command, and workers sharing it.
//! (The queue's guarantees on both backends: tests/queue.rs.)

mod common;

use std::path::Path;
use std::process::Command;

use common::pg::PgServer;
use common::plugin;
use nas_store::Store;

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
    let Some(server) = PgServer::start() else { return };
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

    // With an assessor: stopped children, their curves and the resume's replay, on both backends.
    let assessor = plugin("median_stop");
    let mut watched = search.to_vec();
    // --no-cache: run 1 designed the same first architectures, and cache hits are not assessed.
    watched.extend(["--assessor", assessor.to_str().unwrap(), "--no-cache"]);
    for db in [&pg, &sqlite] {
        nas_host(&watched, db);
        nas_host(&["search", "--resume", "2", "--episodes", "200"], db);
    }
    assert_eq!(a.episodes(2).unwrap(), b.episodes(2).unwrap());
    let outcomes = |store: &Store| -> Vec<nas_core::record::Outcome> {
        let ids = store.episode_evaluations(2).unwrap();
        ids.into_values()
            .map(|id| store.evaluation(id).unwrap().outcome)
            .collect()
    };
    let (pg_outcomes, sqlite_outcomes) = (outcomes(&a), outcomes(&b));
    assert!(pg_outcomes.iter().any(|o| o.curve.stopped));
    assert_eq!(pg_outcomes, sqlite_outcomes);
    assert_eq!(a.run(2).unwrap().assessor.unwrap().name, "median_stop");

    // The same watched search with 2 workers through PostgreSQL (the curves and verdicts pass
    // through its queue) equals 2 environments trained in the search process on SQLite.
    let fewer: Vec<&str> = watched.iter().map(|a| if *a == "150" { "80" } else { *a }).collect();
    // In a directory of its own: the workers' logs go under its runs/.
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .args(&fewer)
        .args(["--workers", "2", "--db"])
        .arg(&pg)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    nas_host(&[&fewer[..], &["--envs", "2"]].concat(), &sqlite);
    let key = |e: &nas_core::record::EpisodeRecord| (e.index, e.env, e.architecture.clone(), e.reward.to_bits());
    let keys = |store: &Store| store.episodes(3).unwrap().iter().map(key).collect::<Vec<_>>();
    assert_eq!(keys(&a).len(), 80);
    assert_eq!(keys(&a), keys(&b));
    let stopped = |store: &Store| -> Vec<bool> {
        let ids = store.episode_evaluations(3).unwrap();
        ids.into_values()
            .map(|id| store.evaluation(id).unwrap().outcome.curve.stopped)
            .collect()
    };
    assert!(stopped(&a).contains(&true));
    assert_eq!(stopped(&a), stopped(&b));
}

#[test]
fn two_workers_train_through_a_postgres_store() {
    let Some(server) = PgServer::start() else { return };
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
