import math
from dataclasses import dataclass

from nas_plugin import Agent, argmax_valid, register_agent


@dataclass
class Config:
    c: float = 0.2  # exploration weight; rewards lie in [0, 1]


class Ucb(Agent):
    NAME = "ucb"
    DESCRIPTION = "Tabular UCB1 over the state tuple: untried actions first, then mean + c*sqrt(ln n / n_a)"
    Config = Config
    SAVED = ("stats", "pending")  # the learned state: save() pickles these, load() restores them

    def __init__(self, space, config, seed):
        self.c, self.stats, self.pending = config.c, {}, {}  # stats: (state, action) -> (visits, mean)

    def act(self, env, obs, mask, explore):
        seen = [self.stats.get((obs.tuple, a), (0, 0.0)) for a in range(len(mask))]
        if not explore:
            return argmax_valid([mean for _, mean in seen], mask)
        log_n = math.log(1 + sum(n for n, _ in seen))
        action = argmax_valid([m + self.c * math.sqrt(log_n / n) if n else math.inf for n, m in seen], mask)
        self.pending.setdefault(env, []).append((obs.tuple, action))  # this episode's steps in env
        return action

    def observe(self, env, reward, done):
        for key in self.pending.pop(env, []) if done else []:  # the episode's return, to each step
            n, mean = self.stats.get(key, (0, 0.0))
            self.stats[key] = (n + 1, mean + (reward - mean) / (n + 1))

    def metrics(self):
        return {"table_size": len(self.stats)}


register_agent(Ucb)
