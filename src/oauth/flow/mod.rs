//! The browser side of the authorization flow, as explicit states:
//!
//! validated request → [`login::LoginStart`] (pending upstream) →
//! [`login::LoggedIn`] (authenticated) → [`consent::AfterLogin`]: a
//! recorded consent gives [`consent::Consented`], else a
//! [`consent::ConsentPage`] whose post [`consent::decide`]s →
//! `Consented` → [`issue::issue_code`] (code issued) → redeemed at the
//! token endpoint. A code can only be issued from `Consented`, which only
//! the consent step (and the test-only hook) builds. Every stop is a
//! [`error::FlowError`]; [`browser`] holds the three endpoints.

pub(crate) mod browser;
pub(crate) mod consent;
pub(crate) mod error;
pub(crate) mod issue;
pub(crate) mod key_form;
pub(crate) mod keys;
pub(crate) mod login;
pub(crate) mod login_cookie;
pub(crate) mod principal;
pub(crate) mod reply;
pub(crate) mod sites;
pub(crate) mod ticket;
