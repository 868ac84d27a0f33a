"""MnasNet's soft-constraint reward, ACC(m) * [P(m) / T] ** w, with the child's trainable parameters
P in place of MnasNet's measured latency. Written before contract 0.3, whose `evaluation.cost`
carries the measured latency and multiply-adds: the bundled Rust `latency_target` shaper rewards the
latency itself; this one stays the Python SDK's example on parameters.

w = alpha when P <= target and beta above it. MnasNet's soft setting, alpha = beta = -0.07, rewards
a network half the target's size by 5 % over one at the target (0.5 ** -0.07 = 1.050) and costs one
twice the target 4.7 %; alpha = 0, beta = -1 is its hard constraint.
"""
from dataclasses import dataclass

from nas_plugin import Evaluation, PluginError, RewardShaper, register_reward


@dataclass
class Config:
    #: The parameter count the search aims at (MnasNet's target latency T).
    target_params: float = 100_000.0
    alpha: float = -0.07
    beta: float = -0.07
    #: The reward of a child that failed (diverged, ran out of memory).
    failure_reward: float = 0.0


class MnasReward(RewardShaper):
    NAME = "mnas_reward"
    DESCRIPTION = "MnasNet's soft constraint on parameters: accuracy * (params / target) ** w"
    Config = Config

    def __init__(self, config: Config) -> None:
        if not config.target_params > 0:
            raise PluginError(f"target_params must be positive, not {config.target_params}")
        if config.alpha > 0 or config.beta > 0:
            raise PluginError("alpha and beta must be <= 0: a larger network may not earn more")
        self.config = config

    def shape(self, evaluation: Evaluation) -> float:
        c = self.config
        if evaluation.failure is not None:
            return c.failure_reward
        ratio = max(evaluation.params, 1) / c.target_params
        return evaluation.accuracy * ratio ** (c.alpha if ratio <= 1.0 else c.beta)


register_reward(MnasReward)
