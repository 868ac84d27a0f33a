//! Checks of a whole run configuration before anything starts (no worker submitted, no child
//! trained): numbers that would make workers steal every job or panic, and Slurm values that would
//! be pasted into a batch script as shell text.

use crate::RunConfig;

/// A finite number of seconds, at least `min` (exclusive when `positive`).
fn seconds(key: &str, value: f64, positive: bool) -> anyhow::Result<()> {
    let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
    anyhow::ensure!(
        ok,
        "{key} = {value} is not a usable number of seconds: give a finite number {}",
        if positive { "above 0" } else { "of 0 or more" }
    );
    Ok(())
}

/// A value written into a `#SBATCH` line: one word of printable text (sbatch splits the line at
/// whitespace, so a space would start another option) without shell metacharacters.
fn slurm_value(key: &str, value: &str) -> anyhow::Result<()> {
    let bad = value.chars().find(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '$' | '\\' | ';' | '&' | '|' | '<' | '>')
    });
    anyhow::ensure!(
        !value.trim().is_empty() && bad.is_none(),
        "[slurm] {key} = {value:?} cannot go into a batch script{}: give a plain value such as the ones `sbatch --help` shows",
        bad.map_or(String::new(), |c| format!(" (it contains {c:?})"))
    );
    Ok(())
}

impl RunConfig {
    /// Refuses a configuration that cannot run as meant, naming the key and what to give.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.sandbox.check()?;
        self.dataset.validate()?;
        self.cost.validate()?;
        anyhow::ensure!(
            self.evaluator != crate::EvaluatorKind::Table || self.table.file.is_some(),
            "the table evaluator needs its benchmark table: --evaluator table:FILE, or `file` in [table]"
        );
        let p = &self.parallel;
        seconds("[parallel] lease_secs", p.lease_secs, true)?;
        let s = &self.slurm;
        seconds("[slurm] pending_warn_secs", s.pending_warn_secs, false)?;
        seconds("[slurm] idle_exit_secs", s.idle_exit_secs, false)?;
        anyhow::ensure!(s.cpus_per_worker >= 1, "[slurm] cpus_per_worker must be at least 1");
        for (key, value) in [
            ("partition", &s.partition),
            ("gres", &s.gres),
            ("time_limit", &s.time_limit),
            ("mem_per_worker", &s.mem_per_worker),
        ] {
            if let Some(value) = value {
                slurm_value(key, value)?;
            }
        }
        for arg in &s.extra_args {
            // One `--option` or `--option=value`: anything else could add lines to the script.
            let (option, value) = arg.split_once('=').unwrap_or((arg, ""));
            let option_ok = option.len() > 2
                && option.starts_with("--")
                && option[2..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            anyhow::ensure!(
                option_ok,
                "[slurm] extra_args entry {arg:?} is not one `--option` or `--option=value` (e.g. \"--account=lab\")"
            );
            if !value.is_empty() {
                slurm_value("extra_args", value)?;
            }
        }
        anyhow::ensure!(self.train.epochs >= 1, "[train] epochs must be at least 1");
        if let Some(subset) = self.train.train_subset {
            subset.check()?;
        }
        anyhow::ensure!(self.train.batch_size >= 1, "[train] batch_size must be at least 1");
        anyhow::ensure!(
            self.train.learning_rate.is_finite() && self.train.learning_rate > 0.0,
            "[train] learning_rate = {} must be a positive number",
            self.train.learning_rate
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(edit: impl FnOnce(&mut RunConfig), key: &str) {
        let mut config = RunConfig::default();
        edit(&mut config);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }

    #[test]
    fn the_defaults_and_the_shipped_values_pass() {
        RunConfig::default().validate().unwrap();
        let mut config = RunConfig::default();
        config.slurm.partition = Some("gpu".into());
        config.slurm.gres = Some("gpu:1".into());
        config.slurm.time_limit = Some("04:00:00".into());
        config.slurm.mem_per_worker = Some("16G".into());
        config.slurm.extra_args = vec!["--account=lab".into(), "--exclusive".into()];
        config.validate().unwrap();
    }

    #[test]
    fn numbers_that_break_workers_are_refused() {
        refused(|c| c.parallel.lease_secs = -5.0, "lease_secs");
        refused(|c| c.parallel.lease_secs = 0.0, "lease_secs");
        refused(|c| c.slurm.idle_exit_secs = f64::NAN, "idle_exit_secs");
        refused(|c| c.slurm.idle_exit_secs = -1.0, "idle_exit_secs");
        refused(|c| c.slurm.pending_warn_secs = -1.0, "pending_warn_secs");
        refused(|c| c.train.learning_rate = 0.0, "learning_rate");
        refused(
            |c| c.train.train_subset = Some(crate::TrainSubset::Images(0)),
            "train_subset",
        );
        refused(
            |c| c.train.train_subset = Some(crate::TrainSubset::Fraction(1.5)),
            "train_subset",
        );
    }

    #[test]
    fn shell_text_cannot_reach_the_batch_script() {
        refused(|c| c.slurm.partition = Some("gpu\nrm -rf ~".into()), "partition");
        refused(|c| c.slurm.gres = Some("gpu:1$(id)".into()), "gres");
        refused(|c| c.slurm.time_limit = Some("1:00:00; curl x".into()), "time_limit");
        refused(|c| c.slurm.mem_per_worker = Some("8G`id`".into()), "mem_per_worker");
        refused(
            |c| c.slurm.extra_args = vec!["--account=lab\necho pwned".into()],
            "extra_args",
        );
        refused(|c| c.slurm.extra_args = vec!["-A lab".into()], "extra_args");
        refused(
            |c| c.slurm.extra_args = vec!["--qos=short --wrap=x".into()],
            "extra_args",
        );
    }
}

#[cfg(test)]
mod table_tests {
    use crate::{EvaluatorKind, RunConfig};

    #[test]
    fn the_table_evaluator_needs_a_file() {
        let mut config = RunConfig {
            evaluator: EvaluatorKind::Table,
            ..RunConfig::default()
        };
        assert!(format!("{:#}", config.validate().unwrap_err()).contains("--evaluator table:FILE"));
        config.table.file = Some("t.csv".into());
        config.validate().unwrap();
    }
}
