//! `--evaluator table:FILE`: answers from the table, or from the surrogate where the table has
//! no row.

use std::fmt;

use nas_core::arch::Architecture;

use crate::{BenchTable, Encoder, Quality, Result, Surrogate, TableError};

/// Fewest table rows for which [`TableEvaluator::from_table`] fits a surrogate: fewer would give
/// a cross-validated measure of a handful of rows (folds of one), no figure to print beside a
/// prediction.
pub const MIN_ROWS_FOR_SURROGATE: usize = 10;
/// Cross-validation folds with which [`TableEvaluator::from_table`] measures the surrogate.
pub const QUALITY_FOLDS: usize = 5;

/// Answers architectures from a [`BenchTable`], and those it lacks from a [`Surrogate`] if it has
/// one. `quality` is the surrogate's held-out measure, carried in every predicted answer.
#[derive(Debug)]
pub struct TableEvaluator {
    pub table: BenchTable,
    pub surrogate: Option<Surrogate>,
    pub quality: Option<Quality>,
}

/// One answer of a [`TableEvaluator`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableAnswer {
    /// The recorded accuracy, bit for bit (the mean of the rows for an architecture trained
    /// several times), or the surrogate's prediction.
    pub accuracy: f64,
    /// Recorded, or counted by nas-core for the encoder's input when predicted.
    pub params: u64,
    pub mult_adds: u64,
    /// Recorded training seconds; 0 when predicted (nothing was trained).
    pub seconds: f64,
    /// Whether the accuracy is the surrogate's prediction rather than a recorded one; the store
    /// marks such rewards as predicted.
    pub predicted: bool,
    /// With a predicted answer, the surrogate's held-out quality, to print beside it.
    pub quality: Option<Quality>,
}

impl fmt::Display for TableAnswer {
    /// `accuracy 0.6125 (recorded)` or `accuracy 0.5904 (predicted; surrogate held-out Kendall τ …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "accuracy {:.4}", self.accuracy)?;
        match (self.predicted, self.quality) {
            (false, _) => write!(f, " (recorded)"),
            (true, Some(q)) => write!(f, " (predicted; {q})"),
            (true, None) => write!(f, " (predicted; surrogate not measured)"),
        }
    }
}

impl TableEvaluator {
    /// An evaluator that answers only what the table records.
    pub fn exact(table: BenchTable) -> TableEvaluator {
        TableEvaluator {
            table,
            surrogate: None,
            quality: None,
        }
    }

    /// The table with a surrogate for the rest: its quality measured by seeded
    /// [`QUALITY_FOLDS`]-fold cross-validation over the rows, then the surrogate fitted on all of
    /// them. With fewer
    /// than [`MIN_ROWS_FOR_SURROGATE`] rows there is no surrogate, and architectures the table
    /// lacks are errors.
    pub fn from_table(table: BenchTable, encoder: Encoder, seed: u64) -> Result<TableEvaluator> {
        if table.len() < MIN_ROWS_FOR_SURROGATE {
            return Ok(TableEvaluator::exact(table));
        }
        let samples = table.samples();
        let quality = Surrogate::cross_validated_quality(&samples, encoder, QUALITY_FOLDS, seed)?;
        let surrogate = Surrogate::fit(&samples, encoder, seed)?;
        Ok(TableEvaluator {
            table,
            surrogate: Some(surrogate),
            quality: Some(quality),
        })
    }

    /// The table's row for `arch` exactly as recorded, or the surrogate's prediction marked
    /// `predicted`; an error naming the architecture if the table lacks it and there is no
    /// surrogate, or if the surrogate cannot encode it.
    pub fn evaluate(&self, arch: &Architecture) -> Result<TableAnswer> {
        if let Some(entry) = self.table.get(arch) {
            return Ok(TableAnswer {
                accuracy: entry.accuracy,
                params: entry.params,
                mult_adds: entry.mult_adds,
                seconds: entry.seconds,
                predicted: false,
                quality: None,
            });
        }
        let surrogate = self.surrogate.as_ref().ok_or_else(|| TableError::NotCovered {
            architecture: arch.to_string(),
        })?;
        let accuracy = surrogate.predict(arch)?;
        let summary = arch.summary(surrogate.encoder.input, surrogate.encoder.num_classes);
        Ok(TableAnswer {
            accuracy,
            params: summary.total_params(),
            mult_adds: summary.total_mult_adds(),
            seconds: 0.0,
            predicted: true,
            quality: self.quality,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BenchRow;
    use nas_core::mdp::{Mdp, MdpConfig};
    use rand::SeedableRng;
    use std::collections::HashSet;

    /// A table of `count` distinct random architectures of the default space on 32×32 RGB, with
    /// accuracies that need all their digits, written to CSV and loaded back.
    fn table(count: usize) -> (tempfile::TempDir, BenchTable, Encoder) {
        let mdp = Mdp::new(MdpConfig::default(), 32);
        let encoder = Encoder::new(mdp.config.max_depth, (3, 32, 32), 10);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut seen = HashSet::new();
        let mut rows = Vec::new();
        while rows.len() < count {
            let arch = mdp.sample_architecture(&mut rng);
            if !seen.insert(arch.clone()) {
                continue;
            }
            let summary = arch.summary(encoder.input, encoder.num_classes);
            let accuracy = (0.2 + 0.01 * rows.len() as f64 + 1.0 / 3.0 * 0.1).min(1.0) / 1.7;
            rows.push(BenchRow {
                architecture: arch.to_string(),
                accuracy,
                params: summary.total_params(),
                mult_adds: summary.total_mult_adds(),
                seconds: 10.0 + rows.len() as f64 / 7.0,
                dataset: "cifar5".into(),
                protocol: "cifar5 2500x1 relu lr0.001 seed0".into(),
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.csv");
        BenchTable::write(&path, &rows).unwrap();
        let table = BenchTable::load(&path).unwrap();
        // Sanity: the rows came back with the values written.
        for (row, entry) in rows.iter().zip(table.entries()) {
            assert_eq!(row.accuracy.to_bits(), entry.accuracy.to_bits());
        }
        (dir, table, encoder)
    }

    #[test]
    fn table_evaluator_serves_recorded_values_exactly_and_marks_predictions() {
        let (_dir, table, encoder) = table(40);
        let recorded: Vec<_> = table.entries().to_vec();
        let evaluator = TableEvaluator::from_table(table, encoder, 0).unwrap();
        assert!(evaluator.surrogate.is_some() && evaluator.quality.is_some());
        for entry in &recorded {
            let answer = evaluator.evaluate(&entry.architecture).unwrap();
            assert_eq!(
                answer.accuracy.to_bits(),
                entry.accuracy.to_bits(),
                "{}",
                entry.architecture
            );
            assert_eq!(answer.seconds.to_bits(), entry.seconds.to_bits());
            assert_eq!((answer.params, answer.mult_adds), (entry.params, entry.mult_adds));
            assert!(!answer.predicted);
            assert_eq!(answer.quality, None);
            assert!(answer.to_string().ends_with("(recorded)"));
        }
        // Not in the table: predicted, marked, with the surrogate's quality beside it.
        let unseen: Architecture = "conv(64,5) conv(64,5) pool(2,2) conv(10,1) fc(512)".parse().unwrap();
        assert!(evaluator.table.get(&unseen).is_none());
        let answer = evaluator.evaluate(&unseen).unwrap();
        assert!(answer.predicted);
        assert!((0.0..=1.0).contains(&answer.accuracy));
        assert_eq!(answer.quality, evaluator.quality);
        assert_eq!(answer.params, unseen.param_count((3, 32, 32), 10));
        assert_eq!(answer.seconds, 0.0);
        assert!(
            answer.to_string().contains("predicted; surrogate held-out Kendall τ"),
            "{answer}"
        );
    }

    #[test]
    fn without_a_surrogate_uncovered_architectures_are_errors() {
        let (_dir, table, encoder) = table(MIN_ROWS_FOR_SURROGATE - 1);
        let first = table.entries()[0].clone();
        let evaluator = TableEvaluator::from_table(table, encoder, 0).unwrap();
        assert!(evaluator.surrogate.is_none());
        let answer = evaluator.evaluate(&first.architecture).unwrap();
        assert_eq!(answer.accuracy.to_bits(), first.accuracy.to_bits());
        let unseen: Architecture = "conv(64,5) conv(64,5) pool(2,2) conv(10,1) fc(512)".parse().unwrap();
        let message = evaluator.evaluate(&unseen).unwrap_err().to_string();
        assert!(
            message.contains("conv(64,5) conv(64,5) pool(2,2) conv(10,1) fc(512)"),
            "{message}"
        );
        assert!(message.contains("does not cover"), "{message}");
    }
}
