//! The request methods this server answers, as one closed type.
//!
//! The dispatcher answers only what [`Method::parse`] accepts (anything
//! else is method-not-found before a handler sees it), and the scope
//! table ([`super::scopes::need`]) matches on this type without a
//! wildcard: a method added here does not compile until it says which
//! scope it needs, and one not added here cannot be answered.

/// One request method (MCP 2025-03-26 to 2026-07-28, "Server Features",
/// "Utilities" and the 2026-07-28 `server/discover`). Which revisions
/// answer each is the dispatcher's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Initialize,
    Ping,
    ServerDiscover,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    ResourcesRead,
    ResourcesTemplatesList,
    CompletionComplete,
}

impl Method {
    pub(crate) const ALL: [Method; 11] = [
        Method::Initialize,
        Method::Ping,
        Method::ServerDiscover,
        Method::ToolsList,
        Method::ToolsCall,
        Method::PromptsList,
        Method::PromptsGet,
        Method::ResourcesList,
        Method::ResourcesRead,
        Method::ResourcesTemplatesList,
        Method::CompletionComplete,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ServerDiscover => "server/discover",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesList => "resources/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesTemplatesList => "resources/templates/list",
            Method::CompletionComplete => "completion/complete",
        }
    }

    /// Method names are case-sensitive (JSON-RPC 2.0 §4).
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        for other in ["Ping", "tools/list ", "", "notifications/initialized"] {
            assert_eq!(Method::parse(other), None, "{other:?}");
        }
    }
}
