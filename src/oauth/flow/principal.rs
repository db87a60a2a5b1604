//! Who approves an authorization: a person the upstream provider signed
//! in (`/internal`), or whoever holds a Plausible key the key form
//! checked (`/mcp`, issue 15); and how a consent ticket carries them.

use serde::{Deserialize, Serialize};

use crate::crypto::UserKeys;
use crate::identity::Identity;
use crate::oauth::ids::UserKey;
use crate::secret::{Email, PlausibleKey};

/// Who a consent ticket is for, sealed inside it. Flattened into the
/// ticket: a person's is the bare `email` earlier releases sealed (so a
/// consent page open across a deployment still posts), a key holder's a
/// `key` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PrincipalWire", into = "PrincipalWire")]
pub enum Principal {
    /// The signed-in email.
    Person { email: Email },
    /// A Plausible key the key form checked, and the sites named there.
    Key {
        key: PlausibleKey,
        sites: Vec<String>,
    },
}

impl Principal {
    pub fn person(identity: &Identity) -> Self {
        Principal::Person {
            email: Email::new(identity.email()),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PrincipalWire {
    Person { email: Email },
    Key { key: KeyWire },
}

#[derive(Serialize, Deserialize)]
struct KeyWire {
    key: PlausibleKey,
    sites: Vec<String>,
}

impl From<Principal> for PrincipalWire {
    fn from(p: Principal) -> Self {
        match p {
            Principal::Person { email } => PrincipalWire::Person { email },
            Principal::Key { key, sites } => PrincipalWire::Key {
                key: KeyWire { key, sites },
            },
        }
    }
}

impl From<PrincipalWire> for Principal {
    fn from(w: PrincipalWire) -> Self {
        match w {
            PrincipalWire::Person { email } => Principal::Person { email },
            PrincipalWire::Key {
                key: KeyWire { key, sites },
            } => Principal::Key { key, sites },
        }
    }
}

/// Who approved: a person the upstream provider signed in (`/internal`),
/// or whoever holds a Plausible key checked on the key form (`/mcp`).
#[derive(Debug)]
pub enum Who {
    Person(Identity),
    Key(KeyHolder),
}

/// The holder of a Plausible key that Plausible accepted for `sites`.
#[derive(Clone, Debug)]
pub struct KeyHolder {
    pub key: PlausibleKey,
    /// The sites named on the key form, each read once with the key.
    pub sites: Vec<String>,
}

impl Who {
    /// The user a grant of this approval is for: the email's keyed hash,
    /// or the key's (domain-separated) keyed hash.
    pub fn user(&self, keys: &UserKeys) -> UserKey {
        match self {
            Who::Person(identity) => UserKey::of_email(keys, identity.email()),
            Who::Key(holder) => UserKey::of_plausible_key(keys, &holder.key),
        }
    }

    /// The signed-in person, if a person approved.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Who::Person(identity) => Some(identity),
            Who::Key(_) => None,
        }
    }

    pub(super) fn principal(&self) -> Principal {
        match self {
            Who::Person(identity) => Principal::person(identity),
            Who::Key(holder) => Principal::Key {
                key: holder.key.clone(),
                sites: holder.sites.clone(),
            },
        }
    }
}
