//! The isolate's memory of verified access-token records, in front of
//! `/internal`'s one KV read (issue 12).
//!
//! The rules that keep it from widening what a token may do:
//! - Only a record that was just read from storage **and** admitted the
//!   call is remembered; unknown or refused tokens never are (a fresh
//!   token's KV lag must not be remembered as "unknown").
//! - An entry lives at most `TOKEN_CACHE_SECONDS` (at most 60 s, the
//!   propagation window Workers KV documents for a write to reach every
//!   location, so a revocation made elsewhere is honoured here no later
//!   than KV alone would honour it), and never past the record's own
//!   expiry.
//! - A revocation made through this isolate (`/revoke`, a grant the
//!   ledger refused at `/token`, a revoke-all) forgets the affected
//!   entries at once, and a read that was in flight across it is not
//!   remembered (the epoch below).
//! - Every check `/internal` makes on a record (expiry, resource, scope,
//!   `TOKENS_NOT_BEFORE`) runs again on every hit: the memory saves the
//!   read, never a check (`resource::authorize`).
//! - Keyed by the token's SHA-256 ([`TokenHash`]), never the token.
//! - Bounded: past [`TokenCache::CAPACITY`] entries the expired ones go,
//!   then the least recently used.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use super::ids::{RoutingId, TokenHash, UserKey};
use super::ledger::records::AccessRecord;
use super::types::ClientId;
use crate::crypto::UserKeys;
use crate::ports::UnixMillis;

/// The port: this isolate's one memory (the Workers glue keeps it in a
/// thread-local; tests hold their own).
pub trait TokenMemory {
    fn token_memory(&self) -> &RefCell<TokenCache>;
}

#[derive(Debug)]
struct Entry {
    record: AccessRecord,
    until: UnixMillis,
    /// The tick of the last hit, for least-recently-used eviction.
    used: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    entries: HashMap<TokenHash, Entry>,
    capacity: usize,
    tick: u64,
    /// Bumped by every forget: a read that began under an older epoch
    /// may have raced a revocation and is not remembered.
    epoch: u64,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(Self::CAPACITY)
    }
}

impl TokenCache {
    /// Enough for every token a busy isolate sees within a minute; an
    /// entry is a few hundred bytes.
    pub const CAPACITY: usize = 1024;

    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
            tick: 0,
            epoch: 0,
        }
    }

    /// The remembered record, if it is still within its time.
    pub fn recall(&mut self, hash: &TokenHash, now: UnixMillis) -> Option<AccessRecord> {
        self.tick = self.tick.wrapping_add(1);
        let tick = self.tick;
        match self.entries.get_mut(hash) {
            Some(entry) if now < entry.until => {
                entry.used = tick;
                Some(entry.record.clone())
            }
            Some(_) => {
                self.entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Taken before a storage read, handed back to [`Self::remember`].
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Remembers a record read under `epoch` and just admitted, for `ttl`
    /// and no longer than its own expiry.
    pub fn remember(
        &mut self,
        hash: TokenHash,
        record: AccessRecord,
        now: UnixMillis,
        ttl: Duration,
        epoch: u64,
    ) {
        let until = now
            .plus(ttl)
            .min(UnixMillis(record.expires_at.saturating_mul(1000)));
        if epoch != self.epoch || until <= now || self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&hash) {
            self.entries.retain(|_, e| now < e.until);
        }
        if self.entries.len() >= self.capacity
            && !self.entries.contains_key(&hash)
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(h, _)| h.clone())
        {
            self.entries.remove(&oldest);
        }
        self.tick = self.tick.wrapping_add(1);
        let used = self.tick;
        self.entries.insert(
            hash,
            Entry {
                record,
                until,
                used,
            },
        );
    }

    fn forget_where(&mut self, doomed: impl Fn(&AccessRecord) -> bool) {
        self.epoch = self.epoch.wrapping_add(1);
        self.entries.retain(|_, e| !doomed(&e.record));
    }

    /// One access token was revoked.
    pub fn forget_token(&mut self, hash: &TokenHash) {
        self.epoch = self.epoch.wrapping_add(1);
        self.entries.remove(hash);
    }

    /// A grant of this client may have ended (a refresh token revoked, a
    /// refresh or code refused by the ledger, which revokes on reuse):
    /// the client's entries go. Forgetting more than the one grant costs
    /// only reads.
    pub fn forget_client(&mut self, client: &ClientId) {
        self.forget_where(|r| &r.client_id == client);
    }

    /// Every grant of this user may have ended (a revoke-all).
    pub fn forget_user(&mut self, user: &UserKey) {
        self.forget_where(|r| &r.subject.user_key == user);
    }

    /// Every grant of one (client, user) pair ended (a revocation on the
    /// connections page, which names the pair by its routing id only).
    pub fn forget_pair(&mut self, keys: &UserKeys, pair: RoutingId) {
        self.forget_where(|r| {
            RoutingId::of(keys, r.client_id.as_str(), &r.subject.user_key) == pair
        });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ids::GrantId;
    use crate::oauth::ledger::records::Subject;
    use crate::oauth::types::ScopeSet;

    const T0: u64 = 1_800_000_000;
    const MINUTE: Duration = Duration::from_secs(60);

    fn at(secs: u64) -> UnixMillis {
        UnixMillis(secs * 1000)
    }

    fn record(client: &str, user: &str, expires_at: u64) -> AccessRecord {
        AccessRecord {
            sites: None,
            client_id: ClientId::parse(client).unwrap(),
            grant_id: GrantId::fixed("g1"),
            scope: serde_json::from_value::<ScopeSet>(serde_json::json!(["mcp"])).unwrap(),
            resource: crate::testing::resource("https://mcp.example.com/internal"),
            subject: Subject {
                user_key: UserKey::legacy_of_email(user),
                sealed_props: "s".into(),
                kind: None,
            },
            expires_at,
            grant_created_at: Some(0),
        }
    }

    fn put(c: &mut TokenCache, token: &str, r: AccessRecord, now: u64) {
        let epoch = c.epoch();
        c.remember(TokenHash::of(token), r, at(now), MINUTE, epoch);
    }

    #[test]
    fn a_hit_within_the_window_and_a_miss_from_60_s() {
        let mut c = TokenCache::default();
        let r = record("pmcp_client_A", "a@example.com", T0 + 3600);
        put(&mut c, "t1", r.clone(), T0);
        assert_eq!(c.recall(&TokenHash::of("t1"), at(T0)), Some(r.clone()));
        assert_eq!(
            c.recall(&TokenHash::of("t1"), UnixMillis((T0 + 60) * 1000 - 1)),
            Some(r)
        );
        assert_eq!(c.recall(&TokenHash::of("t1"), at(T0 + 60)), None);
        assert_eq!(c.len(), 0, "an expired entry goes when met");
        assert_eq!(c.recall(&TokenHash::of("t2"), at(T0)), None);
    }

    /// Issue 15: a remembered record keeps its grant's sites, so a call
    /// answered from memory is limited as one read from KV.
    #[test]
    fn a_remembered_record_keeps_its_sites() {
        let mut c = TokenCache::default();
        let mut r = record("pmcp_client_A", "a@example.com", T0 + 3600);
        r.sites = Some(vec!["shop.example.com".into()]);
        put(&mut c, "t1", r, T0);
        let recalled = c.recall(&TokenHash::of("t1"), at(T0)).unwrap();
        assert_eq!(recalled.sites, Some(vec!["shop.example.com".to_owned()]));
    }

    #[test]
    fn never_past_the_tokens_own_expiry() {
        let mut c = TokenCache::default();
        put(
            &mut c,
            "t1",
            record("pmcp_client_A", "a@example.com", T0 + 10),
            T0,
        );
        assert!(c.recall(&TokenHash::of("t1"), at(T0 + 9)).is_some());
        assert_eq!(c.recall(&TokenHash::of("t1"), at(T0 + 10)), None);
        // Already expired, or a zero window: not remembered at all.
        put(
            &mut c,
            "t2",
            record("pmcp_client_A", "a@example.com", T0),
            T0,
        );
        let epoch = c.epoch();
        c.remember(
            TokenHash::of("t3"),
            record("pmcp_client_A", "a@example.com", T0 + 3600),
            at(T0),
            Duration::ZERO,
            epoch,
        );
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn local_revocations_forget_at_once() {
        let mut c = TokenCache::default();
        put(
            &mut c,
            "a1",
            record("pmcp_client_A", "a@example.com", T0 + 3600),
            T0,
        );
        put(
            &mut c,
            "a2",
            record("pmcp_client_A", "b@example.com", T0 + 3600),
            T0,
        );
        put(
            &mut c,
            "b1",
            record("pmcp_client_B", "a@example.com", T0 + 3600),
            T0,
        );
        put(
            &mut c,
            "b2",
            record("pmcp_client_B", "c@example.com", T0 + 3600),
            T0,
        );
        let hit = |c: &mut TokenCache, t: &str| c.recall(&TokenHash::of(t), at(T0 + 1)).is_some();

        c.forget_token(&TokenHash::of("b2"));
        assert!(!hit(&mut c, "b2") && hit(&mut c, "b1"));
        c.forget_client(&ClientId::parse("pmcp_client_A").unwrap());
        assert!(!hit(&mut c, "a1") && !hit(&mut c, "a2") && hit(&mut c, "b1"));
        c.forget_user(&UserKey::legacy_of_email("a@example.com"));
        assert!(!hit(&mut c, "b1"));
        assert_eq!(c.len(), 0);
        // A pair: that client's records of that user, no other.
        for (t, client, who) in [
            ("p1", "pmcp_client_A", "a@example.com"),
            ("p2", "pmcp_client_A", "b@example.com"),
            ("p3", "pmcp_client_B", "a@example.com"),
        ] {
            put(&mut c, t, record(client, who, T0 + 3600), T0);
        }
        let keys = crate::testing::user_keys();
        let pair = RoutingId::of(
            &keys,
            "pmcp_client_A",
            &UserKey::legacy_of_email("a@example.com"),
        );
        c.forget_pair(&keys, pair);
        assert!(!hit(&mut c, "p1") && hit(&mut c, "p2") && hit(&mut c, "p3"));
    }

    #[test]
    fn a_read_in_flight_across_a_revocation_is_not_remembered() {
        let mut c = TokenCache::default();
        let epoch = c.epoch();
        // The read starts; meanwhile this isolate revokes the token.
        c.forget_token(&TokenHash::of("t1"));
        c.remember(
            TokenHash::of("t1"),
            record("pmcp_client_A", "a@example.com", T0 + 3600),
            at(T0),
            MINUTE,
            epoch,
        );
        assert_eq!(c.recall(&TokenHash::of("t1"), at(T0)), None);
    }

    #[test]
    fn bounded_expired_first_then_least_recently_used() {
        let mut c = TokenCache::new(3);
        let r = |exp| record("pmcp_client_A", "a@example.com", exp);
        put(&mut c, "short", r(T0 + 5), T0);
        put(&mut c, "t1", r(T0 + 3600), T0);
        put(&mut c, "t2", r(T0 + 3600), T0);
        // `short` has expired by now: it makes room.
        put(&mut c, "t3", r(T0 + 3600), T0 + 10);
        assert_eq!(c.len(), 3);
        assert!(c.recall(&TokenHash::of("short"), at(T0 + 10)).is_none());
        // t1 was used since t2: t2 is the least recently used.
        assert!(c.recall(&TokenHash::of("t1"), at(T0 + 11)).is_some());
        put(&mut c, "t4", r(T0 + 3600), T0 + 12);
        assert_eq!(c.len(), 3);
        assert!(c.recall(&TokenHash::of("t2"), at(T0 + 12)).is_none());
        for t in ["t1", "t3", "t4"] {
            assert!(c.recall(&TokenHash::of(t), at(T0 + 12)).is_some(), "{t}");
        }
        // Re-remembering a present token evicts nothing.
        put(&mut c, "t4", r(T0 + 3600), T0 + 13);
        assert_eq!(c.len(), 3);
    }
}
