//! Who administers connections: `ADMIN_EMAILS`, a comma-separated list
//! of addresses, compared exactly and case-insensitively with the
//! signed-in address (never by domain or prefix: `a@x.com` does not make
//! `a@x.com.evil` or `b@x.com` an admin).

/// The configured admins, lowercased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admins(Vec<String>);

impl Admins {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.unwrap_or("")
                .split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
        )
    }

    /// Whether `email` (as the sign-in admitted it) is an admin.
    pub fn includes(&self, email: &str) -> bool {
        let email = email.trim().to_ascii_lowercase();
        !email.is_empty() && self.0.contains(&email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_case_insensitive_matches_only() {
        let admins = Admins::parse(Some(" Admin@Example.com, ops@example.com ,,"));
        for (email, admin) in [
            ("admin@example.com", true),
            ("ADMIN@example.COM", true),
            ("ops@example.com", true),
            ("admin@example.com.evil", false),
            ("xadmin@example.com", false),
            ("admin@sub.example.com", false),
            ("other@example.com", false),
            ("", false),
        ] {
            assert_eq!(admins.includes(email), admin, "{email}");
        }
        assert!(!Admins::parse(None).includes("admin@example.com"));
        assert!(!Admins::parse(Some(" , ")).includes(""));
    }
}
