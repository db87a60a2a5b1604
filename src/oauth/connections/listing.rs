//! The rows of the connections page, assembled from a listed pair, its
//! grant object's summary, the client's record and (for admins) the
//! sealed email of the pair's subject. Pure: the endpoint does the reads.

use crate::crypto::Keyring;
use crate::oauth::clients::record::ClientRecord;
use crate::oauth::ids::{RoutingId, UserKey};
use crate::oauth::key_grant;
use crate::oauth::ledger::protocol::{ConsentSummary, GrantSummary, PairSummary};
use crate::oauth::ledger::records::Subject;
use crate::oauth::listing::records::ListedPair;
use crate::oauth::types::ClientId;

/// One connected application of one person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Names the pair in the page's revoke form.
    pub pair: RoutingId,
    pub client_id: ClientId,
    /// The client's registered name, or its id.
    pub name: String,
    /// Where its consent sends the browser back.
    pub redirect_host: Option<String>,
    pub scopes: Vec<String>,
    /// The sites it can read (issue 15): every live grant's together
    /// (`None`: all sites), or, with no live grant, the approval's.
    pub sites: Option<Vec<String>>,
    /// The sites of the approval on file, if there is one (inner `None`:
    /// all sites): a new sign-in of the application gets them without
    /// being asked (see `flow::sites`).
    pub approved_sites: Option<Option<Vec<String>>>,
    pub approved_at: Option<u64>,
    /// When a token was last issued (the code's redemption or the latest
    /// refresh): the newest access token's expiry less its lifetime.
    pub last_refreshed: Option<u64>,
    /// When the last of its grants ends at the latest.
    pub ends_at: Option<u64>,
    /// Live grants (one per device that connected).
    pub grants: usize,
    pub user: Option<UserKey>,
    /// The person's email: filled in for admins only.
    pub email: Option<String>,
    /// For a grant of a Plausible key (`/mcp`, issue 15), the key's
    /// fingerprint (`UserKey::fingerprint`) in place of an email: filled
    /// in for admins only.
    pub key_fingerprint: Option<String>,
}

/// Whose a grant's subject is, as an admin's row shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// A person, by the email sealed in the subject.
    Email(String),
    /// A Plausible key: never shown, only its fingerprint.
    Key,
}

/// Opens a subject for an admin's row (admins' pages only).
pub type EmailOpener<'a> = &'a dyn Fn(&Subject) -> Option<Shown>;

/// Whose a grant's subject is: the email sealed in it
/// (`flow::issue::subject`), or a Plausible key (`key_grant::subject`),
/// whose key is not taken out.
pub fn open_email(keys: &Keyring, subject: &Subject) -> Option<Shown> {
    let json = keys.open(
        &subject.sealed_props,
        &format!("subject:{}", subject.user_key.as_str()),
    )?;
    let props: serde_json::Value = serde_json::from_slice(&json).ok()?;
    if let Some(email) = props.get("email").and_then(|e| e.as_str()) {
        return Some(Shown::Email(email.to_owned()));
    }
    matches!(key_grant::holder(keys, subject), key_grant::Holder::Key(_)).then_some(Shown::Key)
}

/// What a pair's grants can read together, or (none live) what its
/// approval would give the next one; `None` is every site.
fn reach(grants: &[GrantSummary], consent: Option<&ConsentSummary>) -> Option<Vec<String>> {
    if grants.is_empty() {
        return consent.and_then(|c| c.sites.clone());
    }
    let mut union: Vec<String> = Vec::new();
    for grant in grants {
        for site in grant.sites.as_ref()? {
            if !union.iter().any(|u| u.eq_ignore_ascii_case(site)) {
                union.push(site.clone());
            }
        }
    }
    Some(union)
}

/// The row for `pair`, or none when nothing of it is connected any more
/// (no live grant and no consent: revoked, or ended and never renewed).
/// `email` opens a subject's email; pass it for admins only.
pub fn assemble(
    pair: &ListedPair,
    summary: PairSummary,
    client: Option<&ClientRecord>,
    access_lifetime_secs: u64,
    email: Option<EmailOpener<'_>>,
) -> Option<Connection> {
    let PairSummary::Summary { grants, consents } = summary;
    // A pair object holds only its own client's records; any other is
    // ignored rather than shown under this client's name.
    let grants: Vec<_> = grants
        .into_iter()
        .filter(|g| g.client_id.as_ref() == Some(&pair.client_id))
        .collect();
    if grants.is_empty() && consents.is_empty() {
        return None;
    }
    let consent = consents.iter().max_by_key(|c| c.approved_at);
    let scopes = match (consent, grants.first()) {
        (Some(c), _) => c.scope.to_param(),
        (None, Some(g)) => g.scope.to_param(),
        (None, None) => String::new(),
    };
    let user = consent
        .map(|c| c.user_key.clone())
        .or_else(|| grants.first().map(|g| g.subject.user_key.clone()));
    let shown = email.and_then(|open| grants.iter().find_map(|g| open(&g.subject)));
    Some(Connection {
        pair: pair.routing,
        client_id: pair.client_id.clone(),
        name: client
            .map(|c| c.display_name().to_owned())
            .unwrap_or_else(|| pair.client_id.as_str().to_owned()),
        redirect_host: consent.map(|c| c.redirect_uri.host().to_owned()),
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        sites: reach(&grants, consent),
        approved_sites: consent.map(|c| c.sites.clone()),
        approved_at: consent.map(|c| c.approved_at),
        last_refreshed: grants
            .iter()
            .filter_map(|g| g.newest_access_expiry)
            .max()
            .map(|exp| exp.saturating_sub(access_lifetime_secs)),
        ends_at: grants.iter().map(|g| g.expires_at).max(),
        grants: grants.len(),
        email: match &shown {
            Some(Shown::Email(e)) => Some(e.clone()),
            _ => None,
        },
        key_fingerprint: match (&shown, &user) {
            (Some(Shown::Key), Some(u)) => Some(u.fingerprint().to_owned()),
            _ => None,
        },
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::clients::record::{AuthMethod, ClientSource};
    use crate::oauth::types::{RedirectUri, ScopeSet};
    use crate::testing::{FakePlatform, keys, user_keys};

    fn client() -> ClientId {
        ClientId::parse("pmcp_client_A").unwrap()
    }

    fn pair() -> ListedPair {
        let user = UserKey::of_email(&user_keys(), "a@example.com");
        ListedPair {
            client_id: client(),
            routing: RoutingId::of(&user_keys(), client().as_str(), &user),
            first_connected: 10,
        }
    }

    fn record() -> ClientRecord {
        ClientRecord {
            client_id: client(),
            client_name: Some("<b>Cursor</b>".into()),
            client_uri: None,
            redirect_uris: vec![],
            auth_method: AuthMethod::None,
            secret_hash: None,
            source: ClientSource::Registered,
            created_at: 0,
            expires_at: u64::MAX,
        }
    }

    fn subject() -> Subject {
        let user = UserKey::of_email(&user_keys(), "a@example.com");
        let sealed = keys()
            .seal(
                &FakePlatform::new(),
                br#"{"email":"a@example.com"}"#,
                &format!("subject:{}", user.as_str()),
            )
            .unwrap();
        Subject {
            user_key: user,
            sealed_props: sealed,
            kind: None,
        }
    }

    fn grant(created: u64, newest: Option<u64>) -> GrantSummary {
        GrantSummary {
            client_id: Some(client()),
            scope: ScopeSet::parse(Some("mcp")).unwrap(),
            subject: subject(),
            created_at: created,
            expires_at: created + 7 * 86400,
            newest_access_expiry: newest,
            sites: None,
        }
    }

    fn consent(at: u64) -> ConsentSummary {
        ConsentSummary {
            user_key: subject().user_key,
            redirect_uri: RedirectUri::parse("https://claude.ai/api/mcp/auth_callback").unwrap(),
            scope: ScopeSet::parse(Some("mcp")).unwrap(),
            approved_at: at,
            sites: None,
        }
    }

    #[test]
    fn a_row_says_what_the_pair_holds() {
        let summary = PairSummary::Summary {
            grants: vec![grant(100, Some(100 + 3600)), grant(500, Some(900 + 3600))],
            consents: vec![consent(100)],
        };
        let row = assemble(&pair(), summary, Some(&record()), 3600, None).unwrap();
        assert_eq!(
            row.name, "<b>Cursor</b>",
            "escaped by the template, not here"
        );
        assert_eq!(row.redirect_host.as_deref(), Some("claude.ai"));
        assert_eq!(row.scopes, vec!["mcp"]);
        assert_eq!(row.approved_at, Some(100));
        assert_eq!(row.last_refreshed, Some(900));
        assert_eq!(row.ends_at, Some(500 + 7 * 86400));
        assert_eq!(row.grants, 2);
        assert_eq!(row.email, None, "no email unless asked (admins)");
        assert_eq!(row.user, Some(subject().user_key));
    }

    /// Issue 15: the sites every live grant can read together; with no
    /// live grant, what the approval on file gives the next sign-in.
    #[test]
    fn a_row_names_the_sites_its_grants_can_read() {
        let only = |sites: &[&str]| Some(sites.iter().map(|s| (*s).to_owned()).collect());
        let with = |g: Option<Vec<String>>| {
            let mut grant = grant(100, None);
            grant.sites = g;
            grant
        };
        let mut approval = consent(100);
        approval.sites = only(&["b.example"]);
        let cases = [
            (vec![with(only(&["a.example"]))], only(&["a.example"])),
            (
                vec![
                    with(only(&["a.example"])),
                    with(only(&["b.example", "A.example"])),
                ],
                only(&["a.example", "b.example"]),
            ),
            (vec![with(only(&["a.example"])), with(None)], None),
            (vec![], only(&["b.example"])),
        ];
        for (grants, expected) in cases {
            let summary = PairSummary::Summary {
                grants: grants.clone(),
                consents: vec![approval.clone()],
            };
            let row = assemble(&pair(), summary, None, 3600, None).unwrap();
            assert_eq!(row.sites, expected, "{grants:?}");
            assert_eq!(row.approved_sites, Some(only(&["b.example"])));
        }
    }

    #[test]
    fn admins_see_the_email_and_unknown_clients_show_their_id() {
        let k = keys();
        let open = |s: &Subject| open_email(&k, s);
        let summary = PairSummary::Summary {
            grants: vec![grant(100, None)],
            consents: vec![],
        };
        let row = assemble(&pair(), summary, None, 3600, Some(&open)).unwrap();
        assert_eq!(row.email.as_deref(), Some("a@example.com"));
        assert_eq!(row.key_fingerprint, None);
        assert_eq!(row.name, "pmcp_client_A");
        assert_eq!(row.redirect_host, None);
        assert_eq!(row.last_refreshed, None);
    }

    #[test]
    fn admins_see_a_key_grant_by_its_fingerprint_never_the_key() {
        let k = keys();
        let key = crate::secret::PlausibleKey::new("plausible-key-of-the-team");
        let subject = key_grant::subject(
            &key,
            &["example.com".to_owned()],
            &k,
            &user_keys(),
            &FakePlatform::new(),
        )
        .unwrap();
        let mut g = grant(100, None);
        g.subject = subject.clone();
        let open = |s: &Subject| open_email(&k, s);
        assert_eq!(open(&subject), Some(Shown::Key));
        let summary = PairSummary::Summary {
            grants: vec![g],
            consents: vec![],
        };
        let row = assemble(&pair(), summary, None, 3600, Some(&open)).unwrap();
        assert_eq!(row.email, None);
        let fp = subject.user_key.fingerprint().to_owned();
        assert_eq!(fp.len(), 8);
        assert_eq!(row.key_fingerprint.as_deref(), Some(fp.as_str()));
        assert!(!format!("{row:?}").contains("plausible-key-of-the-team"));
        // Not an admin: no opener, no fingerprint either.
        let summary = PairSummary::Summary {
            grants: vec![grant(100, None)],
            consents: vec![],
        };
        assert_eq!(
            assemble(&pair(), summary, None, 3600, None)
                .unwrap()
                .key_fingerprint,
            None
        );
    }

    #[test]
    fn nothing_left_is_no_row_and_other_clients_records_are_ignored() {
        let empty = PairSummary::Summary {
            grants: vec![],
            consents: vec![],
        };
        assert!(assemble(&pair(), empty, None, 3600, None).is_none());
        let mut foreign = grant(100, None);
        foreign.client_id = ClientId::parse("pmcp_client_B");
        let other = PairSummary::Summary {
            grants: vec![foreign],
            consents: vec![],
        };
        assert!(assemble(&pair(), other, None, 3600, None).is_none());
    }

    #[test]
    fn a_subject_sealed_for_another_user_does_not_open() {
        let mut s = subject();
        assert_eq!(
            open_email(&keys(), &s),
            Some(Shown::Email("a@example.com".into()))
        );
        s.user_key = UserKey::of_email(&user_keys(), "b@example.com");
        assert_eq!(open_email(&keys(), &s), None);
    }
}
