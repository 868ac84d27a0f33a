"""nas-host from Python.

``NasEnv`` is a Gymnasium environment over nas-host: each step adds one layer (an action of the
flat action list, masked exactly as the host's MDP says); the step that ends the network trains the
child with the host's trainer (same cache, protocol, devices and workers as ``nas-host search``) and
returns the reward its reward plugin shapes. Every environment records a run in the store under the
agent name ``python:NAME``, so ``nas-host report``, ``compare`` and ``serve`` show it.

``open_store`` reads a run store (SQLite file or ``postgres://`` URL) into pandas DataFrames.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

# The host's trainer is linked against PyTorch 2.11.0's libtorch. Importing torch first makes the
# process load torch's own copy, which the native module then shares (one libtorch per process);
# a different torch would be a different libtorch, so it is refused with the reason.
try:
    import torch as _torch
except ImportError:  # torch is a dependency, but the module also works without it (rpath).
    _torch = None

from . import _native

if _torch is not None and _torch.__version__.split("+")[0] != _native.TORCH_VERSION:
    raise ImportError(
        f"nas_host was built against PyTorch {_native.TORCH_VERSION}'s libtorch, but this process "
        f"imported torch {_torch.__version__}; install torch=={_native.TORCH_VERSION} "
        "(pip install ./python does) so both use one libtorch"
    )

import gymnasium as gym
import pandas as pd
from gymnasium import spaces

__all__ = ["NasEnv", "RunStore", "open_store"]


def _worker_binary(explicit: str | None) -> str | None:
    """The nas-host binary workers run: given, $NAS_HOST, or `nas-host` on the PATH."""
    return explicit or os.environ.get("NAS_HOST") or shutil.which("nas-host")


class NasEnv(gym.Env):
    """Designing a CNN one layer at a time, as a Gymnasium environment.

    Parameters
    ----------
    dataset:
        ``mnist3``, ``cifar5``, ``cifar10``, ``synthetic``, a folder of class folders or a ``.npz``.
    config:
        A run configuration TOML file (``configs/*.toml``); keyword arguments override it.
    store:
        The run store: a SQLite file or a ``postgres://`` URL.
    evaluator:
        ``train`` (the default), ``synthetic`` or ``table:FILE``.
    agent:
        The name the run is recorded under, as ``python:AGENT``.
    invalid_action:
        What a masked action does: ``"end"`` (the default) ends the episode with reward
        ``invalid_action_reward`` and nothing is trained or stored (so generic tools such as
        ``gymnasium.utils.env_checker.check_env`` that ignore masks work); ``"raise"`` raises
        ``ValueError`` naming the rule the action breaks.
    **overrides:
        Any run configuration key: ``episodes``, ``seed``, ``reward``, ``assessor``, and tables as
        dicts: ``train={"epochs": 1}``, ``plugins={"size_penalty": {"beta": 0.1}}``,
        ``parallel={"workers": 2}``.

    Observations are the seed's one-hot state (``Box(0, 1)``); ``info`` holds the 7-field state
    tuple, the depth, the image size and the action mask. Rewards are 0 for every step but the
    last. ``reset(seed=...)`` seeds ``np_random``; the host's transitions are deterministic and a
    child's training seed is the configuration's ``[train] seed``.

    Pickling an environment (``SubprocVecEnv`` pickles the factory, not the environment) opens a
    new one with the same arguments: a new run in the same store, since a run's network in the
    middle of its design and its training cannot move between processes.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        dataset: str | None = None,
        config: str | os.PathLike | None = None,
        store: str | os.PathLike = "runs/nas.sqlite",
        evaluator: str | None = None,
        *,
        agent: str = "gymnasium",
        data_dir: str | os.PathLike | None = None,
        device: str = "auto",
        no_cache: bool = False,
        invalid_action: str = "end",
        invalid_action_reward: float = 0.0,
        nas_host_bin: str | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ):
        if invalid_action not in ("end", "raise"):
            raise ValueError(f'invalid_action must be "end" or "raise", not {invalid_action!r}')
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}")
        self._kwargs = dict(
            dataset=dataset,
            config=config,
            store=store,
            evaluator=evaluator,
            agent=agent,
            data_dir=data_dir,
            device=device,
            no_cache=no_cache,
            invalid_action=invalid_action,
            invalid_action_reward=invalid_action_reward,
            nas_host_bin=nas_host_bin,
            render_mode=render_mode,
            **overrides,
        )
        settings: dict[str, Any] = dict(overrides)
        if dataset is not None:
            settings["dataset"] = str(dataset)
        if evaluator is not None:
            kind, _, table = str(evaluator).partition(":")
            settings["evaluator"] = kind
            if table:
                settings["table"] = {**settings.get("table", {}), "file": table}
        data_dir = data_dir if data_dir is not None else os.environ.get("NAS_DATA_DIR")
        self._run = _native.Run(
            json.dumps(settings),
            os.fspath(store),
            f"python:{agent}",
            config=None if config is None else os.fspath(config),
            data_dir=None if data_dir is None else os.fspath(data_dir),
            device=device,
            no_cache=no_cache,
            worker_exe=_worker_binary(nas_host_bin),
        )
        self.invalid_action = invalid_action
        self.invalid_action_reward = float(invalid_action_reward)
        self.render_mode = render_mode
        self.actions = self._run.actions
        self.tuple_field_sizes = tuple(self._run.tuple_field_sizes)
        self.action_space = spaces.Discrete(len(self.actions))
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self._run.observation_len,), dtype=np.float32)
        self._layers: list[str] = []

    @property
    def run_id(self) -> int:
        """The id of this environment's run in the store."""
        return self._run.run_id

    @property
    def episodes_done(self) -> int:
        return self._run.episodes_done

    def action_masks(self) -> np.ndarray:
        """The exact mask over the action list (what sb3-contrib's ``MaskablePPO`` asks for)."""
        return np.asarray(self._run.mask(), dtype=bool)

    def _observation(self) -> tuple[np.ndarray, dict[str, Any]]:
        features, state_tuple, depth, image_size = self._run.observe()
        info = {
            "tuple": tuple(state_tuple),
            "depth": depth,
            "image_size": image_size,
            "action_mask": self.action_masks(),
            "run": self.run_id,
        }
        return np.asarray(features, dtype=np.float32), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._run.reset()
        self._layers = []
        return self._observation()

    def step(self, action):
        action = int(action)
        if not (0 <= action < self.action_space.n):
            raise ValueError(f"action {action} is outside the action space (0–{self.action_space.n - 1})")
        if not self._run.mask()[action] and self.invalid_action == "end":
            observation, info = self._observation()
            info["invalid_action"] = True
            self._run.reset()
            self._layers = []
            return observation, self.invalid_action_reward, True, False, info
        episode = self._run.step(action)  # raises ValueError for a masked action ("raise")
        spec = self.actions[action]
        self._layers.append(spec["text"])
        observation, info = self._observation()
        if episode is None:
            return observation, 0.0, False, False, info
        info["episode"] = episode
        self._layers = []
        return observation, float(episode["reward"]), True, False, info

    def render(self):
        if self.render_mode == "ansi":
            return " ".join(self._layers) or "(empty)"
        return None

    def close(self):
        run = getattr(self, "_run", None)
        if run is not None:
            run.close()
        super().close()

    def __getstate__(self):
        return self._kwargs

    def __setstate__(self, kwargs):
        self.__init__(**kwargs)


# `gymnasium.make("nas_host/NasEnv-v0", dataset=..., ...)` builds one too (with the usual wrappers).
gym.register(id="nas_host/NasEnv-v0", entry_point="nas_host:NasEnv")


@dataclass
class RunStore:
    """A run store's tables as DataFrames.

    ``runs``: one row per run (id, status, dataset, evaluator, agent, reward, device, …).
    ``episodes``: every committed episode (run, episode, architecture, reward, accuracy, params,
    depth, cache_hit, failure, …). ``evaluations``: each episode's evaluation (its id, accuracy,
    params, training seconds, failure, whether it was stopped early or predicted by a table's
    surrogate, and its cost: multiply-adds, peak activation bytes, latency median and p90 in ms and
    where the latency comes from). ``curves``: accuracy per epoch, where an assessor watched training.
    """

    runs: pd.DataFrame
    episodes: pd.DataFrame
    evaluations: pd.DataFrame
    curves: pd.DataFrame

    def episodes_of(self, run: int) -> pd.DataFrame:
        """One run's episodes, in design order."""
        rows = self.episodes[self.episodes["run"] == run]
        return rows.sort_values("episode").reset_index(drop=True)


_NULLABLE_INTEGERS = {"seed", "episodes_target", "episodes_done", "params", "depth", "env", "reported", "mult_adds",
                      "activation_bytes"}


def open_store(url: str | os.PathLike = "runs/nas.sqlite") -> RunStore:
    """Reads a run store (a SQLite file or a ``postgres://`` URL) into DataFrames."""
    tables = _native.read_store(os.fspath(url))
    frames = {}
    for name, columns in tables.items():
        frame = pd.DataFrame(columns)
        for column in frame.columns:
            if column in ("run", "episode", "evaluation", "epoch") or column in _NULLABLE_INTEGERS:
                frame[column] = frame[column].astype("Int64")
        frames[name] = frame
    return RunStore(**frames)
