//! The upstream OpenID Connect login (Cloudflare Access for SaaS, or the
//! local provider in development): discovery, keys, ID token
//! verification.

pub mod access;
pub mod login;
pub mod provider;
pub mod verify;
