"""The seed's code path on nas-host: sb3-contrib's MaskablePPO designs CNNs in a Gymnasium env.

1. Learn on the synthetic evaluator (no training; a few seconds) to see the agent converge.
2. Learn on real data for a short while (each finished network is trained by the host).
3. Freeze the policy and sample networks from it; each is trained and recorded as a run.

Everything lands in the run store, so the CLI can report it afterwards:

    pip install ./python sb3-contrib           # or: make python
    python examples/sb3_maskable_ppo.py --dataset mnist3 --real-episodes 20
    nas-host runs && nas-host report N   # N: the ids printed below
"""

import argparse

from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback

import nas_host


class StopAfterEpisodes(BaseCallback):
    """Ends learning once the environment's run holds `episodes` episodes."""

    def __init__(self, env: nas_host.NasEnv, episodes: int):
        super().__init__()
        self.env, self.episodes = env, episodes

    def _on_step(self) -> bool:
        return self.env.episodes_done < self.episodes


def learn(env: nas_host.NasEnv, episodes: int, n_steps: int, seed: int) -> MaskablePPO:
    """MaskablePPO over `episodes` networks, updating every `n_steps` layers (an episode is 1–8)."""
    model = MaskablePPO("MlpPolicy", env, n_steps=n_steps, batch_size=min(64, n_steps), n_epochs=4,
                        learning_rate=3e-3, gamma=1.0, seed=seed, verbose=0)
    model.learn(total_timesteps=10**9, callback=StopAfterEpisodes(env, episodes))
    return model


def sample(model: MaskablePPO, env: nas_host.NasEnv, count: int) -> list[dict]:
    """Networks designed by the frozen policy (sampled, not argmax), each trained by the host."""
    episodes = []
    for _ in range(count):
        observation, info = env.reset()
        terminated = False
        while not terminated:
            action, _ = model.predict(observation, action_masks=env.action_masks(), deterministic=False)
            observation, reward, terminated, truncated, info = env.step(action)
        episodes.append(info["episode"])
    return episodes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist3")
    parser.add_argument("--store", default="runs/nas.sqlite")
    parser.add_argument("--synthetic-episodes", type=int, default=2000)
    parser.add_argument("--real-episodes", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1, help="child training epochs in the real phase")
    parser.add_argument("--samples", type=int, default=5, help="networks sampled from the frozen policy")
    parser.add_argument("--reward", default="accuracy", help="reward plugin: accuracy, size_penalty, a .wasm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    synthetic = nas_host.NasEnv(dataset=args.dataset, evaluator="synthetic", store=args.store, agent="MaskablePPO")
    learn(synthetic, args.synthetic_episodes, n_steps=256, seed=args.seed)
    rewards = nas_host.open_store(args.store).episodes_of(synthetic.run_id)["reward"]
    print(f"synthetic run {synthetic.run_id}: mean reward {rewards.iloc[:100].mean():.3f} in the first 100 "
          f"episodes, {rewards.iloc[-100:].mean():.3f} in the last 100")
    synthetic.close()

    settings = dict(dataset=args.dataset, store=args.store, reward=args.reward, train={"epochs": args.epochs})
    real = nas_host.NasEnv(agent="MaskablePPO", **settings)
    # Children take seconds each here: update the policy every few networks.
    model = learn(real, args.real_episodes, n_steps=16, seed=args.seed)
    best = nas_host.open_store(args.store).episodes_of(real.run_id).nlargest(3, "accuracy")
    print(f"real run {real.run_id}: best networks so far\n{best[['architecture', 'accuracy', 'params']]}")
    real.close()

    frozen = nas_host.NasEnv(agent="MaskablePPO-frozen", **settings)
    for episode in sample(model, frozen, args.samples):
        print(f"sampled {episode['architecture']:<40} accuracy {episode['accuracy']:.4f}")
    print(f"samples recorded as run {frozen.run_id}")
    frozen.close()


if __name__ == "__main__":
    main()
