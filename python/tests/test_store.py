"""open_store: a CLI run's tables, exactly, from SQLite and PostgreSQL."""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

import nas_host


def cli_search(cli, db, *extra):
    lines = cli("search", "--db", str(db), "--json", *extra)
    return [json.loads(line) for line in lines.splitlines() if line.startswith("{")]


def assert_episodes_equal(store, printed):
    episodes = store.episodes_of(printed[0]["run"])
    assert len(episodes) == len(printed)
    for row, line in zip(episodes.to_dict("records"), printed):
        for key in ("run", "episode", "architecture", "reward", "accuracy", "params", "depth", "cache_hit", "stopped"):
            assert row[key] == line[key], (key, row[key], line[key])
        assert (row["failure"] if isinstance(row["failure"], str) else None) == line["failure"]
        assert json.loads(row["metrics"]) == line["metrics"]


def test_open_store_returns_a_cli_runs_episodes_exactly(tmp_path, cli):
    db = tmp_path / "nas.sqlite"
    printed = cli_search(cli, db, "--agent", "ppo", "--evaluator", "synthetic", "--dataset", "mnist3",
                         "--episodes", "40", "--seed", "3")
    store = nas_host.open_store(db)
    assert_episodes_equal(store, printed)
    run = store.runs.iloc[0]
    assert (run["run"], run["status"], run["agent"], run["episodes_done"]) == (printed[0]["run"], "finished", "ppo", 40)
    evaluations = store.evaluations
    assert len(evaluations) == 40
    assert list(evaluations["accuracy"]) == [line["accuracy"] for line in printed]
    assert store.curves.empty


def test_curves_of_watched_children(tmp_path, cli, tiny_npz):
    db = tmp_path / "nas.sqlite"
    printed = cli_search(cli, db, "--agent", "random", "--dataset", str(tiny_npz), "--episodes", "4",
                         "--epochs", "2", "--assessor", "median_stop", "--device", "cpu")
    store = nas_host.open_store(db)
    assert_episodes_equal(store, printed)
    # Children trained in the search process are timed ([cost], on by default).
    assert (store.evaluations["latency_ms"] > 0).all()
    assert (store.evaluations["latency_p90_ms"] >= store.evaluations["latency_ms"]).all()
    assert (store.evaluations["mult_adds"] > 0).all()
    for evaluation in store.evaluations.itertuples():
        curve = store.curves[store.curves["evaluation"] == evaluation.evaluation]
        assert list(curve["epoch"]) == list(range(1, len(curve) + 1))
        assert len(curve) == (len(curve) if evaluation.stopped else 2)
        assert curve["accuracy"].iloc[-1] == evaluation.accuracy


def test_a_missing_store_is_named(tmp_path):
    with pytest.raises(RuntimeError, match="no run store at .*nothing.sqlite"):
        nas_host.open_store(tmp_path / "nothing.sqlite")


def postgres_bin():
    found = shutil.which("initdb")
    if found:
        return pathlib.Path(found).parent
    for candidate in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server (initdb in a temporary directory, a Unix socket only)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("NAS_TEST_PG") == "1":
            pytest.fail("NAS_TEST_PG=1 but PostgreSQL's initdb is not installed (scripts/ensure-postgres.sh)")
        pytest.skip("PostgreSQL is not installed")
    root = os.geteuid() == 0
    as_pg = ["runuser", "-u", "postgres", "--"] if root else []
    directory = pathlib.Path(tempfile.mkdtemp(prefix="nas-py-pg-"))
    directory.chmod(0o777)
    data = directory / "data"
    subprocess.run([*as_pg, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-k {directory} -c listen_addresses='' -c fsync=off -c port=5433"
    subprocess.run([*as_pg, bin_dir / "pg_ctl", "-D", data, "-l", directory / "log", "-o", options, "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql:///postgres?host={directory}&port=5433&user=postgres"
    finally:
        subprocess.run([*as_pg, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def test_open_store_reads_postgresql_alike(cli, postgres_url):
    printed = cli_search(cli, postgres_url, "--agent", "qlearning", "--evaluator", "synthetic", "--dataset",
                         "mnist3", "--episodes", "25")
    store = nas_host.open_store(postgres_url)
    assert_episodes_equal(store, printed)
    # An environment records its run there too.
    env = nas_host.NasEnv(dataset="mnist3", evaluator="synthetic", store=postgres_url)
    env.close()
    assert set(nas_host.open_store(postgres_url).runs["agent"]) == {"qlearning", "python:gymnasium"}
