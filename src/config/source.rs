//! Where configuration values come from (Workers vars and secrets in
//! production, a map in tests), and how a raw value is read.

use std::time::Duration;

pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

impl Source for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// A comma-separated list, trimmed, lowercased, with empties dropped.
pub fn split_list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A non-empty, trimmed value.
pub fn non_empty(source: &dyn Source, name: &str) -> Option<String> {
    source
        .get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A switch: on for `true` or `enabled`.
pub fn flag(source: &dyn Source, name: &str) -> bool {
    non_empty(source, name).is_some_and(|v| v == "true" || v == "enabled")
}

/// Seconds, clamped into `min..=max`; `default` when unset or unreadable.
pub fn bounded_secs(source: &dyn Source, name: &str, default: u64, min: u64, max: u64) -> Duration {
    let secs = non_empty(source, name)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default)
        .clamp(min, max);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_trimmed_lowercased_and_skip_empties() {
        assert_eq!(
            split_list(Some(" Example.com, ,b.io,".into())),
            vec!["example.com", "b.io"]
        );
        assert!(split_list(None).is_empty());
    }
}
