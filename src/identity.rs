//! Who may use the server: the email-domain gate that every sign-in
//! passes (the upstream login, Cloudflare Access assertions), and the
//! admitted person it yields.

use crate::secret::Email;

/// A signed-in person who passed the gate. Built only by [`admit`].
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    email: Email,
}

/// The email is personal data: `Debug` shows only its domain.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let domain = self
            .email
            .secret()
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("");
        write!(f, "Identity(…@{domain})")
    }
}

/// Why a person is not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No usable email address.
    NoEmail,
    /// The provider says the address is not verified.
    Unverified,
    /// The domain is not in `ALLOWED_EMAIL_DOMAIN` (or none is configured).
    Domain,
}

/// Admits an email if its domain is exactly one of `allowed`,
/// case-insensitively: `a@sub.example.com` and `a@example.com.evil` do
/// not pass for `example.com`. With no allowed domains, nobody passes.
pub fn admit(email: &str, verified: Option<bool>, allowed: &[String]) -> Result<Identity, Refused> {
    let email = email.trim().to_ascii_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(Refused::NoEmail);
    };
    // A second `@` (RFC 5322 §3.4.1 allows one only inside a quoted local
    // part, which no provider we federate to issues) makes the address
    // read as two domains: refused, whichever side a reader would pick.
    if local.is_empty()
        || domain.is_empty()
        || local.contains('@')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Refused::NoEmail);
    }
    if verified == Some(false) {
        return Err(Refused::Unverified);
    }
    if !allowed.iter().any(|d| d == domain) {
        return Err(Refused::Domain);
    }
    Ok(Identity {
        email: Email::new(email),
    })
}

impl Identity {
    /// The admitted address, lowercased. Personal data: never log it.
    pub fn email(&self) -> &str {
        self.email.secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_gate() {
        let allowed = vec!["example.com".to_owned(), "b.io".to_owned()];
        let cases = [
            ("alice@example.com", None, Ok("alice@example.com")),
            ("Alice@EXAMPLE.com", Some(true), Ok("alice@example.com")),
            ("bob@b.io", None, Ok("bob@b.io")),
            ("a@sub.example.com", None, Err(Refused::Domain)),
            ("a@example.com.evil.io", None, Err(Refused::Domain)),
            ("a@notexample.com", None, Err(Refused::Domain)),
            ("a@example.co", None, Err(Refused::Domain)),
            ("a@example.com", Some(false), Err(Refused::Unverified)),
            ("example.com", None, Err(Refused::NoEmail)),
            ("@example.com", None, Err(Refused::NoEmail)),
            ("a b@example.com", None, Err(Refused::NoEmail)),
            ("a@evil.io@example.com", None, Err(Refused::NoEmail)),
            ("\"a@evil.io\"@example.com", None, Err(Refused::NoEmail)),
            ("", None, Err(Refused::NoEmail)),
        ];
        for (email, verified, expected) in cases {
            let got = admit(email, verified, &allowed);
            assert_eq!(
                got.as_ref().map(Identity::email).map_err(|e| *e),
                expected,
                "{email}"
            );
        }
        assert_eq!(admit("a@example.com", None, &[]), Err(Refused::Domain));
    }

    #[test]
    fn debug_shows_only_the_domain() {
        let id = admit("alice@example.com", None, &["example.com".to_owned()]).unwrap();
        assert_eq!(format!("{id:?}"), "Identity(…@example.com)");
    }
}
