//! A table as the dashboard downloads it: CSV (RFC 4180) or JSON (an array of objects, one per
//! row, keyed by column).

use serde_json::{Map, Value};

/// Columns and rows of JSON values (numbers, strings, booleans, null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(columns: &[&'static str]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len(), "a row has one value per column");
        self.rows.push(row);
    }

    /// The rows as JSON objects keyed by column.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = self
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.to_string(), v.clone()))
                        .collect();
                    Value::Object(object)
                })
                .collect(),
        )
    }

    /// The table as CSV: a header line, then one line per row; a field with a comma, quote or
    /// line break is quoted, quotes doubled; null is an empty field.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, fields: &mut dyn Iterator<Item = String>| {
            let fields: Vec<String> = fields.map(|f| csv_field(&f)).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.columns.iter().map(|c| c.to_string()));
        for row in &self.rows {
            line(&mut out, &mut row.iter().map(plain));
        }
        out
    }
}

/// A value as CSV text: strings bare, null empty, numbers and booleans as JSON writes them.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_quoting_and_json_keys_by_column() {
        let mut t = Table::new(&["run", "agent", "best"]);
        t.push(vec![json!(1), json!("ppo"), json!(0.5)]);
        t.push(vec![json!(2), json!("a,\"b\"\nc"), Value::Null]);
        assert_eq!(t.to_csv(), "run,agent,best\r\n1,ppo,0.5\r\n2,\"a,\"\"b\"\"\nc\",\r\n");
        assert_eq!(
            t.to_json(),
            json!([{"run": 1, "agent": "ppo", "best": 0.5}, {"run": 2, "agent": "a,\"b\"\nc", "best": null}])
        );
    }
}
