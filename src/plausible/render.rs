//! Text renderings a person can read at a glance: aligned tables.

use serde_json::Value;

/// One cell: numbers right-aligned, text left-aligned.
fn cell(v: &Value) -> (String, bool) {
    match v {
        Value::Null => ("–".to_owned(), true),
        Value::Number(n) => (format_number(n), true),
        Value::String(s) => (s.clone(), false),
        Value::Bool(b) => (b.to_string(), false),
        // Revenue metrics come as {value, currency, short, long}.
        Value::Object(o) => match o.get("short").and_then(Value::as_str) {
            Some(short) => (short.to_owned(), true),
            None => (v.to_string(), false),
        },
        Value::Array(_) => (v.to_string(), false),
    }
}

/// Integers with thousands separators; other numbers as Plausible sent them.
fn format_number(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) => {
            let digits = i.unsigned_abs().to_string();
            let mut out = String::new();
            for (pos, ch) in digits.chars().enumerate() {
                if pos > 0 && (digits.len() - pos) % 3 == 0 {
                    out.push(',');
                }
                out.push(ch);
            }
            if i < 0 { format!("-{out}") } else { out }
        }
        None => n.to_string(),
    }
}

/// A table with a header row. Columns are separated by two spaces.
pub(crate) fn table(headers: &[String], rows: &[Vec<Value>]) -> String {
    let cells: Vec<Vec<(String, bool)>> =
        rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|(s, _)| s.chars().count())
                .chain(headers.get(i).map(|h| h.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| cells.iter().filter_map(|r| r.get(i)).all(|(_, num)| *num))
        .collect();
    let line = |items: Vec<(String, bool)>| -> String {
        items
            .iter()
            .zip(&widths)
            .map(|((s, right), w)| {
                if *right {
                    format!("{s:>w$}")
                } else {
                    format!("{s:<w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(
        headers
            .iter()
            .zip(&numeric)
            .map(|(h, n)| (h.clone(), *n && !cells.is_empty()))
            .collect(),
    )];
    out.extend(cells.into_iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aligns_numbers_right_and_text_left() {
        let t = table(
            &["page".into(), "visitors".into()],
            &[
                vec![json!("/"), json!(12345)],
                vec![json!("/pricing"), json!(7)],
                vec![json!("/x"), Value::Null],
            ],
        );
        assert_eq!(
            t,
            "page      visitors\n/           12,345\n/pricing         7\n/x               –"
        );
    }

    #[test]
    fn formats_negative_and_fractional_numbers() {
        assert_eq!(cell(&json!(-1234567)).0, "-1,234,567");
        assert_eq!(cell(&json!(12.5)).0, "12.5");
        assert_eq!(cell(&json!({"short": "$1.2K", "value": 1200})).0, "$1.2K");
    }
}
