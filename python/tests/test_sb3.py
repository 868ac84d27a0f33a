"""The seed's own code path: sb3-contrib's MaskablePPO learns on NasEnv."""

import numpy as np
import torch
from sb3_contrib import MaskablePPO

import nas_host


def last_100_mean(env):
    rewards = nas_host.open_store(env.unwrapped._kwargs["store"]).episodes_of(env.unwrapped.run_id)["reward"]
    return float(rewards.iloc[-100:].mean())


def test_maskable_ppo_beats_the_random_policy_on_the_synthetic_evaluator(tmp_path):
    store = tmp_path / "nas.sqlite"
    episodes = 3000

    # A masked uniform random policy over the same episodes.
    random_env = nas_host.NasEnv(dataset="mnist3", evaluator="synthetic", store=store, agent="random")
    rng = np.random.default_rng(0)
    while random_env.episodes_done < episodes:
        random_env.reset()
        terminated = False
        while not terminated:
            action = rng.choice(np.flatnonzero(random_env.action_masks()))
            _, _, terminated, _, _ = random_env.step(action)
    random_mean = last_100_mean(random_env)
    random_env.close()

    # A policy this small trains fastest on one thread (many threads on a shared 2-core machine
    # made this test 15× slower).
    torch.set_num_threads(1)
    env = nas_host.NasEnv(dataset="mnist3", evaluator="synthetic", store=store, agent="MaskablePPO")
    model = MaskablePPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=4, learning_rate=3e-3,
                        gamma=1.0, ent_coef=0.0, seed=0, device="cpu")
    # Learn until the run holds `episodes` episodes (an episode is 1–8 steps).
    while env.episodes_done < episodes:
        model.learn(512, reset_num_timesteps=False)
    ppo_mean = last_100_mean(env)
    env.close()
    assert ppo_mean >= random_mean + 0.25, (ppo_mean, random_mean)
