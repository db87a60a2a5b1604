//! Which users may hold a consent the previous release recorded in a
//! client's legacy ledger, known once per isolate instead of asked per
//! sign-in.
//!
//! A person signing in with no consent in their pair's object yet might
//! have approved this client under the previous release, whose consents
//! live in the client's one `ClientLedger`. Asking that object on every
//! such sign-in queues every new user of a client behind it. But no
//! legacy consent is written after the upgrade (new consents, even those
//! approved on a ticket the previous release issued, go to pair objects),
//! so the set of legacy user keys holding one only shrinks. The client's
//! ledger answers that set once (bounded); this isolate keeps it, and
//! only a user whose legacy key is in the set is looked up. A set kept a
//! while is a superset of the truth, which costs at most a read.
//!
//! One call at a time per client and isolate: a sign-in that finds the
//! call in flight does not ask again, and looks its user up as before
//! instead of waiting for the answer. Waiting would share a promise
//! across requests, which workerd cancels as a hung request (a request
//! may only wait on its own I/O; measured: the scale benchmark's first
//! wave failed with "the Worker's code had hung"). So a burst of new
//! users in a cold isolate costs one set call plus, for the sign-ins
//! during that call only, the per-user read of before.
#![allow(async_fn_in_trait)]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::client::{Coordinator, Ledger};
use crate::oauth::ids::UserKey;
use crate::oauth::types::ClientId;
use crate::ports::{Clock, Log};

/// The most legacy consents a client's ledger lists. Past it the answer
/// says "incomplete", and every user is looked up as before: correct,
/// only not cheaper.
pub const MAX_LEGACY_CONSENTS: u32 = 4096;
/// How long an isolate keeps a client's set (seconds). Keeping it longer
/// is never wrong (the set only shrinks); refreshing lets it shrink.
pub const KEEP_SECS: u64 = 600;
/// Hex characters of a legacy user key kept per entry: 64 bits, enough
/// that a stranger's key matching is a one-read false positive, never a
/// wrong answer (the consent itself is still read and checked).
pub const MARK_LEN: usize = 16;
/// Clients whose sets one isolate keeps at most.
const MAX_CLIENTS: usize = 256;

/// The mark of a legacy user key in a set.
pub fn mark(user: &UserKey) -> &str {
    let key = user.as_str();
    key.get(..MARK_LEN).unwrap_or(key)
}

/// One client's legacy consents, as the isolate knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyUsers {
    marks: HashSet<String>,
    /// All of them: a user not in `marks` has none.
    complete: bool,
}

impl LegacyUsers {
    pub fn new(marks: impl IntoIterator<Item = String>, complete: bool) -> Self {
        Self {
            marks: marks.into_iter().collect(),
            complete,
        }
    }

    /// Not known (the call failed, or the set was too large): every user
    /// may hold one.
    pub fn unknown() -> Self {
        Self::new([], false)
    }

    /// Whether the legacy ledger may hold a consent of this legacy user.
    pub fn may_hold(&self, legacy_user: &UserKey) -> bool {
        !self.complete || self.marks.contains(mark(legacy_user))
    }
}

enum Slot {
    Known {
        users: Rc<LegacyUsers>,
        until: u64,
    },
    /// A call is in flight.
    Asking,
}

/// The isolate's sets, by client. One per isolate (the worker keeps it
/// in a thread-local: an isolate runs one thread).
#[derive(Default)]
pub struct LegacyConsentCache {
    slots: RefCell<HashMap<String, Slot>>,
}

impl LegacyConsentCache {
    fn insert(&self, client: &ClientId, slot: Slot, now: u64) {
        let mut slots = self.slots.borrow_mut();
        if slots.len() >= MAX_CLIENTS && !slots.contains_key(client.as_str()) {
            slots.retain(|_, s| match s {
                Slot::Known { until, .. } => *until > now,
                Slot::Asking => true,
            });
            if slots.len() >= MAX_CLIENTS {
                slots.retain(|_, s| matches!(s, Slot::Asking));
            }
        }
        slots.insert(client.as_str().to_owned(), slot);
    }
}

/// The port: this isolate's [`LegacyConsentCache`].
pub trait LegacyConsentMemory {
    fn legacy_consents(&self) -> &LegacyConsentCache;
}

/// Clears a call's `Asking` slot however the call ends (a dropped
/// request included), so the next sign-in asks again.
struct Asking<'a> {
    cache: &'a LegacyConsentCache,
    client: &'a ClientId,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        let mut slots = self.cache.slots.borrow_mut();
        if matches!(slots.get(self.client.as_str()), Some(Slot::Asking)) {
            slots.remove(self.client.as_str());
        }
    }
}

/// The legacy consents of `client`: from this isolate's memory, or from
/// one call to the client's ledger. While that call is in flight, and
/// when it fails (logged), the answer is [`LegacyUsers::unknown`]: every
/// user is looked up, as before. It never fails a sign-in by itself.
pub async fn legacy_users<P: Coordinator + Clock + Log + LegacyConsentMemory + ?Sized>(
    platform: &P,
    client: &ClientId,
) -> Rc<LegacyUsers> {
    let cache = platform.legacy_consents();
    let now = platform.now().as_secs();
    match cache.slots.borrow().get(client.as_str()) {
        Some(Slot::Known { users, until }) if *until > now => return users.clone(),
        Some(Slot::Asking) => return Rc::new(LegacyUsers::unknown()),
        _ => {}
    }
    cache.insert(client, Slot::Asking, now);
    let asking = Asking { cache, client };
    let users = match Ledger::of(platform, client)
        .legacy_consent_users(MAX_LEGACY_CONSENTS)
        .await
    {
        Ok((marks, complete)) => {
            let users = Rc::new(LegacyUsers::new(marks, complete));
            let until = now.saturating_add(KEEP_SECS);
            cache.insert(
                client,
                Slot::Known {
                    users: users.clone(),
                    until,
                },
                now,
            );
            users
        }
        Err(e) => {
            platform.warn(&format!("legacy consent set: storage failed: {}", e.0));
            Rc::new(LegacyUsers::unknown())
        }
    };
    drop(asking);
    users
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use futures_channel::oneshot;
    use futures_executor::LocalPool;
    use futures_util::FutureExt;
    use futures_util::future::Shared;
    use futures_util::task::LocalSpawnExt;
    use serde_json::{Value, json};

    use super::*;
    use crate::oauth::ledger::client::Address;
    use crate::oauth::ledger::protocol::Message;
    use crate::ports::{StorageError, UnixMillis};

    /// The ledger's answer, when the test says go.
    type Go = Shared<oneshot::Receiver<Result<Value, String>>>;

    /// A ledger whose answer waits for the test's go, counting calls.
    struct Gated {
        cache: LegacyConsentCache,
        now: Cell<u64>,
        calls: Cell<usize>,
        go: RefCell<Option<Go>>,
        logs: RefCell<Vec<String>>,
    }

    impl Gated {
        fn new() -> (Rc<Self>, oneshot::Sender<Result<Value, String>>) {
            let (tx, rx) = oneshot::channel();
            let g = Self {
                cache: LegacyConsentCache::default(),
                now: Cell::new(1_000_000),
                calls: Cell::new(0),
                go: RefCell::new(Some(rx.shared())),
                logs: RefCell::default(),
            };
            (Rc::new(g), tx)
        }
    }

    impl Coordinator for Gated {
        async fn ledger(&self, address: &Address, message: Message) -> Result<Value, StorageError> {
            assert!(matches!(address, Address::Client(_)));
            assert!(matches!(message, Message::LegacyConsentUsers(_)));
            self.calls.set(self.calls.get() + 1);
            let go = self.go.borrow().clone().unwrap();
            match go.await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(why)) => Err(StorageError(why)),
                Err(_) => Err(StorageError("gone".into())),
            }
        }
    }

    impl Clock for Gated {
        fn now(&self) -> UnixMillis {
            UnixMillis(self.now.get() * 1000)
        }
    }

    impl Log for Gated {
        fn warn(&self, message: &str) {
            self.logs.borrow_mut().push(message.to_owned());
        }
    }

    impl LegacyConsentMemory for Gated {
        fn legacy_consents(&self) -> &LegacyConsentCache {
            &self.cache
        }
    }

    fn client() -> ClientId {
        ClientId::parse("pmcp_client_legacy").unwrap()
    }

    fn alice() -> UserKey {
        UserKey::legacy_of_email("alice@example.com")
    }

    fn bob() -> UserKey {
        UserKey::legacy_of_email("bob@example.com")
    }

    fn answer(marks: &[&UserKey], complete: bool) -> Value {
        let marks: Vec<&str> = marks.iter().map(|u| mark(u)).collect();
        json!({"result": "users", "marks": marks, "complete": complete})
    }

    /// Starts `n` concurrent lookups; their answers land in the vector.
    fn start(pool: &LocalPool, g: &Rc<Gated>, n: usize) -> Rc<RefCell<Vec<Rc<LegacyUsers>>>> {
        let out = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..n {
            let (g, out) = (g.clone(), out.clone());
            pool.spawner()
                .spawn_local(async move {
                    let users = legacy_users(g.as_ref(), &client()).await;
                    out.borrow_mut().push(users);
                })
                .unwrap();
        }
        out
    }

    #[test]
    fn fifty_concurrent_sign_ins_make_one_call_and_never_wait_on_it() {
        let (g, go) = Gated::new();
        let mut pool = LocalPool::new();
        let out = start(&pool, &g, 50);
        pool.run_until_stalled();
        // One call; the 49 others answered at once: look the user up.
        assert_eq!((g.calls.get(), out.borrow().len()), (1, 49));
        assert!(out.borrow().iter().all(|u| u.may_hold(&bob())));
        go.send(Ok(answer(&[&alice()], true))).unwrap();
        pool.run_until_stalled();
        let last = out.borrow()[49].clone();
        assert!(last.may_hold(&alice()) && !last.may_hold(&bob()));
        // Kept: later sign-ins make no call until it is stale.
        let later = start(&pool, &g, 3);
        pool.run_until_stalled();
        assert_eq!((g.calls.get(), later.borrow().len()), (1, 3));
        assert!(later.borrow().iter().all(|u| !u.may_hold(&bob())));
        g.now.set(g.now.get() + KEEP_SECS);
        let stale = start(&pool, &g, 1);
        pool.run_until_stalled();
        assert_eq!((g.calls.get(), stale.borrow().len()), (2, 1), "asked again");
    }

    #[test]
    fn a_client_without_legacy_consents_holds_none_for_anyone() {
        let (g, go) = Gated::new();
        let mut pool = LocalPool::new();
        let first = start(&pool, &g, 1);
        go.send(Ok(answer(&[], true))).unwrap();
        pool.run_until_stalled();
        let later = start(&pool, &g, 2);
        pool.run_until_stalled();
        assert!(
            first
                .borrow()
                .iter()
                .chain(later.borrow().iter())
                .all(|u| !u.may_hold(&alice()))
        );
        assert_eq!(g.calls.get(), 1);
    }

    #[test]
    fn an_incomplete_or_failed_answer_means_every_user_is_looked_up() {
        let (g, go) = Gated::new();
        let mut pool = LocalPool::new();
        let out = start(&pool, &g, 1);
        go.send(Ok(answer(&[&alice()], false))).unwrap();
        pool.run_until_stalled();
        assert!(out.borrow()[0].may_hold(&bob()), "more than the bound");

        let (g, go) = Gated::new();
        let out = start(&pool, &g, 1);
        pool.run_until_stalled();
        go.send(Err("injected".into())).unwrap();
        pool.run_until_stalled();
        assert!(out.borrow()[0].may_hold(&bob()));
        assert_eq!(g.logs.borrow().len(), 1, "{:?}", g.logs.borrow());
        assert!(!g.logs.borrow()[0].contains("example.com"));
        // Nothing kept after a failure: the next sign-in asks again.
        let again = start(&pool, &g, 1);
        pool.run_until_stalled();
        assert_eq!((g.calls.get(), again.borrow().len()), (2, 1));
    }

    #[test]
    fn a_dropped_asker_clears_its_slot() {
        let (g, _go) = Gated::new();
        // The asker: polled until it waits for the ledger, then dropped.
        let id = client();
        let mut asker = legacy_users(g.as_ref(), &id).boxed_local();
        let noop = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&noop);
        assert!(asker.poll_unpin(&mut cx).is_pending());
        assert_eq!(g.cache.slots.borrow().len(), 1);
        drop(asker);
        assert!(g.cache.slots.borrow().is_empty(), "the next sign-in asks");
    }

    #[test]
    fn marks_are_a_prefix_of_the_legacy_key() {
        let users = LegacyUsers::new([mark(&alice()).to_owned()], true);
        assert!(users.may_hold(&alice()) && !users.may_hold(&bob()));
        assert_eq!(mark(&alice()).len(), MARK_LEN);
    }
}
