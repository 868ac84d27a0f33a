"""The MnasNet-style reward shaper's own tests, run with pytest outside the sandbox."""
import pytest

from mnas_reward import Config, MnasReward
from nas_plugin import Conv, Evaluation, PluginError


def evaluation(accuracy, params, failure=None):
    return Evaluation(accuracy, params, 1, "conv(32,3)", (Conv(32, 3),), 1.0, failure, 5, 5, False)


def test_the_soft_constraint_of_mnasnet():
    s = MnasReward(Config(target_params=1000))
    assert s.shape(evaluation(0.8, 1000)) == pytest.approx(0.8)
    assert s.shape(evaluation(0.8, 500)) == pytest.approx(0.8 * 0.5**-0.07)
    assert s.shape(evaluation(0.8, 2000)) == pytest.approx(0.8 * 2**-0.07)
    assert s.shape(evaluation(0.8, 2000)) < s.shape(evaluation(0.8, 1000)) < s.shape(evaluation(0.8, 500))


def test_the_hard_constraint_and_failures():
    s = MnasReward(Config(target_params=1000, alpha=0.0, beta=-1.0, failure_reward=-0.5))
    assert s.shape(evaluation(0.8, 10)) == pytest.approx(0.8), "no bonus under the target"
    assert s.shape(evaluation(0.8, 4000)) == pytest.approx(0.2)
    assert s.shape(evaluation(0.0, 4000, failure="diverged")) == -0.5


def test_settings_are_checked():
    with pytest.raises(PluginError, match="positive"):
        MnasReward(Config(target_params=0))
    with pytest.raises(PluginError, match="<= 0"):
        MnasReward(Config(beta=0.5))
