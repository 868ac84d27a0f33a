//! Cost of a child network beside its accuracy: the structural figures read off its
//! [`NetworkPlan`] (multiply-adds, peak activation memory), a per-layer latency table measured
//! on a deployment target and summed per architecture, and the Pareto front of accuracy against
//! a cost. Measuring latency needs libtorch and lives in `nas-train`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::arch::{Architecture, Layer};
use crate::mdp::{Mdp, State};
use crate::netplan::{NetworkPlan, PlannedLayer};
use crate::record::{Cost, Latency};

/// Bytes of one float32 activation.
const FLOAT_BYTES: u64 = 4;

/// The structural cost of `arch` for `input` (channels, height, width) and `num_classes`,
/// without latency.
pub fn structural_cost(arch: &Architecture, input: (usize, usize, usize), num_classes: usize) -> Cost {
    let plan = NetworkPlan::new(arch, input, num_classes, false);
    Cost {
        mult_adds: plan.total_mult_adds(),
        activation_bytes: peak_activation_bytes(&plan),
        latency: None,
    }
}

/// Peak activation memory of one input's forward pass: at inference only a layer's input and
/// output are alive while it runs (ReLUs run in place), so the peak is the largest sum of the two.
pub fn peak_activation_bytes(plan: &NetworkPlan) -> u64 {
    let mut previous = plan.input.0 * plan.input.1 * plan.input.2;
    let mut peak = 0;
    for layer in &plan.layers {
        let output: u64 = layer.output.iter().product();
        peak = peak.max(previous + output);
        previous = output;
    }
    peak * FLOAT_BYTES
}

/// The key of one layer in a latency table: the layer (or "classifier") and the shape it reads,
/// since a layer's latency depends on its input: `conv(32,3) @ 1x28x28`, `fc(64) @ 1440`.
pub fn layer_key(layer: &PlannedLayer, input: &[u64]) -> String {
    format!("{} @ {}", layer.label(), shape_text(input))
}

/// Each layer of `plan` with the shape it reads, in order.
pub fn layers_with_inputs(plan: &NetworkPlan) -> Vec<(&PlannedLayer, Vec<u64>)> {
    let mut input = vec![plan.input.0, plan.input.1, plan.input.2];
    let mut out = Vec::with_capacity(plan.layers.len());
    for layer in &plan.layers {
        out.push((layer, input.clone()));
        input = layer.output.clone();
    }
    out
}

/// Per-layer latencies measured on a deployment target (`nas-host cost measure-layers`), summed
/// per architecture as hardware-aware NAS commonly does (e.g. ProxylessNAS, FBNet): the search
/// can then run on another machine and still be rewarded for the target's latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyTable {
    /// What the table was measured on, in words (e.g. "cpu: Intel Xeon, 1 thread").
    pub device: String,
    /// Inputs per forward pass the latencies are for.
    pub batch: usize,
    /// (channels, height, width) of the dataset's input.
    pub input: [u64; 3],
    pub classes: usize,
    /// Timed runs per layer.
    pub runs: usize,
    /// Median milliseconds of each layer, by [`layer_key`].
    pub layers: BTreeMap<String, f64>,
}

impl LatencyTable {
    /// Reads a table, naming the file and what is wrong with it.
    pub fn load(path: &Path) -> anyhow::Result<LatencyTable> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the latency table {}: {e}", path.display()))?;
        let table: LatencyTable = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "the latency table {} is not valid JSON of `nas-host cost measure-layers` ({e}); measure it again with that command",
                path.display()
            )
        })?;
        if let Some((key, ms)) = table.layers.iter().find(|(_, ms)| !(ms.is_finite() && **ms >= 0.0)) {
            anyhow::bail!(
                "the latency table {} gives layer `{key}` a latency of {ms} ms; latencies must be finite and non-negative",
                path.display()
            );
        }
        Ok(table)
    }

    /// The sum of the table's latencies of `arch`'s layers (the classifier included), as a
    /// [`Latency`] from `table:NAME`; an error names the first layer the table lacks.
    pub fn latency(&self, arch: &Architecture, name: &str) -> anyhow::Result<Latency> {
        let (c, h, w) = (self.input[0] as usize, self.input[1] as usize, self.input[2] as usize);
        let plan = NetworkPlan::new(arch, (c, h, w), self.classes, false);
        let mut total = 0.0;
        for (layer, input) in layers_with_inputs(&plan) {
            let key = layer_key(layer, &input);
            let ms = self.layers.get(&key).ok_or_else(|| {
                anyhow::anyhow!(
                    "the latency table {name} has no latency for layer `{key}` of `{arch}`; measure the table for this search space and dataset with `nas-host cost measure-layers` on the target"
                )
            })?;
            total += ms;
        }
        Ok(Latency {
            device: format!("table:{name}"),
            batch: self.batch,
            runs: 0,
            threads: 0,
            median_ms: total,
            p90_ms: total,
            min_ms: total,
            throughput: None,
            seconds: 0.0,
        })
    }
}

/// Every (layer, input shape) a design of `mdp` can contain, the classifier included, keyed as
/// [`layer_key`] keys them: what a latency table for this search space must hold. Found by walking
/// every reachable design state (with the channels it carries, which the state alone does not
/// say after a pooling layer).
pub fn space_layers(mdp: &Mdp, input: (usize, usize, usize)) -> BTreeMap<String, (Option<Layer>, Vec<u64>)> {
    let mut found = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let start: (State, Vec<u64>) = (mdp.start(), vec![input.0 as u64, input.1 as u64, input.2 as u64]);
    let mut stack = vec![start];
    while let Some((state, shape)) = stack.pop() {
        if !seen.insert((state, shape.clone())) {
            continue;
        }
        if state.depth >= 1 {
            let key = format!("classifier @ {}", shape_text(&shape));
            found.entry(key).or_insert((None, shape.clone()));
        }
        for action in mdp.actions() {
            if !mdp.is_valid(&state, action) {
                continue;
            }
            let layer = action.layer;
            found
                .entry(format!("{layer} @ {}", shape_text(&shape)))
                .or_insert((Some(layer), shape.clone()));
            let next_shape = match layer {
                Layer::Conv { filters, .. } => {
                    let side = u64::from(layer.output_side(state.image_size));
                    vec![u64::from(filters), side, side]
                }
                Layer::Pool { .. } => {
                    let side = u64::from(layer.output_side(state.image_size));
                    vec![shape[0], side, side]
                }
                Layer::Fc { units } => vec![u64::from(units)],
            };
            let next = mdp.next_state(&state, action);
            if next.terminated {
                let key = format!("classifier @ {}", shape_text(&next_shape));
                found.entry(key).or_insert((None, next_shape));
            } else {
                stack.push((next, next_shape));
            }
        }
    }
    found
}

fn shape_text(shape: &[u64]) -> String {
    shape.iter().map(u64::to_string).collect::<Vec<_>>().join("x")
}

/// Indices of the Pareto-optimal points among (accuracy, cost) pairs: those no other point
/// dominates (at least as accurate and at most as costly, strictly better in one). Points with a
/// NaN are never optimal. Ascending by cost.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| !points[i].0.is_nan() && !points[i].1.is_nan())
        .collect();
    // Cheapest first; among equal costs, most accurate first.
    order.sort_by(|&a, &b| {
        points[a]
            .1
            .total_cmp(&points[b].1)
            .then(points[b].0.total_cmp(&points[a].0))
    });
    let mut front = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in order {
        if points[i].0 > best {
            best = points[i].0;
            front.push(i);
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_of_a_hand_made_set() {
        // (accuracy, latency ms)
        let points = [
            (0.90, 2.0), // 0: optimal
            (0.85, 1.0), // 1: optimal (cheapest)
            (0.88, 3.0), // 2: dominated by 0
            (0.95, 5.0), // 3: optimal (most accurate)
            (0.85, 1.5), // 4: dominated by 1
            (0.95, 6.0), // 5: dominated by 3
            (f64::NAN, 0.1),
        ];
        assert_eq!(pareto_front(&points), vec![1, 0, 3]);
        assert!(pareto_front(&[]).is_empty());
        // Equal points: the first one stands for both.
        assert_eq!(pareto_front(&[(0.5, 1.0), (0.5, 1.0)]), vec![0]);
    }

    #[test]
    fn structural_cost_by_hand() {
        // 1x28x28 -> conv 5x5 (10) -> 10x24x24 -> pool 2/2 -> 10x12x12 -> fc 64 -> 3.
        let arch: Architecture = "conv(10,5) pool(2,2) fc(64)".parse().unwrap();
        let cost = structural_cost(&arch, (1, 28, 28), 3);
        assert_eq!(cost.mult_adds, 25 * 10 * 24 * 24 + 1440 * 64 + 64 * 3);
        // The conv reads 784 floats and writes 5760; the pool reads those 5760 and writes 1440:
        // the largest input + output.
        assert_eq!(cost.activation_bytes, (5760 + 1440) * 4);
        assert!(cost.latency.is_none());
    }

    fn table(layers: &[(&str, f64)]) -> LatencyTable {
        LatencyTable {
            device: "test".into(),
            batch: 1,
            input: [1, 28, 28],
            classes: 3,
            runs: 10,
            layers: layers.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn a_latency_table_is_summed_over_the_layers_of_a_known_architecture() {
        let arch: Architecture = "conv(10,5) pool(2,2) fc(64)".parse().unwrap();
        let t = table(&[
            ("conv(10,5) @ 1x28x28", 0.25),
            ("pool(2,2) @ 10x24x24", 0.125),
            ("fc(64) @ 10x12x12", 0.5),
            ("classifier @ 64", 0.0625),
            ("conv(32,3) @ 1x28x28", 9.0),
        ]);
        let latency = t.latency(&arch, "phone.json").unwrap();
        assert_eq!(latency.median_ms, 0.25 + 0.125 + 0.5 + 0.0625);
        assert_eq!(latency.device, "table:phone.json");
        assert_eq!((latency.batch, latency.runs), (1, 0));

        let missing = table(&[("conv(10,5) @ 1x28x28", 0.25)]);
        let e = missing.latency(&arch, "phone.json").unwrap_err().to_string();
        assert!(
            e.contains("no latency for layer `pool(2,2) @ 10x24x24`") && e.contains("nas-host cost measure-layers"),
            "{e}"
        );
    }

    #[test]
    fn a_malformed_latency_table_is_named() {
        let dir = std::env::temp_dir().join(format!("nas-latency-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.json");
        std::fs::write(&file, "{\"device\": \"x\", \"layers\": ").unwrap();
        let e = LatencyTable::load(&file).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not valid JSON"), "{e}");
        let t = table(&[("classifier @ 64", -1.0)]);
        std::fs::write(&file, serde_json::to_string(&t).unwrap()).unwrap();
        let e = LatencyTable::load(&file).unwrap_err().to_string();
        assert!(e.contains("`classifier @ 64`") && e.contains("-1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_space_layers_cover_every_design() {
        let mdp = Mdp::new(crate::mdp::MdpConfig::default(), 28);
        let layers = space_layers(&mdp, (1, 28, 28));
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
        for _ in 0..300 {
            let arch = mdp.sample_architecture(&mut rng);
            let plan = NetworkPlan::new(&arch, (1, 28, 28), 3, false);
            for (layer, input) in layers_with_inputs(&plan) {
                assert!(
                    layers.contains_key(&layer_key(layer, &input)),
                    "{arch}: {}",
                    layer_key(layer, &input)
                );
            }
        }
    }
}
