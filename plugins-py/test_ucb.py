"""The UCB agent's own tests, run with pytest in an ordinary Python (no sandbox)."""
import pytest

from nas_plugin import Conv, Fc, Observation, PluginError, parse_config
from ucb import Config, Ucb


def obs(state):
    return Observation(features=(), tuple=state, depth=state[0], image_size=28)


def agent(**config):
    return Ucb(space=None, config=Config(**config), seed=0)


def play(a, state, action_mask, reward, env=0):
    action = a.act(env, obs(state), action_mask, True)
    a.observe(env, reward, True)
    return action


def test_untried_valid_actions_come_first_then_the_best_bound():
    a = agent(c=0.0)
    mask = [False, True, True, True]
    tried = [play(a, (0,), mask, r) for r in (0.2, 0.9, 0.5)]
    assert tried == [1, 2, 3], "each valid action once, never the masked one"
    # With c = 0 the bound is the mean: the best action keeps being chosen.
    assert play(a, (0,), mask, 0.9) == 2
    assert a.act(0, obs((0,)), mask, False) == 2, "greedy takes the best mean"
    assert a.act(0, obs((0,)), [True, True, False, True], False) == 3, "the mask wins over the mean"


def test_exploration_bonus_returns_to_rarely_tried_actions():
    a = agent(c=2.0)
    mask = [True, True]
    play(a, (0,), mask, 0.5)
    play(a, (0,), mask, 0.6)
    for _ in range(5):
        play(a, (0,), [False, True], 0.6)  # action 1 tried often, action 0 once
    assert a.act(0, obs((0,)), mask, True) == 0


def test_the_episode_return_reaches_every_step_of_its_env_only():
    a = agent()
    a.act(0, obs((0,)), [True, False], True)
    a.act(1, obs((0,)), [False, True], True)
    a.act(0, obs((1,)), [True, True], True)
    a.observe(0, 0.0, False)
    assert a.stats == {}, "nothing is learned before the episode ends"
    a.observe(0, 0.8, True)
    assert a.stats == {((0,), 0): (1, 0.8), ((1,), 0): (1, 0.8)}
    assert list(a.pending) == [1], "env 1's episode is still open"
    assert a.metrics() == {"table_size": 2}


def test_save_and_load_continue_exactly():
    a = agent()
    for r in (0.1, 0.4, 0.7, 0.2):
        play(a, (0,), [True, True, True], r)
    a.act(3, obs((2,)), [True, True], True)  # an open episode is part of the state
    b = agent()
    b.load(a.save())
    assert (b.stats, b.pending) == (a.stats, a.pending)
    assert [b.act(0, obs((0,)), [True] * 3, True) for _ in range(3)] == [
        a.act(0, obs((0,)), [True] * 3, True) for _ in range(3)
    ]
    with pytest.raises(PluginError, match="cannot restore"):
        b.load(b"not a checkpoint")


def test_config_is_typed():
    assert parse_config(Config, "{}") == Config()
    assert parse_config(Config, '{"c": 1}').c == 1.0
    with pytest.raises(PluginError, match="unknown field `epsilon`"):
        parse_config(Config, '{"epsilon": 0.1}')
    with pytest.raises(PluginError, match="`c` must be float"):
        parse_config(Config, '{"c": "big"}')


def test_layers_are_plain_values():
    assert Conv(32, 3) == Conv(filters=32, kernel=3) and Fc(64).units == 64
