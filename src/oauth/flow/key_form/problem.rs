//! What the key form tells a person: each problem with its status, its
//! machine-readable code and the message that says what to fix.

use super::MAX_SITES;

/// What the person must fix, or why the key could not be checked. Each
/// message says what to do; none repeats the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    NoKey,
    /// Not 8 to 512 visible characters, or one of this server's tokens.
    KeyShape,
    NoSites,
    TooManySites(usize),
    /// The entry at this place (from 1) is no site id. Never quoted: it
    /// may be the key, pasted in the wrong field.
    BadSite {
        position: usize,
    },
    /// The key typed in the key field is also among the sites.
    KeyInSites,
    /// Plausible did not answer the first site named: a wrong key, an
    /// unreadable or unknown site, which its answer does not tell apart,
    /// or a 402/429 that would tell a valid key (see the module's
    /// "Oracle").
    Refused(String),
    /// Plausible accepted the key for an earlier site but not this one.
    Unreadable(String),
    /// 402 for this site: no Stats API on the plan, or a locked site.
    PaymentRequired(String),
    /// Plausible's hourly limit for this key is spent.
    RateLimited {
        retry_after_secs: u64,
    },
    /// Plausible could not be asked (5xx, timeout, network, a wrong
    /// `PLAUSIBLE_BASE_URL`).
    Unavailable,
}

impl Problem {
    pub fn status(&self) -> u16 {
        match self {
            Problem::RateLimited { .. } | Problem::Unavailable => 503,
            _ => 400,
        }
    }

    /// The machine-readable reason, as `<meta name="error">`.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::NoKey | Problem::KeyShape => "invalid_key",
            Problem::NoSites
            | Problem::TooManySites(_)
            | Problem::BadSite { .. }
            | Problem::KeyInSites => "invalid_sites",
            Problem::Refused(_) => "key_refused",
            Problem::Unreadable(_) => "site_unreadable",
            Problem::PaymentRequired(_) => "stats_api_unavailable",
            Problem::RateLimited { .. } => "plausible_rate_limited",
            Problem::Unavailable => "plausible_unavailable",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Problem::NoKey => "Paste your Plausible API key.".into(),
            Problem::KeyShape => "That is not a Plausible API key: a key is 8 to 512 characters without spaces. Copy it again from Plausible (Account settings → API keys).".into(),
            Problem::NoSites => "Name at least one site, by its domain exactly as Plausible shows it (for example example.com).".into(),
            Problem::TooManySites(n) => format!("Name at most {MAX_SITES} sites for one connection (you named {n})."),
            Problem::BadSite { position } => format!("Entry {position} of the sites is not a site's domain: write each site's domain as Plausible shows it (for example example.com), one per line or separated by commas. If you pasted your API key there, it belongs in the key field."),
            Problem::KeyInSites => "Your API key is in the sites field: paste the key in the key field and only the sites' domains in the sites field. The sites field was emptied so that the key is not shown on this page.".into(),
            Problem::Refused(site) => format!("Plausible did not accept this key for the site \"{site}\". Check that you copied the whole key, and that the site's domain is written exactly as in Plausible. If both are right, the account behind the key may lack Stats API access on its plan, or Plausible's hourly request limit for the key may be used up: try again later."),
            Problem::Unreadable(site) => format!("Plausible accepted this key, but it cannot read the site \"{site}\". Remove that site, or check its spelling."),
            Problem::PaymentRequired(site) => format!("Plausible refused to query the site \"{site}\" (402): the account behind this key has no Stats API access on its plan, or the site is locked."),
            Problem::RateLimited { retry_after_secs } => format!("Plausible's hourly request limit for this key is used up. Try again in about {} minutes.", retry_after_secs.div_ceil(60).max(1)),
            Problem::Unavailable => "Plausible could not be reached to check the key. Try again in a few minutes.".into(),
        }
    }
}
