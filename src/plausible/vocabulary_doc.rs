//! `plausible://vocabulary`: the metrics, dimensions, filter operators,
//! date forms and combination rules as one Markdown document.
//!
//! Generated from the vocabulary, the argument rules and the sentences the
//! server instructions use, so it cannot drift from what the tools accept.

use super::args::DATE_RANGE_FORMS;
use super::filters::{MAX_FILTER_VALUES, MAX_FILTERS, Operator, VisitMatch};
use super::instructions;
use super::vocabulary::{BUILTIN_DIMENSIONS, CUSTOM_PROPERTY_PREFIX, MAX_PROPERTY_NAME, Metric};

/// The document (`text/markdown`). The same bytes for every caller.
pub(crate) fn markdown() -> String {
    let mut out = String::from(
        "# Plausible vocabulary\n\nWhat the Plausible tools of this server accept: metrics, dimensions, filters, date ranges, and the combinations Plausible refuses (the tools refuse them before querying).\n\n## Metrics\n\n| metric | unit | session metric |\n|---|---|---|\n",
    );
    for m in Metric::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            m.as_str(),
            m.unit().unwrap_or("count"),
            if m.is_session_metric() { "yes" } else { "no" }
        ));
    }
    let list = |prefix: &str| {
        BUILTIN_DIMENSIONS
            .iter()
            .filter(|d| d.starts_with(prefix))
            .map(|d| format!("- `{d}`\n"))
            .collect::<String>()
    };
    out.push_str(&format!(
        "\n## Dimensions\n\nEvent dimensions (one value per event):\n\n{}\nVisit dimensions (one value per visit):\n\n{}\nCustom properties: `{CUSTOM_PROPERTY_PREFIX}<name>` (names up to {MAX_PROPERTY_NAME} characters). {}\n\nPrefer the `*_name` geography dimensions: they return readable names instead of codes.\n",
        list("event:"),
        list("visit:"),
        capitalise(instructions::custom_property_rules()),
    ));
    out.push_str("\n## Filters\n\n| operator | |\n|---|---|\n");
    for (i, op) in Operator::ALL.into_iter().enumerate() {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            op.as_str(),
            if i == 0 { "default" } else { "" }
        ));
    }
    out.push_str(&format!(
        "\nAt most {MAX_FILTERS} `property_filters` entries, each with at most {MAX_FILTER_VALUES} values. Behavioural filters (`visit`): {}.\n\n{}\n",
        VisitMatch::ALL
            .map(|v| format!("`{}`", v.as_str()))
            .join(", "),
        capitalise(&instructions::filter_rules()),
    ));
    out.push_str(&format!(
        "\n## Date ranges\n\n`date_range` (and `compare_periods`' `period_a`/`period_b`) is one of {}. `Nd` is the last N full days (today excluded), `Nmo` the last N full months; `day`, `month` and `year` are the current one; dates are inclusive.\n",
        DATE_RANGE_FORMS.replace('"', "`"),
    ));
    out.push_str(&format!(
        "\n## Combination rules\n\n{}\n",
        instructions::combination_rules()
    ));
    out
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_metric_dimension_operator_and_rule() {
        let doc = markdown();
        for m in Metric::ALL {
            assert!(doc.contains(&format!("| `{}` |", m.as_str())), "{m:?}");
        }
        for d in BUILTIN_DIMENSIONS {
            assert!(doc.contains(&format!("- `{d}`")), "{d}");
        }
        for op in Operator::ALL {
            assert!(doc.contains(&format!("| `{}` |", op.as_str())), "{op:?}");
        }
        for v in VisitMatch::ALL {
            assert!(doc.contains(v.as_str()), "{v:?}");
        }
        assert!(doc.contains("| `bounce_rate` | integer percent | yes |"));
        assert!(doc.contains("| `is` | default |"));
        assert!(doc.contains(&instructions::combination_rules()));
        assert!(doc.contains("`Nmo`"));
        // Deterministic: the same bytes every time.
        assert_eq!(doc, markdown());
    }
}
