//! The comparison table across runs (Markdown with the best values marked, and CSV).

use nas_core::record::sample_stats;
use nas_store::Store;

/// One table across runs. The best value of each comparable column is marked in Markdown.
pub struct CompareTable {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// (row, column) of each column's best value.
    pub best: Vec<(usize, usize)>,
}

impl CompareTable {
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| {} |\n|{}\n",
            self.header.join(" | "),
            "---|".repeat(self.header.len())
        );
        for (r, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    if self.best.contains(&(r, c)) {
                        format!("**{cell}**")
                    } else {
                        cell.clone()
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        if !self.best.is_empty() {
            out.push_str("\nBold: the best run in each column (highest score, fewest parameters, shortest time).\n");
        }
        out
    }

    pub fn to_csv(&self) -> String {
        let escape = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = self.header.iter().map(|h| escape(h)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            out.push_str(&(row.iter().map(|c| escape(c)).collect::<Vec<_>>().join(",") + "\n"));
        }
        out
    }
}

/// Which way is better in a compared column.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

pub fn compare_table(store: &Store, runs: &[i64]) -> anyhow::Result<CompareTable> {
    let records = runs
        .iter()
        .map(|&run| store.run(run))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let synthetic = records.iter().filter(|r| r.evaluator == "synthetic").count();
    let score = match synthetic {
        0 => "accuracy",
        n if n == records.len() => "score",
        _ => "accuracy (score for synthetic runs)",
    };
    let header = vec![
        "run".to_string(),
        "agent".into(),
        "reward".into(),
        "dataset".into(),
        "episodes".into(),
        format!("best {score}"),
        format!("eval {score} (mean ± std)"),
        "eval mean params".into(),
        "eval mean depth".into(),
        "wall time (s)".into(),
        "cache hits".into(),
    ];
    // The columns with a better direction, and each row's value in them.
    let compared = [
        (5, Better::Higher),
        (6, Better::Higher),
        (7, Better::Lower),
        (9, Better::Lower),
    ];
    let mut values: Vec<[Option<f64>; 4]> = Vec::new();
    let mut rows = Vec::new();
    for (&run, r) in runs.iter().zip(&records) {
        let episodes = store.episodes(run)?;
        let best = episodes.iter().map(|e| e.accuracy).fold(f64::NAN, f64::max);
        let hits = episodes.iter().filter(|e| e.cache_hit).count();
        let samples = store.eval_samples(run)?;
        let stats = (!samples.is_empty()).then(|| sample_stats(&samples));
        let (eval_score, eval_params, eval_depth) = match stats {
            None => ("— (run `nas-host eval`)".to_string(), "—".to_string(), "—".to_string()),
            Some((m, s, p, d)) => (
                format!("{m:.4} ± {s:.4} (n={})", samples.len()),
                format!("{p:.0}"),
                format!("{d:.2}"),
            ),
        };
        values.push([
            (!best.is_nan()).then_some(best),
            stats.map(|s| s.0),
            stats.map(|s| s.2),
            Some(r.wall_seconds),
        ]);
        rows.push(vec![
            run.to_string(),
            format!("{} {}", r.agent.name, r.agent.version),
            r.reward.name.clone(),
            r.dataset.clone(),
            format!("{}/{}", episodes.len(), r.episodes_target),
            if best.is_nan() {
                "—".into()
            } else {
                format!("{best:.4}")
            },
            eval_score,
            eval_params,
            eval_depth,
            format!("{:.1}", r.wall_seconds),
            format!("{hits}/{}", episodes.len()),
        ]);
    }
    let mut marks = Vec::new();
    if rows.len() > 1 {
        for (k, &(column, better)) in compared.iter().enumerate() {
            let best = values
                .iter()
                .enumerate()
                .filter_map(|(row, v)| v[k].map(|x| (row, x)))
                .reduce(|a, b| match better {
                    Better::Higher if b.1 > a.1 => b,
                    Better::Lower if b.1 < a.1 => b,
                    _ => a,
                });
            if let Some((row, _)) = best {
                marks.push((row, column));
            }
        }
    }
    Ok(CompareTable {
        header,
        rows,
        best: marks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_escapes() {
        let t = CompareTable {
            header: vec!["a".into(), "b".into()],
            rows: vec![vec!["x,y".into(), "q\"".into()]],
            best: vec![(0, 1)],
        };
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",\"q\"\"\"\n");
        assert!(t.to_markdown().contains("| x,y | **q\"** |"));
    }
}
