//! The consent page's site chooser (issue 15): which sites a grant may
//! read. The page offers "all sites" (every site the key can read,
//! including sites added later) and/or a list to check; the post names
//! the choice (`all_sites=1`, or `all_sites=0` with `site` fields
//! repeated), checked here against what the page offered, which travels
//! sealed in the consent ticket so a forged post can add nothing.
//!
//! Two modes, one parameter ([`AllSites`]): `/internal` offers "all
//! sites" beside the deployment's list; a grant of a person's own key
//! (`/mcp`) offers only the sites named on the key form, so the person
//! must choose a non-empty subset of them.

use super::error::ConsentError;

/// At most this many sites on one grant: a grant that needs more is an
/// "all sites" grant (or several connections).
pub const MAX_CHOSEN_SITES: usize = 20;

/// At most this many checkboxes on the page; a longer listing is cut
/// (the page says so) and "all sites" stays the way to reach the rest.
pub const MAX_OFFERED_SITES: usize = 200;

/// At most this many bytes of site names on the page: they travel sealed
/// in the ticket, and the post (ticket, 20 chosen names, CSRF token) must
/// stay well inside the 32 KiB form ceiling (`limits::MAX_FORM_BODY_BYTES`)
/// whatever the names' lengths.
pub const MAX_OFFERED_BYTES: usize = 12 * 1024;

/// Whether "all sites" is one of the choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllSites {
    /// `/internal`: the default, preselected on the page.
    Offered,
    /// A key grant (`/mcp`): only the sites named on the key form.
    NotOffered,
}

/// What a consent page offers, and so what its post may choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteOffer {
    all: AllSites,
    listed: Vec<String>,
    /// Sites left off the page past [`MAX_OFFERED_SITES`].
    cut: usize,
}

/// The sites a grant may read: `None` is every site the key can read.
pub type GrantSites = Option<Vec<String>>;

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl SiteOffer {
    /// `listed` as offered (`None`: no list, e.g. a key that cannot list
    /// sites), without repeats (ASCII case ignored), at most
    /// [`MAX_OFFERED_SITES`] and [`MAX_OFFERED_BYTES`].
    pub fn new(all: AllSites, listed: Option<Vec<String>>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        let (mut bytes, mut cut) = (0usize, 0usize);
        for site in listed.into_iter().flatten() {
            let site = site.trim().to_owned();
            if site.is_empty() || unique.iter().any(|u| same(u, &site)) {
                continue;
            }
            bytes = bytes.saturating_add(site.len());
            if unique.len() >= MAX_OFFERED_SITES || bytes > MAX_OFFERED_BYTES {
                cut += 1;
            } else {
                unique.push(site);
            }
        }
        Self {
            all,
            listed: unique,
            cut,
        }
    }

    pub fn all_offered(&self) -> bool {
        self.all == AllSites::Offered
    }

    /// The sites to check from.
    pub fn listed(&self) -> &[String] {
        &self.listed
    }

    /// How many sites were left off the page.
    pub fn cut(&self) -> usize {
        self.cut
    }

    /// The sites an Approve post chose. `all_sites` is the radio's value;
    /// `picked` the checked `site` boxes. A post with neither (a page
    /// rendered before the chooser existed, or a client that posts only
    /// the decision) means "all sites" where that is offered.
    pub fn choose(
        &self,
        all_sites: Option<&str>,
        picked: &[String],
    ) -> Result<GrantSites, ConsentError> {
        let everything = match all_sites {
            Some("1") => true,
            Some("0") => false,
            Some(_) => return Err(ConsentError::SitesUnreadable),
            None => picked.is_empty() && self.all_offered(),
        };
        if everything {
            if !self.all_offered() {
                return Err(ConsentError::AllSitesNotOffered);
            }
            if !picked.is_empty() {
                // "All sites" with boxes checked: which did the person
                // mean? Never widen a choice by guessing.
                return Err(ConsentError::SitesAmbiguous);
            }
            return Ok(None);
        }
        let mut chosen: Vec<String> = Vec::new();
        for site in picked {
            let offered = self
                .listed
                .iter()
                .find(|o| same(o, site.trim()))
                .ok_or(ConsentError::SiteNotOffered)?;
            if !chosen.iter().any(|c| same(c, offered)) {
                chosen.push(offered.clone());
            }
        }
        match chosen.len() {
            0 => Err(ConsentError::NoSitesChosen),
            n if n > MAX_CHOSEN_SITES => Err(ConsentError::TooManySites),
            _ => Ok(Some(chosen)),
        }
    }

    /// What a recorded consent's sites give a new grant when the consent
    /// page is skipped, or `None` when they no longer cover the request
    /// (then the page asks again).
    ///
    /// With "all sites" offered (`/internal`) the person's choice is
    /// reused as it stands: a site since removed from the account simply
    /// fails at Plausible. Without it (a key grant), the sites named this
    /// time must all have been approved before, and the grant gets just
    /// those (never more than the person asked for now).
    pub fn reuse(&self, consented: Option<&[String]>) -> Option<GrantSites> {
        match (self.all, consented) {
            (AllSites::Offered, sites) => Some(sites.map(<[String]>::to_vec)),
            (AllSites::NotOffered, _) if self.listed.is_empty() => None,
            (AllSites::NotOffered, None) => Some(Some(self.listed.clone())),
            (AllSites::NotOffered, Some(approved)) => self
                .listed
                .iter()
                .all(|s| approved.iter().any(|a| same(a, s)))
                .then(|| Some(self.listed.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn internal() -> SiteOffer {
        SiteOffer::new(
            AllSites::Offered,
            Some(owned(&["a.example", "b.example", "A.example"])),
        )
    }

    fn key() -> SiteOffer {
        SiteOffer::new(
            AllSites::NotOffered,
            Some(owned(&["a.example", "b.example"])),
        )
    }

    #[test]
    fn an_offer_lists_each_site_once_and_at_most_the_cap() {
        assert_eq!(internal().listed(), owned(&["a.example", "b.example"]));
        let many = (0..MAX_OFFERED_SITES + 5)
            .map(|i| format!("s{i}.example"))
            .collect();
        let big = SiteOffer::new(AllSites::Offered, Some(many));
        assert_eq!((big.listed().len(), big.cut()), (MAX_OFFERED_SITES, 5));
        assert!(SiteOffer::new(AllSites::Offered, None).listed().is_empty());
        // Long names: cut by bytes, so the sealed ticket stays small.
        let long = (0..100)
            .map(|i| format!("{i:03}{}", "x".repeat(250)))
            .collect();
        let cut = SiteOffer::new(AllSites::Offered, Some(long));
        assert_eq!(cut.listed().len(), MAX_OFFERED_BYTES / 253);
        assert_eq!(cut.listed().len() + cut.cut(), 100);
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn choices_and_refusals() {
        let cases: Vec<(
            &str,
            SiteOffer,
            Option<&str>,
            Vec<&str>,
            Result<GrantSites, ConsentError>,
        )> = vec![
            ("all, explicitly", internal(), Some("1"), vec![], Ok(None)),
            ("nothing posted: all", internal(), None, vec![], Ok(None)),
            (
                "one site",
                internal(),
                Some("0"),
                vec!["b.example"],
                Ok(Some(owned(&["b.example"]))),
            ),
            (
                "boxes without the radio",
                internal(),
                None,
                vec!["a.example"],
                Ok(Some(owned(&["a.example"]))),
            ),
            (
                "case and repeats",
                internal(),
                Some("0"),
                vec!["B.Example", "b.example", "a.example"],
                Ok(Some(owned(&["b.example", "a.example"]))),
            ),
            (
                "a site not offered",
                internal(),
                Some("0"),
                vec!["c.example"],
                Err(ConsentError::SiteNotOffered),
            ),
            (
                "only, none checked",
                internal(),
                Some("0"),
                vec![],
                Err(ConsentError::NoSitesChosen),
            ),
            (
                "all and boxes",
                internal(),
                Some("1"),
                vec!["a.example"],
                Err(ConsentError::SitesAmbiguous),
            ),
            (
                "a garbled radio",
                internal(),
                Some("yes"),
                vec![],
                Err(ConsentError::SitesUnreadable),
            ),
            (
                "all is no list",
                SiteOffer::new(AllSites::Offered, None),
                Some("0"),
                vec!["a.example"],
                Err(ConsentError::SiteNotOffered),
            ),
            (
                "key: a subset",
                key(),
                None,
                vec!["a.example"],
                Ok(Some(owned(&["a.example"]))),
            ),
            (
                "key: all refused",
                key(),
                Some("1"),
                vec![],
                Err(ConsentError::AllSitesNotOffered),
            ),
            (
                "key: nothing posted",
                key(),
                None,
                vec![],
                Err(ConsentError::NoSitesChosen),
            ),
            (
                "key: another site",
                key(),
                Some("0"),
                vec!["evil.example"],
                Err(ConsentError::SiteNotOffered),
            ),
        ];
        for (name, offer, all, picked, expected) in cases {
            assert_eq!(offer.choose(all, &owned(&picked)), expected, "{name}");
        }
    }

    #[test]
    fn at_most_twenty_sites_are_chosen() {
        let sites: Vec<String> = (0..=MAX_CHOSEN_SITES)
            .map(|i| format!("s{i}.example"))
            .collect();
        let offer = SiteOffer::new(AllSites::NotOffered, Some(sites.clone()));
        assert_eq!(offer.choose(None, &sites), Err(ConsentError::TooManySites));
        assert_eq!(
            offer.choose(None, &sites[..MAX_CHOSEN_SITES]),
            Ok(Some(sites[..MAX_CHOSEN_SITES].to_vec()))
        );
    }

    #[test]
    fn a_recorded_choice_is_reused_only_while_it_covers_the_request() {
        let a = owned(&["a.example"]);
        let ab = owned(&["a.example", "b.example"]);
        // /internal: whatever the person chose, as chosen.
        let internal = SiteOffer::new(AllSites::Offered, None);
        assert_eq!(internal.reuse(None), Some(None));
        assert_eq!(internal.reuse(Some(&a)), Some(Some(a.clone())));
        // A key grant: the sites named now, if approved before.
        let named_a = SiteOffer::new(AllSites::NotOffered, Some(a.clone()));
        let named_ab = SiteOffer::new(AllSites::NotOffered, Some(ab.clone()));
        assert_eq!(named_a.reuse(Some(&ab)), Some(Some(a.clone())));
        assert_eq!(named_ab.reuse(Some(&a)), None, "b was never approved");
        assert_eq!(named_ab.reuse(Some(&ab)), Some(Some(ab)));
        assert_eq!(
            SiteOffer::new(AllSites::NotOffered, None).reuse(Some(&a)),
            None
        );
    }
}
