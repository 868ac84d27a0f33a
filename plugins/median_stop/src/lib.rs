//! The median stopping rule (Golovin et al., "Google Vizier", 2017; Katib's `medianstop`): stop a
//! child at epoch e when its best accuracy so far is below the median of the accuracies that
//! completed children had at epoch e. Until `min_completed` children have completed, and before
//! `start_epoch`, every child continues.
use nas_plugin_sdk::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Hyperparameters {
    /// Completed children needed before the rule stops anything.
    min_completed: usize,
    /// The first epoch after which a child may be stopped (1 = after its first epoch).
    start_epoch: usize,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Hyperparameters {
            min_completed: 5,
            start_epoch: 1,
        }
    }
}

struct MedianStop {
    hp: Hyperparameters,
    /// Learning curves of the children that trained to the end, in the order they completed.
    completed: Vec<Vec<f64>>,
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl MedianStop {
    /// The decision for a curve that has reached epoch `curve.len()`.
    fn verdict(&self, curve: &[f64]) -> Verdict {
        let epoch = curve.len();
        if epoch == 0 || epoch < self.hp.start_epoch {
            return Verdict::Continue;
        }
        // Completed children whose curve reaches this epoch (a protocol of fewer epochs does not).
        let at_epoch: Vec<f64> = self
            .completed
            .iter()
            .filter_map(|c| c.get(epoch - 1).copied())
            .collect();
        if at_epoch.len() < self.hp.min_completed.max(1) {
            return Verdict::Continue;
        }
        let best = curve.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match median(at_epoch) {
            Some(m) if best < m => Verdict::Stop,
            _ => Verdict::Continue,
        }
    }
}

impl Assessor for MedianStop {
    const NAME: &'static str = "median_stop";
    const DESCRIPTION: &'static str =
        "Stops a child whose best accuracy so far is below the median of completed children's at that epoch";

    type Config = Hyperparameters;

    fn init(hp: Hyperparameters) -> Result<Self, String> {
        if hp.start_epoch == 0 {
            return Err("start_epoch counts from 1 (stop after the first epoch at the earliest)".into());
        }
        Ok(MedianStop {
            hp,
            completed: Vec::new(),
        })
    }

    fn assess(&mut self, curve: &LearningCurve) -> Result<Verdict, String> {
        Ok(self.verdict(&curve.accuracy))
    }

    fn completed(&mut self, curve: &LearningCurve) -> Result<(), String> {
        self.completed.push(curve.accuracy.clone());
        Ok(())
    }
}

register_assessor!(MedianStop);

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(min_completed: usize, start_epoch: usize, completed: &[&[f64]]) -> MedianStop {
        MedianStop {
            hp: Hyperparameters {
                min_completed,
                start_epoch,
            },
            completed: completed.iter().map(|c| c.to_vec()).collect(),
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![0.3, 0.1, 0.2]), Some(0.2));
        assert_eq!(median(vec![0.4, 0.1, 0.2, 0.3]), Some(0.25));
        assert_eq!(median(vec![]), None);
    }

    /// Three completed curves; at epoch 1 their accuracies are 0.5, 0.6, 0.9 (median 0.6), at
    /// epoch 2 0.7, 0.8, 0.95 (median 0.8).
    const POPULATION: [&[f64]; 3] = [&[0.5, 0.7, 0.75], &[0.6, 0.8, 0.85], &[0.9, 0.95, 0.97]];

    #[test]
    fn a_child_below_the_median_at_its_epoch_is_stopped() {
        let r = rule(3, 1, &POPULATION);
        assert_eq!(r.verdict(&[0.55]), Verdict::Stop, "0.55 < median 0.6 at epoch 1");
        assert_eq!(
            r.verdict(&[0.6]),
            Verdict::Continue,
            "equal to the median is not below it"
        );
        assert_eq!(
            r.verdict(&[0.61, 0.79]),
            Verdict::Stop,
            "best 0.79 < median 0.8 at epoch 2"
        );
        // The best so far counts, not the last epoch: 0.85 at epoch 1 keeps a child whose second
        // epoch dropped to 0.5.
        assert_eq!(r.verdict(&[0.85, 0.5]), Verdict::Continue);
    }

    #[test]
    fn nothing_is_stopped_before_enough_children_completed() {
        let r = rule(4, 1, &POPULATION);
        assert_eq!(r.verdict(&[0.1]), Verdict::Continue, "3 completed < min_completed 4");
        let r = rule(3, 1, &POPULATION[..2]);
        assert_eq!(r.verdict(&[0.1]), Verdict::Continue);
    }

    #[test]
    fn nothing_is_stopped_before_the_start_epoch() {
        let r = rule(3, 2, &POPULATION);
        assert_eq!(r.verdict(&[0.1]), Verdict::Continue, "epoch 1 < start_epoch 2");
        assert_eq!(r.verdict(&[0.1, 0.2]), Verdict::Stop);
    }

    #[test]
    fn completed_curves_that_do_not_reach_the_epoch_do_not_count() {
        // Two curves reach epoch 3 (0.75, 0.85), one stops at epoch 2.
        let r = rule(3, 1, &[&[0.5, 0.7, 0.75], &[0.6, 0.8, 0.85], &[0.9, 0.95]]);
        assert_eq!(
            r.verdict(&[0.1, 0.1, 0.1]),
            Verdict::Continue,
            "only 2 curves reach epoch 3"
        );
        let r = rule(2, 1, &[&[0.5, 0.7, 0.75], &[0.6, 0.8, 0.85], &[0.9, 0.95]]);
        assert_eq!(
            r.verdict(&[0.1, 0.1, 0.79]),
            Verdict::Stop,
            "0.79 < median 0.8 of 0.75 and 0.85"
        );
    }

    #[test]
    fn completed_children_join_the_population() {
        let mut r = MedianStop::init(Hyperparameters {
            min_completed: 1,
            start_epoch: 1,
        })
        .unwrap();
        let curve = |accuracy: Vec<f64>| LearningCurve {
            accuracy,
            epochs: 2,
            architecture: "fc(64)".into(),
            layers: vec![Layer::Fc { units: 64 }],
            params: 1,
        };
        assert_eq!(
            r.assess(&curve(vec![0.2])).unwrap(),
            Verdict::Continue,
            "no population yet"
        );
        r.completed(&curve(vec![0.5, 0.6])).unwrap();
        assert_eq!(r.assess(&curve(vec![0.2])).unwrap(), Verdict::Stop);
        assert_eq!(r.assess(&curve(vec![0.7])).unwrap(), Verdict::Continue);
    }

    #[test]
    fn start_epoch_zero_is_refused() {
        let e = MedianStop::init(Hyperparameters {
            min_completed: 1,
            start_epoch: 0,
        })
        .err()
        .unwrap();
        assert!(e.contains("start_epoch"));
    }
}
