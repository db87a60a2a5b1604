//! Names of Workers bindings and variables, in one place. They are the
//! ones deployments of the TypeScript plausible-mcp already use, so
//! operators can migrate without renaming secrets.

// The binding names are read by the Workers glue only.
/// KV namespace holding clients and token records.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const OAUTH_KV: &str = "OAUTH_KV";
/// Durable Object namespace serialising per-client approval state.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const CLIENT_LEDGER: &str = "CLIENT_LEDGER";
/// Durable Object namespace of the per-(client, user) grant objects.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const GRANT_LEDGER: &str = "GRANT_LEDGER";
/// Durable Object namespace of the sharded single-use record of login
/// states and consent tickets.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const USED_STATES: &str = "USED_STATES";
/// Durable Object namespace of the per-user directories.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const USER_DIRECTORY: &str = "USER_DIRECTORY";

pub const PLAUSIBLE_API_KEY: &str = "PLAUSIBLE_API_KEY";
pub const PLAUSIBLE_BASE_URL: &str = "PLAUSIBLE_BASE_URL";
pub const PLAUSIBLE_DEFAULT_SITE_ID: &str = "PLAUSIBLE_DEFAULT_SITE_ID";
pub const MCP_ALLOWED_HOSTNAMES: &str = "MCP_ALLOWED_HOSTNAMES";
pub const MCP_ALLOWED_ORIGIN_HOSTNAMES: &str = "MCP_ALLOWED_ORIGIN_HOSTNAMES";
pub const ALLOWED_EMAIL_DOMAIN: &str = "ALLOWED_EMAIL_DOMAIN";
pub const ACCESS_ISSUER: &str = "ACCESS_ISSUER";
pub const ACCESS_CLIENT_ID: &str = "ACCESS_CLIENT_ID";
pub const ACCESS_CLIENT_SECRET: &str = "ACCESS_CLIENT_SECRET";
pub const CF_ACCESS_TEAM_DOMAIN: &str = "CF_ACCESS_TEAM_DOMAIN";
pub const CF_ACCESS_AUD: &str = "CF_ACCESS_AUD";
pub const COOKIE_SECRET: &str = "COOKIE_SECRET";
/// The `COOKIE_SECRET` before a rotation: opens and verifies what it
/// sealed or signed; nothing new is made with it.
pub const COOKIE_SECRET_PREVIOUS: &str = "COOKIE_SECRET_PREVIOUS";
/// The kill switch: an RFC 3339 time; grants created before it are
/// refused (their tokens at `/internal`, their refresh at `/token`).
pub const TOKENS_NOT_BEFORE: &str = "TOKENS_NOT_BEFORE";
/// Redirect hosts of clients offered the `/mcp` key form (issue 15):
/// comma-separated hostnames, default `claude.ai,claude.com`; loopback
/// hosts always.
pub const BYOK_REDIRECT_HOSTS: &str = "BYOK_REDIRECT_HOSTS";
/// Days a consent is honoured (default 90).
pub const CONSENT_TTL_DAYS: &str = "CONSENT_TTL_DAYS";
/// Comma-separated addresses of the connections page's admins.
pub const ADMIN_EMAILS: &str = "ADMIN_EMAILS";
/// `true`: audit lines carry the person's email beside its keyed hash.
pub const AUDIT_LOG_EMAILS: &str = "AUDIT_LOG_EMAILS";
/// `true`: audit lines carry whole client addresses instead of their
/// /24 (IPv4) or /48 (IPv6).
pub const AUDIT_IP_FULL: &str = "AUDIT_IP_FULL";
/// Derives user keys, routing ids and token tags; never rotated.
pub const USER_KEY_SECRET: &str = "USER_KEY_SECRET";
pub const ACCESS_TOKEN_TTL: &str = "ACCESS_TOKEN_TTL";
pub const REFRESH_TOKEN_TTL: &str = "REFRESH_TOKEN_TTL";
pub const AUTHORIZATION_CODE_TTL: &str = "AUTHORIZATION_CODE_TTL";
/// Seconds a verified access-token record is kept in the isolate's
/// memory for `/internal` (default and most 60, KV's propagation window;
/// 0 turns the memory off).
pub const TOKEN_CACHE_SECONDS: &str = "TOKEN_CACHE_SECONDS";
/// Set only by the local development configuration: permits plain-http
/// loopback targets for client metadata documents and the upstream IdP.
pub const DEV_ALLOW_LOOPBACK: &str = "DEV_ALLOW_LOOPBACK";
/// Test build only (feature `test-hooks`): lets `/authorize` take the
/// user from an `X-Test-Identity` header. Honoured only on loopback
/// hosts, which a deployed worker never is.
#[cfg(feature = "test-hooks")]
pub const TEST_IDENTITY_HOOK: &str = "TEST_IDENTITY_HOOK";
/// Test build only: milliseconds every KV and Durable Object storage
/// operation waits first, as at the edge (the scale benchmark).
#[cfg(feature = "test-hooks")]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const TEST_STORAGE_LATENCY_MS: &str = "TEST_STORAGE_LATENCY_MS";
/// Test build only: `<prefix> <attempts>` makes the first `attempts`
/// KV deletes of each key starting with `prefix` fail (`test_hooks`).
#[cfg(feature = "test-hooks")]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub const TEST_KV_FAIL_DELETES: &str = "TEST_KV_FAIL_DELETES";
/// Test build only: `per-client` routes every (client, user) pair of a
/// client to one grant object, the previous release's layout, so the
/// scale benchmark can set the two side by side.
#[cfg(feature = "test-hooks")]
pub const TEST_GRANT_LAYOUT: &str = "TEST_GRANT_LAYOUT";
/// Sites `/internal` lists when its key cannot use the Sites API:
/// `domain[:timezone]`, comma-separated.
pub const PLAUSIBLE_SITES: &str = "PLAUSIBLE_SITES";
/// Seconds identical Stats API answers are served from the edge cache
/// (default 60; 0 turns it off).
pub const PLAUSIBLE_CACHE_TTL: &str = "PLAUSIBLE_CACHE_TTL";
/// The test build only: a comma-separated list of rate-limit tiers to
/// skip (`refreshes`, `mcp-credential`, …), for the storage issue's
/// 1,000-refresh test and the benchmark's credential. The release build
/// has no such name (see `limits::switched_off`).
#[cfg(feature = "test-hooks")]
pub const TEST_RATE_LIMITS_OFF: &str = "TEST_RATE_LIMITS_OFF";

#[cfg(test)]
mod tests {
    /// Every variable the worker reads is documented: the README's
    /// configuration table names each one (issue 11). The list is the
    /// deployment's input list, which its own test ties to the loaders.
    #[test]
    fn every_variable_read_is_in_the_readme_configuration_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md at the crate root");
        let table: Vec<&str> = readme
            .lines()
            .filter(|l| l.starts_with('|'))
            .collect::<Vec<_>>();
        let missing: Vec<&str> = crate::config::deployment::inputs()
            .iter()
            .copied()
            .filter(|name| !name.starts_with("TEST_"))
            .filter(|name| !table.iter().any(|row| row.contains(&format!("`{name}`"))))
            .collect();
        assert!(
            missing.is_empty(),
            "missing from the README's table: {missing:?}"
        );
    }
}
