//! Parallel search: workers training children from the store's queue, killed workers and a
//! killed search. These run the binary, since a search starts its workers as processes of it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::plugin;
use common::process::{poll, spawn, sql, wait_ok, BIN};
use nas_core::record::EpisodeRecord;
use nas_store::Store;
use rand::{Rng, SeedableRng};

/// `search` arguments: `agent` on `dataset` with the given evaluator, episodes and extra flags.
fn search_args(db: &Path, agent: &str, evaluator: &str, episodes: usize, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "search",
        "--agent",
        plugin(agent).to_str().unwrap(),
        "--reward",
        plugin("accuracy").to_str().unwrap(),
        "--dataset",
        if evaluator == "synthetic" {
            "mnist3"
        } else {
            "synthetic"
        },
        "--evaluator",
        evaluator,
        "--episodes",
        &episodes.to_string(),
        "--seed",
        "5",
        "--db",
        db.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Every episode of 0..total is recorded once, and the rewards were reported in some order of
/// them, each once.
fn assert_each_episode_once(episodes: &[EpisodeRecord], total: usize) {
    let indices: Vec<usize> = episodes.iter().map(|e| e.index).collect();
    assert_eq!(indices, (0..total).collect::<Vec<_>>());
    let reported: BTreeSet<usize> = episodes.iter().map(|e| e.reported).collect();
    assert_eq!(reported, (0..total).collect(), "each reward reported once");
}

/// Each distinct architecture was trained once: one evaluation, and the episodes that did not
/// train it (cache hits, or waiting on another environment's training) are all the others.
fn assert_each_architecture_trained_once(db: &Path, episodes: &[EpisodeRecord]) {
    let distinct: BTreeSet<&str> = episodes.iter().map(|e| e.architecture.as_str()).collect();
    let evaluations = sql::<String>(db, "SELECT architecture FROM evaluations");
    assert_eq!(evaluations.len(), distinct.len(), "one evaluation per architecture");
    let trained = episodes.iter().filter(|e| !e.cache_hit).count();
    assert_eq!(trained, distinct.len(), "each architecture trained by one episode only");
}

fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn two_workers_train_every_architecture_once_and_record_every_episode_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs/nas.sqlite");
    let log = dir.path().join("search.log");
    let total = 12;
    let child = spawn(
        &search_args(&db, "random", "train", total, &["--epochs", "1", "--workers", "2"]),
        &log,
    );
    wait_ok(child, &log);
    let episodes = Store::open(&db).unwrap().episodes(1).unwrap();
    assert_each_episode_once(&episodes, total);
    assert_each_architecture_trained_once(&db, &episodes);
    // Two environments: episodes alternate between them, and both workers trained children.
    assert_eq!(
        episodes.iter().map(|e| e.env).collect::<Vec<_>>(),
        (0..total).map(|i| (i % 2) as u32).collect::<Vec<_>>()
    );
    let per_worker = sql::<i64>(&db, "SELECT trained FROM workers");
    assert_eq!(per_worker.len(), 2, "two workers: {per_worker:?}");
    assert!(
        per_worker.iter().all(|w| w[0] > 0),
        "both workers trained: {per_worker:?}"
    );
    // Every child of the queue was trained once, by the first worker that claimed it.
    let attempts = sql::<i64>(&db, "SELECT attempt FROM queue");
    assert!(attempts.iter().all(|a| a[0] == 1), "{attempts:?}");
    // The workers stopped with the search.
    for pid in sql::<i64>(&db, "SELECT pid FROM workers") {
        assert!(!pid_alive(pid[0]), "worker {} outlived the search", pid[0]);
    }
}

#[test]
fn a_worker_killed_while_training_is_replaced_and_its_child_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let log = dir.path().join("search.log");
    let total = 8;
    // A lease far longer than the test: the child must come back because the search saw its
    // worker die, not because the lease ran out.
    std::fs::write(dir.path().join("run.toml"), "[parallel]\nlease_secs = 600\n").unwrap();
    let config = dir.path().join("run.toml");
    let child = spawn(
        &search_args(
            &db,
            "random",
            "train",
            total,
            &["--epochs", "2", "--workers", "2", "--config", config.to_str().unwrap()],
        ),
        &log,
    );
    let (pid, job) = poll(Duration::from_secs(120), "a worker training a child", || {
        if !db.exists() {
            return None;
        }
        let conn = rusqlite::Connection::open(&db).ok()?;
        conn.query_row(
            "SELECT pid, job_id FROM workers WHERE job_id IS NOT NULL LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )
        .ok()
    });
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    wait_ok(child, &log);

    let episodes = Store::open(&db).unwrap().episodes(1).unwrap();
    assert_each_episode_once(&episodes, total);
    assert_each_architecture_trained_once(&db, &episodes);
    let killed = sql::<rusqlite::types::Value>(
        &db,
        &format!("SELECT status, attempt, last_error FROM queue WHERE id = {job}"),
    );
    assert_eq!(killed[0][0], rusqlite::types::Value::Text("done".into()));
    assert_eq!(
        killed[0][1],
        rusqlite::types::Value::Integer(2),
        "trained a second time"
    );
    let rusqlite::types::Value::Text(reason) = &killed[0][2] else {
        panic!("no reason recorded: {killed:?}")
    };
    assert!(reason.contains("exited"), "{reason}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("starting a replacement"), "{text}");
    // Three workers in all: the two started and the replacement.
    assert_eq!(sql::<i64>(&db, "SELECT pid FROM workers").len(), 3);
}

/// Kills the search (SIGKILL) at random points and resumes it, until it finishes; returns the
/// number of kills.
fn kill_and_resume(db: &Path, dir: &Path, first: &[String], resume_extra: &[&str], delays_ms: (u64, u64)) -> usize {
    let log = dir.join("killed.log");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("kill delays seeded with {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut child = spawn(first, &log);
    let mut kills = 0;
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(rng.random_range(delays_ms.0..delays_ms.1)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let next: Vec<String> = match Store::open(db).unwrap().run(1) {
            Ok(_) => ["search", "--resume", "1", "--db", db.to_str().unwrap()]
                .iter()
                .map(|s| s.to_string())
                .chain(resume_extra.iter().map(|s| s.to_string()))
                .collect(),
            Err(_) => first.to_vec(),
        };
        child = spawn(&next, &log);
    }
    wait_ok(child, &log);
    kills
}

#[test]
fn a_killed_sync_search_with_two_workers_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let total = 200;
    let straight = dir.path().join("straight.sqlite");
    let log = dir.path().join("straight.log");
    wait_ok(
        spawn(
            &search_args(&straight, "ppo", "synthetic", total, &["--workers", "2"]),
            &log,
        ),
        &log,
    );
    let killed = dir.path().join("killed.sqlite");
    let kills = kill_and_resume(
        &killed,
        dir.path(),
        &search_args(&killed, "ppo", "synthetic", total, &["--workers", "2"]),
        &["--workers", "2"],
        (300, 900),
    );
    assert!(kills >= 1, "the run finished before it could be killed");
    let key = |e: &EpisodeRecord| (e.index, e.env, e.architecture.clone(), e.reward.to_bits());
    let a = Store::open(&straight).unwrap().episodes(1).unwrap();
    let b = Store::open(&killed).unwrap().episodes(1).unwrap();
    assert_each_episode_once(&b, total);
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        b.iter().map(key).collect::<Vec<_>>()
    );
    // Two environments, and the same result as training in the search process with two.
    let in_process = dir.path().join("in-process.sqlite");
    let log = dir.path().join("in-process.log");
    wait_ok(
        spawn(
            &search_args(&in_process, "ppo", "synthetic", total, &["--envs", "2"]),
            &log,
        ),
        &log,
    );
    let c = Store::open(&in_process).unwrap().episodes(1).unwrap();
    assert_eq!(
        a.iter().map(key).collect::<Vec<_>>(),
        c.iter().map(key).collect::<Vec<_>>()
    );
    assert!(a.iter().any(|e| e.env == 1));
}

#[test]
fn a_killed_search_with_real_training_never_trains_a_finished_child_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let log = dir.path().join("first.log");
    let total = 10;
    let args = search_args(&db, "random", "train", total, &["--epochs", "1", "--workers", "2"]);
    let mut child = spawn(&args, &log);
    // Kill it once some children are trained but not all episodes are committed.
    poll(Duration::from_secs(120), "two trained children", || {
        let conn = rusqlite::Connection::open(&db).ok()?;
        let done: i64 = conn
            .query_row("SELECT COUNT(*) FROM queue WHERE status = 'done'", [], |r| r.get(0))
            .ok()?;
        (done >= 2).then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let finished_before: BTreeMap<i64, f64> = sql::<f64>(
        &db,
        "SELECT CAST(id AS REAL), finished_at FROM queue WHERE status = 'done'",
    )
    .into_iter()
    .map(|r| (r[0] as i64, r[1]))
    .collect();
    let workers: Vec<i64> = sql::<i64>(&db, "SELECT pid FROM workers")
        .into_iter()
        .map(|r| r[0])
        .collect();
    poll(Duration::from_secs(10), "the workers to die with the search", || {
        workers.iter().all(|&pid| !pid_alive(pid)).then_some(())
    });
    let resume: Vec<String> = [
        "search",
        "--resume",
        "1",
        "--workers",
        "2",
        "--db",
        db.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = dir.path().join("resume.log");
    wait_ok(spawn(&resume, &log), &log);

    let episodes = Store::open(&db).unwrap().episodes(1).unwrap();
    assert_each_episode_once(&episodes, total);
    assert_each_architecture_trained_once(&db, &episodes);
    for (job, finished_at) in &finished_before {
        let now = sql::<f64>(&db, &format!("SELECT finished_at FROM queue WHERE id = {job}"));
        assert_eq!(
            now[0][0], *finished_at,
            "child {job} was trained again after the resume"
        );
    }
}

fn async_args(db: &Path, total: usize) -> Vec<String> {
    search_args(
        db,
        "qlearning",
        "synthetic",
        total,
        &["--workers", "3", "--schedule", "async"],
    )
}

#[test]
fn an_async_search_killed_and_resumed_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("nas.sqlite");
    let total = 300;
    let kills = kill_and_resume(
        &db,
        dir.path(),
        &async_args(&db, total),
        &["--workers", "3"],
        (300, 900),
    );
    assert!(kills >= 1, "the run finished before it could be killed");
    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    assert_each_episode_once(&episodes, total);
    assert!(store.in_flight(1).unwrap().is_empty());
    assert_eq!(store.checkpoint(1).unwrap().unwrap().0, total);
    let envs: BTreeSet<u32> = episodes.iter().map(|e| e.env).collect();
    assert_eq!(envs, BTreeSet::from([0, 1, 2]));
}

#[test]
fn a_comparison_runs_its_searches_at_once_over_one_pool_of_workers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    std::fs::write(
        dir.path().join("base.toml"),
        "evaluator = \"synthetic\"\ndataset = \"mnist3\"\nreward = \"accuracy\"\n",
    )
    .unwrap();
    let agents = [plugin("random"), plugin("qlearning")].map(|p| format!("{:?}", p.display().to_string()));
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "base = \"base.toml\"\nagents = [{}]\nseeds = [1, 2]\nepisodes = 60\neval_samples = 4\nreward = {:?}\n",
            agents.join(", "),
            plugin("accuracy").display().to_string()
        ),
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["compare", "--plan"])
        .arg(dir.path().join("plan.toml"))
        .args(["--workers", "2", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains("| random 0.1.0 |"))
            .count(),
        2,
        "{table}"
    );
    // Below the runs, one row per agent and the agent against random.
    assert!(
        table.contains("| random | 2 |") && table.contains("| qlearning | 2 |"),
        "{table}"
    );
    assert!(table.contains("agent − random"), "{table}");
    let store = Store::open(&db).unwrap();
    for run in 1..=4 {
        assert_each_episode_once(&store.episodes(run).unwrap(), 60);
        assert_eq!(store.eval_samples(run).unwrap().len(), 4);
    }
    // The runs were in flight together: the queue holds their children interleaved, not run
    // after run.
    let origins: Vec<i64> = sql::<i64>(
        &db,
        "SELECT origin_run FROM queue WHERE origin_run IS NOT NULL ORDER BY id",
    )
    .into_iter()
    .map(|r| r[0])
    .collect();
    assert!(
        origins.windows(2).any(|w| w[1] < w[0]),
        "the runs went one after another: {origins:?}"
    );
    assert_eq!(
        sql::<i64>(&db, "SELECT pid FROM workers").len(),
        2,
        "one pool for every run"
    );
}

#[test]
fn a_worker_whose_data_differs_from_the_searchs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nas.sqlite");
    let protocol = serde_json::to_string(&nas_config::TrainConfig {
        epochs: 1,
        ..Default::default()
    })
    .unwrap();
    let store = Store::open(&db).unwrap();
    let job = store
        .enqueue(&nas_store::NewJob {
            cache_key: "k",
            architecture: "conv(10,3)",
            dataset: "synthetic",
            evaluator: "train",
            protocol_json: &protocol,
            device: "cpu",
            origin: None,
            keep_weights: false,
            data_sha256: "0123456789abcdef0123456789abcdef",
            watch_epochs: None,
            cost_json: None,
        })
        .unwrap();
    let output = Command::new(BIN)
        .args([
            "worker",
            "--device",
            "cpu",
            "--idle-exit",
            "5",
            "--db",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("checksum") && stderr.contains("0123456789ab") && stderr.contains("NAS_DATA_DIR"),
        "{stderr}"
    );
    // The child is back in the queue for a worker with the right data, untrained.
    assert_eq!(store.job_states(&[job]).unwrap()[0].1, nas_store::JobState::Pending);
    assert!(store.cached_evaluation("k").unwrap().is_none());
}
