//! The key form's sites field, entry by entry.
//!
//! A person who swaps the two fields sends a domain as the key and the
//! key as a "site". Quoting that "site" in a refusal, or handing the
//! field back re-filled, would print the key on the page. So an entry is
//! quoted or re-filled only once it reads as a Plausible site id, which no
//! Plausible key does (a key is 64 characters of base64url: no dot), and
//! never when it is the typed key itself.

use crate::secret::ct_eq;

/// Longest site id accepted (as `SiteId`).
const MAX_SITE_LEN: usize = 256;

/// One entry of the sites field.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// A site id, in the form Plausible stores it.
    Site(String),
    /// The key typed in the key field.
    TheKey,
    /// Not a site id; never shown back.
    NotASite,
}

/// The entries of the field as typed: one per line or comma-separated.
pub(super) fn split(field: &str) -> impl Iterator<Item = &str> {
    field
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// What `raw` is, given the key typed beside it.
pub(super) fn read(raw: &str, typed_key: &str) -> Entry {
    if !typed_key.is_empty() && ct_eq(raw.as_bytes(), typed_key.as_bytes()) {
        return Entry::TheKey;
    }
    let site = clean(raw);
    if is_site_id(&site) {
        Entry::Site(site)
    } else {
        Entry::NotASite
    }
}

/// What Plausible does to a domain when a site is added
/// (`Plausible.Site.clean_domain`: lower case, no scheme, no trailing
/// slash, no leading `www.`), so a pasted `https://www.Example.com/`
/// names the site Plausible knows as `example.com`.
fn clean(raw: &str) -> String {
    let lower = raw.to_lowercase();
    let no_scheme = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let trimmed = no_scheme.trim_matches('/');
    trimmed.strip_prefix("www.").unwrap_or(trimmed).to_owned()
}

/// Whether `site` can be a Plausible site id: a host of two or more
/// dot-separated labels, then optionally a path (Plausible accepts
/// `example.com/blog`).
///
/// Plausible itself allows letters, digits, `-`, `.` and `/` in a site's
/// domain and refuses every RFC 3986 §2.2 reserved character
/// (`Plausible.Site.validate_domain_format`,
/// `validate_domain_reserved_characters`). The host here is stricter:
/// LDH labels (RFC 1123 §2.1), with non-ASCII lower-case letters for the
/// Unicode names Plausible keeps as typed, and at least one dot. `_`,
/// upper case and the other characters of a base64url key never pass.
fn is_site_id(site: &str) -> bool {
    if site.is_empty() || site.len() > MAX_SITE_LEN {
        return false;
    }
    let (host, path) = site.split_once('/').unwrap_or((site, ""));
    let label_char = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || (!c.is_ascii() && c.is_alphabetic() && !c.is_uppercase())
    };
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(label_char)
    });
    labels_ok && host.contains('.') && path.chars().all(|c| label_char(c) || c == '.' || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_plausible_site_ids() {
        let key = "Sv-7rH2_example-plausible-key";
        for (raw, expected) in [
            ("example.com", Entry::Site("example.com".into())),
            (
                "shop.example.co.uk",
                Entry::Site("shop.example.co.uk".into()),
            ),
            ("Example.COM", Entry::Site("example.com".into())),
            (
                "https://www.example.com/",
                Entry::Site("example.com".into()),
            ),
            ("http://example.com", Entry::Site("example.com".into())),
            ("example.com/blog", Entry::Site("example.com/blog".into())),
            ("my-site.example", Entry::Site("my-site.example".into())),
            ("bücher.example", Entry::Site("bücher.example".into())),
            (
                "xn--bcher-kva.example",
                Entry::Site("xn--bcher-kva.example".into()),
            ),
            (key, Entry::TheKey),
            // What a key or a slip looks like: never a site.
            ("localhost", Entry::NotASite),
            ("Sv-7rH2_another-key-entirely", Entry::NotASite),
            ("abcdefghijklmnopqrstuvwxyz0123456789", Entry::NotASite),
            ("example_com.example", Entry::NotASite),
            ("example..com", Entry::NotASite),
            ("-example.com", Entry::NotASite),
            ("example.com:8080", Entry::NotASite),
            ("user@example.com", Entry::NotASite),
            ("example.com/a?b", Entry::NotASite),
            ("<b>.example", Entry::NotASite),
            ("", Entry::NotASite),
        ] {
            assert_eq!(read(raw, key), expected, "{raw}");
        }
        assert_eq!(
            read(&format!("{}.com", "a".repeat(300)), key),
            Entry::NotASite
        );
        // An empty key field makes no entry "the key".
        assert_eq!(read("", ""), Entry::NotASite);
    }

    #[test]
    fn the_field_splits_on_commas_and_whitespace() {
        let got: Vec<&str> = split(" a.com, b.com\n\nc.com\t,d.com ").collect();
        assert_eq!(got, ["a.com", "b.com", "c.com", "d.com"]);
    }
}
