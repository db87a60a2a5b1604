//! `list_sites` and `list_goals`: from the Sites API when the key may
//! use it, otherwise from what the deployment or the Stats API can say.

use serde_json::{Map, Value, json};

use super::{CallError, Outcome, ToolContext, field};
use crate::plausible::args::{self, ArgReader, DateRange};
use crate::plausible::query::{Grouping, Query};
use crate::plausible::render;
use crate::plausible::upstream::{SitesError, Upstream};
use crate::plausible::vocabulary::{Dimension, Metric};
use crate::ports::{Clock, EdgeCache, Outbound};

fn with_note<P: Outbound + Clock + EdgeCache>(up: &Upstream<'_, P>, text: String) -> String {
    match up.cache_note() {
        Some(note) => format!("{text}\n\n{note}"),
        None => text,
    }
}

pub(super) async fn list_sites<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    ArgReader::new(arguments).finish()?;
    type Listing = Vec<(String, Option<String>)>;
    let (sites, source, why): (Listing, &str, Option<String>) = match up.sites().await {
        Ok(list) => (
            list.into_iter().map(|s| (s.domain, s.timezone)).collect(),
            "sites_api",
            None,
        ),
        Err(SitesError::Plausible(e)) => {
            return Err(CallError::Message(e.message("(all sites)")));
        }
        Err(e) => {
            let why = match e {
                    SitesError::NotAvailable(status) => format!(
                        "Plausible refused to list sites for this key (HTTP {status}): listing sites needs a Sites API key (Enterprise plans); a Stats API key can only query sites by name."
                    ),
                    _ => "This key cannot list sites (Plausible refused it earlier; not asked again for an hour).".to_owned(),
                };
            if !ctx.configured_sites.is_empty() {
                (
                    ctx.configured_sites
                        .iter()
                        .map(|s| (s.domain.as_str().to_owned(), s.timezone.clone()))
                        .collect(),
                    "configured",
                    Some(why),
                )
            } else if let Some(site) = &ctx.default_site {
                (
                    vec![(site.as_str().to_owned(), None)],
                    "default_site",
                    Some(why),
                )
            } else {
                (Vec::new(), "none", Some(why))
            }
        }
    };
    // A grant limited to chosen sites (issue 15) shows only those: the
    // listing filtered, or, when the key cannot list, the grant's own.
    let (sites, source, why) = match ctx.allowed_sites.listed() {
        None => (sites, source, why),
        Some(_) if source == "sites_api" => (
            sites
                .into_iter()
                .filter(|(d, _)| ctx.allowed_sites.allows(d))
                .collect(),
            source,
            why,
        ),
        Some(granted) => (
            granted
                .iter()
                .map(|site| {
                    let timezone = ctx
                        .configured_sites
                        .iter()
                        .find(|c| c.domain.as_str().eq_ignore_ascii_case(site.as_str()))
                        .and_then(|c| c.timezone.clone());
                    (site.as_str().to_owned(), timezone)
                })
                .collect(),
            "grant",
            None,
        ),
    };
    let rows: Vec<Vec<Value>> = sites
        .iter()
        .map(|(d, tz)| vec![json!(d), tz.clone().map_or(Value::Null, Value::from)])
        .collect();
    let heading = match source {
        "sites_api" => format!("{} site(s) from Plausible's Sites API", sites.len()),
        "configured" => format!(
            "{} site(s) configured on this server (PLAUSIBLE_SITES)",
            sites.len()
        ),
        "default_site" => "This server's default site".to_owned(),
        "grant" => format!(
            "{} site(s) this connection may read (chosen when it was approved)",
            sites.len()
        ),
        _ => "No sites can be listed".to_owned(),
    };
    let mut text = heading;
    if source == "sites_api" && ctx.allowed_sites.listed().is_some() {
        text.push_str(" that this connection may read (chosen when it was approved)");
    }
    if !rows.is_empty() {
        text.push_str("\n\n");
        text.push_str(&render::table(
            &["site_id".into(), "timezone".into()],
            &rows,
        ));
    }
    if let Some(why) = &why {
        text.push_str(&format!("\n\n{why}"));
        if source == "none" {
            text.push_str(" Name the site instead: site_id is the domain exactly as it appears in Plausible (e.g. \"example.com\"); ask the user for it.");
        }
    }
    Ok(Outcome::Success {
        text: with_note(up, text),
        structured: json!({
            "source": source,
            "sites": sites.iter().map(|(d, tz)| json!({"site_id": d, "timezone": tz})).collect::<Vec<_>>(),
            "message": why,
        }),
    })
}

pub(super) async fn list_goals<P: Outbound + Clock + EdgeCache>(
    up: &Upstream<'_, P>,
    ctx: &ToolContext,
    arguments: Option<Map<String, Value>>,
) -> Result<Outcome, CallError> {
    let mut a = ArgReader::new(arguments);
    let site = args::site_id(&mut a, ctx.default_site.as_ref())?;
    a.finish()?;
    ctx.allowed_sites.check(&site)?;
    let fail = |e| CallError::Plausible(e, site.clone());
    let (goals, source): (Vec<Value>, &str) = match up.goals(&site).await {
        Ok(list) => (
            list.into_iter()
                .map(|g| {
                    json!({"name": g.display_name, "type": g.goal_type, "event_name": g.event_name, "page_path": g.page_path})
                })
                .collect(),
            "sites_api",
        ),
        Err(SitesError::Plausible(e)) => return Err(fail(e)),
        Err(_) => {
            // Goals that converted in the last 12 months, most first.
            let query = Query::new(
                site.clone(),
                vec![Metric::Visitors, Metric::Events],
                DateRange::Months(12),
                vec![Grouping::Dimension(Dimension::Builtin("event:goal"))],
                Vec::new(),
                None,
            )?;
            let answer = up.query(&query).await.map_err(fail)?;
            (
                answer
                    .rows
                    .iter()
                    .map(|r| {
                        json!({"name": r.dimensions.first(), "visitors": r.metrics.first(), "events": r.metrics.get(1)})
                    })
                    .collect(),
                "event_breakdown",
            )
        }
    };
    let rows: Vec<Vec<Value>> = goals
        .iter()
        .map(|g| match source {
            "sites_api" => vec![
                field(g, "name").clone(),
                field(g, "type").clone(),
                field(g, "page_path").clone(),
            ],
            _ => vec![
                field(g, "name").clone(),
                field(g, "visitors").clone(),
                field(g, "events").clone(),
            ],
        })
        .collect();
    let headers: Vec<String> = match source {
        "sites_api" => vec!["goal".into(), "type".into(), "page_path".into()],
        _ => vec!["goal".into(), "visitors".into(), "events".into()],
    };
    let heading = match source {
        "sites_api" => format!(
            "Goals of {} from Plausible's Sites API ({})",
            site.as_str(),
            goals.len()
        ),
        _ => format!(
            "Goals of {} that converted in the last 12 months ({}); this key cannot read the goal settings, so goals without conversions are not shown",
            site.as_str(),
            goals.len()
        ),
    };
    let body = if goals.is_empty() {
        "No goals found.".to_owned()
    } else {
        render::table(&headers, &rows)
    };
    Ok(Outcome::Success {
        text: with_note(up, format!("{heading}\n\n{body}")),
        structured: json!({"site_id": site.as_str(), "source": source, "goals": goals}),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plausible::sites::parse_list;
    use crate::plausible::tools::Tool;
    use crate::plausible::tools::tests::{
        Answer, argument_table, ctx, respond, run_tool, synthetic, varied, varied_platform,
    };
    use crate::ports::OutboundRequest;
    use crate::testing::FakePlatform;

    fn success(out: Result<Outcome, CallError>) -> (String, Value) {
        match out {
            Ok(Outcome::Success { text, structured }) => (text, structured),
            Ok(other) => panic!("{other:?}"),
            Err(_) => panic!("refused"),
        }
    }

    #[test]
    fn good_and_bad_arguments() {
        let p = varied_platform();
        argument_table(
            &p,
            &ctx(None),
            Tool::ListSites,
            json!({}),
            &[],
            &[
                ("a site", json!({"site_id": "example.com"}), "site_id"),
                ("a limit", json!({"limit": 10}), "limit"),
            ],
        );
        argument_table(
            &p,
            &ctx(None),
            Tool::ListGoals,
            json!({"site_id": "example.com"}),
            &[("a subdomain", json!({"site_id": "shop.example.com"}))],
            &[
                ("no site", json!({"site_id": null}), "site_id"),
                (
                    "a site that is no domain",
                    json!({"site_id": "a b"}),
                    "site_id",
                ),
                ("a site that is no string", json!({"site_id": 7}), "site_id"),
                ("a date range", json!({"date_range": "12mo"}), "date_range"),
            ],
        );
    }

    /// A key with Sites API access: 150 sites over two pages, goals on one.
    fn sites_api(req: &OutboundRequest) -> Answer {
        let query: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        match req.url.path() {
            "/api/v1/sites" => {
                let start = if query.get("after").map(String::as_str) == Some("page2") {
                    100
                } else {
                    0
                };
                let end = (start + 100).min(150);
                let sites: Vec<Value> = (start..end)
                    .map(
                        |i| json!({"domain": format!("site{i:03}.example"), "timezone": "Etc/UTC"}),
                    )
                    .collect();
                let after = if end < 150 {
                    json!("page2")
                } else {
                    Value::Null
                };
                respond(
                    200,
                    json!({"sites": sites, "meta": {"after": after, "before": null, "limit": 100}}),
                )
            }
            "/api/v1/sites/goals" => respond(
                200,
                json!({"goals": [
                {"id": "1", "display_name": "Signup", "goal_type": "event", "event_name": "Signup", "page_path": null},
                {"id": "2", "display_name": "Visit /pricing", "goal_type": "page", "event_name": null, "page_path": "/pricing"},
            ], "meta": {"after": null, "before": null, "limit": 100}}),
            ),
            _ => synthetic(varied)(req),
        }
    }

    #[test]
    fn sites_and_goals_from_the_sites_api_page_by_page() {
        let p = FakePlatform::new();
        p.respond_with(sites_api);
        let (_, s) = success(run_tool(&p, &ctx(None), Tool::ListSites, json!({})));
        assert_eq!(s["source"], "sites_api");
        assert_eq!(s["sites"].as_array().unwrap().len(), 150);
        assert_eq!(
            s["sites"][149],
            json!({"site_id": "site149.example", "timezone": "Etc/UTC"})
        );
        // README: one request per 100 sites.
        assert_eq!(p.sent_count(), 2);
        let (text, g) = success(run_tool(
            &p,
            &ctx(None),
            Tool::ListGoals,
            json!({"site_id": "example.com"}),
        ));
        assert_eq!(g["source"], "sites_api");
        assert_eq!(g["goals"][1]["page_path"], "/pricing");
        assert!(text.contains("Visit /pricing"), "{text}");
        assert_eq!(p.sent_count(), 3);
        let last = &p.sent.borrow()[2];
        assert_eq!(last.url.query(), Some("limit=100&site_id=example.com"));
    }

    /// A Stats API key: the Sites API says 401 once, and is not asked again.
    #[test]
    fn a_stats_key_falls_back_and_the_refusal_is_remembered() {
        let p = varied_platform();
        let (text, s) = success(run_tool(&p, &ctx(None), Tool::ListSites, json!({})));
        assert_eq!(s["source"], "none");
        assert_eq!(s["sites"], json!([]));
        assert!(
            text.contains("Sites API") && text.contains("site_id"),
            "{text}"
        );
        assert_eq!(p.sent_count(), 1);
        let (_, again) = success(run_tool(&p, &ctx(None), Tool::ListSites, json!({})));
        assert_eq!(again["source"], "none");
        assert_eq!(p.sent_count(), 1, "asked again");
        // Goals: the refusal is already known, so only the 12-month breakdown.
        let (_, g) = success(run_tool(
            &p,
            &ctx(None),
            Tool::ListGoals,
            json!({"site_id": "example.com"}),
        ));
        assert_eq!(g["source"], "event_breakdown");
        assert_eq!(p.sent_count(), 2);
        let body: Value = serde_json::from_slice(&p.sent.borrow()[1].body).unwrap();
        assert_eq!(body["dimensions"], json!(["event:goal"]));
        assert_eq!(body["date_range"], "12mo");
    }

    #[test]
    fn list_goals_costs_two_requests_when_the_refusal_is_new() {
        let p = varied_platform();
        let (_, g) = success(run_tool(
            &p,
            &ctx(None),
            Tool::ListGoals,
            json!({"site_id": "example.com"}),
        ));
        assert_eq!(g["source"], "event_breakdown");
        assert_eq!(p.sent_count(), 2);
    }

    /// Without the Sites API: the deployment's PLAUSIBLE_SITES, else the
    /// default site, else nothing but how to name one.
    #[test]
    fn fallbacks_in_order() {
        let mut configured = ctx(Some("default.example"));
        configured.configured_sites = parse_list(
            "PLAUSIBLE_SITES",
            "example.com, shop.example.com:Europe/Berlin",
        )
        .unwrap();
        let cases = [
            (
                configured,
                "configured",
                json!([{"site_id": "example.com", "timezone": null}, {"site_id": "shop.example.com", "timezone": "Europe/Berlin"}]),
            ),
            (
                ctx(Some("default.example")),
                "default_site",
                json!([{"site_id": "default.example", "timezone": null}]),
            ),
            (ctx(None), "none", json!([])),
        ];
        for (c, source, sites) in cases {
            let p = varied_platform();
            let (text, s) = success(run_tool(&p, &c, Tool::ListSites, json!({})));
            assert_eq!(s["source"], source, "{text}");
            assert_eq!(s["sites"], sites, "{source}");
            assert!(
                s["message"].as_str().unwrap().contains("HTTP 401"),
                "{source}: {s}"
            );
        }
    }
}
