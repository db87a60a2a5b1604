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
    /// Plausible refuses the key itself (see [`recheck`]).
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

/// The most granted sites one re-check reads before asking about the key
/// alone: a grant whose first sites were deleted costs a few queries of
/// the key's hourly allowance, never twenty.
pub const RECHECK_SITES: usize = 3;

/// The hourly re-check of a key grant's key (issue 15): Plausible is
/// asked to read the grant's own sites (those the person kept ticked),
/// in order, until one answers.
///
/// Plausible answers a revoked key, a site the key lost and a deleted
/// site alike (401 "Invalid API key or site ID"; a 400 for a site id it
/// no longer parses), so such an answer moves on to the next site; when
/// no granted site (of the first [`RECHECK_SITES`]) reads, one query
/// without a site asks about the key alone ([`key_itself`]). Only that
/// refusal revokes. Anything else (5xx, 429, 402, a timeout) is
/// [`Verdict::Unknown`]: an outage ends nobody's connection.
pub async fn recheck<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
    sites: &[String],
) -> Verdict {
    for site in sites.iter().take(RECHECK_SITES) {
        match probe(platform, base, key, site).await {
            Ok(()) => return Verdict::Accepted,
            Err(
                PlausibleError::Unauthorized(_)
                | PlausibleError::Rejected
                | PlausibleError::RejectedBecause(_),
            ) => {}
            Err(_) => return Verdict::Unknown,
        }
    }
    key_itself(platform, base, key).await
}

/// Whether Plausible accepts `key` at all, whatever it may read: a Stats
/// API query naming no site. Plausible finds the key before the site
/// (`PlausibleWeb.Plugs.AuthorizePublicAPI`: `find_api_key`, then
/// `find_site`), so a key it does not know is a 401 and a key it knows
/// reaches the 400 "Missing site ID".
///
/// A key that is accepted but reads none of the granted sites is
/// [`Verdict::Accepted`]: the check is of the key; the sites it lost show
/// as tool errors naming them.
async fn key_itself<P: Outbound + Clock>(
    platform: &P,
    base: &PlausibleBaseUrl,
    key: &PlausibleKey,
) -> Verdict {
    let body = json!({"metrics": ["visitors"], "date_range": "day"});
    let Ok(body) = serde_json::to_vec(&body) else {
        return Verdict::Unknown;
    };
    let sent = std::cell::Cell::new(0);
    match client::send(platform, base, key, Endpoint::Query, &[], body, &sent).await {
        Err(PlausibleError::Unauthorized(_)) => Verdict::Refused,
        Err(PlausibleError::Rejected | PlausibleError::RejectedBecause(_)) => Verdict::Accepted,
        // A 2xx to a query without a site is not Plausible as documented.
        Ok(_) | Err(_) => Verdict::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::OutboundResponse;
    use crate::testing::{FakePlatform, block_on, keys, user_keys};

    /// At most [`RECHECK_SITES`] granted sites are read before the key is
    /// asked about alone, and only an answer about the key decides.
    #[test]
    fn the_recheck_reads_a_few_sites_then_asks_about_the_key() {
        let base = PlausibleBaseUrl::parse("https://plausible.example").unwrap();
        let key = PlausibleKey::new("plausible-secret-key-123");
        let sites: Vec<String> = (0..5).map(|i| format!("s{i}.example")).collect();
        for (site_status, alone_status, verdict, asked) in [
            (401, 400, Verdict::Accepted, RECHECK_SITES + 1),
            (401, 401, Verdict::Refused, RECHECK_SITES + 1),
            (400, 401, Verdict::Refused, RECHECK_SITES + 1),
            (401, 429, Verdict::Unknown, RECHECK_SITES + 1),
            (402, 401, Verdict::Unknown, 1),
            (429, 401, Verdict::Unknown, 1),
            (200, 401, Verdict::Accepted, 1),
        ] {
            let p = FakePlatform::new();
            p.respond_with(move |req| {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                let status = if body.get("site_id").is_some() {
                    site_status
                } else {
                    alone_status
                };
                let answer = if status == 200 {
                    json!({"results": [{"metrics": [1], "dimensions": []}], "meta": {}, "query": body})
                } else {
                    json!({"error": "no"})
                };
                Ok(OutboundResponse {
                    status,
                    headers: crate::http::Headers::new(),
                    body: answer.to_string().into_bytes(),
                })
            });
            let got = block_on(recheck(&p, &base, &key, &sites));
            assert_eq!(
                (got, p.sent.borrow().len()),
                (verdict, asked),
                "{site_status}/{alone_status}"
            );
        }
    }

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
