//! The directory, the index and the revoke-all fan-out, through the
//! typed clients and the objects' alarm runs on the in-memory platform.

use super::client::*;
use super::object::FanOut;
use super::records::ListedPair;
use crate::oauth::ids::{RoutingId, UserKey};
use crate::oauth::ledger::client::Ledger;
use crate::oauth::ledger::protocol::RedeemCode;
use crate::oauth::ledger::records::{GrantRecord, StorageKey, access_key};
use crate::oauth::ledger::test_world::{World, code_record, h, tokens};
use crate::oauth::types::ClientId;
use crate::ports::Clock;
use crate::testing::{FakePlatform, block_on, user_keys};

fn client(n: u32) -> ClientId {
    ClientId::parse(&format!("pmcp_client_{n}")).unwrap()
}

fn user(n: u32) -> UserKey {
    UserKey::of_email(&user_keys(), &format!("u{n}@example.com"))
}

/// A pair of `client` and `user` with one live grant (access token
/// `at<n>`), listed as the flow lists it.
fn connect(p: &FakePlatform, client: &ClientId, user: &UserKey, n: u32) -> RoutingId {
    let routing = RoutingId::of(&user_keys(), client.as_str(), user);
    let now = p.now().as_secs();
    let mut record = code_record(now, &format!("g{n}"));
    record.client_id = Some(client.clone());
    record.issued_at = Some(now);
    let ledger = Ledger::pair(p, routing);
    let unlisted = block_on(ledger.issue_code(h(&format!("c{n}")), record)).unwrap();
    if unlisted {
        let pair = ListedPair {
            client_id: client.clone(),
            routing,
            first_connected: now,
        };
        block_on(list_pair(p, user, pair)).unwrap();
    }
    let redeem = RedeemCode {
        client_id: client.clone(),
        code_hash: h(&format!("c{n}")),
        tokens: tokens(n),
        ..World::redeem_request()
    };
    block_on(ledger.redeem_code(redeem)).unwrap().unwrap();
    routing
}

fn live(p: &FakePlatform, n: u32) -> bool {
    p.kv.borrow()
        .contains_key(&access_key(&h(&format!("at{n}"))))
}

fn grant(p: &FakePlatform, routing: &RoutingId, n: u32) -> GrantRecord {
    let key = StorageKey::Grant(crate::oauth::ids::GrantId::fixed(&format!("g{n}"))).encode();
    let store = p.ledgers.borrow()[&routing.object_name()].clone();
    serde_json::from_value(store.entries.borrow()[&key].clone()).unwrap()
}

#[test]
fn a_pair_is_listed_once_in_the_directory_and_the_index() {
    let p = FakePlatform::new();
    let (alice, a, b) = (user(1), client(1), client(2));
    let ra = connect(&p, &a, &alice, 1);
    let dir = Listing::Directory(alice.clone());
    let dir_writes = || p.ledgers.borrow()[&p.listing_store_name(&dir)].writes.get();
    assert_eq!(dir_writes(), 1);
    // A second device (second grant, same pair): no listing write.
    p.advance(std::time::Duration::from_secs(10));
    connect(&p, &a, &alice, 2);
    assert_eq!(dir_writes(), 1, "listed once per pair");
    connect(&p, &b, &alice, 3);
    let listed = block_on(Directory::of(&p, &alice).list()).unwrap();
    let mut clients: Vec<_> = listed.pairs.iter().map(|l| l.client_id.clone()).collect();
    clients.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(clients, vec![a.clone(), b.clone()]);
    let first = listed.pairs.iter().find(|l| l.client_id == a).unwrap();
    assert_eq!(
        (first.routing, first.first_connected),
        (ra, p.now().as_secs() - 10),
        "first connection kept"
    );
    assert_eq!(listed.revoking, None);
    let index = block_on(Index::of(&p, &a).pairs(None, 10)).unwrap();
    assert_eq!(index.pairs.len(), 1);
    assert_eq!(index.pairs[0].routing, ra);
}

#[test]
fn the_index_pages_in_routing_order() {
    let p = FakePlatform::new();
    let a = client(1);
    let mut routings: Vec<_> = (1..=5).map(|n| connect(&p, &a, &user(n), n)).collect();
    routings.sort_by_key(|r| r.to_hex());
    let index = Index::of(&p, &a);
    let one = block_on(index.pairs(None, 2)).unwrap();
    let two = block_on(index.pairs(one.next.clone(), 2)).unwrap();
    let three = block_on(index.pairs(two.next.clone(), 2)).unwrap();
    let seen: Vec<_> = [&one, &two, &three]
        .iter()
        .flat_map(|page| page.pairs.iter().map(|l| l.routing))
        .collect();
    assert_eq!(seen, routings);
    assert!(one.next.is_some() && two.next.is_some() && three.next.is_none());
}

#[test]
fn revoke_all_for_user_fans_out_in_bounded_runs_and_retries_a_failing_pair() {
    let p = FakePlatform::new();
    let alice = user(1);
    let mut pairs: Vec<(RoutingId, u32)> = (1..=5)
        .map(|n| (connect(&p, &client(n), &alice, n), n))
        .collect();
    pairs.sort_by_key(|(r, _)| r.to_hex());
    // Someone else's grant with one of the same clients.
    let bob = connect(&p, &client(1), &user(2), 9);
    let marked_at = p.now().as_secs();
    let writes = p.storage_writes();
    block_on(revoke_all_for_user(&p, &alice, marked_at)).unwrap();
    assert_eq!(p.storage_writes(), writes + 1, "one marker written");
    assert!(live(&p, 1), "nothing revoked before the alarm runs");
    let (first, _) = pairs[0];
    p.failing.borrow_mut().insert(first.object_name());
    let dir = Listing::Directory(alice.clone());
    let mut runs = Vec::new();
    loop {
        let reads = p.reads.get();
        let outcome = p.run_fan_out(&dir, 2);
        assert!(p.reads.get() - reads <= 2, "at most 2 pair calls a run");
        runs.push(outcome);
        if outcome != (FanOut::Again { delay_secs: 0 }) {
            break;
        }
        assert!(runs.len() < 10);
    }
    // The failing pair held the marker back; the run that only retried
    // it waits before the next try.
    assert_eq!(runs.last(), Some(&FanOut::Again { delay_secs: 30 }));
    for (routing, n) in &pairs[1..] {
        assert!(grant(&p, routing, *n).revoked);
        assert!(!live(&p, *n), "access record {n} left KV");
    }
    assert!(live(&p, pairs[0].1), "the failing pair is not done yet");
    let status = block_on(Directory::of(&p, &alice).list()).unwrap();
    assert_eq!(status.revoking, Some(marked_at));
    // The object recovers: the next run finishes.
    p.failing.borrow_mut().clear();
    assert_eq!(p.run_fan_out(&dir, 2), FanOut::Done);
    assert!(grant(&p, &pairs[0].0, pairs[0].1).revoked);
    assert_eq!(p.run_fan_out(&dir, 2), FanOut::Idle);
    assert!(
        block_on(Directory::of(&p, &alice).list())
            .unwrap()
            .revoking
            .is_none()
    );
    // Bob's grant with the same client is untouched.
    assert!(live(&p, 9) && !grant(&p, &bob, 9).revoked);
}

#[test]
fn a_grant_made_after_the_marker_survives_the_fan_out() {
    let p = FakePlatform::new();
    let alice = user(1);
    let routing = connect(&p, &client(1), &alice, 1);
    block_on(revoke_all_for_user(&p, &alice, p.now().as_secs())).unwrap();
    p.advance(std::time::Duration::from_secs(1));
    // Reconnected before the alarm reached the pair: a second grant.
    connect(&p, &client(1), &alice, 2);
    let dir = Listing::Directory(alice.clone());
    assert_eq!(p.run_fan_out(&dir, 50), FanOut::Done);
    assert!(grant(&p, &routing, 1).revoked && !live(&p, 1));
    assert!(!grant(&p, &routing, 2).revoked && live(&p, 2));
}

#[test]
fn revoke_all_for_client_ends_every_users_grants_and_the_legacy_ones() {
    let p = FakePlatform::new();
    let a = client(1);
    let pairs: Vec<_> = (1..=3).map(|n| (connect(&p, &a, &user(n), n), n)).collect();
    let other = connect(&p, &client(2), &user(1), 7);
    // A grant of the previous release, in the client's own ledger.
    let legacy = Ledger::of(&p, &a);
    let record = code_record(p.now().as_secs(), "g8");
    block_on(legacy.issue_code(h("c8"), record)).unwrap();
    let redeem = RedeemCode {
        client_id: a.clone(),
        code_hash: h("c8"),
        tokens: tokens(8),
        ..World::redeem_request()
    };
    block_on(legacy.redeem_code(redeem)).unwrap().unwrap();
    assert!(live(&p, 8));
    block_on(revoke_all_for_client(&p, &a, p.now().as_secs())).unwrap();
    let index = Listing::Index(a.clone());
    assert_eq!(p.run_fan_out(&index, 2), FanOut::Again { delay_secs: 0 });
    assert!(!live(&p, 8), "the legacy grant ended in the first run");
    assert_eq!(p.run_fan_out(&index, 2), FanOut::Done);
    for (routing, n) in &pairs {
        assert!(grant(&p, routing, *n).revoked && !live(&p, *n));
    }
    assert!(live(&p, 7) && !grant(&p, &other, 7).revoked, "other client");
}

#[test]
fn a_failed_listing_fails_the_code_and_the_next_code_lists_again() {
    let p = FakePlatform::new();
    let (alice, a) = (user(1), client(1));
    let dir = Listing::Directory(alice.clone());
    p.failing.borrow_mut().insert(p.listing_store_name(&dir));
    let routing = RoutingId::of(&user_keys(), a.as_str(), &alice);
    let pair = ListedPair {
        client_id: a.clone(),
        routing,
        first_connected: 1,
    };
    assert!(block_on(list_pair(&p, &alice, pair.clone())).is_err());
    let mut record = code_record(p.now().as_secs(), "g1");
    record.client_id = Some(a.clone());
    let ledger = Ledger::pair(&p, routing);
    assert!(block_on(ledger.issue_code(h("c1"), record.clone())).unwrap());
    p.failing.borrow_mut().clear();
    block_on(list_pair(&p, &alice, pair)).unwrap();
    assert!(!block_on(ledger.issue_code(h("c2"), record)).unwrap());
}

#[test]
fn a_later_marker_restarts_the_fan_out_and_an_earlier_one_changes_nothing() {
    let p = FakePlatform::new();
    let alice = user(1);
    let pairs: Vec<_> = (1..=3)
        .map(|n| (connect(&p, &client(n), &alice, n), n))
        .collect();
    let first = p.now().as_secs();
    block_on(revoke_all_for_user(&p, &alice, first)).unwrap();
    let dir = Listing::Directory(alice.clone());
    assert_eq!(p.run_fan_out(&dir, 1), FanOut::Again { delay_secs: 0 });
    // The person reconnects a client, then everything is revoked again.
    p.advance(std::time::Duration::from_secs(5));
    let reconnected = connect(&p, &client(1), &alice, 4);
    let second = p.now().as_secs();
    block_on(revoke_all_for_user(&p, &alice, second)).unwrap();
    // An earlier marker arriving late does not lower the bar.
    block_on(revoke_all_for_user(&p, &alice, first)).unwrap();
    let status = block_on(Directory::of(&p, &alice).list()).unwrap();
    assert_eq!(status.revoking, Some(second));
    let mut runs = 0;
    while p.run_fan_out(&dir, 1) != FanOut::Done {
        runs += 1;
        assert!(runs < 10);
    }
    assert!(runs >= 2, "restarted from the first pair: {runs}");
    for (routing, n) in &pairs {
        assert!(grant(&p, routing, *n).revoked, "grant {n}");
    }
    assert!(grant(&p, &reconnected, 4).revoked && !live(&p, 4));
}
