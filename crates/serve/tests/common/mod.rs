//! Test stores built with nas-store's own API, and a plain HTTP/1.1 client for the server.
#![allow(dead_code)]

pub mod browser;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use nas_core::arch::Architecture;
use nas_core::record::{Curve, EpisodeRecord, Outcome};
use nas_serve::{ServeOptions, Server};
use nas_store::{NewEvaluation, NewRun, PluginRecord, Store};

/// Architectures the fixture's episodes cycle through (all buildable on CIFAR-5).
pub const ARCHS: &[&str] = &[
    "conv(32,3) pool(5,3) fc(64)",
    "conv(64,5) pool(2,2)",
    "conv(10,1)",
    "conv(64,3) conv(32,3) pool(3,2) fc(128)",
    "conv(20,5) pool(5,3) fc(256) fc(64)",
    "conv(32,3) conv(64,3) conv(64,3) pool(2,2) fc(512) fc(128)",
    "conv(10,3) pool(2,2) conv(20,3) pool(2,2)",
];

/// The run's plugins and settings.
pub struct RunSpec<'a> {
    pub agent: &'a str,
    pub reward: &'a str,
    pub assessor: Option<&'a str>,
    pub dataset: &'a str,
    pub episodes_target: usize,
    pub seed: u64,
}

impl Default for RunSpec<'_> {
    fn default() -> Self {
        RunSpec {
            agent: "ppo",
            reward: "size_penalty",
            assessor: None,
            dataset: "cifar5",
            episodes_target: 100,
            seed: 7,
        }
    }
}

pub fn plugin(name: &str) -> PluginRecord {
    PluginRecord {
        name: name.to_string(),
        version: "1.0.0".into(),
        path: format!("plugins/{name}.wasm"),
        sha256: "0".repeat(64),
    }
}

pub fn create_run(store: &Store, spec: &RunSpec<'_>) -> i64 {
    let agent = plugin(spec.agent);
    let reward = plugin(spec.reward);
    let assessor = spec.assessor.map(plugin);
    store
        .create_run(&NewRun {
            config_toml: "[search]\nepisodes = 100\n\n[train]\nepochs = 5\n",
            dataset: spec.dataset,
            evaluator: "training",
            seed: spec.seed,
            episodes_target: spec.episodes_target,
            agent: &agent,
            reward: &reward,
            assessor: assessor.as_ref(),
            device: "cpu",
            no_cache: false,
            table: None,
        })
        .expect("create run")
}

thread_local! {
    /// Whether [`episode`] writes a search that learns (accuracy rising with the episodes)
    /// rather than independent draws.
    pub static LEARNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A number in [0, 1) from (run, episode): the fixture's "training result".
pub fn noise(run: i64, episode: usize) -> f64 {
    let mut x = (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (episode as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The episode `i` of run `run` as the fixture writes it: every 37th child fails; with an
/// assessor every child has a curve and every 4th is stopped after 2 epochs.
pub fn episode(run: i64, i: usize, with_curve: bool, architecture: Option<&str>) -> (EpisodeRecord, Outcome, usize) {
    let text = architecture.unwrap_or(ARCHS[i % ARCHS.len()]);
    let (params, depth) = match text.parse::<Architecture>() {
        Ok(arch) => (arch.param_count((3, 32, 32), 5), arch.depth()),
        Err(_) => (1000 + i as u64, 1),
    };
    let failed = i % 37 == 36;
    let accuracy = if failed {
        0.0
    } else if LEARNING.with(|l| l.get()) {
        // A search that learns: accuracy climbs over the episodes (the screenshots' runs).
        0.3 + 0.62 * (1.0 - (-(i as f64) / (60.0 + 40.0 * run as f64)).exp()) * (0.6 + 0.4 * noise(run, i))
    } else {
        0.3 + 0.65 * noise(run, i)
    };
    let stopped = with_curve && i % 4 == 1 && !failed;
    let curve = if with_curve && !failed {
        let epochs = if stopped { 2 } else { 5 };
        Curve {
            accuracy: (0..epochs)
                .map(|e| accuracy * (0.6 + 0.4 * (e + 1) as f64 / epochs as f64))
                .collect(),
            stopped,
            measure_seconds: 0.1,
        }
    } else {
        Curve::default()
    };
    let accuracy = curve.accuracy.last().copied().unwrap_or(accuracy);
    let outcome = Outcome {
        accuracy,
        params,
        seconds: 10.0 + i as f64 / 10.0,
        failure: failed.then(|| "diverged (loss is NaN)".to_string()),
        transient: false,
        curve,
        predicted: false,
        cost: None,
    };
    let mut metrics = serde_json::Map::new();
    metrics.insert(
        "entropy".into(),
        serde_json::json!(3.6 - 3.0 * i as f64 / (i as f64 + 100.0)),
    );
    metrics.insert("loss".into(), serde_json::json!(1.0 / (1.0 + i as f64)));
    let record = EpisodeRecord {
        index: i,
        env: 0,
        architecture: text.to_string(),
        reward: accuracy - 0.01 * (params as f64).log10(),
        accuracy,
        params,
        depth,
        cache_hit: false,
        failure: outcome.failure.clone(),
        metrics,
        reported: i,
        stopped,
    };
    (record, outcome, depth)
}

/// Commits episodes `range` of run `run` (each with its evaluation), in batches.
pub fn write_episodes(
    store: &mut Store,
    run: i64,
    range: std::ops::Range<usize>,
    dataset: &str,
    with_curve: bool,
) -> Vec<EpisodeRecord> {
    write_episodes_with(store, run, range, dataset, with_curve, |_| None, |_| None)
}

pub fn write_episodes_with(
    store: &mut Store,
    run: i64,
    range: std::ops::Range<usize>,
    dataset: &str,
    with_curve: bool,
    architecture: impl Fn(usize) -> Option<String>,
    extra_metric: impl Fn(usize) -> Option<(String, f64)>,
) -> Vec<EpisodeRecord> {
    let mut written = Vec::new();
    let indices: Vec<usize> = range.collect();
    for chunk in indices.chunks(500) {
        let mut batch = Vec::new();
        for &i in chunk {
            let arch = architecture(i);
            let (mut record, outcome, depth) = episode(run, i, with_curve, arch.as_deref());
            if let Some((k, v)) = extra_metric(i) {
                record.metrics.insert(k, serde_json::json!(v));
            }
            let key = format!("{}|{dataset}|run{run}|ep{i}", record.architecture);
            let id = store
                .insert_evaluation(&NewEvaluation {
                    cache_key: &key,
                    architecture: &record.architecture,
                    dataset,
                    evaluator: "training",
                    protocol_json: "{}",
                    depth,
                    outcome: &outcome,
                    origin: Some((run, i)),
                })
                .expect("insert evaluation");
            batch.push((record, id));
        }
        let designed = chunk.last().map_or(0, |i| i + 1);
        store
            .commit_episodes(run, &batch, b"agent state", designed)
            .expect("commit episodes");
        written.extend(batch.into_iter().map(|(r, _)| r));
    }
    written
}

pub fn finish(store: &Store, run: i64, wall: f64) {
    store.add_wall_seconds(run, wall).unwrap();
    store.set_status(run, "finished", None).unwrap();
}

/// A temporary SQLite store.
pub fn temp_store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nas.sqlite");
    let store = Store::open(&path).unwrap();
    (dir, path, store)
}

/// Starts the server on port 0 in this process (its own runtime on a thread).
pub fn start_server(db: &Path, host: &str, token: Option<&str>) -> nas_serve::Listening {
    let options = ServeOptions {
        db: db.to_path_buf(),
        host: host.parse().unwrap(),
        port: 0,
        token: token.map(String::from),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            match Server::bind(options).await {
                Ok(server) => {
                    tx.send(Ok(server.listening().clone())).unwrap();
                    server.run().await.unwrap();
                }
                Err(e) => tx.send(Err(e.to_string())).unwrap(),
            }
        });
    });
    rx.recv().unwrap().expect("the server starts")
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request over a fresh connection (HTTP/1.1, `Connection: close`).
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: 127.0.0.1:{}\r\n", addr.port()));
    }
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Answer { status, headers, body }
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[])
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}
