//! `property_filters`: filters on built-in dimensions and custom
//! properties, with their operators, and the behavioural `visit` filters.

use serde_json::Value;

use super::args::{ArgReader, InputError, MAX_TEXT, PageFilter, one_of};
use super::vocabulary::{Dimension, DimensionError, MAX_PROPERTY_NAME};

/// Filter operators (Stats API v2 filter grammar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Is,
    IsNot,
    Contains,
    ContainsNot,
}

impl Operator {
    pub(crate) const ALL: [Operator; 4] = [
        Operator::Is,
        Operator::IsNot,
        Operator::Contains,
        Operator::ContainsNot,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operator::Is => "is",
            Operator::IsNot => "is_not",
            Operator::Contains => "contains",
            Operator::ContainsNot => "contains_not",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One `property_filters` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PropertyFilter {
    pub(crate) dimension: Dimension,
    pub(crate) operator: Operator,
    pub(crate) values: Vec<String>,
    /// `case_sensitive: false` (Stats API filter modifier).
    pub(crate) ignore_case: bool,
    /// Keep visits in which some event matched (`has_done`) or none did
    /// (`has_not_done`), instead of only the matching events.
    pub(crate) visit: Option<VisitMatch>,
}

/// Behavioural filters (Stats API v2 `has_done` / `has_not_done`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VisitMatch {
    HasDone,
    HasNotDone,
}

impl VisitMatch {
    pub(crate) const ALL: [VisitMatch; 2] = [VisitMatch::HasDone, VisitMatch::HasNotDone];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VisitMatch::HasDone => "has_done",
            VisitMatch::HasNotDone => "has_not_done",
        }
    }
}

impl PropertyFilter {
    pub(crate) fn behavioural(&self) -> bool {
        self.visit.is_some()
    }

    /// The Stats API filter: `[op, dimension, values]`, with the
    /// case modifier when set, wrapped in `has_done`/`has_not_done`.
    pub(crate) fn wire(&self) -> Value {
        let mut leaf = vec![
            Value::from(self.operator.as_str()),
            Value::from(self.dimension.as_str().into_owned()),
            Value::from(self.values.clone()),
        ];
        if self.ignore_case {
            leaf.push(serde_json::json!({"case_sensitive": false}));
        }
        match self.visit {
            None => Value::Array(leaf),
            Some(m) => serde_json::json!([m.as_str(), leaf]),
        }
    }
}

pub(crate) const MAX_FILTERS: usize = 20;
pub(crate) const MAX_FILTER_VALUES: usize = 100;

pub(crate) fn property_filters(args: &mut ArgReader) -> Result<Vec<PropertyFilter>, InputError> {
    let Some(list) = args.opt_array("property_filters")? else {
        return Ok(Vec::new());
    };
    if list.len() > MAX_FILTERS {
        return Err(InputError::new(
            "property_filters",
            format!("accepts at most {MAX_FILTERS} entries"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, entry)| property_filter(i, entry))
        .collect()
}

fn property_filter(index: usize, entry: &Value) -> Result<PropertyFilter, InputError> {
    let field = |name: &str| format!("property_filters[{index}].{name}");
    let Value::Object(obj) = entry else {
        return Err(InputError::new(
            format!("property_filters[{index}]"),
            "must be an object {property, operator, values}",
        ));
    };
    if let Some(extra) = obj.keys().find(|k| {
        !matches!(
            k.as_str(),
            "property" | "operator" | "values" | "case_sensitive" | "visit"
        )
    }) {
        return Err(InputError::new(
            field(extra),
            "is not a filter field (use property, operator, values, case_sensitive, visit)",
        ));
    }
    let property = obj
        .get("property")
        .and_then(Value::as_str)
        .ok_or_else(|| InputError::new(field("property"), "is required and must be a string"))?;
    let dimension = Dimension::parse_property(property).map_err(|e| {
        InputError::new(
            field("property"),
            match e {
                DimensionError::Unknown => format!(
                    "{property:?} contains \":\" so it must be a built-in dimension (e.g. \"visit:channel\") or \"event:props:<name>\""
                ),
                DimensionError::EmptyPropertyName => {
                    "must name a dimension or a custom property".to_owned()
                }
                DimensionError::PropertyNameTooLong => {
                    format!("custom property names are at most {MAX_PROPERTY_NAME} characters")
                }
            },
        )
    })?;
    let operator = match obj.get("operator") {
        None | Some(Value::Null) => Operator::Is,
        Some(Value::String(s)) => Operator::parse(s).ok_or_else(|| {
            InputError::new(
                field("operator"),
                format!(
                    "{s:?} is not an operator; use {}",
                    one_of(&Operator::ALL.map(Operator::as_str))
                ),
            )
        })?,
        Some(_) => {
            return Err(InputError::new(field("operator"), "must be a string"));
        }
    };
    if dimension == Dimension::Builtin("event:goal")
        && !matches!(operator, Operator::Is | Operator::Contains)
    {
        return Err(InputError::new(
            field("operator"),
            "event:goal filters only support the \"is\" and \"contains\" operators",
        ));
    }
    let values = match obj.get("values") {
        Some(Value::Array(vs)) if !vs.is_empty() => vs,
        _ => {
            return Err(InputError::new(
                field("values"),
                "must be a non-empty array of strings",
            ));
        }
    };
    if values.len() > MAX_FILTER_VALUES {
        return Err(InputError::new(
            field("values"),
            format!("accepts at most {MAX_FILTER_VALUES} values"),
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let s = v
            .as_str()
            .ok_or_else(|| InputError::new(field("values"), "must contain only strings"))?;
        if s.chars().count() > MAX_TEXT {
            return Err(InputError::new(
                field("values"),
                format!("each value must be at most {MAX_TEXT} characters"),
            ));
        }
        out.push(s.to_owned());
    }
    // Plausible matches visit:country on ISO 3166-1 alpha-2 codes only.
    if dimension == Dimension::Builtin("visit:country")
        && matches!(operator, Operator::Is | Operator::IsNot)
        && out
            .iter()
            .any(|v| v.len() != 2 || !v.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(InputError::new(
            field("values"),
            "visit:country takes 2-letter country codes (e.g. \"US\"); filter visit:country_name to match names",
        ));
    }
    let ignore_case = match obj.get("case_sensitive") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => false,
        Some(Value::Bool(false)) if matches!(operator, Operator::Is | Operator::Contains) => true,
        Some(Value::Bool(false)) => {
            return Err(InputError::new(
                field("case_sensitive"),
                "only the is and contains operators can ignore case",
            ));
        }
        Some(_) => {
            return Err(InputError::new(
                field("case_sensitive"),
                "must be true or false",
            ));
        }
    };
    let visit = match obj.get("visit") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            VisitMatch::ALL
                .into_iter()
                .find(|m| m.as_str() == s)
                .ok_or_else(|| {
                    InputError::new(
                        field("visit"),
                        format!(
                            "must be {}",
                            one_of(&VisitMatch::ALL.map(VisitMatch::as_str))
                        ),
                    )
                })?,
        ),
        Some(_) => return Err(InputError::new(field("visit"), "must be a string")),
    };
    // Plausible: "Behavioral filters … can only be used with event
    // dimension filters."
    if visit.is_some() && !dimension.is_event_dimension() {
        return Err(InputError::new(
            field("visit"),
            "has_done / has_not_done work only on event properties (event:page, event:goal, event:hostname, event:props:<name>)",
        ));
    }
    Ok(PropertyFilter {
        dimension,
        operator,
        values: out,
        ignore_case,
        visit,
    })
}

/// Rejects a `property_filters` entry on the dimension a shortcut already
/// filters: ANDing two conditions on one event attribute almost always
/// matches nothing, so the caller must express the whole condition once.
pub(crate) fn no_shortcut_overlap(
    page: Option<&PageFilter>,
    goal: Option<&str>,
    filters: &[PropertyFilter],
) -> Result<(), InputError> {
    for (shortcut, set, dimension) in [
        ("page", page.is_some(), "event:page"),
        ("goal", goal.is_some(), "event:goal"),
    ] {
        if set
            && filters
                .iter()
                .any(|f| !f.behavioural() && f.dimension == Dimension::Builtin(dimension))
        {
            return Err(InputError::new(
                "property_filters",
                format!(
                    "the \"{shortcut}\" argument and a property_filters entry both target {dimension}; combined they almost always match nothing. Drop \"{shortcut}\" and express the whole constraint in property_filters."
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader(v: Value) -> ArgReader {
        ArgReader::new(v.as_object().cloned())
    }

    #[test]
    fn property_filters_parse_and_prefix_bare_names() {
        let mut r = reader(json!({"property_filters": [
            {"property": "plan", "values": ["pro"]},
            {"property": "visit:channel", "operator": "is_not", "values": ["Direct"]},
            {"property": "event:props:tier", "operator": "contains", "values": ["gold"]},
            {"property": "event:goal", "operator": "contains", "values": ["Sign"]},
        ]}));
        let filters = property_filters(&mut r).unwrap();
        assert_eq!(
            filters[0].dimension,
            Dimension::CustomProperty("plan".into())
        );
        assert_eq!(filters[0].operator, Operator::Is);
        assert_eq!(filters[1].dimension, Dimension::Builtin("visit:channel"));
        assert_eq!(
            filters[2].dimension,
            Dimension::CustomProperty("tier".into())
        );
        assert_eq!(filters[3].operator, Operator::Contains);
    }

    #[test]
    fn property_filters_reject_with_the_entry_field() {
        let cases = [
            (
                json!([{"property": "visit:chanel", "values": ["x"]}]),
                "property_filters[0].property",
            ),
            (
                json!([{"property": "plan", "values": []}]),
                "property_filters[0].values",
            ),
            (json!([{"property": "plan"}]), "property_filters[0].values"),
            (
                json!([{"property": "plan", "values": [1]}]),
                "property_filters[0].values",
            ),
            (
                json!([{"property": "plan", "operator": "matches", "values": ["x"]}]),
                "property_filters[0].operator",
            ),
            (json!([{"values": ["x"]}]), "property_filters[0].property"),
            (
                json!([{"property": "plan", "values": ["x"]}, {"property": "event:goal", "operator": "is_not", "values": ["Signup"]}]),
                "property_filters[1].operator",
            ),
            (
                json!([{"property": "event:goal", "operator": "contains_not", "values": ["Signup"]}]),
                "property_filters[0].operator",
            ),
            (
                json!([{"property": "plan", "values": ["x"], "op": "is"}]),
                "property_filters[0].op",
            ),
            (
                json!([{"property": "visit:country", "values": ["Germany"]}]),
                "property_filters[0].values",
            ),
            (json!(["plan"]), "property_filters[0]"),
            (json!({"property": "plan"}), "property_filters"),
        ];
        for (filters, field) in cases {
            let mut r = reader(json!({ "property_filters": filters }));
            let err = property_filters(&mut r).unwrap_err();
            assert_eq!(err.field, field, "{filters}");
        }
        let too_many: Vec<Value> = (0..21)
            .map(|_| json!({"property": "plan", "values": ["x"]}))
            .collect();
        assert!(property_filters(&mut reader(json!({ "property_filters": too_many }))).is_err());
    }

    #[test]
    fn shortcut_overlap_is_refused_before_any_query() {
        let page_filter = PropertyFilter {
            dimension: Dimension::Builtin("event:page"),
            operator: Operator::Is,
            values: vec!["/a".into()],
            ignore_case: false,
            visit: None,
        };
        let goal_filter = PropertyFilter {
            dimension: Dimension::Builtin("event:goal"),
            operator: Operator::Is,
            values: vec!["Signup".into()],
            ignore_case: false,
            visit: None,
        };
        let page = PageFilter::Exact("/a".into());
        let err =
            no_shortcut_overlap(Some(&page), None, std::slice::from_ref(&page_filter)).unwrap_err();
        assert!(err.message.contains("Drop \"page\""));
        let err = no_shortcut_overlap(None, Some("Signup"), std::slice::from_ref(&goal_filter))
            .unwrap_err();
        assert!(err.message.contains("Drop \"goal\""));
        assert!(
            no_shortcut_overlap(None, None, &[page_filter.clone(), goal_filter.clone()]).is_ok()
        );
        assert!(no_shortcut_overlap(Some(&page), None, std::slice::from_ref(&goal_filter)).is_ok());
    }
}
