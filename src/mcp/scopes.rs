//! Which OAuth scope each MCP message needs (issue 15): the one table the
//! tokens of both endpoints are checked against, and the check itself.
//!
//! - `sites:read`: which sites the key can read (`list_sites`, the
//!   `plausible://sites` resource, site-name completions);
//! - `stats:read`: everything that reads a site's data, each query tool,
//!   and a site's goals (`list_goals`, `plausible://sites/{id}/goals`):
//!   goal names are what a site measures, not which sites exist;
//! - any one scope: what reads nothing of the account, the same for every
//!   caller: the handshake, `ping`, every listing (`tools/list` shows
//!   every tool, so a client learns what a wider scope would add),
//!   `prompts/get` (a prompt's text is built from its arguments and the
//!   date; the tools it asks for are checked when called), the vocabulary
//!   and chart documents, notifications.
//!
//! Anything this table does not know (an unknown tool, method or URI)
//! needs any one scope: its answer is the protocol error it gets anyway.
//! The known set is closed: the dispatcher answers only a
//! [`Method`](super::method::Method), a tool only a `Tool`, a read only a
//! `Resource` or `Template`, and each is matched here without a wildcard,
//! so a new one does not compile until it has its row.
//! A batch (2025-03-26) runs only if the token meets every element's
//! need; otherwise the whole batch is refused with one challenge naming
//! what all of it needs, before any element runs: a half-run batch would
//! leave the client retrying parts it cannot tell apart.
//! The README's scope table is checked against this module (tests).

use serde_json::{Map, Value};

use super::method::Method;
use crate::http::Response;
use crate::oauth::resource::{Denied, challenge};
use crate::oauth::scope::{Need, Scope, ScopeSet};
use crate::plausible::completion::Target;
use crate::plausible::prompts::{Completes, Prompt};
use crate::plausible::resources::{self, Resource, Template};
use crate::plausible::tools::Tool;

/// The scope a tool needs. A new tool does not compile without a row.
pub(crate) fn tool_scope(tool: Tool) -> Scope {
    match tool {
        Tool::ListSites => Scope::SitesRead,
        Tool::Timeseries
        | Tool::Breakdown
        | Tool::Conversions
        | Tool::ComparePeriods
        | Tool::RealtimeVisitors
        | Tool::ListGoals
        | Tool::QueryStats
        | Tool::FindAnomalies
        | Tool::MeasureChange => Scope::StatsRead,
    }
}

/// What reading `uri` needs.
pub(crate) fn resource_need(uri: &str) -> Need {
    match Resource::parse(uri) {
        Some(Resource::Sites) => Need::Scope(Scope::SitesRead),
        Some(Resource::Vocabulary | Resource::Chart) => Need::AnyScope,
        None => match Template::ALL
            .into_iter()
            .find(|t| template_matches(*t, uri))
        {
            Some(Template::SiteGoals) => Need::Scope(Scope::StatsRead),
            None => Need::AnyScope,
        },
    }
}

fn template_matches(template: Template, uri: &str) -> bool {
    match template {
        Template::SiteGoals => resources::goals_site(uri).is_ok(),
    }
}

/// What completing an argument needs: site names are site discovery.
fn completes_need(completes: Completes) -> Need {
    match completes {
        Completes::Sites => Need::Scope(Scope::SitesRead),
        Completes::Choices(_) | Completes::Nothing => Need::AnyScope,
    }
}

fn str_at<'p>(params: Option<&'p Map<String, Value>>, field: &str) -> Option<&'p str> {
    params.and_then(|p| p.get(field)).and_then(Value::as_str)
}

/// What one message (by its method and params) needs. A method this
/// server does not answer needs any one scope: it gets method-not-found
/// whatever the token holds. Every method it does answer has its row
/// here, with no wildcard (see [`Method`]).
pub(crate) fn need(method: &str, params: Option<&Map<String, Value>>) -> Need {
    let Some(method) = Method::parse(method) else {
        return Need::AnyScope;
    };
    match method {
        Method::Initialize
        | Method::Ping
        | Method::ServerDiscover
        | Method::ToolsList
        | Method::PromptsList
        | Method::PromptsGet
        | Method::ResourcesList
        | Method::ResourcesTemplatesList => Need::AnyScope,
        Method::ToolsCall => str_at(params, "name")
            .and_then(Tool::parse)
            .map_or(Need::AnyScope, |t| Need::Scope(tool_scope(t))),
        Method::ResourcesRead => str_at(params, "uri").map_or(Need::AnyScope, resource_need),
        Method::CompletionComplete => completion_need(params),
    }
}

fn completion_need(params: Option<&Map<String, Value>>) -> Need {
    let reference = params.and_then(|p| p.get("ref")).and_then(Value::as_object);
    let argument = params
        .and_then(|p| p.get("argument"))
        .and_then(Value::as_object);
    let Some(name) = str_at(argument, "name") else {
        return Need::AnyScope;
    };
    let target = match str_at(reference, "type") {
        Some("ref/prompt") => str_at(reference, "name")
            .and_then(Prompt::parse)
            .map(Target::Prompt),
        Some("ref/resource") => str_at(reference, "uri")
            .and_then(Template::parse)
            .map(Target::Template),
        _ => None,
    };
    target
        .and_then(|t| t.completes(name))
        .map_or(Need::AnyScope, completes_need)
}

/// What the credential of an MCP request may do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Authority<'a> {
    /// A Plausible key sent as the bearer (`/mcp`), or a Cloudflare
    /// Access identity (`/internal`): no OAuth scopes, all the key reads.
    Unscoped,
    /// One of our access tokens: its scopes, and the RFC 9728 metadata
    /// URL of the endpoint called, for the challenge.
    Token {
        scope: &'a ScopeSet,
        resource_metadata: &'a str,
    },
}

impl Authority<'_> {
    /// `None` when these needs may run; else the 403 step-up challenge.
    pub(crate) fn refuse(&self, needs: impl IntoIterator<Item = Need>) -> Option<Response> {
        match self {
            Authority::Unscoped => None,
            Authority::Token {
                scope,
                resource_metadata,
            } => scope
                .shortfall(needs)
                .map(|short| challenge(&Denied::InsufficientScope(short), resource_metadata)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Option<Map<String, Value>> {
        v.as_object().cloned()
    }

    const STATS: Need = Need::Scope(Scope::StatsRead);
    const SITES: Need = Need::Scope(Scope::SitesRead);

    #[test]
    fn every_tool_of_the_catalogue_has_a_row() {
        let listed = crate::plausible::tools::definitions(false);
        assert_eq!(listed.len(), Tool::ALL.len());
        for definition in listed {
            let name = definition["name"].as_str().unwrap();
            let tool = Tool::parse(name).unwrap();
            let expected = if tool == Tool::ListSites {
                SITES
            } else {
                STATS
            };
            assert_eq!(
                need("tools/call", params(json!({"name": name})).as_ref()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn methods_resources_and_completions() {
        let cases = [
            ("initialize", json!({}), Need::AnyScope),
            ("ping", json!({}), Need::AnyScope),
            ("tools/list", json!({}), Need::AnyScope),
            (
                "prompts/get",
                json!({"name": "weekly_report"}),
                Need::AnyScope,
            ),
            ("tools/call", json!({"name": "nope"}), Need::AnyScope),
            ("tools/call", json!({"name": 7}), Need::AnyScope),
            ("tools/call", json!({}), Need::AnyScope),
            ("no/such/method", json!({}), Need::AnyScope),
            ("resources/read", json!({"uri": "plausible://sites"}), SITES),
            (
                "resources/read",
                json!({"uri": "plausible://vocabulary"}),
                Need::AnyScope,
            ),
            (
                "resources/read",
                json!({"uri": crate::plausible::ui::CHART_URI}),
                Need::AnyScope,
            ),
            (
                "resources/read",
                json!({"uri": "plausible://sites/a.example/goals"}),
                STATS,
            ),
            (
                "resources/read",
                json!({"uri": "plausible://sites/a%20b/goals"}),
                Need::AnyScope,
            ),
            (
                "resources/read",
                json!({"uri": "plausible://nothing"}),
                Need::AnyScope,
            ),
            (
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "weekly_report"}, "argument": {"name": "site", "value": "a"}}),
                SITES,
            ),
            (
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "traffic_drop_check"}, "argument": {"name": "window", "value": ""}}),
                Need::AnyScope,
            ),
            (
                "completion/complete",
                json!({"ref": {"type": "ref/resource", "uri": "plausible://sites/{site_id}/goals"}, "argument": {"name": "site_id", "value": "a"}}),
                SITES,
            ),
            (
                "completion/complete",
                json!({"ref": {"type": "ref/prompt", "name": "weekly_report"}, "argument": {"name": "nope", "value": "a"}}),
                Need::AnyScope,
            ),
            ("completion/complete", json!({}), Need::AnyScope),
        ];
        for (method, p, expected) in cases {
            assert_eq!(
                need(method, params(p.clone()).as_ref()),
                expected,
                "{method} {p}"
            );
        }
        for r in Resource::ALL {
            // Every listed resource is classified without its URI falling
            // through to "unknown".
            let n = resource_need(r.uri());
            assert_eq!(n == SITES, r == Resource::Sites, "{r:?}");
        }
    }

    #[test]
    fn authority_refuses_with_the_step_up_challenge() {
        let meta = "https://mcp.example.com/.well-known/oauth-protected-resource/internal";
        let sites_only = ScopeSet::parse(Some("sites:read")).unwrap();
        let token = Authority::Token {
            scope: &sites_only,
            resource_metadata: meta,
        };
        assert!(token.refuse([SITES, Need::AnyScope]).is_none());
        assert!(Authority::Unscoped.refuse([STATS]).is_none());
        let r = token.refuse([STATS]).unwrap();
        assert_eq!(r.status, 403);
        let header = r.headers.get("www-authenticate").unwrap();
        assert_eq!(
            header,
            format!(
                "Bearer realm=\"plausible-mcp\", resource_metadata=\"{meta}\", scope=\"sites:read stats:read\", error=\"insufficient_scope\", error_description=\"This call needs the stats:read scope\""
            )
        );
        assert!(!header.contains("offline_access"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "sites:read stats:read");
    }

    /// The README table's rows for `method`: each row's label and the
    /// params of a request it stands for. Exhaustive over [`Method`], so
    /// a new method does not compile until it has its rows.
    fn representatives(method: Method) -> Vec<(String, Value)> {
        let quoted = |s: &str| format!("`{s}`");
        match method {
            Method::Initialize
            | Method::Ping
            | Method::ServerDiscover
            | Method::ToolsList
            | Method::PromptsList
            | Method::ResourcesList
            | Method::ResourcesTemplatesList => vec![(quoted(method.as_str()), json!({}))],
            // One row for every prompt: each must need the same.
            Method::PromptsGet => Prompt::ALL
                .iter()
                .map(|p| (quoted("prompts/get"), json!({"name": p.name()})))
                .collect(),
            Method::ToolsCall => Tool::ALL
                .iter()
                .map(|t| {
                    (
                        format!("`tools/call` `{}`", t.name()),
                        json!({"name": t.name()}),
                    )
                })
                .collect(),
            Method::ResourcesRead => Resource::ALL
                .iter()
                .map(|r| r.uri().to_owned())
                .map(|uri| (format!("`resources/read` `{uri}`"), json!({"uri": uri})))
                .chain(Template::ALL.iter().map(|t| {
                    let uri = t
                        .variables()
                        .iter()
                        .fold(t.uri_template().to_owned(), |u, v| {
                            u.replace(&format!("{{{v}}}"), "example.com")
                        });
                    (
                        format!("`resources/read` `{}`", t.uri_template()),
                        json!({"uri": uri}),
                    )
                }))
                .collect(),
            Method::CompletionComplete => Template::ALL
                .iter()
                .flat_map(|t| {
                    t.variables().iter().map(|v| {
                        (
                            format!("`completion/complete` of `{}`", t.uri_template()),
                            json!({"ref": {"type": "ref/resource", "uri": t.uri_template()},
                                   "argument": {"name": v, "value": ""}}),
                        )
                    })
                })
                .chain(Prompt::ALL.iter().flat_map(|p| {
                    p.arguments(false).into_iter().map(|a| {
                        (
                            format!("`completion/complete` of `{}` `{}`", p.name(), a.name),
                            json!({"ref": {"type": "ref/prompt", "name": p.name()},
                                   "argument": {"name": a.name, "value": ""}}),
                        )
                    })
                }))
                .collect(),
        }
    }

    /// The README's table of methods and tools and the scopes they need
    /// says what [`need`] answers: each row is computed by asking it
    /// about a request the row stands for, so reclassifying anything
    /// fails here until the README says so too, and the README has no
    /// row beyond these.
    #[test]
    fn the_readme_table_matches_this_module() {
        let readme = include_str!("../../README.md");
        let cell = |n: Need| match n {
            Need::AnyScope => "any one scope".to_owned(),
            Need::Scope(s) => format!("`{}`", s.as_str()),
        };
        // Notifications never reach the table (they are answered 202
        // before it is asked): they meet only the floor every token of
        // ours is held to, one scope this server knows.
        let mut rows = vec![("`notifications/*`".to_owned(), cell(Need::AnyScope))];
        for method in Method::ALL {
            for (label, p) in representatives(method) {
                let row = (label, cell(need(method.as_str(), params(p).as_ref())));
                if !rows.contains(&row) {
                    rows.push(row);
                }
            }
        }
        for (i, (label, _)) in rows.iter().enumerate() {
            assert!(
                rows.iter().skip(i + 1).all(|(l, _)| l != label),
                "{label} needs different scopes for different requests"
            );
        }
        let rows: Vec<String> = rows
            .into_iter()
            .map(|(label, need)| format!("| {label} | {need} |"))
            .collect();
        let documented: Vec<&str> = readme
            .lines()
            .filter(|l| {
                l.starts_with("| `")
                    && ["| any one scope |", "| `sites:read` |", "| `stats:read` |"]
                        .iter()
                        .any(|end| l.ends_with(end))
            })
            .collect();
        let extra: Vec<&&str> = documented
            .iter()
            .filter(|l| !rows.iter().any(|r| r == *l))
            .collect();
        assert!(
            extra.is_empty(),
            "README rows this module does not imply: {extra:?}"
        );
        let missing: Vec<&String> = rows
            .iter()
            .filter(|r| !readme.contains(r.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "README rows missing or different:\n{}",
            missing
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
