"""The Python SDK outside the sandbox: contract version, the README's example, typed configuration,
the random generator, the defaults of the base classes, and how the build tells a plugin's kind."""
import importlib.util
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

import nas_plugin as sdk
from nas_plugin import Agent, NoConfig, PluginError, PluginRng, argmax_valid, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_contract_version_matches_the_wit_package():
    wit = (ROOT / "plugin-sdk/wit/nas-plugin.wit").read_text()
    assert re.search(r"^package nas:plugin@(.+);$", wit, re.M).group(1) == sdk.CONTRACT_VERSION


def test_the_readme_shows_the_example_agent_as_built():
    """plugin-sdk/README.md's Python agent is plugins-py/ucb.py verbatim, which `make plugins`
    builds and the host's tests search with (as the Rust README's assessor is checked)."""
    readme = (ROOT / "plugin-sdk/README.md").read_text()
    source = (ROOT / "plugins-py/ucb.py").read_text()
    assert f"```python\n{source}```" in readme, "plugin-sdk/README.md's Python agent differs from plugins-py/ucb.py"
    assert len(source.splitlines()) < 40, "the README promises a complete agent in under 40 lines"


@dataclass
class Settings:
    lr: float = 0.1
    steps: int = 10
    name: str = "x"
    greedy: bool = False
    sizes: List[int] = field(default_factory=lambda: [64, 64])
    pair: Tuple[float, int] = (0.5, 2)
    limit: Optional[int] = None


def test_config_defaults_types_and_errors():
    for empty in ("", "  ", "null", "{}"):
        assert parse_config(Settings, empty) == Settings()
    got = parse_config(Settings, '{"lr": 1, "sizes": [32], "pair": [1, 3], "limit": 5}')
    assert got == Settings(lr=1.0, sizes=[32], pair=(1.0, 3), limit=5)
    assert isinstance(got.lr, float)
    for bad, message in [
        ('{"lr": 0.1, "bogus": 1}', "unknown field `bogus`, expected `lr`, `steps`"),
        ('{"steps": 1.5}', "`steps` must be int"),
        ('{"steps": true}', "`steps` must be int"),
        ('{"greedy": 1}', "`greedy` must be bool"),
        ('{"sizes": [1, "a"]}', "`sizes[1]` must be int"),
        ('{"pair": [1]}', "`pair` must be a list of 2"),
        ("[1, 2]", "expected a table of settings"),
        ("{oops", "invalid configuration"),
    ]:
        with pytest.raises(PluginError, match=re.escape(message)):
            parse_config(Settings, bad)
    assert parse_config(NoConfig, "{}") == NoConfig()
    with pytest.raises(PluginError, match="unknown field `a`, expected none"):
        parse_config(NoConfig, '{"a": 1}')


def test_the_random_generator_is_seeded_and_pickles():
    a, b = PluginRng(7), PluginRng(7)
    assert [a.uniform() for _ in range(5)] == [b.uniform() for _ in range(5)]
    assert PluginRng(8).uniform() != PluginRng(7).uniform()
    mask = [False, True, False, True, True]
    picks = {a.uniform_valid(mask) for _ in range(200)}
    assert picks == {1, 3, 4}
    assert a.uniform_valid([False, False]) is None
    assert {a.weighted([0.0, 1.0, 0.0]) for _ in range(50)} == {1}
    assert a.weighted([0.0, 0.0]) is None
    assert all(0 <= a.below(3) < 3 for _ in range(50))
    samples = [a.normal() for _ in range(4000)]
    assert abs(sum(samples) / len(samples)) < 0.1
    items = list(range(10))
    a.shuffle(items)
    assert sorted(items) == list(range(10))
    # Saved with the agent's state, it continues where it was.
    restored = pickle.loads(pickle.dumps(a))
    assert restored == a and [restored.uniform() for _ in range(3)] == [a.uniform() for _ in range(3)]


def test_argmax_valid_respects_the_mask_and_breaks_ties_low():
    assert argmax_valid([0.9, 0.5, 0.5], [False, True, True]) == 1
    assert argmax_valid([1.0], [False]) is None


class Minimal(Agent):
    NAME = "minimal"

    def __init__(self, space, config, seed):
        self.table = {}

    def act(self, env, observation, mask, explore):
        return mask.index(True)


class Saving(Minimal):
    SAVED = ("table",)


def test_agent_defaults_are_the_rust_sdks():
    a = Minimal(None, NoConfig(), 0)
    assert a.save() == b"" and a.load(b"") is None
    assert a.observe(0, 1.0, True) is None and a.metrics() == {}
    assert (Agent.VERSION, Agent.Config) == ("0.1.0", NoConfig)


def test_saved_attributes_round_trip():
    a = Saving(None, NoConfig(), 0)
    a.table[(1, 2)] = (3, 0.5)
    b = Saving(None, NoConfig(), 0)
    b.load(a.save())
    assert b.table == {(1, 2): (3, 0.5)}
    with pytest.raises(PluginError, match="lacks"):
        b.load(sdk.to_bytes({"other": 1}))


def test_register_takes_a_named_subclass():
    with pytest.raises(TypeError, match="subclass of nas_plugin.Agent"):
        sdk.register_agent(object)
    with pytest.raises(TypeError, match="needs a NAME"):
        sdk.register_reward(type("Nameless", (sdk.RewardShaper,), {}))
    assert sdk.register_agent(Minimal) is Minimal and sdk._registered == ("agent", Minimal)


def load_build():
    spec = importlib.util.spec_from_file_location("build", ROOT / "plugin-sdk-py/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_reads_the_kind_from_the_register_call(tmp_path):
    build = load_build()
    assert build.kind_of(ROOT / "plugins-py/ucb.py") == "agent"
    assert build.kind_of(ROOT / "plugins-py/mnas_reward.py") == "reward"
    decorated = tmp_path / "d.py"
    decorated.write_text("import nas_plugin\n@nas_plugin.register_assessor\nclass A(nas_plugin.Assessor):\n    NAME = 'a'\n")
    assert build.kind_of(decorated) == "assessor"
    two = tmp_path / "two.py"
    two.write_text("register_agent(A)\nregister_reward(B)\n")
    with pytest.raises(SystemExit, match="exactly one"):
        build.kind_of(two)
