//! Masked PPO over the flat action list (after sb3-contrib's MaskablePPO), CleanRL style.
//!
//! Invalid actions get their logits pushed to −1e8 before the softmax, so the policy is exactly the
//! joint-masked distribution. Separate policy and value MLPs ([64, 64], tanh, orthogonal init); the
//! network math and gradients come from candle. A rollout of `n_steps` transitions (across every
//! environment the host runs) triggers an update: GAE(λ) per environment, then `n_epochs` passes of
//! clipped-surrogate minibatches with advantage normalisation and global gradient-norm clipping.
use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Linear, Module};
use nas_plugin_sdk::*;
use serde::{Deserialize, Serialize};

/// Every hyperparameter, defaults from the seed and sb3-contrib's MaskablePPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    learning_rate: f64,
    /// Transitions collected per update.
    n_steps: usize,
    batch_size: usize,
    n_epochs: usize,
    gamma: f64,
    gae_lambda: f64,
    clip_range: f64,
    ent_coef: f64,
    vf_coef: f64,
    max_grad_norm: f64,
    normalize_advantage: bool,
    /// Hidden layer widths of both MLPs.
    hidden: Vec<usize>,
    adam_eps: f64,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            learning_rate: 3e-4,
            n_steps: 64,
            batch_size: 64,
            n_epochs: 10,
            gamma: 0.99,
            gae_lambda: 0.95,
            clip_range: 0.2,
            ent_coef: 0.0,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            normalize_advantage: true,
            hidden: vec![64, 64],
            adam_eps: 1e-5,
        }
    }
}

/// One step of one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Transition {
    env: u32,
    obs: Vec<f32>,
    mask: Vec<bool>,
    action: u32,
    logprob: f32,
    value: f32,
    reward: Option<f32>,
    done: bool,
    /// V(s′), known once the next observation arrives (0 after the last step of an episode).
    next_value: Option<f32>,
}

/// A tanh MLP whose parameters are candle `Var`s (weights, biases, layer by layer). Saved as
/// plain tensors (shape and values).
#[derive(Serialize, Deserialize)]
struct Mlp {
    #[serde(with = "saved_tensors")]
    params: Vec<Var>,
}

/// Serialises tensors (and `Var`s) as (shape, values), so the learner's whole state is one
/// serialisable struct.
mod saved_tensors {
    use candle_core::{Device, Tensor, Var};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Saved {
        shape: Vec<usize>,
        values: Vec<f32>,
    }

    pub trait AsTensor: Sized {
        fn tensor(&self) -> &Tensor;
        fn from_tensor(t: Tensor) -> candle_core::Result<Self>;
    }

    impl AsTensor for Tensor {
        fn tensor(&self) -> &Tensor {
            self
        }
        fn from_tensor(t: Tensor) -> candle_core::Result<Self> {
            Ok(t)
        }
    }

    impl AsTensor for Var {
        fn tensor(&self) -> &Tensor {
            self.as_tensor()
        }
        fn from_tensor(t: Tensor) -> candle_core::Result<Self> {
            Var::from_tensor(&t)
        }
    }

    pub fn serialize<T: AsTensor, S: Serializer>(tensors: &[T], s: S) -> Result<S::Ok, S::Error> {
        let saved: Result<Vec<Saved>, _> = tensors
            .iter()
            .map(|t| {
                Ok(Saved {
                    shape: t.tensor().dims().to_vec(),
                    values: t.tensor().flatten_all()?.to_vec1::<f32>()?,
                })
            })
            .collect::<candle_core::Result<_>>();
        saved.map_err(serde::ser::Error::custom)?.serialize(s)
    }

    pub fn deserialize<'de, T: AsTensor, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        Vec::<Saved>::deserialize(d)?
            .into_iter()
            .map(|saved| {
                Tensor::from_vec(saved.values, saved.shape, &Device::Cpu)
                    .and_then(T::from_tensor)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

impl Mlp {
    fn new(rng: &mut PluginRng, sizes: &[usize], output_gain: f64) -> candle_core::Result<Mlp> {
        let mut params = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            let gain = if i + 2 == sizes.len() { output_gain } else { 2f64.sqrt() };
            let weight = orthogonal(rng, pair[1], pair[0], gain);
            params.push(Var::from_vec(weight, (pair[1], pair[0]), &Device::Cpu)?);
            params.push(Var::zeros(pair[1], DType::F32, &Device::Cpu)?);
        }
        Ok(Mlp { params })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let layers = self.params.len() / 2;
        let mut h = x.clone();
        for i in 0..layers {
            let linear = Linear::new(
                self.params[2 * i].as_tensor().clone(),
                Some(self.params[2 * i + 1].as_tensor().clone()),
            );
            h = linear.forward(&h)?;
            if i + 1 < layers {
                h = h.tanh()?;
            }
        }
        Ok(h)
    }

    fn shapes(&self) -> Vec<Vec<usize>> {
        self.params.iter().map(|p| p.dims().to_vec()).collect()
    }
}

/// A plain copy of an `Mlp`'s weights for acting. A candle forward pass costs ~20 µs per `act` for
/// layers this small (op dispatch and allocation dominate, measured with `make bench`); these loops
/// compute the same function in a few µs. Training still runs through candle; the copy is refreshed
/// after every update and load.
#[derive(Default)]
struct DenseMlp {
    /// (weights out×in row-major, bias, inputs) per layer.
    layers: Vec<(Vec<f32>, Vec<f32>, usize)>,
}

impl DenseMlp {
    fn of(mlp: &Mlp) -> candle_core::Result<DenseMlp> {
        let mut layers = Vec::new();
        for pair in mlp.params.chunks(2) {
            let inputs = pair[0].dims()[1];
            layers.push((
                pair[0].as_tensor().flatten_all()?.to_vec1()?,
                pair[1].as_tensor().to_vec1()?,
                inputs,
            ));
        }
        Ok(DenseMlp { layers })
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut h = x.to_vec();
        for (i, (weights, bias, inputs)) in self.layers.iter().enumerate() {
            let mut out: Vec<f32> = bias.clone();
            for (o, row) in out.iter_mut().zip(weights.chunks_exact(*inputs)) {
                *o += dot(row, &h);
            }
            if i + 1 < self.layers.len() {
                out.iter_mut().for_each(|v| *v = v.tanh());
            }
            h = out;
        }
        h
    }
}

/// A dot product with eight independent partial sums, which the compiler turns into SIMD.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// An orthogonal (rows, cols) matrix scaled by `gain` (Gram–Schmidt on a Gaussian matrix), as
/// CleanRL and SB3 initialise PPO.
fn orthogonal(rng: &mut PluginRng, rows: usize, cols: usize, gain: f64) -> Vec<f32> {
    let (n, m) = if rows >= cols { (cols, rows) } else { (rows, cols) };
    // n orthonormal vectors of length m.
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(n);
    while basis.len() < n {
        let mut v: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
        for b in &basis {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let value = if rows >= cols { basis[c][r] } else { basis[r][c] };
            out[r * cols + c] = (gain * value) as f32;
        }
    }
    out
}

/// Adam. candle-nn's AdamW keeps its moment estimates private, so a checkpoint could not restore
/// them; this one keeps them in the open (as tensors between steps) so `save`/`load` resume
/// training exactly.
#[derive(Serialize, Deserialize, Default)]
struct AdamState {
    step: u64,
    #[serde(with = "saved_tensors")]
    m: Vec<Tensor>,
    #[serde(with = "saved_tensors")]
    v: Vec<Tensor>,
}

impl AdamState {
    fn step(&mut self, params: &[&Var], grads: &[Tensor], lr: f64, eps: f64) -> candle_core::Result<()> {
        let (b1, b2) = (0.9f64, 0.999f64);
        if self.m.is_empty() {
            self.m = params
                .iter()
                .map(|p| p.as_tensor().zeros_like())
                .collect::<Result<_, _>>()?;
            self.v = self.m.clone();
        }
        self.step += 1;
        let (c1, c2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + eps)?)?;
            p.set(&(p.as_tensor() - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// The agent. Everything but the hyperparameters and the acting copies is the learned state,
/// saved and loaded as one.
#[derive(Serialize, Deserialize)]
struct Ppo {
    /// This run's configuration: not saved, so a frozen policy can be sampled with other settings.
    #[serde(skip)]
    hp: Hyperparameters,
    #[serde(skip)]
    n_actions: usize,
    policy: Mlp,
    value: Mlp,
    /// Acting copies of `policy` and `value`, rebuilt from them.
    #[serde(skip)]
    fast_policy: DenseMlp,
    #[serde(skip)]
    fast_value: DenseMlp,
    adam: AdamState,
    /// Complete transitions of the current rollout.
    buffer: Vec<Transition>,
    /// Each environment's last transition, waiting for its reward or its next state's value.
    pending: BTreeMap<u32, Transition>,
    rng: PluginRng,
    metrics: Vec<(String, f64)>,
}

fn err(e: candle_core::Error) -> String {
    format!("candle: {e}")
}

/// Masked logits → log-probabilities; invalid actions get (numerically) zero probability.
fn masked_log_probs(logits: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let blocked = Tensor::full(-1e8f32, logits.shape(), &Device::Cpu)?;
    candle_nn::ops::log_softmax(&mask.where_cond(logits, &blocked)?, D::Minus1)
}

impl Ppo {
    fn value_of(&self, obs: &[f32]) -> f32 {
        self.fast_value.forward(obs)[0]
    }

    fn refresh_acting_copies(&mut self) -> candle_core::Result<()> {
        self.fast_policy = DenseMlp::of(&self.policy)?;
        self.fast_value = DenseMlp::of(&self.value)?;
        Ok(())
    }

    /// Updates the networks once a rollout is complete; returns whether it did.
    fn maybe_update(&mut self) -> Result<bool, String> {
        if self.buffer.len() < self.hp.n_steps {
            return Ok(false);
        }
        self.update().map_err(err)?;
        self.refresh_acting_copies().map_err(err)?;
        self.buffer.clear();
        Ok(true)
    }

    /// GAE(λ) along each environment's transitions, newest first.
    fn advantages(&self) -> (Vec<f32>, Vec<f32>) {
        let (gamma, lambda) = (self.hp.gamma as f32, self.hp.gae_lambda as f32);
        let mut advantages = vec![0f32; self.buffer.len()];
        let mut next_advantage: BTreeMap<u32, f32> = BTreeMap::new();
        for (t, tr) in self.buffer.iter().enumerate().rev() {
            let not_done = if tr.done { 0.0 } else { 1.0 };
            let delta = tr.reward.unwrap_or(0.0) + gamma * not_done * tr.next_value.unwrap_or(0.0) - tr.value;
            let carried = next_advantage.get(&tr.env).copied().unwrap_or(0.0);
            advantages[t] = delta + gamma * lambda * not_done * carried;
            next_advantage.insert(tr.env, advantages[t]);
        }
        let returns = advantages
            .iter()
            .zip(&self.buffer)
            .map(|(a, tr)| a + tr.value)
            .collect();
        (advantages, returns)
    }

    fn update(&mut self) -> candle_core::Result<()> {
        let (advantages, returns) = self.advantages();
        let n = self.buffer.len();
        let obs_len = self.buffer[0].obs.len();
        let obs: Vec<f32> = self.buffer.iter().flat_map(|t| t.obs.iter().copied()).collect();
        let masks: Vec<u8> = self
            .buffer
            .iter()
            .flat_map(|t| t.mask.iter().map(|&m| u8::from(m)))
            .collect();
        let actions: Vec<u32> = self.buffer.iter().map(|t| t.action).collect();
        let old_logprobs: Vec<f32> = self.buffer.iter().map(|t| t.logprob).collect();

        let mut order: Vec<usize> = (0..n).collect();
        let (mut pg_sum, mut v_sum, mut ent_sum, mut kl_sum, mut clip_sum, mut batches) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..self.hp.n_epochs {
            self.rng.shuffle(&mut order);
            for chunk in order.chunks(self.hp.batch_size.max(1)) {
                let b = chunk.len();
                let pick = |v: &[f32]| chunk.iter().map(|&i| v[i]).collect::<Vec<f32>>();
                let obs_b: Vec<f32> = chunk
                    .iter()
                    .flat_map(|&i| obs[i * obs_len..(i + 1) * obs_len].iter().copied())
                    .collect();
                let mask_b: Vec<u8> = chunk
                    .iter()
                    .flat_map(|&i| masks[i * self.n_actions..(i + 1) * self.n_actions].iter().copied())
                    .collect();
                let x = Tensor::from_vec(obs_b, (b, obs_len), &Device::Cpu)?;
                let mask = Tensor::from_vec(mask_b, (b, self.n_actions), &Device::Cpu)?;
                let act = Tensor::from_vec(
                    chunk.iter().map(|&i| actions[i]).collect::<Vec<u32>>(),
                    (b, 1),
                    &Device::Cpu,
                )?;
                let old_lp = Tensor::from_vec(pick(&old_logprobs), b, &Device::Cpu)?;
                let mut adv_v = pick(&advantages);
                if self.hp.normalize_advantage && b > 1 {
                    let mean = adv_v.iter().sum::<f32>() / b as f32;
                    let std = (adv_v.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / (b - 1) as f32).sqrt();
                    adv_v.iter_mut().for_each(|a| *a = (*a - mean) / (std + 1e-8));
                }
                let adv = Tensor::from_vec(adv_v, b, &Device::Cpu)?;
                let ret = Tensor::from_vec(pick(&returns), b, &Device::Cpu)?;

                let log_probs = masked_log_probs(&self.policy.forward(&x)?, &mask)?;
                let new_lp = log_probs.gather(&act, 1)?.squeeze(1)?;
                let entropy = (log_probs.exp()? * &log_probs)?.sum(1)?.neg()?.mean_all()?;
                let log_ratio = (&new_lp - &old_lp)?;
                let ratio = log_ratio.exp()?;
                let clip = self.hp.clip_range;
                let surrogate = (&adv * &ratio)?;
                let clipped = (&adv * ratio.clamp(1.0 - clip, 1.0 + clip)?)?;
                let pg_loss = surrogate.minimum(&clipped)?.mean_all()?.neg()?;
                let values = self.value.forward(&x)?.squeeze(1)?;
                let v_loss = (&ret - &values)?.sqr()?.mean_all()?;
                let loss = ((&pg_loss - (&entropy * self.hp.ent_coef)?)? + (&v_loss * self.hp.vf_coef)?)?;

                let grad_store = loss.backward()?;
                let params: Vec<&Var> = self.policy.params.iter().chain(&self.value.params).collect();
                let mut grads = Vec::with_capacity(params.len());
                for p in &params {
                    grads.push(match grad_store.get(p.as_tensor()) {
                        Some(g) => g.clone(),
                        None => p.as_tensor().zeros_like()?,
                    });
                }
                let norm = grads
                    .iter()
                    .map(|g| g.sqr()?.sum_all()?.to_scalar::<f32>())
                    .sum::<candle_core::Result<f32>>()?
                    .sqrt() as f64;
                if norm > self.hp.max_grad_norm {
                    let scale = self.hp.max_grad_norm / (norm + 1e-6);
                    grads = grads.iter().map(|g| g * scale).collect::<candle_core::Result<_>>()?;
                }
                self.adam
                    .step(&params, &grads, self.hp.learning_rate, self.hp.adam_eps)?;

                let ratio_v = ratio.to_vec1::<f32>()?;
                let log_ratio_v = log_ratio.to_vec1::<f32>()?;
                kl_sum += ratio_v
                    .iter()
                    .zip(&log_ratio_v)
                    .map(|(r, lr)| (r - 1.0 - lr) as f64)
                    .sum::<f64>()
                    / b as f64;
                clip_sum += ratio_v.iter().filter(|r| ((**r as f64) - 1.0).abs() > clip).count() as f64 / b as f64;
                pg_sum += pg_loss.to_scalar::<f32>()? as f64;
                v_sum += v_loss.to_scalar::<f32>()? as f64;
                ent_sum += entropy.to_scalar::<f32>()? as f64;
                batches += 1.0;
            }
        }
        let updates = self.metrics.iter().find(|(k, _)| k == "updates").map_or(0.0, |m| m.1) + 1.0;
        self.metrics = vec![
            ("policy_loss".into(), pg_sum / batches),
            ("value_loss".into(), v_sum / batches),
            ("entropy".into(), ent_sum / batches),
            ("approx_kl".into(), kl_sum / batches),
            ("clip_fraction".into(), clip_sum / batches),
            ("updates".into(), updates),
        ];
        Ok(())
    }
}

impl Agent for Ppo {
    const NAME: &'static str = "ppo";
    const DESCRIPTION: &'static str = "Masked PPO over the flat action list (MaskablePPO defaults, candle MLPs)";

    type Config = Hyperparameters;

    fn init(space: Space, hp: Hyperparameters, seed: u64) -> Result<Self, String> {
        if hp.n_steps == 0 || hp.batch_size == 0 || hp.hidden.is_empty() {
            return Err("n_steps, batch_size and hidden must be non-zero".into());
        }
        let mut rng = PluginRng::new(seed);
        let n_actions = space.actions.len();
        let sizes = |out: usize| -> Vec<usize> {
            std::iter::once(space.observation_len)
                .chain(hp.hidden.iter().copied())
                .chain(std::iter::once(out))
                .collect()
        };
        let policy = Mlp::new(&mut rng, &sizes(n_actions), 0.01).map_err(err)?;
        let value = Mlp::new(&mut rng, &sizes(1), 1.0).map_err(err)?;
        Ok(Ppo {
            hp,
            n_actions,
            fast_policy: DenseMlp::of(&policy).map_err(err)?,
            fast_value: DenseMlp::of(&value).map_err(err)?,
            policy,
            value,
            adam: AdamState::default(),
            buffer: Vec::new(),
            pending: BTreeMap::new(),
            rng,
            metrics: Vec::new(),
        })
    }

    fn act(&mut self, env: u32, obs: &Observation, mask: &[bool], explore: bool) -> Result<usize, String> {
        if mask.len() != self.n_actions {
            return Err(format!(
                "mask has {} entries, the space has {} actions",
                mask.len(),
                self.n_actions
            ));
        }
        // V(s) of this state, once computed with the current weights.
        let mut value = None;
        if explore {
            // The previous step in this environment now learns the value of its next state.
            if let Some(mut previous) = self.pending.remove(&env) {
                if previous.reward.is_some() {
                    value = Some(self.value_of(&obs.features));
                    previous.next_value = value;
                    self.buffer.push(previous);
                }
            }
            if self.maybe_update()? {
                value = None; // the weights changed
            }
        }
        let logits = self.fast_policy.forward(&obs.features);
        let max = logits
            .iter()
            .zip(mask)
            .filter(|(_, &ok)| ok)
            .map(|(&l, _)| l as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = logits
            .iter()
            .zip(mask)
            .map(|(&l, &ok)| if ok { (l as f64 - max).exp() } else { 0.0 })
            .collect();
        let action = if explore {
            self.rng.weighted(&weights)
        } else {
            argmax_valid(&logits.iter().map(|&l| l as f64).collect::<Vec<_>>(), mask)
        }
        .ok_or("no valid action in the mask")?;
        if explore {
            let total: f64 = weights.iter().sum();
            self.pending.insert(
                env,
                Transition {
                    env,
                    obs: obs.features.clone(),
                    mask: mask.to_vec(),
                    action: action as u32,
                    logprob: (weights[action] / total).ln() as f32,
                    value: value.unwrap_or_else(|| self.value_of(&obs.features)),
                    reward: None,
                    done: false,
                    next_value: None,
                },
            );
        }
        Ok(action)
    }

    fn observe(&mut self, env: u32, reward: f64, done: bool) -> Result<(), String> {
        let Some(transition) = self.pending.get_mut(&env) else {
            return Ok(()); // evaluation steps (explore = false) are not learned from
        };
        transition.reward = Some(reward as f32);
        transition.done = done;
        if done {
            let mut finished = self.pending.remove(&env).expect("present above");
            finished.next_value = Some(0.0);
            self.buffer.push(finished);
            self.maybe_update()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<Vec<u8>, String> {
        to_bytes(self)
    }

    /// Restores the learned state; hyperparameters stay those of this run's configuration, and
    /// the saved networks must have the shapes they ask for.
    fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: Ppo = from_bytes(bytes)?;
        if saved.policy.shapes() != self.policy.shapes() || saved.value.shapes() != self.value.shapes() {
            return Err("the saved networks have other shapes than this configuration's `hidden` layers".into());
        }
        *self = Ppo {
            hp: std::mem::take(&mut self.hp),
            n_actions: self.n_actions,
            ..saved
        };
        self.refresh_acting_copies().map_err(err)
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        self.metrics.clone()
    }
}

register_agent!(Ppo);

#[cfg(test)]
mod tests {
    use super::*;

    fn space(n_actions: usize, observation_len: usize) -> Space {
        let layer = Layer::Conv { filters: 10, kernel: 1 };
        Space {
            actions: (0..n_actions)
                .map(|i| ActionSpec {
                    layer,
                    terminate: i % 2 == 1,
                })
                .collect(),
            observation_len,
            tuple_field_sizes: vec![observation_len],
            max_depth: 8,
        }
    }

    fn ppo(config: &str) -> Ppo {
        Ppo::init(space(4, 3), parse_config(config).unwrap(), 7).unwrap()
    }

    fn transition(env: u32, value: f32, reward: f32, done: bool, next_value: f32) -> Transition {
        Transition {
            env,
            obs: vec![0.0; 3],
            mask: vec![true; 4],
            action: 0,
            logprob: 0.0,
            value,
            reward: Some(reward),
            done,
            next_value: Some(next_value),
        }
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    /// γ = λ = 0.5; an episode of two steps (rewards 0 then 1), then the first step of the next
    /// episode, cut by the end of the rollout and bootstrapped with V(s′) = 0.4. By hand:
    ///   δ2 = 0 + 0.5·0.4 − 0.1 = 0.1                 A2 = 0.1 (nothing after it in the rollout)
    ///   δ1 = 1 − 0.6 = 0.4 (done: no bootstrap)     A1 = 0.4 (A2 belongs to the next episode)
    ///   δ0 = 0 + 0.5·0.6 − 0.5 = −0.2               A0 = −0.2 + 0.25·0.4 = −0.1
    /// and the returns are A + V.
    #[test]
    fn gae_with_an_episode_end_and_a_rollout_cut() {
        let mut agent = ppo(r#"{"gamma": 0.5, "gae_lambda": 0.5}"#);
        agent.buffer = vec![
            transition(0, 0.5, 0.0, false, 0.6),
            transition(0, 0.6, 1.0, true, 0.0),
            transition(0, 0.1, 0.0, false, 0.4),
        ];
        let (advantages, returns) = agent.advantages();
        assert!(close(&advantages, &[-0.1, 0.4, 0.1]), "{advantages:?}");
        assert!(close(&returns, &[0.4, 1.0, 0.2]), "{returns:?}");
    }

    /// Environments are kept apart: env 1's steps interleaved with env 0's do not carry into
    /// env 0's advantages.
    #[test]
    fn gae_keeps_environments_apart() {
        let mut agent = ppo(r#"{"gamma": 0.5, "gae_lambda": 0.5}"#);
        agent.buffer = vec![
            transition(0, 0.5, 0.0, false, 0.6),
            transition(1, 0.0, 5.0, true, 0.0),
            transition(0, 0.6, 1.0, true, 0.0),
        ];
        let (advantages, _) = agent.advantages();
        assert!(close(&advantages, &[-0.1, 5.0, 0.4]), "{advantages:?}");
    }

    /// When a step's episode goes on, the step waits for the next observation and is stored with
    /// V(s′) of it: the bootstrap a rollout cut needs.
    #[test]
    fn a_continuing_step_is_bootstrapped_with_the_next_state_value() {
        let mut agent = ppo(r#"{"n_steps": 8}"#);
        let obs = |x: f32| Observation {
            features: vec![x, 1.0 - x, 0.5],
            tuple: vec![0],
            depth: 0,
            image_size: 28,
        };
        agent.act(0, &obs(0.0), &[true; 4], true).unwrap();
        agent.observe(0, 0.0, false).unwrap();
        assert!(agent.buffer.is_empty(), "waits for the next state");
        agent.act(0, &obs(1.0), &[true; 4], true).unwrap();
        assert_eq!(agent.buffer.len(), 1);
        assert_eq!(agent.buffer[0].next_value, Some(agent.value_of(&obs(1.0).features)));
        assert!(!agent.buffer[0].done);
    }

    /// Masked log-probabilities: a log-softmax over the valid actions only.
    #[test]
    fn masked_log_probability() {
        let logits = Tensor::new(&[[1f32, 2.0, 3.0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u8, 0, 1]], &Device::Cpu).unwrap();
        let lp = masked_log_probs(&logits, &mask).unwrap().to_vec2::<f32>().unwrap();
        let norm = (1f32.exp() + 3f32.exp()).ln();
        assert!((lp[0][0] - (1.0 - norm)).abs() < 1e-6);
        assert!((lp[0][2] - (3.0 - norm)).abs() < 1e-6);
        assert!(lp[0][1] < -1e7, "a masked action has no probability");
        // The acting path's log-probability is the same distribution's.
        let mut agent = ppo("{}");
        let obs = Observation {
            features: vec![0.3, -0.2, 0.9],
            tuple: vec![0],
            depth: 0,
            image_size: 28,
        };
        let mask = [true, false, true, true];
        let action = agent.act(0, &obs, &mask, true).unwrap();
        assert!(mask[action]);
        let logged = agent.pending[&0].logprob;
        let x = Tensor::new(&[[0.3f32, -0.2, 0.9]], &Device::Cpu).unwrap();
        let m = Tensor::new(&[[1u8, 0, 1, 1]], &Device::Cpu).unwrap();
        let lp = masked_log_probs(&agent.policy.forward(&x).unwrap(), &m)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!((lp[0][action] - logged).abs() < 1e-5, "{} vs {logged}", lp[0][action]);
    }

    /// Adam against a reference sequence computed once with PyTorch 2.11.0:
    /// `torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-5)` from p = [1, −2, 0.5] with
    /// the gradients below.
    #[test]
    fn adam_matches_pytorch() {
        let p = Var::from_vec(vec![1f32, -2.0, 0.5], 3, &Device::Cpu).unwrap();
        let grads = [
            [0.5f32, -1.0, 0.0],
            [-0.3, 0.2, 1e-3],
            [0.1, 0.1, -2.0],
            [0.0, 0.4, 0.3],
        ];
        let expected = [
            [0.900002003f32, -1.90000105, 0.5],
            [0.88085264, -1.84889913, 0.426623762],
            [0.855456889, -1.81582642, 0.490475804],
            [0.834654331, -1.81175339, 0.533575594],
        ];
        let mut adam = AdamState::default();
        for (g, want) in grads.iter().zip(expected) {
            let g = Tensor::from_slice(g, 3, &Device::Cpu).unwrap();
            adam.step(&[&p], &[g], 0.1, 1e-5).unwrap();
            let got = p.as_tensor().to_vec1::<f32>().unwrap();
            assert!(close(&got, &want), "{got:?} vs {want:?}");
        }
    }

    /// Save, then load into a fresh agent: the whole learned state (networks, Adam moments,
    /// rollout, generator) comes back, so the two act identically from there on.
    #[test]
    fn save_and_load_restore_the_whole_learner() {
        let config = r#"{"n_steps": 4, "batch_size": 2, "n_epochs": 1}"#;
        let mut a = ppo(config);
        let obs = |x: f32| Observation {
            features: vec![x, 1.0 - x, 0.5],
            tuple: vec![0],
            depth: 0,
            image_size: 28,
        };
        for i in 0..7 {
            a.act(0, &obs(i as f32 / 7.0), &[true; 4], true).unwrap();
            a.observe(0, i as f64 / 7.0, i % 2 == 1).unwrap();
        }
        assert_eq!(a.adam.step, 2, "one update of two minibatches ran");
        let bytes = a.save().unwrap();
        let mut b = Ppo::init(space(4, 3), parse_config(config).unwrap(), 99).unwrap();
        b.load(&bytes).unwrap();
        assert_eq!(b.save().unwrap(), bytes);
        for i in 0..10 {
            let o = obs(i as f32 / 10.0);
            assert_eq!(
                a.act(1, &o, &[true; 4], true).unwrap(),
                b.act(1, &o, &[true; 4], true).unwrap()
            );
        }
        let mut other_shape = Ppo::init(space(4, 3), parse_config(r#"{"hidden": [8]}"#).unwrap(), 0).unwrap();
        assert!(other_shape.load(&bytes).unwrap_err().contains("shapes"));
    }

    /// The acting copy computes the candle network's function.
    #[test]
    fn fast_acting_copy_equals_the_candle_network() {
        let mut rng = PluginRng::new(3);
        let mlp = Mlp::new(&mut rng, &[13, 64, 64, 38], 0.01).unwrap();
        let dense = DenseMlp::of(&mlp).unwrap();
        for _ in 0..20 {
            let x: Vec<f32> = (0..13).map(|_| (rng.uniform() * 4.0 - 2.0) as f32).collect();
            let candle = mlp
                .forward(&Tensor::from_slice(&x, (1, 13), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!(close(&dense.forward(&x), &candle));
        }
    }
}
