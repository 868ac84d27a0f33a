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
    /// Minimum number of layers. The seed's first step could not terminate: `min_depth = 2`
    /// (`configs/seed-exact.toml`); the default 1 allows a single conv layer.
    pub min_depth: usize,
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
            min_depth: 1,
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

/// Why an action is not allowed: the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Ended,
    DepthLimit { max_depth: usize },
    MustEndAtDepthLimit { max_depth: usize },
    TooShort { min_depth: usize },
    DeadEnd,
    ConvAfterFc,
    KernelTooLarge { kernel: u32, image: u32 },
    PoolFirst,
    PoolAfterPool,
    PoolAfterFc,
    PoolTooLarge { size: u32, image: u32 },
    FcFirst,
    TooManyFc { max_fc: usize },
    FcNotSmaller { units: u32, previous: u32 },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rejection::Ended => f.write_str("the network has already ended"),
            Rejection::DepthLimit { max_depth } => {
                write!(f, "the depth limit of {max_depth} layers is reached")
            }
            Rejection::MustEndAtDepthLimit { max_depth } => write!(
                f,
                "it is layer {max_depth}, the depth limit, so the network must end with it"
            ),
            Rejection::TooShort { min_depth } => {
                write!(f, "a network needs at least {min_depth} layers ([mdp] min_depth)")
            }
            Rejection::DeadEnd => f.write_str("no layer can follow it, so the network must end with it"),
            Rejection::ConvAfterFc => f.write_str("conv cannot follow fc"),
            Rejection::KernelTooLarge { kernel, image } => write!(
                f,
                "the kernel ({kernel}) must be smaller than the image ({image}×{image})"
            ),
            Rejection::PoolFirst => f.write_str("a network cannot start with pooling"),
            Rejection::PoolAfterPool => f.write_str("two pools in a row are not allowed"),
            Rejection::PoolAfterFc => f.write_str("pool cannot follow fc"),
            Rejection::PoolTooLarge { size, image } => write!(
                f,
                "the pool size ({size}) must be smaller than the image ({image}×{image})"
            ),
            Rejection::FcFirst => f.write_str("a network cannot start with fc"),
            Rejection::TooManyFc { max_fc } => write!(f, "at most {max_fc} fc layers are allowed"),
            Rejection::FcNotSmaller { units, previous } => write!(
                f,
                "fc after fc must be strictly smaller ({units} units after {previous})"
            ),
        }
    }
}

/// The MDP for one input image size.
#[derive(Debug, Clone)]
pub struct Mdp {
    pub config: MdpConfig,
    pub input_size: u32,
    actions: Vec<Action>,
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
        self.layer_rule(state, layer).is_ok()
    }

    /// The seed's rules for which layer may follow which, with the rule a layer breaks.
    fn layer_rule(&self, state: &State, layer: &Layer) -> Result<(), Rejection> {
        let max_fc = self.config.max_fc;
        match (*layer, state.last) {
            (Layer::Conv { .. }, Some(Layer::Fc { .. })) => Err(Rejection::ConvAfterFc),
            (Layer::Conv { kernel, .. }, _) if kernel >= state.image_size => Err(Rejection::KernelTooLarge {
                kernel,
                image: state.image_size,
            }),
            (Layer::Conv { .. }, _) => Ok(()),
            (Layer::Pool { .. }, None) => Err(Rejection::PoolFirst),
            (Layer::Pool { .. }, Some(Layer::Pool { .. })) => Err(Rejection::PoolAfterPool),
            (Layer::Pool { .. }, Some(Layer::Fc { .. })) => Err(Rejection::PoolAfterFc),
            (Layer::Pool { size, .. }, _) if size >= state.image_size => Err(Rejection::PoolTooLarge {
                size,
                image: state.image_size,
            }),
            (Layer::Pool { .. }, _) => Ok(()),
            (Layer::Fc { .. }, None) => Err(Rejection::FcFirst),
            (Layer::Fc { .. }, _) if state.fc_count >= max_fc => Err(Rejection::TooManyFc { max_fc }),
            (Layer::Fc { units }, Some(Layer::Fc { units: previous })) if units >= previous => {
                Err(Rejection::FcNotSmaller { units, previous })
            }
            (Layer::Fc { .. }, _) => Ok(()),
        }
    }

    /// The state after adding `layer` (and stopping when `terminate`).
    pub fn next_state(&self, state: &State, action: &Action) -> State {
        State {
            depth: state.depth + 1,
            last: Some(action.layer),
            image_size: action.layer.output_side(state.image_size),
            fc_count: state.fc_count + usize::from(matches!(action.layer, Layer::Fc { .. })),
            terminated: action.terminate,
        }
    }

    /// Whether the complete choice `action` is valid in `state`.
    pub fn is_valid(&self, state: &State, action: &Action) -> bool {
        self.check(state, action).is_ok()
    }

    /// Whether the complete choice `action` is valid in `state`, and if not, the rule it breaks.
    pub fn check(&self, state: &State, action: &Action) -> Result<(), Rejection> {
        let max_depth = self.config.max_depth;
        if state.terminated {
            return Err(Rejection::Ended);
        }
        if state.depth >= max_depth {
            return Err(Rejection::DepthLimit { max_depth });
        }
        self.layer_rule(state, &action.layer)?;
        if action.terminate {
            let min_depth = self.config.min_depth;
            return if state.depth + 1 < min_depth {
                Err(Rejection::TooShort { min_depth })
            } else {
                Ok(())
            };
        }
        // Continuing is valid only if the next state can still be completed within the limits.
        let next = self.next_state(state, action);
        if next.depth >= max_depth {
            return Err(Rejection::MustEndAtDepthLimit { max_depth });
        }
        if !self.actions.iter().any(|a| self.is_valid(&next, a)) {
            return Err(Rejection::DeadEnd);
        }
        Ok(())
    }

    /// The exact validity mask over the flat action list.
    pub fn mask(&self, state: &State) -> Vec<bool> {
        self.actions.iter().map(|a| self.is_valid(state, a)).collect()
    }

    /// What the search space allows for this image size, in words: the conv kernels and pools
    /// that fit (a kernel or pool must be smaller than the image), so a run on small or large
    /// images says which layers its agents can use.
    pub fn allowed_first_layers(&self) -> String {
        let side = self.input_size;
        let kernels: Vec<String> = self
            .config
            .conv_kernels
            .iter()
            .filter(|&&k| k < side)
            .map(u32::to_string)
            .collect();
        let pools: Vec<String> = self
            .config
            .pools
            .iter()
            .filter(|&&(size, _)| size < side)
            .map(|(size, stride)| format!("({size},{stride})"))
            .collect();
        let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        format!(
            "the search space allows conv kernels {} and pools {} on {side}×{side} inputs (each must be smaller than the feature map it slides over), up to {} layers",
            list(&kernels),
            list(&pools),
            self.config.max_depth
        )
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

    /// Replays an architecture through the MDP, returning the rule it breaks if it is invalid.
    /// Each layer is checked against the rules for what may follow the one before it, then the
    /// whole against the depth limits; this is the same set the mask allows.
    pub fn validate(&self, arch: &Architecture) -> Result<(), String> {
        if arch.layers.is_empty() {
            return Err("an architecture needs at least one layer".into());
        }
        let mut state = self.start();
        for (i, layer) in arch.layers.iter().enumerate() {
            let rule = if state.depth >= self.config.max_depth {
                Err(Rejection::DepthLimit {
                    max_depth: self.config.max_depth,
                })
            } else {
                self.layer_rule(&state, layer)
            };
            if let Err(rejection) = rule {
                return Err(format!("layer {} `{layer}` is not allowed here: {rejection}", i + 1));
            }
            let action = Action {
                layer: *layer,
                terminate: i + 1 == arch.layers.len(),
            };
            state = self.next_state(&state, &action);
        }
        if arch.depth() < self.config.min_depth {
            return Err(format!(
                "{}",
                Rejection::TooShort {
                    min_depth: self.config.min_depth
                }
            ));
        }
        Ok(())
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
    use crate::arch::output_size;
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
    fn rejections_name_the_rule_that_was_broken() {
        let m = mdp();
        let reason = |text: &str| m.validate(&text.parse().unwrap()).unwrap_err();
        let nine = reason(&["conv(10,1)"; 9].join(" "));
        assert!(nine.contains("layer 9") && nine.contains("depth limit of 8"), "{nine}");
        let fc = reason("conv(10,3) fc(64) fc(64)");
        assert!(fc.contains("layer 3") && fc.contains("strictly smaller"), "{fc}");
        let three = reason("conv(10,3) fc(512) fc(256) fc(128)");
        assert!(three.contains("layer 4") && three.contains("at most 2 fc"), "{three}");
        let kernel = reason("conv(10,5) pool(5,3) conv(10,5) conv(10,5)");
        assert!(kernel.contains("layer 4") && kernel.contains("kernel (5)"), "{kernel}");
        assert!(reason("pool(2,2)").contains("cannot start with pooling"));
        assert!(reason("conv(10,3) fc(64) conv(10,3)").contains("conv cannot follow fc"));
        let short = Mdp::new(
            MdpConfig {
                min_depth: 2,
                ..MdpConfig::default()
            },
            32,
        );
        let one = short.validate(&"conv(10,3)".parse().unwrap()).unwrap_err();
        assert!(one.contains("at least 2 layers"), "{one}");
        // The mask agrees: at the start no action may terminate.
        let start = short.start();
        assert!(short
            .actions()
            .iter()
            .all(|a| !a.terminate || !short.is_valid(&start, a)));
        assert_eq!(
            short.check(&start, &short.actions()[1]),
            Err(Rejection::TooShort { min_depth: 2 })
        );
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
    fn the_allowed_layers_follow_the_image_size() {
        let tiny = Mdp::new(MdpConfig::default(), 4).allowed_first_layers();
        assert!(
            tiny.contains("kernels 1, 3 ") && tiny.contains("pools (3,2), (2,2) "),
            "{tiny}"
        );
        let mnist = Mdp::new(MdpConfig::default(), 28).allowed_first_layers();
        assert!(
            mnist.contains("kernels 1, 3, 5 ") && mnist.contains("(5,3), (3,2), (2,2)"),
            "{mnist}"
        );
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
