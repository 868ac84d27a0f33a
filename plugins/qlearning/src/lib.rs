//! Mini-MetaQNN: tabular Q-learning over the seed's state tuples, after MetaQNN (Baker et al. 2017).
//!
//! ε-greedy over the valid actions, an ε schedule of (ε, episodes) steps, and experience replay:
//! after every episode 30 finished trajectories are sampled uniformly from the replay memory and
//! MetaQNN's update is applied backwards along each:
//!   terminal step:  Q(s,a) ← (1−α)·Q(s,a) + α·r
//!   earlier steps:  Q(s,a) ← (1−α)·Q(s,a) + α·max_{a′ valid in s′} Q(s′,a′)      (γ = 1)
use std::collections::BTreeMap;

use nas_plugin_sdk::*;
use serde::{Deserialize, Serialize};

/// Every hyperparameter, with the seed's defaults; each can be set from the run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    /// Learning rate α.
    alpha: f64,
    /// Discount γ (MetaQNN: 1).
    gamma: f64,
    /// Q value of a (state, action) never updated (MetaQNN: 0.5).
    initial_q: f64,
    /// (ε, episodes) steps, in order; the last ε stays after the schedule ends. The seed's Table 5.
    epsilon_schedule: Vec<(f64, u64)>,
    /// Trajectories replayed after every episode.
    replay_batch: usize,
    /// Oldest trajectories are forgotten beyond this many (0 = keep all, as MetaQNN did).
    replay_capacity: usize,
    /// Episodes the run will have: when set, the schedule's episode counts are scaled to sum to
    /// it (see [`scaled_schedule`]), so Q-learning explores and exploits in the same proportions
    /// at a smaller budget. `None` (the default) runs the schedule as written.
    budget: Option<u64>,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            alpha: 0.01,
            gamma: 1.0,
            initial_q: 0.5,
            epsilon_schedule: vec![(1.0, 1400), (0.8, 200), (0.6, 150), (0.4, 150), (0.2, 200), (0.1, 600)],
            replay_batch: 30,
            replay_capacity: 0,
            budget: None,
        }
    }
}

/// The ε schedule with its episode counts scaled in proportion so that they sum to `budget`.
///
/// Stage i's exact share is cᵢ·budget / Σc. Each stage gets the floor of its share, and the
/// episodes left over (fewer than the number of stages) go one each to the stages with the largest
/// fractional parts, earlier stages first on ties (largest-remainder rounding), so the counts sum
/// to exactly `budget`. When `budget` is at least the number of stages with a non-zero count, each
/// of those keeps at least one episode: a stage rounded down to 0 takes one from the stage most
/// above its exact share among those with two or more. Stages with 0 episodes stay at 0. The ε
/// values are unchanged. A schedule whose counts sum to 0 is returned as it is.
fn scaled_schedule(schedule: &[(f64, u64)], budget: u64) -> Vec<(f64, u64)> {
    let total: u128 = schedule.iter().map(|&(_, n)| n as u128).sum();
    if total == 0 {
        return schedule.to_vec();
    }
    let wide = budget as u128;
    // Exact shares n·budget/total, kept as integers: floor and remainder (in 1/total units).
    let mut counts: Vec<u64> = schedule
        .iter()
        .map(|&(_, n)| (n as u128 * wide / total) as u64)
        .collect();
    let remainders: Vec<u128> = schedule.iter().map(|&(_, n)| n as u128 * wide % total).collect();
    let left = budget - counts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..schedule.len()).collect();
    order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
    for &i in order.iter().take(left as usize) {
        counts[i] += 1;
    }
    let non_zero = schedule.iter().filter(|&&(_, n)| n > 0).count() as u64;
    if budget >= non_zero {
        // How far a stage is above its exact share, in 1/total units.
        let excess =
            |counts: &[u64], j: usize| counts[j] as i128 * total as i128 - (schedule[j].1 as u128 * wide) as i128;
        for i in 0..schedule.len() {
            if schedule[i].1 > 0 && counts[i] == 0 {
                // budget ≥ non-zero stages and this one has none, so some stage has two or more.
                let donor = (0..schedule.len())
                    .filter(|&j| counts[j] >= 2)
                    .max_by(|&a, &b| excess(&counts, a).cmp(&excess(&counts, b)).then(b.cmp(&a)))
                    .expect("a stage with two or more episodes");
                counts[donor] -= 1;
                counts[i] = 1;
            }
        }
    }
    schedule.iter().zip(counts).map(|(&(eps, _), n)| (eps, n)).collect()
}

/// A state is the seed's 7-field tuple.
type StateKey = Vec<u32>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    state: StateKey,
    action: u32,
    /// Valid actions in `state`, kept so the backward update can take max over valid actions of s′.
    mask: Vec<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trajectory {
    steps: Vec<Step>,
    reward: f64,
}

#[derive(Serialize, Deserialize)]
struct QLearning {
    hp: Hyperparameters,
    /// The ε schedule in effect: `epsilon_schedule`, scaled to `budget` when one is set. Derived
    /// from the configuration, so not saved.
    #[serde(skip)]
    schedule: Vec<(f64, u64)>,
    q: BTreeMap<(StateKey, u32), f64>,
    replay: Vec<Trajectory>,
    /// Steps of the episode under way in each environment.
    pending: BTreeMap<u32, Vec<Step>>,
    episodes: u64,
    rng: PluginRng,
}

impl QLearning {
    fn q(&self, state: &StateKey, action: u32) -> f64 {
        self.q
            .get(&(state.clone(), action))
            .copied()
            .unwrap_or(self.hp.initial_q)
    }

    fn epsilon(&self) -> f64 {
        let mut seen = 0;
        for &(eps, episodes) in &self.schedule {
            seen += episodes;
            if self.episodes < seen {
                return eps;
            }
        }
        self.schedule.last().map_or(0.0, |&(eps, _)| eps)
    }

    /// The valid action with the highest Q; ties are broken uniformly at random.
    fn greedy(&mut self, state: &StateKey, mask: &[bool]) -> Option<usize> {
        let values: Vec<f64> = (0..mask.len()).map(|a| self.q(state, a as u32)).collect();
        let best = argmax_valid(&values, mask)?;
        let ties: Vec<bool> = mask
            .iter()
            .zip(&values)
            .map(|(&ok, &v)| ok && v == values[best])
            .collect();
        self.rng.uniform_valid(&ties)
    }

    fn max_valid_q(&self, state: &StateKey, mask: &[bool]) -> f64 {
        let values: Vec<f64> = (0..mask.len()).map(|a| self.q(state, a as u32)).collect();
        argmax_valid(&values, mask).map_or(0.0, |i| values[i])
    }

    /// MetaQNN's update, backwards along one trajectory.
    fn update(&mut self, trajectory: &Trajectory) {
        let (alpha, gamma) = (self.hp.alpha, self.hp.gamma);
        for t in (0..trajectory.steps.len()).rev() {
            let step = &trajectory.steps[t];
            let target = match trajectory.steps.get(t + 1) {
                None => trajectory.reward,
                Some(next) => gamma * self.max_valid_q(&next.state, &next.mask),
            };
            let old = self.q(&step.state, step.action);
            self.q
                .insert((step.state.clone(), step.action), (1.0 - alpha) * old + alpha * target);
        }
    }

    fn replay(&mut self) {
        if self.replay.is_empty() {
            return;
        }
        for _ in 0..self.hp.replay_batch {
            let pick = self.rng.below(self.replay.len());
            let trajectory = self.replay[pick].clone();
            self.update(&trajectory);
        }
    }
}

impl Agent for QLearning {
    const NAME: &'static str = "qlearning";
    const DESCRIPTION: &'static str =
        "Mini-MetaQNN: tabular Q-learning, epsilon-greedy over valid actions, replay of 30 trajectories per episode";

    type Config = Hyperparameters;

    fn init(_space: Space, hp: Hyperparameters, seed: u64) -> Result<Self, String> {
        if hp.epsilon_schedule.iter().any(|&(e, _)| !(0.0..=1.0).contains(&e)) {
            return Err("every epsilon in epsilon_schedule must be within [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&hp.alpha) {
            return Err(format!("alpha must be within [0, 1], got {}", hp.alpha));
        }
        let schedule = match hp.budget {
            None => hp.epsilon_schedule.clone(),
            Some(0) => return Err("budget must be at least 1 episode, got 0".into()),
            Some(_) if hp.epsilon_schedule.iter().all(|&(_, n)| n == 0) => {
                return Err("budget scales epsilon_schedule's episode counts, but they are all 0".into());
            }
            Some(budget) => scaled_schedule(&hp.epsilon_schedule, budget),
        };
        Ok(QLearning {
            hp,
            schedule,
            q: BTreeMap::new(),
            replay: Vec::new(),
            pending: BTreeMap::new(),
            episodes: 0,
            rng: PluginRng::new(seed),
        })
    }

    fn act(&mut self, env: u32, obs: &Observation, mask: &[bool], explore: bool) -> Result<usize, String> {
        let state = obs.tuple.clone();
        let action = if explore && self.rng.uniform() < self.epsilon() {
            self.rng.uniform_valid(mask)
        } else {
            self.greedy(&state, mask)
        }
        .ok_or("no valid action in the mask")?;
        if explore {
            self.pending.entry(env).or_default().push(Step {
                state,
                action: action as u32,
                mask: mask.to_vec(),
            });
        }
        Ok(action)
    }

    fn observe(&mut self, env: u32, reward: f64, done: bool) -> Result<(), String> {
        if !done {
            return Ok(());
        }
        let Some(steps) = self.pending.remove(&env) else {
            return Ok(()); // an evaluation episode (explore = false) records nothing
        };
        self.replay.push(Trajectory { steps, reward });
        if self.hp.replay_capacity > 0 && self.replay.len() > self.hp.replay_capacity {
            self.replay.remove(0);
        }
        self.episodes += 1;
        self.replay();
        Ok(())
    }

    fn save(&self) -> Result<Vec<u8>, String> {
        to_bytes(self)
    }

    /// Restores the learned state; hyperparameters stay those of this run's configuration, so a
    /// frozen policy can be evaluated with another ε.
    fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: QLearning = from_bytes(bytes)?;
        let hp = std::mem::take(&mut self.hp);
        let schedule = std::mem::take(&mut self.schedule);
        *self = QLearning { hp, schedule, ..saved };
        Ok(())
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        vec![
            ("epsilon".into(), self.epsilon()),
            ("table_size".into(), self.q.len() as f64),
            ("replay_size".into(), self.replay.len() as f64),
        ]
    }
}

register_agent!(QLearning);

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-action space is enough for the learner: it never looks at the layers.
    fn space() -> Space {
        let layer = Layer::Conv { filters: 10, kernel: 1 };
        Space {
            actions: vec![
                ActionSpec {
                    layer,
                    terminate: false,
                },
                ActionSpec { layer, terminate: true },
            ],
            observation_len: 2,
            tuple_field_sizes: vec![2],
            max_depth: 2,
        }
    }

    fn agent(config: &str) -> QLearning {
        QLearning::init(space(), parse_config(config).unwrap(), 0).unwrap()
    }

    fn step(state: &[u32], action: u32, mask: &[bool]) -> Step {
        Step {
            state: state.to_vec(),
            action,
            mask: mask.to_vec(),
        }
    }

    /// s0 --a0--> s1 --a1--> end with reward 1, α = 0.5, γ = 1, initial Q = 0.5, worked by hand.
    /// The update runs backwards: first Q(s1,a1) ← 0.5·0.5 + 0.5·1 = 0.75, then
    /// Q(s0,a0) ← 0.5·0.5 + 0.5·max_{valid a′} Q(s1,a′) = 0.25 + 0.5·0.75 = 0.625. The max is over
    /// s1's valid actions only: its invalid action 0 keeps Q = 0.5 and does not count.
    #[test]
    fn backward_update_on_a_two_step_chain() {
        let mut q = agent(r#"{"alpha": 0.5}"#);
        let trajectory = Trajectory {
            steps: vec![step(&[0], 0, &[true, true]), step(&[1], 1, &[false, true])],
            reward: 1.0,
        };
        q.update(&trajectory);
        assert_eq!(q.q(&vec![1], 1), 0.75);
        assert_eq!(q.q(&vec![0], 0), 0.625);
        assert_eq!(q.q(&vec![1], 0), 0.5, "untouched pairs keep the initial Q");
        // A second pass moves both again toward the new targets.
        q.update(&trajectory);
        assert_eq!(q.q(&vec![1], 1), 0.875);
        assert_eq!(q.q(&vec![0], 0), 0.5 * 0.625 + 0.5 * 0.875);
    }

    /// With γ = 0.5 the non-terminal target is discounted: Q(s0,a0) ← 0.5·0.5 + 0.5·(0.5·0.75).
    #[test]
    fn gamma_discounts_the_bootstrap() {
        let mut q = agent(r#"{"alpha": 0.5, "gamma": 0.5}"#);
        q.update(&Trajectory {
            steps: vec![step(&[0], 0, &[true, true]), step(&[1], 1, &[true, true])],
            reward: 1.0,
        });
        assert_eq!(q.q(&vec![0], 0), 0.25 + 0.5 * 0.5 * 0.75);
    }

    #[test]
    fn epsilon_schedule_at_its_boundaries() {
        let mut q = agent(r#"{"epsilon_schedule": [[1.0, 2], [0.5, 3], [0.1, 1]]}"#);
        let mut seen = Vec::new();
        for episodes in 0..8 {
            q.episodes = episodes;
            seen.push(q.epsilon());
        }
        // Episodes 0–1 at 1.0, 2–4 at 0.5, 5 at 0.1, and the last ε stays after the schedule.
        assert_eq!(seen, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1]);
        // The seed's Table 5: 1.0 for 1400 episodes, then 0.8.
        let mut seed = agent("{}");
        seed.episodes = 1399;
        assert_eq!(seed.epsilon(), 1.0);
        seed.episodes = 1400;
        assert_eq!(seed.epsilon(), 0.8);
        seed.episodes = 2700;
        assert_eq!(seed.epsilon(), 0.1);
    }

    /// The seed's 2,700-episode schedule at budget 270: every share is exactly a tenth.
    #[test]
    fn scaled_schedule_by_a_tenth_is_exact() {
        let seed = Hyperparameters::default().epsilon_schedule;
        let scaled = scaled_schedule(&seed, 270);
        assert_eq!(
            scaled,
            vec![(1.0, 140), (0.8, 20), (0.6, 15), (0.4, 15), (0.2, 20), (0.1, 60)]
        );
        assert_eq!(
            scaled_schedule(&seed, 2700),
            seed,
            "the schedule's own total changes nothing"
        );
    }

    /// The seed's schedule at budget 100, by hand. Shares cᵢ·100/2700, as floor + remainder/2700:
    ///   1400 → 51 + 2300/2700   200 → 7 + 1100/2700   150 → 5 + 1500/2700
    ///    150 → 5 + 1500/2700    200 → 7 + 1100/2700   600 → 22 + 600/2700
    /// Floors sum to 97; the 3 left over go to the largest remainders: 2300 (stage 0), then the
    /// two 1500s (stages 2 and 3). Result 52, 7, 6, 6, 7, 22 = 100.
    #[test]
    fn scaled_schedule_largest_remainder_at_100() {
        let seed = Hyperparameters::default().epsilon_schedule;
        let scaled = scaled_schedule(&seed, 100);
        assert_eq!(
            scaled,
            vec![(1.0, 52), (0.8, 7), (0.6, 6), (0.4, 6), (0.2, 7), (0.1, 22)]
        );
    }

    /// Budget 6 = the number of stages, by hand. Shares ·6/2700: 3.11, 0.44, 0.33, 0.33, 0.44,
    /// 1.33; floors 3, 0, 0, 0, 0, 1 (sum 4); the 2 left over go to the remainders 0.44 (stages 1
    /// and 4): 3, 1, 0, 0, 1, 1. Stages 2 and 3 are at 0, and the only stage with two or more is
    /// stage 0, so each takes one from it: 1, 1, 1, 1, 1, 1. Below the number of stages (budget
    /// 3) no minimum holds: floors 1, 0, 0, 0, 0, 0 and the 2 left over go to 0.67 (stage 5) and
    /// 0.56 (stage 0).
    #[test]
    fn scaled_schedule_keeps_every_stage_when_it_can() {
        let seed = Hyperparameters::default().epsilon_schedule;
        let counts = |budget| {
            scaled_schedule(&seed, budget)
                .iter()
                .map(|&(_, n)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(6), vec![1, 1, 1, 1, 1, 1]);
        assert_eq!(counts(3), vec![2, 0, 0, 0, 0, 1]);
        // Zero-episode stages stay at zero and do not count toward the minimum: shares 1.8, 0, 0.2
        // round to 2, 0, 0, and stage 2 takes one from stage 0.
        assert_eq!(
            scaled_schedule(&[(1.0, 9), (0.5, 0), (0.1, 1)], 2),
            vec![(1.0, 1), (0.5, 0), (0.1, 1)]
        );
        for budget in [1, 7, 50, 99, 101, 269, 1000, 5000] {
            assert_eq!(counts(budget).iter().sum::<u64>(), budget);
        }
    }

    /// `budget` drives ε (and the reported metric) through the scaled schedule; 0 is refused.
    #[test]
    fn budget_scales_the_agents_epsilon() {
        let mut q = agent(r#"{"budget": 270}"#);
        q.episodes = 139;
        assert_eq!(q.epsilon(), 1.0);
        q.episodes = 140;
        assert_eq!(q.epsilon(), 0.8);
        assert_eq!(q.metrics()[0], ("epsilon".to_string(), 0.8));
        q.episodes = 210;
        assert_eq!(q.epsilon(), 0.1);
        let refused = |config: &str| {
            QLearning::init(space(), parse_config(config).unwrap(), 0)
                .err()
                .unwrap()
        };
        assert!(refused(r#"{"budget": 0}"#).contains("budget"));
        assert!(refused(r#"{"budget": 10, "epsilon_schedule": [[1.0, 0]]}"#).contains("all 0"));
        // A restored agent keeps this run's (scaled) schedule.
        let saved = q.save().unwrap();
        let mut fresh = agent("{}");
        fresh.load(&saved).unwrap();
        assert_eq!(fresh.schedule, Hyperparameters::default().epsilon_schedule);
        assert_eq!(fresh.episodes, 210);
    }

    /// Each episode appends its trajectory to the replay memory and replays `replay_batch`
    /// trajectories drawn uniformly from all of it; a capacity drops the oldest.
    #[test]
    fn replay_samples_uniformly_from_memory() {
        let mut q = agent(r#"{"replay_batch": 4, "replay_capacity": 3}"#);
        let obs = |tuple: u32| Observation {
            features: vec![1.0, 0.0],
            tuple: vec![tuple],
            depth: 0,
            image_size: 28,
        };
        for episode in 0..5u32 {
            q.act(0, &obs(episode), &[false, true], true).unwrap();
            q.observe(0, 1.0, true).unwrap();
        }
        assert_eq!(q.episodes, 5);
        let kept: Vec<u32> = q.replay.iter().map(|t| t.steps[0].state[0]).collect();
        assert_eq!(kept, vec![2, 3, 4], "the capacity keeps the newest three");
        // Uniform picks: over many draws each of 3 trajectories comes up about a third of the time.
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[q.rng.below(q.replay.len())] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
        // An episode played greedily for evaluation (explore = false) is not remembered.
        q.act(0, &obs(9), &[false, true], false).unwrap();
        q.observe(0, 1.0, true).unwrap();
        assert_eq!((q.episodes, q.replay.len()), (5, 3));
    }

    #[test]
    fn acting_respects_the_mask_and_prefers_the_best_q() {
        let mut q = agent(r#"{"epsilon_schedule": [[0.0, 1]]}"#);
        q.q.insert((vec![0], 0), 0.9);
        let obs = Observation {
            features: vec![1.0, 0.0],
            tuple: vec![0],
            depth: 0,
            image_size: 28,
        };
        assert_eq!(q.act(0, &obs, &[true, true], true).unwrap(), 0);
        assert_eq!(q.act(0, &obs, &[false, true], true).unwrap(), 1, "the mask wins over Q");
    }
}
