//! Which sites a caller may name: the deployment's configured list
//! (`PLAUSIBLE_SITES`) and the seam where a grant's own restriction will
//! go (issue 15).

use super::args::{InputError, SiteId};

/// One configured site: `domain` or `domain:timezone`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SiteEntry {
    pub(crate) domain: SiteId,
    pub(crate) timezone: Option<String>,
}

/// Parses `PLAUSIBLE_SITES`: `example.com, shop.example.com:Europe/Berlin`.
pub(crate) fn parse_list(field: &str, raw: &str) -> Result<Vec<SiteEntry>, InputError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (domain, timezone) = match item.split_once(':') {
                Some((d, tz)) if !tz.trim().is_empty() => (d, Some(tz.trim().to_owned())),
                Some((d, _)) => (d, None),
                None => (item, None),
            };
            Ok(SiteEntry {
                domain: SiteId::parse(field, domain)?,
                timezone,
            })
        })
        .collect()
}

/// The sites this caller may query. Today every credential may name any
/// site its key can see; issue 15 narrows a grant to chosen sites here,
/// and every tool already asks before any request or cache lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum AllowedSites {
    #[default]
    Any,
}

impl AllowedSites {
    pub(crate) fn check(&self, site: &SiteId) -> Result<(), InputError> {
        match self {
            AllowedSites::Any => {
                let _ = site;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_sites_parse_with_optional_timezones() {
        let sites = parse_list("PLAUSIBLE_SITES", " a.com, b.example:Europe/Berlin ,,").unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0].domain.as_str(), "a.com");
        assert_eq!(sites[0].timezone, None);
        assert_eq!(sites[1].timezone.as_deref(), Some("Europe/Berlin"));
        assert!(parse_list("PLAUSIBLE_SITES", "a b.com").is_err());
        assert!(parse_list("PLAUSIBLE_SITES", "").unwrap().is_empty());
    }
}
