//! A login's browser-binding cookie: its name, and its sealed value
//! split over up to [`MAX_COOKIE_PARTS`] `__Host-` cookies (a browser
//! keeps at most 4096 bytes of name and value, RFC 6265 §6.1).

use std::time::Duration;

use crate::crypto;
use crate::http::{Headers, cookie};
use crate::oauth::ids::LoginId;
use crate::secret::SetCookie;

/// How long a login may take, end to end.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(600);

/// The browser-binding cookies' name prefix. `__Host-` forces Secure,
/// Path=/ and no Domain, so no subdomain can set or read them
/// (RFC 6265bis §4.1.3.2).
pub const LOGIN_COOKIE_PREFIX: &str = "__Host-pmcp_login_";

/// The cookie of one login.
pub fn login_cookie_name(login_id: &LoginId) -> String {
    let tag: String = crypto::short_hash(login_id.as_str())
        .chars()
        .take(16)
        .collect();
    format!("{LOGIN_COOKIE_PREFIX}{tag}")
}

/// A `Set-Cookie` value that deletes the named cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}
/// The longest cookie value part we set: with the name (at most 36
/// characters) it stays under the 4096 bytes a browser keeps.
pub const COOKIE_PART_LEN: usize = 3900;
/// How many cookies one login may take.
pub const MAX_COOKIE_PARTS: usize = 3;

/// The names of a login's cookie parts, first to last.
fn cookie_part_names(name: &str) -> impl Iterator<Item = String> + '_ {
    (0..MAX_COOKIE_PARTS).map(move |i| match i {
        0 => name.to_owned(),
        i => format!("{name}_{i}"),
    })
}

/// A login cookie's value: its parts, joined in order (a missing part
/// ends it).
pub fn read_login_cookie(headers: &Headers, name: &str) -> Option<String> {
    let mut parts = cookie_part_names(name).map_while(|n| cookie(headers, &n));
    let mut value = parts.next()?;
    for part in parts {
        value.push_str(&part);
    }
    Some(value)
}

/// `Set-Cookie` values that delete every part of a login's cookie.
pub fn clear_login_cookie(name: &str) -> Vec<SetCookie> {
    cookie_part_names(name)
        .map(|n| SetCookie::new(clear_cookie(&n)))
        .collect()
}

/// `Set-Cookie` values carrying `value` in parts, or `None` when it
/// needs more than [`MAX_COOKIE_PARTS`].
pub(super) fn set_login_cookie(name: &str, value: &str) -> Option<Vec<SetCookie>> {
    let parts: Vec<&str> = value
        .as_bytes()
        .chunks(COOKIE_PART_LEN)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    if parts.is_empty() || parts.len() > MAX_COOKIE_PARTS || parts.concat() != value {
        return None;
    }
    Some(
        cookie_part_names(name)
            .zip(parts)
            .map(|(n, part)| {
                SetCookie::new(format!(
                    "{n}={part}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
                    LOGIN_LIFETIME.as_secs()
                ))
            })
            .collect(),
    )
}
