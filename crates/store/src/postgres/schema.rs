//! The PostgreSQL store's schema: the SQLite store's migrations (`sqlite/schema.rs`), version for
//! version, in PostgreSQL's types.

/// The migrations of `super::MIGRATIONS`, version for version, in PostgreSQL's types.
use super::NOW;

pub(super) fn migrations() -> Vec<String> {
    vec![
        format!(
            r#"
CREATE TABLE IF NOT EXISTS runs (
    id BIGSERIAL PRIMARY KEY, created_at TEXT NOT NULL DEFAULT {NOW}, finished_at TEXT,
    status TEXT NOT NULL, error TEXT, config_toml TEXT NOT NULL, dataset TEXT NOT NULL,
    evaluator TEXT NOT NULL, seed BIGINT NOT NULL, episodes_target BIGINT NOT NULL,
    agent_name TEXT NOT NULL, agent_version TEXT NOT NULL, agent_path TEXT NOT NULL, agent_sha256 TEXT NOT NULL,
    reward_name TEXT NOT NULL, reward_version TEXT NOT NULL, reward_path TEXT NOT NULL, reward_sha256 TEXT NOT NULL,
    wall_seconds DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS evaluations (
    id BIGSERIAL PRIMARY KEY, cache_key TEXT NOT NULL UNIQUE, architecture TEXT NOT NULL,
    dataset TEXT NOT NULL, evaluator TEXT NOT NULL, protocol TEXT NOT NULL,
    accuracy DOUBLE PRECISION NOT NULL, params BIGINT NOT NULL, depth BIGINT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL, failure TEXT, created_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id BIGINT NOT NULL REFERENCES runs(id), idx BIGINT NOT NULL, env BIGINT NOT NULL,
    architecture TEXT NOT NULL, reward DOUBLE PRECISION NOT NULL, accuracy DOUBLE PRECISION NOT NULL,
    params BIGINT NOT NULL, depth BIGINT NOT NULL, evaluation_id BIGINT NOT NULL REFERENCES evaluations(id),
    cache_hit BOOLEAN NOT NULL, metrics TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT {NOW},
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id BIGINT PRIMARY KEY REFERENCES runs(id), episodes BIGINT NOT NULL, agent_state BYTEA NOT NULL,
    saved_at TEXT NOT NULL DEFAULT {NOW}
);
CREATE TABLE IF NOT EXISTS eval_samples (
    run_id BIGINT NOT NULL REFERENCES runs(id), sample BIGINT NOT NULL, architecture TEXT NOT NULL,
    accuracy DOUBLE PRECISION NOT NULL, params BIGINT NOT NULL, depth BIGINT NOT NULL,
    evaluation_id BIGINT NOT NULL REFERENCES evaluations(id), cache_hit BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, sample)
);
"#
        ),
        r#"
ALTER TABLE runs ADD COLUMN device TEXT;
ALTER TABLE runs ADD COLUMN no_cache BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE evaluations ADD COLUMN transient BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE evaluations ADD COLUMN origin_run BIGINT;
ALTER TABLE evaluations ADD COLUMN origin_episode BIGINT;
CREATE INDEX IF NOT EXISTS evaluations_origin ON evaluations (origin_run, origin_episode);
ALTER TABLE episodes ADD COLUMN failure TEXT;
ALTER TABLE eval_samples ADD COLUMN train_seed BIGINT;
ALTER TABLE eval_samples ADD COLUMN failure TEXT;
"#
        .into(),
        r#"
CREATE TABLE IF NOT EXISTS kept_weights (
    evaluation_id BIGINT PRIMARY KEY REFERENCES evaluations(id),
    run_id BIGINT NOT NULL REFERENCES runs(id), safetensors BYTEA NOT NULL
);
"#
        .into(),
        r#"
ALTER TABLE episodes ADD COLUMN reported BIGINT;
CREATE TABLE IF NOT EXISTS in_flight (
    run_id BIGINT NOT NULL REFERENCES runs(id), idx BIGINT NOT NULL, env BIGINT NOT NULL,
    architecture TEXT NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS queue (
    id BIGSERIAL PRIMARY KEY, cache_key TEXT NOT NULL UNIQUE, architecture TEXT NOT NULL,
    dataset TEXT NOT NULL, evaluator TEXT NOT NULL, protocol TEXT NOT NULL, device TEXT NOT NULL,
    origin_run BIGINT, origin_episode BIGINT, keep_weights BOOLEAN NOT NULL DEFAULT false,
    status TEXT NOT NULL, owner TEXT, attempt BIGINT NOT NULL DEFAULT 0, lease_until DOUBLE PRECISION,
    evaluation_id BIGINT REFERENCES evaluations(id), weights BYTEA, last_error TEXT,
    queued_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS queue_status ON queue (status, id);
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, device TEXT NOT NULL,
    threads BIGINT NOT NULL, started_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL,
    job_id BIGINT, trained BIGINT NOT NULL DEFAULT 0, stopped BOOLEAN NOT NULL DEFAULT false
);
"#
        .into(),
        "ALTER TABLE queue ADD COLUMN data_sha256 TEXT NOT NULL DEFAULT '';".into(),
        r#"
ALTER TABLE evaluations ADD COLUMN curve TEXT;
ALTER TABLE evaluations ADD COLUMN stopped BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE evaluations ADD COLUMN measure_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN assessor_name TEXT;
ALTER TABLE runs ADD COLUMN assessor_version TEXT;
ALTER TABLE runs ADD COLUMN assessor_path TEXT;
ALTER TABLE runs ADD COLUMN assessor_sha256 TEXT;
"#
        .into(),
        r#"
ALTER TABLE queue ADD COLUMN evaluation_key TEXT;
ALTER TABLE queue ADD COLUMN watch_epochs BIGINT;
ALTER TABLE queue ADD COLUMN curve TEXT;
ALTER TABLE queue ADD COLUMN verdict_epochs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN verdict_stop BOOLEAN NOT NULL DEFAULT false;
"#
        .into(),
        // 8: evaluations are immutable: a new result for a cache key is a new row.
        r#"
ALTER TABLE evaluations DROP CONSTRAINT IF EXISTS evaluations_cache_key_key;
CREATE INDEX IF NOT EXISTS evaluations_key ON evaluations (cache_key, id);
"#
        .into(),
        // 9: a child queued after its key's job finished is a new job: the key is unique only
        // among live jobs (`queue::rules::LIVE`).
        r#"
ALTER TABLE queue DROP CONSTRAINT IF EXISTS queue_cache_key_key;
CREATE UNIQUE INDEX IF NOT EXISTS queue_live_key ON queue (cache_key) WHERE status <> 'done';
"#
        .into(),
        // 10: `deaths`, the workers that died on a child (`attempt` stays the lease generation).
        "ALTER TABLE queue ADD COLUMN deaths BIGINT NOT NULL DEFAULT 0;".into(),
        // 11: kept weights belong to a run and an evaluation together.
        r#"
ALTER TABLE kept_weights DROP CONSTRAINT IF EXISTS kept_weights_pkey;
ALTER TABLE kept_weights ADD PRIMARY KEY (run_id, evaluation_id);
"#
        .into(),
        // 12: a job counts the searches that will take its weights.
        r#"
ALTER TABLE queue ADD COLUMN weight_takers BIGINT NOT NULL DEFAULT 0;
UPDATE queue SET weight_takers = CASE WHEN keep_weights THEN 1 ELSE 0 END;
"#
        .into(),
        // 13: predicted accuracies are marked.
        "ALTER TABLE evaluations ADD COLUMN predicted BOOLEAN NOT NULL DEFAULT false;".into(),
        // 14: what a child costs to run.
        "ALTER TABLE evaluations ADD COLUMN mult_adds BIGINT;
         ALTER TABLE evaluations ADD COLUMN activation_bytes BIGINT;
         ALTER TABLE evaluations ADD COLUMN latency_ms DOUBLE PRECISION;
         ALTER TABLE evaluations ADD COLUMN latency_p90_ms DOUBLE PRECISION;
         ALTER TABLE evaluations ADD COLUMN cost TEXT;"
            .into(),
        // 15: a job carries the search's `[cost]`, so its worker times the child.
        "ALTER TABLE queue ADD COLUMN cost_json TEXT;".into(),
        // 16: a table run records its table's checksum and the surrogate's quality.
        "ALTER TABLE runs ADD COLUMN table_sha256 TEXT;
         ALTER TABLE runs ADD COLUMN surrogate_quality TEXT;"
            .into(),
    ]
}
