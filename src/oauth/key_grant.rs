//! Grants of `/mcp` (issue 15): a person's own Plausible API key carried
//! through OAuth. Who "the user" is ([`UserKey::of_plausible_key`], a
//! keyed hash of the key), how the key is kept (sealed with AES-256-GCM
//! in the grant's subject, bound to that user key, never logged, never
//! shown again), and what a well-formed key looks like.

use serde_json::{Value, json};

use super::ids::UserKey;
use super::ledger::records::Subject;
use crate::crypto::{Keyring, UserKeys};
use crate::ports::{Entropy, EntropyError};
use crate::secret::PlausibleKey;

/// Plausible keys are long random strings; anything shorter is a paste
/// error, refused before it reaches Plausible.
pub const MIN_KEY_LEN: usize = 8;
pub const MAX_KEY_LEN: usize = 512;

/// The property of the sealed subject that holds the key.
const KEY_PROPERTY: &str = "plausible_key";

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
    keys: &Keyring,
    user_keys: &UserKeys,
    entropy: &dyn Entropy,
) -> Result<Subject, EntropyError> {
    let user_key = UserKey::of_plausible_key(user_keys, key);
    let props = json!({ KEY_PROPERTY: key.secret() }).to_string();
    let sealed_props = keys.seal(entropy, props.as_bytes(), &aad(&user_key))?;
    Ok(Subject {
        user_key,
        sealed_props,
    })
}

/// What a grant's subject is.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// A key grant of `/mcp`, with its key.
    Key(PlausibleKey),
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
        Some(key) => Holder::Key(PlausibleKey::new(key)),
        None => Holder::Person,
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
        let s = subject(&key, &k, &u, &FakePlatform::new()).unwrap();
        assert_eq!(s.user_key, UserKey::of_plausible_key(&u, &key));
        assert!(!s.sealed_props.contains("plausible-secret"));
        assert!(!format!("{s:?}").contains("plausible-secret"));
        assert_eq!(holder(&k, &s), Holder::Key(key));
        // Bound to its user: moved under another user key, it does not open.
        let moved = Subject {
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
