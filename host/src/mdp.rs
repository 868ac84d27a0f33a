//! The CNN-design MDP after MetaQNN (Baker et al. 2017), as the seed defined it.
//!
//! A state is the last layer added (plus what the rules need: depth, image size, fc count). An action
//! is one *complete* choice from a flat list: a layer and whether to stop after it. Validity is
//! decided for the whole choice at once, so an agent that respects the mask can never build an
//! invalid network — the seed masked each of its 7 tuple fields separately, which let invalid
//! combinations through. A "continue" action is valid only when the state it leads to still has a
//! valid action, so no trajectory can get stuck.

use serde::{Deserialize, Serialize};

use crate::arch::{Architecture, Layer};

/// Limits and value sets of the search space; the defaults are the seed's Table 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdpConfig {
    /// Maximum number of layers (not counting the implied classifier).
    pub max_depth: usize,
    /// Maximum number of fully connected layers.
    pub max_fc: usize,
    pub conv_filters: Vec<u32>,
    pub conv_kernels: Vec<u32>,
    /// Pooling (size, stride) pairs.
    pub pools: Vec<(u32, u32)>,
    pub fc_sizes: Vec<u32>,
}

impl Default for MdpConfig {
    fn default() -> Self {
        MdpConfig {
            max_depth: 8,
            max_fc: 2,
            conv_filters: vec![10, 20, 32, 64],
            conv_kernels: vec![1, 3, 5],
            pools: vec![(5, 3), (3, 2), (2, 2)],
            fc_sizes: vec![512, 256, 128, 64],
        }
    }
}

/// One entry of the flat action list: a layer to add, and whether the network ends after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Action {
    pub layer: Layer,
    pub terminate: bool,
}

/// Where the design currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct State {
    /// Number of layers so far (0 at the start state).
    pub depth: usize,
    /// The last layer added; `None` at the start state.
    pub last: Option<Layer>,
    /// Spatial side of the feature map after the last layer (meaningless after an fc layer).
    pub image_size: u32,
    pub fc_count: usize,
    pub terminated: bool,
}

/// The MDP for one input image size.
#[derive(Debug, Clone)]
pub struct Mdp {
    pub config: MdpConfig,
    pub input_size: u32,
    actions: Vec<Action>,
}

/// Size of a feature map after a conv or pool layer: floor((n − k) / s) + 1.
pub fn output_size(n: u32, kernel: u32, stride: u32) -> u32 {
    (n - kernel) / stride + 1
}

impl Mdp {
    pub fn new(config: MdpConfig, input_size: u32) -> Mdp {
        let mut layers = Vec::new();
        for &filters in &config.conv_filters {
            for &kernel in &config.conv_kernels {
                layers.push(Layer::Conv { filters, kernel });
            }
        }
        for &(size, stride) in &config.pools {
            layers.push(Layer::Pool { size, stride });
        }
        for &units in &config.fc_sizes {
            layers.push(Layer::Fc { units });
        }
        let actions = layers
            .iter()
            .flat_map(|&layer| [false, true].map(|terminate| Action { layer, terminate }))
            .collect();
        Mdp {
            config,
            input_size,
            actions,
        }
    }

    /// The flat action list; an agent's action is an index into it.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    pub fn start(&self) -> State {
        State {
            depth: 0,
            last: None,
            image_size: self.input_size,
            fc_count: 0,
            terminated: false,
        }
    }

    /// Whether `layer` may follow the state under the seed's rules (ignoring depth and terminate).
    pub fn layer_allowed(&self, state: &State, layer: &Layer) -> bool {
        match (*layer, state.last) {
            (Layer::Conv { kernel, .. }, None | Some(Layer::Conv { .. }) | Some(Layer::Pool { .. })) => {
                kernel < state.image_size
            }
            (Layer::Pool { size, .. }, Some(Layer::Conv { .. })) => size < state.image_size,
            (Layer::Fc { .. }, Some(Layer::Conv { .. }) | Some(Layer::Pool { .. })) => {
                state.fc_count < self.config.max_fc
            }
            (Layer::Fc { units }, Some(Layer::Fc { units: previous })) => {
                units < previous && state.fc_count < self.config.max_fc
            }
            _ => false,
        }
    }

    /// The state after adding `layer` (and stopping when `terminate`).
    pub fn next_state(&self, state: &State, action: &Action) -> State {
        let image_size = match action.layer {
            Layer::Conv { kernel, .. } => output_size(state.image_size, kernel, 1),
            Layer::Pool { size, stride } => output_size(state.image_size, size, stride),
            Layer::Fc { .. } => state.image_size,
        };
        State {
            depth: state.depth + 1,
            last: Some(action.layer),
            image_size,
            fc_count: state.fc_count + usize::from(matches!(action.layer, Layer::Fc { .. })),
            terminated: action.terminate,
        }
    }

    /// Whether the complete choice `action` is valid in `state`.
    pub fn is_valid(&self, state: &State, action: &Action) -> bool {
        if state.terminated || state.depth >= self.config.max_depth || !self.layer_allowed(state, &action.layer) {
            return false;
        }
        if action.terminate {
            return true;
        }
        // Continuing is valid only if the next state can still add a layer within the depth limit.
        let next = self.next_state(state, action);
        next.depth < self.config.max_depth
            && self
                .actions
                .iter()
                .any(|a| a.terminate && self.layer_allowed(&next, &a.layer))
    }

    /// The exact validity mask over the flat action list.
    pub fn mask(&self, state: &State) -> Vec<bool> {
        self.actions.iter().map(|a| self.is_valid(state, a)).collect()
    }

    /// A random valid architecture: a uniformly random valid action at every step.
    pub fn sample_architecture(&self, rng: &mut impl rand::Rng) -> Architecture {
        let mut state = self.start();
        let mut layers = Vec::new();
        while !state.terminated {
            let valid: Vec<&Action> = self.actions.iter().filter(|a| self.is_valid(&state, a)).collect();
            let action = *valid[rng.random_range(0..valid.len())];
            layers.push(action.layer);
            state = self.next_state(&state, &action);
        }
        Architecture { layers }
    }

    /// Replays an architecture through the MDP, returning why it is invalid if it is.
    pub fn validate(&self, arch: &Architecture) -> Result<(), String> {
        if arch.layers.is_empty() {
            return Err("an architecture needs at least one layer".into());
        }
        let mut state = self.start();
        for (i, layer) in arch.layers.iter().enumerate() {
            let action = Action {
                layer: *layer,
                terminate: i + 1 == arch.layers.len(),
            };
            if !self.is_valid(&state, &action) {
                return Err(format!(
                    "layer {} `{layer}` is not allowed here ({}; image size {}, depth {} of at most {})",
                    i + 1,
                    self.explain(&state, layer),
                    state.image_size,
                    state.depth,
                    self.config.max_depth
                ));
            }
            state = self.next_state(&state, &action);
        }
        Ok(())
    }

    fn explain(&self, state: &State, layer: &Layer) -> &'static str {
        match (*layer, state.last) {
            (_, _) if state.depth >= self.config.max_depth => "the depth limit is reached",
            (Layer::Conv { .. }, Some(Layer::Fc { .. })) => "conv cannot follow fc",
            (Layer::Conv { .. }, _) => "the kernel must be smaller than the image",
            (Layer::Pool { .. }, None) => "a network cannot start with pooling",
            (Layer::Pool { .. }, Some(Layer::Pool { .. })) => "two pools in a row are not allowed",
            (Layer::Pool { .. }, Some(Layer::Fc { .. })) => "pool cannot follow fc",
            (Layer::Pool { .. }, _) => "the pool size must be smaller than the image",
            (Layer::Fc { .. }, None) => "a network cannot start with fc",
            (Layer::Fc { .. }, Some(Layer::Fc { .. })) if state.fc_count >= self.config.max_fc => "too many fc layers",
            (Layer::Fc { .. }, Some(Layer::Fc { .. })) => "fc after fc must be strictly smaller",
            (Layer::Fc { .. }, _) => "too many fc layers",
        }
    }

    /// The seed's 7-field state tuple: (depth, type, filter depth, filter size, pool, fc size,
    /// terminate), each an index into its value set with 0 meaning "not applicable" (types: 0 start,
    /// 1 conv, 2 pool, 3 fc).
    pub fn tuple(&self, state: &State) -> [u32; 7] {
        let index_of = |values: &[u32], v: u32| values.iter().position(|&x| x == v).map_or(0, |i| i as u32 + 1);
        let (kind, filters, kernel, pool, fc) = match state.last {
            None => (0, 0, 0, 0, 0),
            Some(Layer::Conv { filters, kernel }) => (
                1,
                index_of(&self.config.conv_filters, filters),
                index_of(&self.config.conv_kernels, kernel),
                0,
                0,
            ),
            Some(Layer::Pool { size, stride }) => {
                let pool = self
                    .config
                    .pools
                    .iter()
                    .position(|&p| p == (size, stride))
                    .map_or(0, |i| i as u32 + 1);
                (2, 0, 0, pool, 0)
            }
            Some(Layer::Fc { units }) => (3, 0, 0, 0, index_of(&self.config.fc_sizes, units)),
        };
        [
            state.depth as u32,
            kind,
            filters,
            kernel,
            pool,
            fc,
            u32::from(state.terminated),
        ]
    }

    /// Sizes of the tuple's fields, in order: the one-hot observation concatenates one-hots of these.
    pub fn tuple_field_sizes(&self) -> [usize; 7] {
        [
            self.config.max_depth + 1,
            4,
            self.config.conv_filters.len() + 1,
            self.config.conv_kernels.len() + 1,
            self.config.pools.len() + 1,
            self.config.fc_sizes.len() + 1,
            2,
        ]
    }

    pub fn observation_len(&self) -> usize {
        self.tuple_field_sizes().iter().sum()
    }

    /// The seed's observation: the concatenated one-hot encodings of the state tuple.
    pub fn observation(&self, state: &State) -> Vec<f32> {
        let mut obs = vec![0.0; self.observation_len()];
        let mut offset = 0;
        for (value, size) in self.tuple(state).into_iter().zip(self.tuple_field_sizes()) {
            obs[offset + value as usize] = 1.0;
            offset += size;
        }
        obs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn mdp() -> Mdp {
        Mdp::new(MdpConfig::default(), 32)
    }

    #[test]
    fn flat_action_list_has_every_layer_with_and_without_terminate() {
        // 12 conv + 3 pool + 4 fc = 19 layers, each with terminate false/true.
        assert_eq!(mdp().actions().len(), 38);
    }

    #[test]
    fn start_allows_only_conv() {
        let m = mdp();
        let mask = m.mask(&m.start());
        for (a, ok) in m.actions().iter().zip(mask) {
            assert_eq!(ok, matches!(a.layer, Layer::Conv { .. }), "{a:?}");
        }
    }

    #[test]
    fn rules_of_the_seed() {
        let m = mdp();
        let valid = |text: &str| m.validate(&text.parse().unwrap()).is_ok();
        assert!(valid("conv(32,3) pool(5,3)"));
        assert!(valid("conv(32,3) pool(5,3) fc(128) fc(64)"));
        assert!(!valid("pool(2,2)"), "no pooling first");
        assert!(!valid("fc(64)"), "no fc first");
        assert!(!valid("conv(10,3) pool(2,2) pool(2,2)"), "no two pools in a row");
        assert!(!valid("conv(10,3) fc(64) fc(64)"), "fc to fc must shrink");
        assert!(!valid("conv(10,3) fc(512) fc(256) fc(128)"), "at most 2 fc");
        assert!(!valid("conv(10,3) fc(64) conv(10,3)"), "no conv after fc");
        assert!(!valid("conv(10,3) fc(64) pool(2,2)"), "no pool after fc");
        assert!(valid(&["conv(10,1)"; 8].join(" ")));
        assert!(!valid(&["conv(10,1)"; 9].join(" ")), "depth limit 8");
        // 32 -> pool(5,3) -> 10 -> pool... kernel 5 on 2x2 fails: 32-4=28, (28-5)/3+1=8, 8-4=4, kernel 5 !< 4
        assert!(!valid("conv(10,5) pool(5,3) conv(10,5) conv(10,5)"));
    }

    #[test]
    fn image_size_formula() {
        assert_eq!(output_size(32, 3, 1), 30);
        assert_eq!(output_size(30, 5, 3), 9);
        assert_eq!(output_size(28, 2, 2), 14);
    }

    #[test]
    fn continue_is_masked_when_it_would_dead_end() {
        let m = mdp();
        let arch: Architecture = "conv(10,3) fc(64)".parse().unwrap();
        let mut state = m.start();
        for layer in &arch.layers {
            state = m.next_state(
                &state,
                &Action {
                    layer: *layer,
                    terminate: false,
                },
            );
        }
        // After fc(64) nothing smaller exists: no action may be valid, and so fc(64)-continue was masked.
        assert!(m.mask(&state).iter().all(|v| !v));
        let before = m.next_state(
            &m.start(),
            &Action {
                layer: arch.layers[0],
                terminate: false,
            },
        );
        let fc64_continue = Action {
            layer: Layer::Fc { units: 64 },
            terminate: false,
        };
        assert!(!m.is_valid(&before, &fc64_continue));
        assert!(m.is_valid(
            &before,
            &Action {
                terminate: true,
                ..fc64_continue
            }
        ));
    }

    #[test]
    fn random_masked_rollouts_always_end_in_valid_architectures() {
        let m = Mdp::new(MdpConfig::default(), 28);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..5000 {
            let mut state = m.start();
            let mut layers = Vec::new();
            while !state.terminated {
                let valid: Vec<usize> = m
                    .mask(&state)
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v)
                    .map(|(i, _)| i)
                    .collect();
                assert!(!valid.is_empty(), "stuck at {state:?} after {layers:?}");
                let action = m.actions()[valid[rng.random_range(0..valid.len())]];
                layers.push(action.layer);
                state = m.next_state(&state, &action);
            }
            assert!(layers.len() <= 8);
            m.validate(&Architecture { layers }).unwrap();
        }
    }

    #[test]
    fn observation_is_one_hot_per_field() {
        let m = mdp();
        let s = m.next_state(
            &m.start(),
            &Action {
                layer: Layer::Conv { filters: 32, kernel: 3 },
                terminate: false,
            },
        );
        assert_eq!(m.tuple(&s), [1, 1, 3, 2, 0, 0, 0]);
        let obs = m.observation(&s);
        assert_eq!(obs.len(), 9 + 4 + 5 + 4 + 4 + 5 + 2);
        assert_eq!(obs.iter().sum::<f32>(), 7.0);
    }
}
