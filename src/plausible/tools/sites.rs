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
        _ => "No sites can be listed".to_owned(),
    };
    let mut text = heading;
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
