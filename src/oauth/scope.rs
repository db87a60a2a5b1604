//! The scopes this server grants (RFC 6749 §3.3) and how they relate.
//!
//! Two narrow scopes, `sites:read` (which sites exist) and `stats:read`
//! (every query), and `mcp`, the umbrella that implies both. `mcp` is what
//! every grant of the previous releases holds and what a request without
//! `scope` gets, so existing clients and stored grants keep all they had.
//! Every comparison of scopes honours the umbrella: a grant of `mcp`
//! grants `stats:read`, a consent to `mcp` covers a request for
//! `sites:read`, and a refresh of an `mcp` grant may narrow to either.

use serde::{Deserialize, Serialize};

/// One scope this server grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The umbrella: every scope below.
    Mcp,
    /// Site discovery: `list_sites` and the site list resource.
    SitesRead,
    /// Every query of a site's statistics (and its goals).
    StatsRead,
}

impl Scope {
    /// In the order metadata, challenges and pages list them.
    pub const ALL: [Scope; 3] = [Scope::Mcp, Scope::SitesRead, Scope::StatsRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Mcp => "mcp",
            Scope::SitesRead => "sites:read",
            Scope::StatsRead => "stats:read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether holding `self` grants `needed`.
    pub fn implies(self, needed: Scope) -> bool {
        self == needed || self == Scope::Mcp
    }

    /// What a person approving it lets the client do (the consent page).
    pub fn meaning(self) -> &'static str {
        match self {
            Scope::Mcp => {
                "list the Plausible Analytics sites available through this server and query their statistics (every tool)"
            }
            Scope::SitesRead => "list the Plausible Analytics sites available through this server",
            Scope::StatsRead => {
                "query the statistics, goals and realtime visitors of the sites available through this server"
            }
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes this server grants, as RFC 8414 and RFC 9728 metadata list
/// them (`scopes_supported`). No `offline_access`: refresh tokens come
/// with every grant, and MCP 2026-07-28 keeps it out of resource metadata
/// and challenges.
pub const SUPPORTED_SCOPES: [&str; 3] = ["mcp", "sites:read", "stats:read"];
/// What a request without `scope` is granted: everything, as before.
pub const DEFAULT_SCOPE: &str = "mcp";

/// A set of scope tokens (RFC 6749 §3.3): `scope = scope-token *( SP
/// scope-token )`, `scope-token = 1*NQCHAR`, case-sensitive, no
/// duplicates. The one separator is SP: a tab, newline or any other
/// whitespace is refused wherever it stands, and so are two spaces in a
/// row. Spaces before the first token or after the last are tolerated
/// (clients that join a list with a trailing space exist, and nothing is
/// ambiguous about them); a value of nothing but spaces is an omitted
/// one. Stored as the strings
/// it was parsed from, in request order, so records of every release read
/// back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSet(Vec<String>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeError {
    /// Not RFC 6749 §3.3 syntax, or too long.
    Syntax,
    /// A well-formed scope we do not offer.
    Unsupported(String),
}

impl ScopeSet {
    /// Parses an authorization request's `scope` parameter: omitted
    /// means [`DEFAULT_SCOPE`] (RFC 6749 §3.3: a pre-defined default).
    pub fn parse(raw: Option<&str>) -> Result<Self, ScopeError> {
        Ok(Self::parse_given(raw)?.unwrap_or_else(|| Self(vec![DEFAULT_SCOPE.to_owned()])))
    }

    /// Parses a `scope` parameter, `None` when it is omitted: absent,
    /// empty or only spaces. A refresh request (RFC 6749 §6) needs this: an omitted
    /// scope there means the scope originally granted, not the default.
    pub fn parse_given(raw: Option<&str>) -> Result<Option<Self>, ScopeError> {
        let raw = raw.unwrap_or("").trim_matches(' ');
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > 512 {
            return Err(ScopeError::Syntax);
        }
        let mut out: Vec<String> = Vec::new();
        for token in raw.split(' ') {
            // NQCHAR = %x21 / %x23-5B / %x5D-7E
            let valid = !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(ScopeError::Syntax);
            }
            if Scope::parse(token).is_none() {
                return Err(ScopeError::Unsupported(token.to_owned()));
            }
            if !out.iter().any(|t| t == token) {
                out.push(token.to_owned());
            }
        }
        Ok(Some(Self(out)))
    }

    /// The set of exactly these scopes, in [`Scope::ALL`] order.
    pub fn of(scopes: &[Scope]) -> Self {
        Self(
            Scope::ALL
                .into_iter()
                .filter(|s| scopes.contains(s))
                .map(|s| s.as_str().to_owned())
                .collect(),
        )
    }

    /// The scopes here this server knows (a stored record may hold others,
    /// which grant nothing).
    pub fn known(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().filter_map(|s| Scope::parse(s))
    }

    /// Whether this set grants `needed`, directly or through `mcp`.
    pub fn grants(&self, needed: Scope) -> bool {
        self.known().any(|held| held.implies(needed))
    }

    /// Whether this set grants at least one scope of this server.
    pub fn grants_any(&self) -> bool {
        self.known().next().is_some()
    }

    /// Whether every scope here is granted by `other` (through its `mcp`
    /// umbrella too): a refresh may narrow to such a set (RFC 6749 §6),
    /// and a consent to `other` covers a request for it.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0
            .iter()
            .all(|s| Scope::parse(s).is_some_and(|scope| other.grants(scope)))
    }

    /// The scopes here that `before` does not already grant, and those it
    /// does, each in this set's order: what a consent page asks for anew
    /// and what it shows as already allowed (incremental consent). A new
    /// scope that another new one implies is left out of the first list
    /// (`mcp sites:read stats:read` asks for `mcp`): the page would
    /// otherwise describe the same permission twice.
    pub fn split_by(&self, before: Option<&ScopeSet>) -> (Vec<Scope>, Vec<Scope>) {
        let (mut new, granted): (Vec<Scope>, Vec<Scope>) = self
            .known()
            .partition(|s| !before.is_some_and(|b| b.grants(*s)));
        let implied: Vec<Scope> = new
            .iter()
            .copied()
            .filter(|s| new.iter().any(|other| other != s && other.implies(*s)))
            .collect();
        new.retain(|s| !implied.contains(s));
        (new, granted)
    }

    /// This set and the scopes of `other` it lacks: what a renewed
    /// approval records, so widening a grant never forgets what was
    /// approved before.
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        let mut out = self.0.clone();
        for s in &other.0 {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        Self(out)
    }

    pub fn to_param(&self) -> String {
        self.0.join(" ")
    }
}

/// What one operation needs from a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any one scope of this server.
    AnyScope,
    /// This scope (or the umbrella).
    Scope(Scope),
}

/// Why a token may not run an operation, and what to ask for instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// The needed scopes the token lacks.
    pub missing: Vec<Scope>,
    /// What the challenge names (MCP 2025-11-25 authorization, "Scope
    /// Challenge Handling", its recommended approach): every scope the
    /// operation needs and every scope the token already holds, so a
    /// client that re-authorizes with exactly this set (the SDKs do)
    /// keeps what it could do before.
    pub challenge: ScopeSet,
}

impl ScopeSet {
    /// `None` when this set meets every need; else what is missing and
    /// what to ask for.
    pub fn shortfall(&self, needs: impl IntoIterator<Item = Need>) -> Option<Shortfall> {
        let mut named: Vec<Scope> = self.known().collect();
        let mut missing: Vec<Scope> = Vec::new();
        let mut any = false;
        for need in needs {
            match need {
                Need::Scope(s) => {
                    if !self.grants(s) && !missing.contains(&s) {
                        missing.push(s);
                    }
                    named.push(s);
                }
                Need::AnyScope => any = true,
            }
        }
        // Any one scope is met by the ones asked for above, once granted.
        if any && missing.is_empty() && !self.grants_any() {
            missing.push(Scope::Mcp);
        }
        if missing.is_empty() {
            return None;
        }
        if named.is_empty() {
            named.push(Scope::Mcp);
        }
        Some(Shortfall {
            missing,
            challenge: Self::of(&named),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(raw: &str) -> ScopeSet {
        ScopeSet::parse(Some(raw)).unwrap()
    }

    #[test]
    fn scope_rules() {
        assert_eq!(ScopeSet::parse(None).unwrap().to_param(), "mcp");
        assert_eq!(ScopeSet::parse(Some("")).unwrap().to_param(), "mcp");
        // Omitted is not the default where a default would be wrong
        // (refresh, RFC 6749 §6).
        assert_eq!(ScopeSet::parse_given(None), Ok(None));
        assert_eq!(ScopeSet::parse_given(Some("")), Ok(None));
        assert_eq!(ScopeSet::parse_given(Some("   ")), Ok(None));
        assert_eq!(
            set("  sites:read stats:read ").to_param(),
            "sites:read stats:read"
        );
        assert_eq!(ScopeSet::parse_given(Some("mcp")), Ok(Some(set("mcp"))));
        assert_eq!(ScopeSet::parse(Some("mcp mcp")).unwrap().to_param(), "mcp");
        assert_eq!(
            set("stats:read sites:read").to_param(),
            "stats:read sites:read"
        );
        assert_eq!(
            set("sites:read mcp stats:read sites:read").to_param(),
            "sites:read mcp stats:read"
        );
        for unsupported in [
            "admin",
            "offline_access",
            "sites:write",
            "Stats:read",
            "mcp:*",
        ] {
            assert_eq!(
                ScopeSet::parse(Some(&format!("mcp {unsupported}"))),
                Err(ScopeError::Unsupported(unsupported.into())),
                "{unsupported}"
            );
        }
        for bad in [
            "mcp  mcp",
            "mc\"p",
            "mcp\\x",
            "mcp\tadmin",
            "mcp\t",
            "\tmcp",
            "\t",
            "mcp\n",
            "mcp\r\n",
            " mcp\nstats:read",
            "sites:read\u{2003}mcp",
            "é",
            "stats:read\u{a0}mcp",
        ] {
            assert_eq!(
                ScopeSet::parse(Some(bad)),
                Err(ScopeError::Syntax),
                "{bad:?}"
            );
        }
        assert_eq!(
            ScopeSet::parse(Some(&"a".repeat(600))),
            Err(ScopeError::Syntax)
        );
    }

    #[test]
    fn metadata_lists_every_scope_once_and_only_ours() {
        assert_eq!(SUPPORTED_SCOPES, Scope::ALL.map(Scope::as_str));
        assert!(!SUPPORTED_SCOPES.contains(&"offline_access"));
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert!(!s.meaning().is_empty());
        }
        assert_eq!(Scope::parse(DEFAULT_SCOPE), Some(Scope::Mcp));
    }

    /// The umbrella: `mcp` grants both narrow scopes, and neither narrow
    /// scope grants the other or the umbrella.
    #[test]
    fn the_umbrella_implies_both_narrow_scopes() {
        use Scope::*;
        let cases = [
            ("mcp", [true, true, true]),
            ("sites:read", [false, true, false]),
            ("stats:read", [false, false, true]),
            ("sites:read stats:read", [false, true, true]),
        ];
        for (held, expected) in cases {
            let held = set(held);
            let got = [Mcp, SitesRead, StatsRead].map(|s| held.grants(s));
            assert_eq!(got, expected, "{held:?}");
            assert!(held.grants_any());
        }
        // A stored record with a scope of no release grants nothing.
        let foreign: ScopeSet = serde_json::from_str(r#"["other"]"#).unwrap();
        assert!(!foreign.grants_any() && !foreign.grants(SitesRead));
        assert!(!foreign.is_subset_of(&set("mcp")));
    }

    #[test]
    fn subsets_honour_the_umbrella() {
        let cases = [
            ("mcp", "mcp", true),
            ("sites:read", "mcp", true),
            ("sites:read stats:read", "mcp", true),
            ("mcp", "sites:read stats:read", false),
            ("stats:read", "sites:read", false),
            ("sites:read", "sites:read stats:read", true),
            ("sites:read stats:read", "stats:read", false),
        ];
        for (narrow, wide, expected) in cases {
            assert_eq!(
                set(narrow).is_subset_of(&set(wide)),
                expected,
                "{narrow} ⊆ {wide}"
            );
        }
    }

    #[test]
    fn incremental_consent_splits_new_from_already_granted() {
        use Scope::*;
        let request = set("sites:read stats:read");
        assert_eq!(request.split_by(None), (vec![SitesRead, StatsRead], vec![]));
        assert_eq!(
            request.split_by(Some(&set("sites:read"))),
            (vec![StatsRead], vec![SitesRead])
        );
        assert_eq!(
            request.split_by(Some(&set("mcp"))),
            (vec![], vec![SitesRead, StatsRead])
        );
        assert_eq!(
            set("mcp").split_by(Some(&set("sites:read stats:read"))),
            (vec![Mcp], vec![]),
            "the umbrella is not granted by its parts: asking for it is new"
        );
        // The umbrella asked for names its parts once, as itself.
        assert_eq!(
            set("sites:read mcp stats:read").split_by(None),
            (vec![Mcp], vec![])
        );
        assert_eq!(
            set("mcp sites:read stats:read").split_by(Some(&set("sites:read"))),
            (vec![Mcp], vec![SitesRead])
        );
        assert_eq!(
            set("stats:read")
                .union(&set("sites:read stats:read"))
                .to_param(),
            "stats:read sites:read"
        );
        assert_eq!(
            ScopeSet::of(&[StatsRead, SitesRead]).to_param(),
            "sites:read stats:read"
        );
    }

    #[test]
    fn stored_sets_read_back_unchanged() {
        let stored = r#"["mcp"]"#;
        let s: ScopeSet = serde_json::from_str(stored).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), stored);
        assert_eq!(s, ScopeSet::parse(None).unwrap());
    }

    #[test]
    fn a_shortfall_names_what_is_needed_and_what_is_held() {
        use Need::AnyScope;
        use Scope::{Mcp, SitesRead, StatsRead};
        let need = Need::Scope;
        type Expected = Option<(Vec<Scope>, &'static str)>;
        let cases: [(&str, Vec<Need>, Expected); 9] = [
            (
                "mcp",
                vec![need(StatsRead), need(SitesRead), AnyScope],
                None,
            ),
            ("sites:read", vec![need(SitesRead), AnyScope], None),
            ("sites:read", vec![], None),
            (
                "sites:read",
                vec![need(StatsRead)],
                Some((vec![StatsRead], "sites:read stats:read")),
            ),
            (
                "stats:read",
                vec![AnyScope, need(SitesRead), need(SitesRead)],
                Some((vec![SitesRead], "sites:read stats:read")),
            ),
            // A batch: one element short refuses the whole, naming all.
            (
                "sites:read",
                vec![need(SitesRead), need(StatsRead), AnyScope],
                Some((vec![StatsRead], "sites:read stats:read")),
            ),
            ("stats:read", vec![need(StatsRead)], None),
            // Tokens no release mints: they hold nothing of ours.
            ("other", vec![AnyScope], Some((vec![Mcp], "mcp"))),
            (
                "other",
                vec![AnyScope, need(StatsRead)],
                Some((vec![StatsRead], "stats:read")),
            ),
        ];
        for (held, needs, expected) in cases {
            let held: ScopeSet =
                serde_json::from_value(serde_json::json!(held.split(' ').collect::<Vec<_>>()))
                    .unwrap();
            let got = held
                .shortfall(needs.clone())
                .map(|s| (s.missing, s.challenge.to_param()));
            let expected = expected.map(|(m, c)| (m, c.to_owned()));
            assert_eq!(got, expected, "{held:?} {needs:?}");
        }
    }
}
