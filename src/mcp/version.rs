//! The MCP protocol revisions served, and how a request picks one.

/// A protocol revision this server implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Revision {
    /// Streamable HTTP introduced; batches allowed; no version header.
    V2025_03_26,
    /// `MCP-Protocol-Version` header; batches removed; structured output.
    V2025_06_18,
    /// Origin rejection is 403; CIMD.
    V2025_11_25,
    /// Stateless: no `initialize`, per-request `_meta`, `server/discover`,
    /// `Mcp-Method`/`Mcp-Name` headers, `resultType`.
    V2026_07_28,
}

impl Revision {
    /// Newest first.
    pub(crate) const ALL: [Revision; 4] = [
        Revision::V2026_07_28,
        Revision::V2025_11_25,
        Revision::V2025_06_18,
        Revision::V2025_03_26,
    ];

    /// The newest revision negotiated through `initialize`.
    pub(crate) const LATEST_LEGACY: Revision = Revision::V2025_11_25;

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Revision::V2025_03_26 => "2025-03-26",
            Revision::V2025_06_18 => "2025-06-18",
            Revision::V2025_11_25 => "2025-11-25",
            Revision::V2026_07_28 => "2026-07-28",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Revisions with per-request metadata instead of a handshake.
    pub(crate) fn is_modern(self) -> bool {
        self >= Revision::V2026_07_28
    }

    /// JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18).
    pub(crate) fn allows_batches(self) -> bool {
        self == Revision::V2025_03_26
    }

    /// The `initialize` answer: the client's revision when we serve it,
    /// otherwise our latest handshake revision (MCP 2025-11-25 lifecycle,
    /// "Version Negotiation").
    pub(crate) fn negotiate(requested: Option<&str>) -> Revision {
        requested
            .and_then(Revision::parse)
            .filter(|r| !r.is_modern())
            .unwrap_or(Revision::LATEST_LEGACY)
    }

    pub(crate) fn supported_list() -> Vec<&'static str> {
        Self::ALL.iter().map(|r| r.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_served_handshake_revisions() {
        let cases = [
            (Some("2025-03-26"), Revision::V2025_03_26),
            (Some("2025-06-18"), Revision::V2025_06_18),
            (Some("2025-11-25"), Revision::V2025_11_25),
            (Some("2024-11-05"), Revision::V2025_11_25),
            (Some("2099-01-01"), Revision::V2025_11_25),
            (Some("2026-07-28"), Revision::V2025_11_25),
            (None, Revision::V2025_11_25),
        ];
        for (requested, expected) in cases {
            assert_eq!(Revision::negotiate(requested), expected, "{requested:?}");
        }
    }

    #[test]
    fn only_2025_03_26_allows_batches() {
        for r in Revision::ALL {
            assert_eq!(r.allows_batches(), r == Revision::V2025_03_26);
        }
    }
}
