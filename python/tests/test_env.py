"""NasEnv: the Gymnasium contract, exact masks, and rewards equal to the CLI's."""

import json
import pickle
import subprocess

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import nas_host


def synthetic_env(tmp_path, **kwargs):
    return nas_host.NasEnv(dataset="mnist3", evaluator="synthetic", store=tmp_path / "nas.sqlite", **kwargs)


def actions_for(env, arch: str) -> list[int]:
    """The action indices that design `arch` (each layer, the last one terminating)."""
    layers = arch.split()
    indices = []
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        matches = [k for k, a in enumerate(env.actions) if a["text"] == layer and a["terminate"] == last]
        assert len(matches) == 1, (layer, matches)
        indices.append(matches[0])
    return indices


def test_check_env_passes(tmp_path):
    env = synthetic_env(tmp_path)
    check_env(env, skip_render_check=True)
    assert env.action_space.n == 38
    assert env.observation_space.shape == (sum(env.tuple_field_sizes),)
    env.close()


def test_gymnasium_make_builds_it(tmp_path):
    import gymnasium as gym

    env = gym.make("nas_host/NasEnv-v0", dataset="mnist3", evaluator="synthetic", store=tmp_path / "nas.sqlite")
    check_env(env.unwrapped, skip_render_check=True)
    assert isinstance(env.unwrapped, nas_host.NasEnv)
    env.close()


def test_a_masked_random_policy_always_designs_a_valid_network(tmp_path, nas_host_bin):
    env = synthetic_env(tmp_path, invalid_action="raise")
    rng = np.random.default_rng(3)
    architectures = []
    for _ in range(150):
        observation, info = env.reset()
        assert info["depth"] == 0 and observation.dtype == np.float32
        terminated = False
        steps = 0
        while not terminated:
            mask = env.action_masks()
            assert mask.any(), f"no action allowed after {info['depth']} layers"
            assert (mask == info["action_mask"]).all()
            observation, reward, terminated, truncated, info = env.step(rng.choice(np.flatnonzero(mask)))
            assert not truncated and env.observation_space.contains(observation)
            steps += 1
        assert not env.action_masks().any(), "a finished network allows no further action"
        episode = info["episode"]
        assert episode["depth"] == steps <= 8
        architectures.append(episode["architecture"])
    env.close()
    # The host checks networks against the search space's rules on its own (`show-arch` notes one
    # the space would not produce); 30 distinct ones keep the test short (a process each).
    distinct = sorted(set(architectures))
    for arch in distinct[:: max(1, len(distinct) // 30)]:
        shown = subprocess.run([nas_host_bin, "show-arch", "--dataset", "mnist3", arch], capture_output=True, text=True)
        assert shown.returncode == 0, shown.stderr
        assert "would not produce" not in shown.stderr, shown.stderr
    stored = nas_host.open_store(tmp_path / "nas.sqlite").episodes
    assert list(stored["architecture"]) == architectures


def test_a_masked_action_is_refused_with_the_rule_or_ends_the_episode(tmp_path):
    strict = synthetic_env(tmp_path, invalid_action="raise")
    strict.reset()
    masked = int(np.flatnonzero(~strict.action_masks())[0])
    with pytest.raises(ValueError, match=f"action {masked} .* is masked out"):
        strict.step(masked)
    # Nothing changed: a valid action still works from the start state.
    _, _, _, _, info = strict.step(int(np.flatnonzero(strict.action_masks())[0]))
    assert info["depth"] == 1
    strict.close()

    lenient = synthetic_env(tmp_path)
    lenient.reset()
    _, reward, terminated, _, info = lenient.step(masked)
    assert terminated and reward == 0.0 and info["invalid_action"]
    assert lenient.episodes_done == 0, "an invalid action trains and stores nothing"
    lenient.close()


def test_the_reward_is_what_train_arch_gives(tmp_path, tiny_npz, cli):
    arch = "conv(10,3) pool(2,2) fc(64)"
    env = nas_host.NasEnv(
        dataset=str(tiny_npz), store=tmp_path / "nas.sqlite", device="cpu", train={"epochs": 1, "seed": 5}
    )
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in actions_for(env, arch)]
    assert rewards[:-1] == [0.0, 0.0]
    trained = json.loads(
        cli("train-arch", "--dataset", str(tiny_npz), "--arch", arch, "--epochs", "1", "--seed", "5",
            "--device", "cpu", "--json")
    )
    assert trained["failure"] is None
    assert rewards[-1] == trained["accuracy"]
    # The same network again is the cache's answer, with the same reward.
    env.reset()
    for a in actions_for(env, arch):
        _, reward, terminated, _, info = env.step(a)
    assert terminated and info["episode"]["cache_hit"] and reward == trained["accuracy"]
    env.close()


def test_the_reward_plugin_shapes_the_reward(tmp_path):
    plain = synthetic_env(tmp_path)
    penalised = synthetic_env(tmp_path, reward="size_penalty")
    arch = "conv(64,5) fc(512)"
    for env in (plain, penalised):
        env.reset()
        for a in actions_for(env, arch):
            _, reward, _, _, info = env.step(a)
        env.last_episode = info["episode"]
    assert plain.last_episode["accuracy"] == penalised.last_episode["accuracy"]
    assert penalised.last_episode["reward"] < plain.last_episode["reward"]


def test_each_env_records_a_run_and_a_pickled_env_opens_a_new_one(tmp_path):
    env = synthetic_env(tmp_path, agent="mine")
    clone = pickle.loads(pickle.dumps(env))
    assert clone.run_id != env.run_id
    runs = nas_host.open_store(tmp_path / "nas.sqlite").runs
    assert set(runs["agent"]) == {"python:mine"}
    env.close()
    clone.close()


def test_a_python_run_cannot_be_resumed_by_the_cli(tmp_path, nas_host_bin):
    env = synthetic_env(tmp_path)
    env.close()
    done = subprocess.run(
        [nas_host_bin, "search", "--resume", str(env.run_id), "--db", str(tmp_path / "nas.sqlite")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "outside nas-host" in done.stderr


def test_a_bad_configuration_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="epochz"):
        synthetic_env(tmp_path, train={"epochz": 1})


def test_report_and_compare_show_a_python_run(tmp_path, cli):
    env = synthetic_env(tmp_path, agent="mine")
    rng = np.random.default_rng(1)
    while env.episodes_done < 12:
        env.reset()
        terminated = False
        while not terminated:
            _, _, terminated, _, _ = env.step(rng.choice(np.flatnonzero(env.action_masks())))
    env.close()
    db = str(tmp_path / "nas.sqlite")
    cli("report", "--db", db, "--out", str(tmp_path / "report"), str(env.run_id))
    report = (tmp_path / "report" / "report.md").read_text()
    assert "python:mine" in report
    table = cli("compare", "--db", db, str(env.run_id))
    assert "python:mine" in table


def test_one_libtorch_in_a_process_that_uses_torch(tmp_path, tiny_npz):
    import torch

    assert float(torch.ones(3).sum()) == 3.0
    env = nas_host.NasEnv(dataset=str(tiny_npz), store=tmp_path / "nas.sqlite", device="cpu", train={"epochs": 1})
    env.reset()
    for a in actions_for(env, "conv(10,3) fc(64)"):
        _, reward, _, _, _ = env.step(a)
    assert 0.0 < reward <= 1.0
    assert float(torch.ones(2, 2).matmul(torch.ones(2, 2)).sum()) == 8.0
    env.close()
    # The host's trainer and torch share the one libtorch mapped into this process.
    mapped = {line.split()[-1] for line in open("/proc/self/maps") if line.rstrip().endswith("libtorch_cpu.so")}
    assert len(mapped) == 1, mapped


def test_children_train_on_the_runs_workers(tmp_path, tiny_npz, nas_host_bin):
    env = nas_host.NasEnv(dataset=str(tiny_npz), store=tmp_path / "nas.sqlite", device="cpu",
                          train={"epochs": 1}, parallel={"workers": 1}, nas_host_bin=nas_host_bin)
    env.reset()
    for a in actions_for(env, "conv(10,3)"):
        _, reward, terminated, _, info = env.step(a)
    env.close()
    assert terminated and info["episode"]["failure"] is None
    log = (tmp_path / "worker-logs" / "worker-0.log").read_text()
    assert "training conv(10,3)" in log, log
