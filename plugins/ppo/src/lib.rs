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

/// A tanh MLP whose parameters are candle `Var`s (weights, biases, layer by layer).
struct Mlp {
    params: Vec<Var>,
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

    fn to_vecs(&self) -> candle_core::Result<Vec<Vec<f32>>> {
        self.params
            .iter()
            .map(|p| p.as_tensor().flatten_all()?.to_vec1::<f32>())
            .collect()
    }

    fn set_from(&self, values: &[Vec<f32>]) -> Result<(), String> {
        if values.len() != self.params.len() {
            return Err("saved network has a different shape".into());
        }
        for (p, v) in self.params.iter().zip(values) {
            let t = Tensor::from_slice(v, p.shape(), &Device::Cpu).map_err(|e| e.to_string())?;
            p.set(&t).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// A plain copy of an `Mlp`'s weights for acting. A candle forward pass costs ~20 µs per `act` for
/// layers this small (op dispatch and allocation dominate, measured with `make bench`); these loops
/// compute the same function in a few µs. Training still runs through candle; the copy is refreshed
/// after every update and load.
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
        let mut v: Vec<f64> = (0..m).map(|_| gaussian(rng)).collect();
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

fn gaussian(rng: &mut PluginRng) -> f64 {
    let u1 = rng.uniform().max(1e-12);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Adam. candle-nn's AdamW keeps its moment estimates private, so a checkpoint could not restore
/// them; this one keeps them in the open so `save`/`load` resume training exactly.
#[derive(Serialize, Deserialize, Default)]
struct AdamState {
    step: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamState {
    fn step(&mut self, params: &[&Var], grads: &[Tensor], lr: f64, eps: f64) -> candle_core::Result<()> {
        let (b1, b2) = (0.9f64, 0.999f64);
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.elem_count()]).collect();
            self.v = self.m.clone();
        }
        self.step += 1;
        let (c1, c2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let m = Tensor::from_slice(&self.m[i], p.shape(), &Device::Cpu)?;
            let v = Tensor::from_slice(&self.v[i], p.shape(), &Device::Cpu)?;
            let m = ((m * b1)? + (g * (1.0 - b1))?)?;
            let v = ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + eps)?)?;
            p.set(&(p.as_tensor() - (update * lr)?)?)?;
            self.m[i] = m.flatten_all()?.to_vec1()?;
            self.v[i] = v.flatten_all()?.to_vec1()?;
        }
        Ok(())
    }
}

/// What is saved: everything but the networks' `Var`s, which are saved as plain vectors.
#[derive(Serialize, Deserialize)]
struct Saved {
    policy: Vec<Vec<f32>>,
    value: Vec<Vec<f32>>,
    adam: AdamState,
    buffer: Vec<Transition>,
    pending: BTreeMap<u32, Transition>,
    rng: PluginRng,
    metrics: Vec<(String, f64)>,
}

struct Ppo {
    hp: Hyperparameters,
    n_actions: usize,
    policy: Mlp,
    value: Mlp,
    /// Acting copies of `policy` and `value`.
    fast_policy: DenseMlp,
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
            // Fisher–Yates with the plugin's own seeded generator.
            for i in (1..n).rev() {
                order.swap(i, self.rng.below(i + 1));
            }
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

    fn init(space: Space, config: &str, seed: u64) -> Result<Self, String> {
        let hp: Hyperparameters = parse_config(config)?;
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
        to_bytes(&Saved {
            policy: self.policy.to_vecs().map_err(err)?,
            value: self.value.to_vecs().map_err(err)?,
            adam: AdamState {
                step: self.adam.step,
                m: self.adam.m.clone(),
                v: self.adam.v.clone(),
            },
            buffer: self.buffer.clone(),
            pending: self.pending.clone(),
            rng: self.rng.clone(),
            metrics: self.metrics.clone(),
        })
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: Saved = from_bytes(bytes)?;
        self.policy.set_from(&saved.policy)?;
        self.value.set_from(&saved.value)?;
        // Hyperparameters stay those of this run's configuration; the network shapes must match.
        self.adam = saved.adam;
        self.buffer = saved.buffer;
        self.pending = saved.pending;
        self.rng = saved.rng;
        self.metrics = saved.metrics;
        self.refresh_acting_copies().map_err(err)
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        self.metrics.clone()
    }
}

register_agent!(Ppo);
