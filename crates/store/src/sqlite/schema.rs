//! The SQLite store's schema, as ordered migrations. The PostgreSQL store (`postgres/schema.rs`)
//! has the same migrations, version for version, in its own types.

/// The schema, as ordered migrations: migration i takes a store from `PRAGMA user_version` i to
/// i + 1. A store written before versioning existed has version 0 and the tables of migration 0,
/// whose `IF NOT EXISTS` makes it a no-op there. Append new migrations; never edit old ones.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first release's schema.
    r#"
CREATE TABLE IF NOT EXISTS runs (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL DEFAULT (datetime('now')),
    finished_at     TEXT,
    status          TEXT NOT NULL,            -- running | finished | failed
    error           TEXT,
    config_toml     TEXT NOT NULL,
    dataset         TEXT NOT NULL,
    evaluator       TEXT NOT NULL,
    seed            INTEGER NOT NULL,
    episodes_target INTEGER NOT NULL,
    agent_name      TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    agent_path      TEXT NOT NULL,
    agent_sha256    TEXT NOT NULL,
    reward_name     TEXT NOT NULL,
    reward_version  TEXT NOT NULL,
    reward_path     TEXT NOT NULL,
    reward_sha256   TEXT NOT NULL,
    wall_seconds    REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS evaluations (
    id           INTEGER PRIMARY KEY,
    cache_key    TEXT NOT NULL UNIQUE,
    architecture TEXT NOT NULL,
    dataset      TEXT NOT NULL,
    evaluator    TEXT NOT NULL,
    protocol     TEXT NOT NULL,               -- training protocol as JSON
    accuracy     REAL NOT NULL,
    params       INTEGER NOT NULL,
    depth        INTEGER NOT NULL,
    seconds      REAL NOT NULL,
    failure      TEXT,
    created_at   TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    idx           INTEGER NOT NULL,           -- 0-based episode index
    env           INTEGER NOT NULL,
    architecture  TEXT NOT NULL,
    reward        REAL NOT NULL,
    accuracy      REAL NOT NULL,
    params        INTEGER NOT NULL,
    depth         INTEGER NOT NULL,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
    cache_hit     INTEGER NOT NULL,
    metrics       TEXT NOT NULL,              -- agent metrics as a JSON object
    created_at    TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id      INTEGER PRIMARY KEY REFERENCES runs(id),
    episodes    INTEGER NOT NULL,             -- episodes finished when the state was saved
    agent_state BLOB NOT NULL,
    saved_at    TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS eval_samples (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    sample        INTEGER NOT NULL,
    architecture  TEXT NOT NULL,
    accuracy      REAL NOT NULL,
    params        INTEGER NOT NULL,
    depth         INTEGER NOT NULL,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
    cache_hit     INTEGER NOT NULL,
    PRIMARY KEY (run_id, sample)
);
"#,
    // 2: what a resumed run must match (device, cache use); transient failures are not served from
    // the cache; an evaluation remembers the episode that trained it; failures on episodes; the
    // training seed of each `eval` sample.
    r#"
ALTER TABLE runs ADD COLUMN device TEXT;
ALTER TABLE runs ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evaluations ADD COLUMN transient INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evaluations ADD COLUMN origin_run INTEGER;
ALTER TABLE evaluations ADD COLUMN origin_episode INTEGER;
CREATE INDEX IF NOT EXISTS evaluations_origin ON evaluations (origin_run, origin_episode);
ALTER TABLE episodes ADD COLUMN failure TEXT;
ALTER TABLE eval_samples ADD COLUMN train_seed INTEGER;
ALTER TABLE eval_samples ADD COLUMN failure TEXT;
"#,
    // 3: the trained weights of a run's best children (`keep_weights`), for `export`.
    r#"
CREATE TABLE IF NOT EXISTS kept_weights (
    evaluation_id INTEGER PRIMARY KEY REFERENCES evaluations(id),
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    safetensors   BLOB NOT NULL
);
"#,
    // 4: parallel search — the queue of children for workers (with leases), the workers seen, the
    // designs in flight of an `async` run, and the order in which rewards were reported.
    r#"
ALTER TABLE episodes ADD COLUMN reported INTEGER;
CREATE TABLE IF NOT EXISTS in_flight (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    idx          INTEGER NOT NULL,            -- the episode this design belongs to
    env          INTEGER NOT NULL,
    architecture TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS queue (
    id             INTEGER PRIMARY KEY,
    cache_key      TEXT NOT NULL UNIQUE,      -- one training per key, however many wait on it
    architecture   TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    evaluator      TEXT NOT NULL,
    protocol       TEXT NOT NULL,
    device         TEXT NOT NULL,             -- cpu | cuda | none (any worker)
    origin_run     INTEGER,
    origin_episode INTEGER,
    keep_weights   INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,             -- pending | running | done
    owner          TEXT,                      -- the worker holding the lease
    attempt        INTEGER NOT NULL DEFAULT 0,
    lease_until    REAL,                      -- unix seconds
    evaluation_id  INTEGER REFERENCES evaluations(id),
    weights        BLOB,                      -- safetensors, until the search takes them
    last_error     TEXT,
    queued_at      REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL
);
CREATE INDEX IF NOT EXISTS queue_status ON queue (status, id);
CREATE TABLE IF NOT EXISTS workers (
    name       TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    device     TEXT NOT NULL,
    threads    INTEGER NOT NULL,
    started_at REAL NOT NULL,
    seen_at    REAL NOT NULL,                 -- unix seconds of its last sign of life
    job_id     INTEGER,                       -- the child it trains now
    trained    INTEGER NOT NULL DEFAULT 0,
    stopped    INTEGER NOT NULL DEFAULT 0
);
"#,
    // 5: the checksum of the data a child must be trained on, so a worker with other data is
    // refused.
    r#"
ALTER TABLE queue ADD COLUMN data_sha256 TEXT NOT NULL DEFAULT '';
"#,
    // 6: assessors: a child's learning curve, whether the assessor stopped it (such an evaluation
    // is stored under a key of its own episode, so it is never a cache hit) and what measuring
    // the curve cost; the run's assessor plugin.
    r#"
ALTER TABLE evaluations ADD COLUMN curve TEXT;               -- JSON list, accuracy per epoch; NULL unwatched
ALTER TABLE evaluations ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE evaluations ADD COLUMN measure_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN assessor_name TEXT;
ALTER TABLE runs ADD COLUMN assessor_version TEXT;
ALTER TABLE runs ADD COLUMN assessor_path TEXT;
ALTER TABLE runs ADD COLUMN assessor_sha256 TEXT;
"#,
    // 7: assessors with workers: a watched child is its run's own job (its queue key carries the
    // run; `evaluation_key` is the key it is recorded under), its worker posts the curve after
    // every epoch and waits for the search's verdict on it.
    r#"
ALTER TABLE queue ADD COLUMN evaluation_key TEXT;             -- NULL: the queue's cache_key
ALTER TABLE queue ADD COLUMN watch_epochs INTEGER;             -- the protocol's epochs when watched
ALTER TABLE queue ADD COLUMN curve TEXT;                       -- JSON, accuracy per epoch of this attempt
ALTER TABLE queue ADD COLUMN verdict_epochs INTEGER NOT NULL DEFAULT 0; -- the curve length last judged
ALTER TABLE queue ADD COLUMN verdict_stop INTEGER NOT NULL DEFAULT 0;
"#,
    // 8: evaluations are immutable: a new result for a cache key is a new row (the cache serves
    // the newest one that is not transient), so episodes that point at an older row keep their
    // outcome. SQLite cannot drop the UNIQUE constraint on cache_key in place: the table is
    // rebuilt as SQLite's "making other kinds of table schema changes" procedure says (the
    // migration runs with foreign keys off and checks them before it commits), ids kept.
    r#"
CREATE TABLE evaluations_v8 (
    id              INTEGER PRIMARY KEY,
    cache_key       TEXT NOT NULL,            -- not unique: every result is a row of its own
    architecture    TEXT NOT NULL,
    dataset         TEXT NOT NULL,
    evaluator       TEXT NOT NULL,
    protocol        TEXT NOT NULL,
    accuracy        REAL NOT NULL,
    params          INTEGER NOT NULL,
    depth           INTEGER NOT NULL,
    seconds         REAL NOT NULL,
    failure         TEXT,
    created_at      TEXT NOT NULL DEFAULT (datetime('now')),
    transient       INTEGER NOT NULL DEFAULT 0,
    origin_run      INTEGER,
    origin_episode  INTEGER,
    curve           TEXT,
    stopped         INTEGER NOT NULL DEFAULT 0,
    measure_seconds REAL NOT NULL DEFAULT 0
);
INSERT INTO evaluations_v8 (id, cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth,
        seconds, failure, created_at, transient, origin_run, origin_episode, curve, stopped, measure_seconds)
    SELECT id, cache_key, architecture, dataset, evaluator, protocol, accuracy, params, depth,
        seconds, failure, created_at, transient, origin_run, origin_episode, curve, stopped, measure_seconds
    FROM evaluations;
DROP TABLE evaluations;
ALTER TABLE evaluations_v8 RENAME TO evaluations;
CREATE INDEX evaluations_origin ON evaluations (origin_run, origin_episode);
CREATE INDEX evaluations_key ON evaluations (cache_key, id);
"#,
    // 9: a finished job is never reset: a child queued again after its key's job finished is a
    // new job (the finished one keeps its result and weights for the waiters that hold its id),
    // so the key is unique only among live jobs (`queue::rules::LIVE`). The table is rebuilt as
    // in migration 8, to drop the UNIQUE constraint.
    r#"
CREATE TABLE queue_v9 (
    id             INTEGER PRIMARY KEY,
    cache_key      TEXT NOT NULL,             -- unique among live jobs (queue_live_key)
    architecture   TEXT NOT NULL,
    dataset        TEXT NOT NULL,
    evaluator      TEXT NOT NULL,
    protocol       TEXT NOT NULL,
    device         TEXT NOT NULL,
    origin_run     INTEGER,
    origin_episode INTEGER,
    keep_weights   INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL,             -- pending | running | done
    owner          TEXT,
    attempt        INTEGER NOT NULL DEFAULT 0,
    lease_until    REAL,
    evaluation_id  INTEGER REFERENCES evaluations(id),
    weights        BLOB,
    last_error     TEXT,
    queued_at      REAL NOT NULL,
    started_at     REAL,
    finished_at    REAL,
    data_sha256    TEXT NOT NULL DEFAULT '',
    evaluation_key TEXT,
    watch_epochs   INTEGER,
    curve          TEXT,
    verdict_epochs INTEGER NOT NULL DEFAULT 0,
    verdict_stop   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO queue_v9 (id, cache_key, architecture, dataset, evaluator, protocol, device, origin_run, origin_episode,
        keep_weights, status, owner, attempt, lease_until, evaluation_id, weights, last_error, queued_at, started_at,
        finished_at, data_sha256, evaluation_key, watch_epochs, curve, verdict_epochs, verdict_stop)
    SELECT id, cache_key, architecture, dataset, evaluator, protocol, device, origin_run, origin_episode,
        keep_weights, status, owner, attempt, lease_until, evaluation_id, weights, last_error, queued_at, started_at,
        finished_at, data_sha256, evaluation_key, watch_epochs, curve, verdict_epochs, verdict_stop
    FROM queue;
DROP TABLE queue;
ALTER TABLE queue_v9 RENAME TO queue;
CREATE INDEX queue_status ON queue (status, id);
CREATE UNIQUE INDEX queue_live_key ON queue (cache_key) WHERE status <> 'done';
"#,
    // 10: a child's attempts count only the workers that died on it (#22 item 2): `attempt` stays
    // the lease generation, `deaths` counts the leases that ended with the worker dead (its lease
    // expired, or its process exited while training it); children handed back for other reasons
    // (the pool stopped, a worker refused the data) do not count.
    r#"
ALTER TABLE queue ADD COLUMN deaths INTEGER NOT NULL DEFAULT 0;
"#,
    // 11: kept weights belong to a run and an evaluation together (#22 item 19): a second run
    // keeping the same evaluation keeps a copy of its own, so it neither takes the first run's
    // over nor prunes them. Rebuilt as in migration 8, to change the primary key.
    r#"
CREATE TABLE kept_weights_v11 (
    run_id        INTEGER NOT NULL REFERENCES runs(id),
    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
    safetensors   BLOB NOT NULL,
    PRIMARY KEY (run_id, evaluation_id)
);
INSERT INTO kept_weights_v11 (run_id, evaluation_id, safetensors)
    SELECT run_id, evaluation_id, safetensors FROM kept_weights;
DROP TABLE kept_weights;
ALTER TABLE kept_weights_v11 RENAME TO kept_weights;
"#,
    // 12: every search that waits on a job for its weights takes them (#22 item 19): a job counts
    // its takers, and its weights leave the queue after the last one (`queue::rules::WEIGHTS_TAKEN`).
    r#"
ALTER TABLE queue ADD COLUMN weight_takers INTEGER NOT NULL DEFAULT 0;
UPDATE queue SET weight_takers = keep_weights;
"#,
    // 13: an evaluation whose accuracy a surrogate predicted (the table evaluator, #24) says so.
    "ALTER TABLE evaluations ADD COLUMN predicted INTEGER NOT NULL DEFAULT 0;",
    // 14: what a child costs to run (#28): multiply-adds, peak activation memory and inference
    // latency as columns, and the whole measurement as JSON.
    r#"
ALTER TABLE evaluations ADD COLUMN mult_adds INTEGER;
ALTER TABLE evaluations ADD COLUMN activation_bytes INTEGER;
ALTER TABLE evaluations ADD COLUMN latency_ms REAL;
ALTER TABLE evaluations ADD COLUMN latency_p90_ms REAL;
ALTER TABLE evaluations ADD COLUMN cost TEXT;
"#,
    // 15: a worker times the child it trained (#28): the job carries the search's `[cost]`.
    "ALTER TABLE queue ADD COLUMN cost_json TEXT;",
    // 16: a run answered from a benchmark table records which table (its content's checksum) and
    // the surrogate's held-out quality then, so a resume refuses a changed table and a report
    // quotes the quality the run's predictions had.
    r#"
ALTER TABLE runs ADD COLUMN table_sha256 TEXT;
ALTER TABLE runs ADD COLUMN surrogate_quality TEXT;
"#,
];
