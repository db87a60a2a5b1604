//! Grants of `/mcp` (issue 15): a person's own Plausible API key carried
//! through OAuth. Who "the user" is ([`UserKey::of_plausible_key`], a
//! keyed hash of the key), how the key is kept (sealed with AES-256-GCM
//! in the grant's subject, bound to that user key, never logged, never
//! shown again), and what a well-formed key looks like.

use serde_json::{Value, json};

use super::ids::UserKey;
use super::ledger::records::{Subject, SubjectKind};
use crate::crypto::{Keyring, UserKeys};
use crate::plausible::client::{self, Endpoint, PlausibleBaseUrl, PlausibleError};
use crate::ports::{Clock, Entropy, EntropyError, Outbound};
use crate::secret::PlausibleKey;

/// Plausible keys are long random strings; anything shorter is a paste
/// error, refused before it reaches Plausible.
pub const MIN_KEY_LEN: usize = 8;
pub const MAX_KEY_LEN: usize = 512;

/// How often a refresh asks Plausible whether a grant's key still works:
/// at most hourly (Plausible counts requests per key and hour; one an
/// hour is nothing against its 600).
pub const KEY_RECHECK_SECS: u64 = 3600;

/// The properties of the sealed subject that hold the key and the sites
/// the key form checked it against.
const KEY_PROPERTY: &str = "plausible_key";
const SITES_PROPERTY: &str = "sites";

/// Whether `raw` can be a Plausible API key: 8 to 512 visible ASCII
/// characters, none of them space.
pub fn well_formed(raw: &str) -> bool {
    (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic())
}

fn aad(user_key: &UserKey) -> String {
    format!("subject:{}", user_key.as_str())
}

/// The subject of a key grant: the key's user in the clear, the key
/// sealed under the server key and bound to that user (the same AAD as a
/// person's sealed email, so one opening routine serves both).
pub fn subject(
    key: &PlausibleKey,
    sites: &[String],
    keys: &Keyring,
    user_keys: &UserKeys,
    entropy: &dyn Entropy,
) -> Result<Subject, EntropyError> {
    let user_key = UserKey::of_plausible_key(user_keys, key);
    let props = json!({ KEY_PROPERTY: key.secret(), SITES_PROPERTY: sites }).to_string();
    let sealed_props = keys.seal(entropy, props.as_bytes(), &aad(&user_key))?;
    Ok(Subject {
        kind: Some(SubjectKind::PlausibleKey),
        user_key,
        sealed_props,
    })
}

/// A key grant's key, and the sites the key form checked it against.
#[derive(Debug, PartialEq, Eq)]
pub struct Held {
    pub key: PlausibleKey,
    pub sites: Vec<String>,
}

/// What a grant's subject is.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// A key grant of `/mcp`, with its key.
    Key(Held),
    /// A person signed in through the upstream provider (`/internal`).
    Person,
    /// The sealed properties do not open under the configured keys.
    Unreadable,
}

/// Opens a grant's subject and says whose it is.
pub fn holder(keys: &Keyring, subject: &Subject) -> Holder {
    let Some(plain) = keys.open(&subject.sealed_props, &aad(&subject.user_key)) else {
        return Holder::Unreadable;
    };
    let Ok(props) = serde_json::from_slice::<Value>(&plain) else {
        return Holder::Unreadable;
    };
    match props.get(KEY_PROPERTY).and_then(Value::as_str) {
        Some(key) => Holder::Key(Held {
            key: PlausibleKey::new(key),
            sites: props
                .get(SITES_PROPERTY)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }),
        None => Holder::Person,
    }
}

/// What Plausible says of a key, asked with one cheap query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// 401/403: the key was revoked (or lost the site).
    Refused,
    /// Plausible could not say (unavailable, rate-limited, a plan
    /// change): an outage must not end anyone's connection.
    Unknown,
}

/// The cheapest question that proves `key` reads `site`: one Stats API
/// query for today's visitors (the key form's check and the hourly one).
pub async fn probe<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
    site: &str,
) -> Result<(), PlausibleError> {
    let body = json!({"site_id": site, "metrics": ["visitors"], "date_range": "day"});
    let body = serde_json::to_vec(&body).map_err(|_| PlausibleError::BadResponse)?;
    let sent = std::cell::Cell::new(0);
    client::send(platform, base, key, Endpoint::Query, &[], body, &sent)
        .await
        .map(|_| ())
}

/// Asks Plausible whether `key` still reads `site`.
pub async fn ask_plausible<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
    site: &str,
) -> Verdict {
    match probe(platform, base, key, site).await {
        Ok(()) => Verdict::Accepted,
        Err(PlausibleError::Unauthorized(_)) => Verdict::Refused,
        Err(_) => Verdict::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePlatform, keys, user_keys};

    #[test]
    fn key_shapes() {
        assert!(well_formed("plausible-key-1"));
        assert!(well_formed(&"k".repeat(512)));
        for bad in [
            "short",
            "has space inside",
            "ключ-ключ-ключ",
            "tab\tinside-x",
            "",
        ] {
            assert!(!well_formed(bad), "{bad:?}");
        }
        assert!(!well_formed(&"k".repeat(513)));
    }

    #[test]
    fn the_key_is_sealed_to_its_user_and_opens_back() {
        let k = keys();
        let u = user_keys();
        let key = PlausibleKey::new("plausible-secret-key-123");
        let sites = vec!["example.com".to_owned()];
        let s = subject(&key, &sites, &k, &u, &FakePlatform::new()).unwrap();
        assert_eq!(s.user_key, UserKey::of_plausible_key(&u, &key));
        assert_eq!(s.kind, Some(SubjectKind::PlausibleKey));
        assert!(!s.sealed_props.contains("plausible-secret"));
        assert!(!format!("{s:?}").contains("plausible-secret"));
        assert_eq!(holder(&k, &s), Holder::Key(Held { key, sites }));
        // Bound to its user: moved under another user key, it does not open.
        let moved = Subject {
            kind: s.kind,
            user_key: UserKey::of_email(&u, "a@example.com"),
            sealed_props: s.sealed_props.clone(),
        };
        assert_eq!(holder(&k, &moved), Holder::Unreadable);
        // A person's subject is a person's.
        let id = crate::identity::admit("a@example.com", None, &["example.com".into()]).unwrap();
        let person = crate::oauth::flow::issue::subject(&id, &k, &u, &FakePlatform::new()).unwrap();
        assert_eq!(holder(&k, &person), Holder::Person);
    }
}
