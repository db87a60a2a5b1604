use serde_json::Value;

use super::*;
use crate::http::Headers;
use crate::identity;
use crate::oauth::ids::GrantId;
use crate::testing::{FakePlatform, user_keys};

fn headers(ip: &str) -> Headers {
    let mut h = Headers::default();
    h.append(CONNECTING_IP_HEADER, ip);
    h
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

fn alice() -> identity::Identity {
    identity::admit("alice@example.com", Some(true), &["example.com".to_owned()]).unwrap()
}

#[test]
fn a_line_has_every_field_in_order_with_null_where_unknown() {
    let auditor = Auditor::detached(AuditSettings::default());
    let line = auditor.line(
        &Record::new(Event::ConsentDenied, Outcome::Refused),
        UnixMillis(1_700_000_000_123),
    );
    let keys: Vec<String> = match parse(&line) {
        Value::Object(m) => m.keys().cloned().collect(),
        other => panic!("{other}"),
    };
    // serde_json keeps the struct's order only with preserve_order; the
    // set is what operators rely on.
    let mut want: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let mut got = keys;
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let v = parse(&line);
    assert_eq!(v["audit"], 1);
    assert_eq!(v["event"], "consent_denied");
    assert_eq!(v["outcome"], "refused");
    assert_eq!(v["at"], "2023-11-14T22:13:20.123Z");
    for absent in [
        "reason",
        "client_id",
        "user",
        "email",
        "ip",
        "grant",
        "by",
        "action",
    ] {
        assert!(v[absent].is_null(), "{absent}");
    }
}

#[test]
fn the_user_is_its_keyed_hash_and_the_email_only_when_asked() {
    let who = alice();
    let user = UserKey::of_email(&user_keys(), who.email());
    let client = ClientId::parse("pmcp_client").unwrap();
    let grant = GrantId::fixed("g_grant");
    let record = Record::new(Event::CodeIssued, Outcome::Success)
        .client(&client)
        .user(&user)
        .email(&who)
        .grant(&grant);
    let quiet = Auditor::of(AuditSettings::default(), &headers("203.0.113.77"));
    let line = quiet.line(&record, UnixMillis(0));
    assert!(!line.contains("alice"), "{line}");
    assert!(!line.contains("203.0.113.77"), "{line}");
    let v = parse(&line);
    assert_eq!(v["user"], user.as_str());
    assert_eq!(v["client_id"], "pmcp_client");
    assert_eq!(v["grant"], "g_grant");
    assert_eq!(v["ip"], "203.0.113.0/24");
    assert!(v["email"].is_null());

    let loud = Auditor::of(
        AuditSettings {
            log_emails: true,
            full_ip: true,
        },
        &headers("203.0.113.77"),
    );
    let v = parse(&loud.line(&record, UnixMillis(0)));
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["ip"], "203.0.113.77");
}

/// No field takes a free string: a reason or variable is `&'static str`
/// (fixed text in the code), and the rest are ids, enums and the
/// admitted identity. So a token, code or secret, which only ever exists
/// at run time, cannot be handed to a line. This test pins the other half:
/// every value a line can hold is one of those shapes.
#[test]
fn every_value_is_a_fixed_word_an_id_or_a_network() {
    let client = ClientId::parse("pmcp_client").unwrap();
    let user = UserKey::of_email(&user_keys(), "alice@example.com");
    let grant = GrantId::fixed("g_grant");
    let record = Record::new(Event::GrantRevoked, Outcome::Success)
        .reason("rotated-out refresh token reused")
        .client(&client)
        .user(&user)
        .grant(&grant)
        .by(Actor::Replay)
        .action(AdminAction::RevokeUser)
        .variable(crate::config::names::ACCESS_ISSUER);
    let auditor = Auditor::of(AuditSettings::default(), &headers("2001:db8:1:2::9"));
    let v = parse(&auditor.line(&record, UnixMillis(0)));
    assert_eq!(v["by"], "replay");
    assert_eq!(v["action"], "revoke_user");
    assert_eq!(v["variable"], "ACCESS_ISSUER");
    assert_eq!(v["ip"], "2001:db8:1::/48");
    assert_eq!(v["user"].as_str().unwrap().len(), 64);
}

#[test]
fn every_event_has_its_stable_name() {
    let names = [
        (Event::SignIn, "sign_in"),
        (Event::DomainRefused, "domain_refused"),
        (Event::ConsentGiven, "consent_given"),
        (Event::ConsentDenied, "consent_denied"),
        (Event::CodeIssued, "code_issued"),
        (Event::CodeRedeemed, "code_redeemed"),
        (Event::TokenRefreshed, "token_refreshed"),
        (Event::RefreshRetry, "refresh_retry"),
        (Event::GrantRevoked, "grant_revoked"),
        (Event::ReplayDetected, "replay_detected"),
        (Event::RateLimited, "rate_limited"),
        (Event::AdminAction, "admin_action"),
        (Event::Misconfiguration, "misconfiguration"),
    ];
    for (event, name) in names {
        assert_eq!(serde_json::to_value(event).unwrap(), name);
    }
}

#[test]
fn a_misconfiguration_is_reported_once_per_isolate_and_variable() {
    // Each test thread is its own "isolate" (the set is thread-local).
    let platform = FakePlatform::new();
    let auditor = Auditor::detached(AuditSettings::default());
    for _ in 0..3 {
        misconfiguration(&platform, &auditor, "TEST_VARIABLE_A");
    }
    misconfiguration(&platform, &auditor, "TEST_VARIABLE_B");
    let lines = platform.audits.borrow();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let v = parse(&lines[0]);
    assert_eq!(v["event"], "misconfiguration");
    assert_eq!(v["outcome"], "failure");
    assert_eq!(v["variable"], "TEST_VARIABLE_A");
}

#[test]
fn a_rate_limit_hit_names_the_limit_and_client() {
    let platform = FakePlatform::new();
    let auditor = Auditor::of(AuditSettings::default(), &headers("198.51.100.4"));
    let client = ClientId::parse("pmcp_client").unwrap();
    rate_limited(
        &platform,
        &auditor,
        "token endpoint per client",
        Some(&client),
    );
    let v = parse(&platform.audits.borrow()[0]);
    assert_eq!(v["event"], "rate_limited");
    assert_eq!(v["outcome"], "refused");
    assert_eq!(v["reason"], "token endpoint per client");
    assert_eq!(v["client_id"], "pmcp_client");
    assert_eq!(v["ip"], "198.51.100.0/24");
}
