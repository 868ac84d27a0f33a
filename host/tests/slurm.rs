//! `--launcher slurm` end to end on a single-node cluster (`scripts/slurm-local.sh up`, which
//! `.ci/run` runs): a PostgreSQL store, two workers submitted as a job array, one cancelled with
//! `scancel` while it trains, every child watched by an assessor through the store.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::PgServer;
use common::plugin;
use nas_store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_nas-host");

/// Whether a Slurm cluster answers. `.ci/run` brings one up and sets NAS_TEST_SLURM=1, which
/// makes a missing cluster an error instead of a skipped test.
fn slurm_available() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        up || std::env::var_os("NAS_TEST_SLURM").is_none(),
        "NAS_TEST_SLURM is set but no Slurm cluster answers; run scripts/slurm-local.sh up"
    );
    if !up {
        eprintln!("skipped: no Slurm cluster here (scripts/slurm-local.sh up starts one)");
    }
    up
}

fn squeue_names(name: &str) -> String {
    let output = Command::new("squeue")
        .args(["-h", "-n", name, "-o", "%i %T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_search_with_slurm_workers_survives_a_cancelled_worker_and_leaves_no_job() {
    if !slurm_available() {
        return;
    }
    let server = PgServer::start();
    let db = server.database("slurm");
    let dir = tempfile::tempdir().unwrap();
    // A short lease: the cancelled worker's child goes to the other worker within seconds.
    std::fs::write(
        dir.path().join("run.toml"),
        "[parallel]\nlease_secs = 3\n[slurm]\ncpus_per_worker = 1\npending_warn_secs = 60\n",
    )
    .unwrap();
    let log = dir.path().join("search.log");
    let mut search = Command::new(BIN)
        .current_dir(dir.path())
        .args(["search", "--config", "run.toml"])
        .args([
            "--agent",
            plugin("random").to_str().unwrap(),
            "--reward",
            plugin("accuracy").to_str().unwrap(),
            // Loaded by path, `none` never stops a child but watches each: every epoch's curve
            // and verdict pass between the Slurm workers and the search through PostgreSQL.
            "--assessor",
            plugin("none").to_str().unwrap(),
        ])
        .args([
            "--dataset",
            "synthetic",
            "--episodes",
            "8",
            "--epochs",
            "3",
            "--seed",
            "2",
        ])
        .args(["--workers", "2", "--launcher", "slurm", "--db"])
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Cancel the Slurm task of a worker that is training a child.
    let started = Instant::now();
    let (task, job) = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no Slurm worker started training"
        );
        assert!(
            search.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        let busy = Store::open(&db)
            .ok()
            .and_then(|store| store.workers(0.0).ok())
            .and_then(|workers| workers.into_iter().find(|w| w.job.is_some()));
        if let Some(worker) = busy {
            let task = worker
                .name
                .rsplit_once(":slurm-")
                .expect("a Slurm worker names its task")
                .1
                .to_string();
            break (task, worker.job.unwrap().0);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(Command::new("scancel").arg(&task).status().unwrap().success());

    let status = search.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    let store = Store::open(&db).unwrap();
    let episodes = store.episodes(1).unwrap();
    assert_eq!(
        episodes.iter().map(|e| e.index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    let distinct: std::collections::BTreeSet<&str> = episodes.iter().map(|e| e.architecture.as_str()).collect();
    assert_eq!(
        episodes.iter().filter(|e| !e.cache_hit).count(),
        distinct.len(),
        "every architecture trained for one episode only"
    );
    // Each child trained all 3 epochs with its curve judged, the retrained one from scratch.
    for id in store.episode_evaluations(1).unwrap().into_values() {
        let curve = store.evaluation(id).unwrap().outcome.curve;
        assert!(!curve.stopped && curve.accuracy.len() == 3, "{curve:?}");
    }
    // The cancelled worker's child was trained again, by the worker that took it over.
    let retrained = store.job_states(&[job]).unwrap();
    assert!(matches!(retrained[0].1, nas_store::JobState::Done { .. }));
    let conn_check = Command::new("psql")
        .arg("-h")
        .arg(server.socket_dir())
        .args(["-U", "postgres", "-d", "slurm", "-tA", "-c"])
        .arg(format!("SELECT attempt FROM queue WHERE id = {job}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&conn_check.stdout).trim(), "2", "{text}");
    assert!(text.contains("submitted 2 Slurm workers"), "{text}");
    // No worker job is left behind.
    let started = Instant::now();
    while !squeue_names("nas-worker").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "jobs left in squeue: {}",
            squeue_names("nas-worker")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn slurm_script_prints_the_array_it_would_submit() {
    let output = Command::new(BIN)
        .args([
            "slurm",
            "script",
            "--workers",
            "4",
            "--db",
            "postgresql://nas:pw@db/nas",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(
        script.starts_with("#!/bin/bash") && script.contains("#SBATCH --array=0-3"),
        "{script}"
    );
    assert!(script.contains(" worker --device cpu"), "{script}");
    assert!(!script.contains("pw@"), "{script}");
    let refused = Command::new(BIN)
        .args(["slurm", "script", "--workers", "4", "--db", "runs/nas.sqlite"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PostgreSQL"));
}
