"""nas-plugin for Python: write nas-host agents, reward shapers and assessors in plain Python.

Subclass `Agent`, `RewardShaper` or `Assessor`, call `register_agent` (or `register_reward`,
`register_assessor`) once, and build the file into a WebAssembly component with
`make python-plugin SRC=file.py`. The WIT contract (`plugin-sdk/wit/nas-plugin.wit`, the one the
Rust SDK uses) and its generated bindings stay inside the build: nothing here imports them, so a
plugin's code and its unit tests run in an ordinary Python too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import random
import sys
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

#: The contract version this SDK speaks: the version of the WIT package `nas:plugin` (a test
#: checks it against `plugin-sdk/wit/nas-plugin.wit`).
CONTRACT_VERSION = "0.3.0"

__all__ = [
    "CONTRACT_VERSION",
    "Agent",
    "RewardShaper",
    "Assessor",
    "register_agent",
    "register_reward",
    "register_assessor",
    "PluginError",
    "NoConfig",
    "parse_config",
    "to_bytes",
    "from_bytes",
    "log",
    "Conv",
    "Pool",
    "Fc",
    "Layer",
    "ActionSpec",
    "Space",
    "Observation",
    "Evaluation",
    "Cost",
    "Latency",
    "LearningCurve",
    "Verdict",
    "PluginRng",
    "argmax_valid",
]


class PluginError(Exception):
    """An error for the user: its message reaches them as `plugin NAME VERSION, call CALL: message`.

    Any other exception a plugin raises reaches them too, as `TypeName: message (file.py, line N)`.
    """


# --- Types the host gives plugins (plain, immutable Python values) --------------------------------


@dataclass(frozen=True)
class Conv:
    filters: int
    kernel: int


@dataclass(frozen=True)
class Pool:
    size: int
    stride: int


@dataclass(frozen=True)
class Fc:
    """A fully connected layer with this many units."""

    units: int


Layer = Union[Conv, Pool, Fc]


@dataclass(frozen=True)
class ActionSpec:
    """One entry of the flat action list: a layer and whether the network ends after it."""

    layer: Layer
    terminate: bool


@dataclass(frozen=True)
class Space:
    """The search space, given once to the agent's constructor."""

    #: Every action; `act` returns an index into this list.
    actions: Tuple[ActionSpec, ...]
    #: Length of `Observation.features`.
    observation_len: int
    #: Sizes of the seven fields of the state tuple (depth, type, filter depth, filter size, pool,
    #: fc size, terminate).
    tuple_field_sizes: Tuple[int, ...]
    max_depth: int


@dataclass(frozen=True)
class Observation:
    """One environment's current state."""

    #: One-hot encoding of the state tuple.
    features: Tuple[float, ...]
    #: The seed's 7-field state tuple; each field an index into its value set, 0 = n/a. A tuple, so
    #: it can key a dict as it is.
    tuple: Tuple[int, ...]
    #: Layers so far.
    depth: int
    #: Spatial size of the feature map after the last layer.
    image_size: int


@dataclass(frozen=True)
class Evaluation:
    """A finished child network, as the reward shaper sees it."""

    #: Accuracy on the evaluation split in [0, 1] (0 when the child failed).
    accuracy: float
    #: Trainable parameters.
    params: int
    depth: int
    #: Canonical text form, e.g. "conv(32,3) pool(5,3) fc(64)".
    architecture: str
    layers: Tuple[Layer, ...]
    train_seconds: float
    #: Why the child failed (diverged, out of memory…), if it did.
    failure: Optional[str]
    #: Epochs the child was trained for: `epochs`, unless an assessor stopped it.
    epochs_trained: int
    #: Epochs of the training protocol.
    epochs: int
    #: An assessor stopped the child early: `accuracy` is the last one measured.
    stopped: bool
    #: Multiply-adds, activation memory and inference latency (contract 0.3).
    cost: "Cost" = None


@dataclass(frozen=True)
class Latency:
    """A child's inference latency: measured on the evaluation device, or summed from a latency table."""

    #: Median milliseconds of one forward pass of `batch` inputs.
    median_ms: float
    #: 90th percentile of the timed runs.
    p90_ms: float
    batch: int
    #: `cpu`, `cuda`, or `table:NAME` for a latency table.
    device: str


@dataclass(frozen=True)
class Cost:
    """What running a child costs, beside its parameter count."""

    #: Multiply-adds of one forward pass for one input.
    mult_adds: int
    #: Peak activation memory of one input's forward pass, in bytes.
    activation_bytes: int
    #: Inference latency, when the run measures it (`[cost]`); None otherwise.
    latency: Optional[Latency] = None


@dataclass(frozen=True)
class LearningCurve:
    """A child's learning curve: `accuracy[i]` is the accuracy after epoch i + 1."""

    accuracy: Tuple[float, ...]
    #: Epochs of the training protocol (the full curve's length).
    epochs: int
    architecture: str
    layers: Tuple[Layer, ...]
    params: int

    def epochs_trained(self) -> int:
        return len(self.accuracy)

    def best(self) -> float:
        """The best accuracy so far (0 for an empty curve)."""
        return max(self.accuracy, default=0.0)

    def at_epoch(self, epoch: int) -> Optional[float]:
        """Accuracy after `epoch` (1-based), if the curve reached it."""
        return self.accuracy[epoch - 1] if 1 <= epoch <= len(self.accuracy) else None


class Verdict(Enum):
    """An assessor's answer after an epoch."""

    #: Train the next epoch.
    CONTINUE = "continue"
    #: Stop now; the reward is shaped from the last accuracy.
    STOP = "stop"


# --- Randomness -----------------------------------------------------------------------------------


class PluginRng:
    """A seeded random generator with the Rust SDK's methods. It pickles (see `to_bytes`): keep it in
    the saved state so a resumed run draws the same numbers as an uninterrupted one.

    `PluginRng.from_host()` seeds one from the host's randomness instead, which the host reseeds at
    every episode: a stateless plugin drawing from it replays exactly on resume without saving.
    (Python's own `random` module is seeded once, when the plugin starts, and is not part of any
    checkpoint: a resumed run would draw other numbers from it. Use this instead.)
    """

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    @staticmethod
    def from_host() -> "PluginRng":
        # WASI's random source inside the sandbox, which is the host's per-episode stream.
        return PluginRng(int.from_bytes(os.urandom(8), "little"))

    def uniform(self) -> float:
        """A uniform float in [0, 1)."""
        return self._random.random()

    def below(self, n: int) -> int:
        """A uniform index below `n` (n > 0)."""
        return self._random.randrange(n)

    def uniform_valid(self, mask: Sequence[bool]) -> Optional[int]:
        """A uniformly chosen index among those where `mask` is true; None if none is."""
        valid = [i for i, ok in enumerate(mask) if ok]
        return valid[self.below(len(valid))] if valid else None

    def weighted(self, weights: Sequence[float]) -> Optional[int]:
        """Samples an index from unnormalised probabilities `weights` (>= 0); None if they sum to 0."""
        total = math.fsum(weights)
        if not (total > 0.0 and math.isfinite(total)):
            return None
        target = self.uniform() * total
        for i, w in enumerate(weights):
            if target < w:
                return i
            target -= w
        return max(i for i, w in enumerate(weights) if w > 0.0)

    def normal(self) -> float:
        """A standard normal sample (mean 0, std 1)."""
        return self._random.gauss(0.0, 1.0)

    def shuffle(self, items: List[Any]) -> None:
        """Shuffles `items` uniformly in place."""
        self._random.shuffle(items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginRng) and self._random.getstate() == other._random.getstate()


def argmax_valid(values: Sequence[float], mask: Sequence[bool]) -> Optional[int]:
    """Index of the largest `values[i]` with `mask[i]`; ties go to the lowest index."""
    best = None
    for i, (v, ok) in enumerate(zip(values, mask)):
        if ok and (best is None or v > values[best]):
            best = i
    return best


# --- Configuration and state ----------------------------------------------------------------------


@dataclass
class NoConfig:
    """The configuration of a plugin that takes none: `{}` parses, anything else is an error."""


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """`value` as the field's annotated type; JSON's numbers and lists, checked. Unannotated or
    exotic types pass as they are."""
    origin = typing.get_origin(hint)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is bool or hint is str:
        if isinstance(value, hint):
            return value
    elif origin in (list, tuple, List, Tuple):
        if isinstance(value, list):
            args = typing.get_args(hint)
            if origin in (list, List) and args:
                value = [_check_type(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
            elif args and args[-1] is not Ellipsis and len(args) == len(value):
                value = [_check_type(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args))]
            elif args and args[-1] is Ellipsis:
                value = [_check_type(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
            else:
                raise PluginError(f"invalid configuration: `{name}` must be a list of {len(args)}")
            return tuple(value) if origin in (tuple, Tuple) else value
    elif origin is Union and type(None) in typing.get_args(hint):
        if value is None:
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _check_type(name, value, inner[0]) if len(inner) == 1 else value
    else:
        return value
    shown = getattr(hint, "__name__", str(hint))
    raise PluginError(f"invalid configuration: `{name}` must be {shown}, not {json.dumps(value)}")


def parse_config(config_class: type, text: str) -> Any:
    """Parses a plugin's JSON configuration section into `config_class`, a dataclass whose fields all
    have defaults: "{}", empty or `null` give the defaults, a missing field keeps its default, an
    unknown or mistyped one is an error the user sees (the Rust SDK's `deny_unknown_fields`)."""
    text = text.strip()
    raw = {} if text in ("", "null") else None
    if raw is None:
        try:
            raw = json.loads(text)
        except ValueError as e:
            raise PluginError(f"invalid configuration: {e}") from None
    if not isinstance(raw, dict):
        raise PluginError(f"invalid configuration: expected a table of settings, not {text}")
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        expected = ", ".join(f"`{n}`" for n in fields) or "none"
        raise PluginError(f"invalid configuration: unknown field `{unknown[0]}`, expected {expected}")
    hints = typing.get_type_hints(config_class)
    return config_class(**{k: _check_type(k, v, hints.get(k, Any)) for k, v in raw.items()})


def to_bytes(value: Any) -> bytes:
    """Serialises learned state for `Agent.save` (pickle: dicts keyed by tuples, `PluginRng`s and
    dataclasses round-trip as they are)."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def from_bytes(data: bytes) -> Any:
    """Restores what `to_bytes` wrote, for `Agent.load`. The bytes are the plugin's own checkpoint,
    read inside its own sandbox."""
    try:
        return pickle.loads(data)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one error for the user
        raise PluginError(f"cannot restore the state (saved by another version?): {e}") from None


def log(message: str) -> None:
    """Writes to the host's log, tagged with the plugin's name (stderr is forwarded)."""
    print(message, file=sys.stderr)


# --- What a plugin implements ---------------------------------------------------------------------


class Agent:
    """A search policy. The host constructs it (`__init__(space, config, seed)`), then calls `act` for
    every step and `observe` after each one. Only `__init__` and `act` are required: a stateless
    agent keeps the defaults of the others."""

    #: Short name, shown in logs, errors and reports.
    NAME: str = ""
    DESCRIPTION: str = ""
    VERSION: str = "0.1.0"
    #: The hyperparameters: a dataclass whose fields all have defaults, parsed from the run's
    #: `[plugins.NAME]` section by `parse_config`. `NoConfig` takes none.
    Config: type = NoConfig

    def __init__(self, space: Space, config: Any, seed: int) -> None:
        raise NotImplementedError

    def act(self, env: int, observation: Observation, mask: Sequence[bool], explore: bool) -> int:
        """An index into `space.actions` with `mask[index]` true. When `explore` is false the host
        wants the policy's best guess (evaluation of a frozen policy)."""
        raise NotImplementedError

    def observe(self, env: int, reward: float, done: bool) -> None:
        """The reward of the previous action in `env` and whether the episode ended with it."""

    #: Names of the attributes that hold the learned state: the default `save` pickles them and
    #: the default `load` restores them. Empty (the default), the agent saves nothing.
    SAVED: Tuple[str, ...] = ()

    def save(self) -> bytes:
        """The whole learned state (see `to_bytes`), so a resumed run continues exactly. By default
        the attributes named in `SAVED`; a stateless agent saves nothing."""
        if not self.SAVED:
            return b""
        return to_bytes({name: getattr(self, name) for name in self.SAVED})

    def load(self, data: bytes) -> None:
        """Restores what `save` returned (by default the attributes named in `SAVED`)."""
        if self.SAVED and data:
            state = from_bytes(data)
            missing = [name for name in self.SAVED if name not in state]
            if not isinstance(state, dict) or missing:
                raise PluginError(f"cannot restore the state: it lacks {missing} (saved by another version?)")
            for name in self.SAVED:
                setattr(self, name, state[name])

    def metrics(self) -> Dict[str, float]:
        """Values for the host's logs and plots (`epsilon` and `entropy` are plotted)."""
        return {}


class RewardShaper:
    """Turns an evaluated child network into a reward."""

    NAME: str = ""
    DESCRIPTION: str = ""
    VERSION: str = "0.1.0"
    #: The shaper's settings, parsed as for `Agent.Config`.
    Config: type = NoConfig

    def __init__(self, config: Any) -> None:
        raise NotImplementedError

    def shape(self, evaluation: Evaluation) -> float:
        raise NotImplementedError


class Assessor:
    """Stops hopeless children early. After each epoch but the last of a child in training the host
    calls `assess` with the curve so far; a child that trains to the end is passed to `completed`.
    A resumed run replays the completed curves in order, so an assessor needs no checkpoint."""

    NAME: str = ""
    DESCRIPTION: str = ""
    VERSION: str = "0.1.0"
    Config: type = NoConfig

    def __init__(self, config: Any) -> None:
        raise NotImplementedError

    def assess(self, curve: LearningCurve) -> Verdict:
        raise NotImplementedError

    def completed(self, curve: LearningCurve) -> None:
        """The whole curve of a child that trained to the end."""


#: What `register_*` recorded last: (kind, class). A component exports one plugin, as in Rust: the
#: build imports one plugin file and refuses a file that registers more than one. (Tests may import
#: several plugin files into one Python.)
_registered: Optional[Tuple[str, type]] = None


def _register(kind: str, base: type, cls: type) -> type:
    global _registered
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"register_{kind} takes a subclass of nas_plugin.{base.__name__}, not {cls!r}")
    if not cls.NAME:
        raise TypeError(f"{cls.__name__} needs a NAME")
    _registered = (kind, cls)
    return cls


def register_agent(cls: type) -> type:
    """Exports an `Agent` subclass as the plugin's agent (usable as a class decorator too)."""
    return _register("agent", Agent, cls)


def register_reward(cls: type) -> type:
    """Exports a `RewardShaper` subclass as the plugin's reward shaper."""
    return _register("reward", RewardShaper, cls)


def register_assessor(cls: type) -> type:
    """Exports an `Assessor` subclass as the plugin's assessor."""
    return _register("assessor", Assessor, cls)
