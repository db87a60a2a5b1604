//! Connected applications, for the people who connected them and for
//! admins: the `/connections` page.
//!
//! A person signs in through the same upstream login as an authorization
//! (its own purpose, see `flow::login::Purpose`), gets a short-lived
//! session cookie ([`session`]), and sees every pair of their user
//! directory with what its grant object holds ([`listing`]); one click
//! ends a pair's grants, tokens and consent (the pair's own step of a
//! revoke-all, `ledger::revoke_all`). Admins (`ADMIN_EMAILS`, [`admins`])
//! also look up any user or client, revoke all of either (the listings'
//! fan-out), and block a client ([`block`]). Nothing scans: the pages
//! read a user's directory or a client's index, then one summary per
//! listed pair.
//!
//! - [`session`]: the session cookie and the CSRF token bound to it;
//! - [`key_session`]: the same for a Plausible key (issue 15: on `/mcp`
//!   the user is the key), opened by approving a key grant in this
//!   browser or by entering the key again;
//! - [`sealed_session`]: what the two share: the sealed `__Host-` cookie
//!   and the CSRF token bound to its session id;
//! - [`admins`]: who is an admin;
//! - [`block`]: blocked clients;
//! - [`listing`]: the rows a page shows, assembled from the listings;
//! - [`viewer`]: which sessions a request carries, the signed-out page,
//!   and the key entered again;
//! - [`error`]: the page's refusals, mapped once;
//! - [`endpoint`]: the page's GET, its sign-in, and its POSTed actions.

pub(crate) mod admins;
pub(crate) mod block;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod key_session;
pub(crate) mod listing;
pub(crate) mod sealed_session;
pub(crate) mod session;
pub(crate) mod viewer;
