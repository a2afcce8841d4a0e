//! A sweep's page (index.html beside results.json): the provenance, one row per point with its
//! metrics, every chart with the sentence that reads it, the data files, and the seed and base
//! scenario folded away (`report::html`).

use super::charts::Chart;
use super::results::SweepResults;
use crate::report::html::{Figure, Folded, Page, Section, readable_toml};

/// Metrics shown per point in the page's table (the rest are in results.csv).
const TABLE_METRICS: usize = 8;

/// What a chart of [`super::charts`] shows, by its file name.
fn reading(file: &str, r: &SweepResults) -> String {
    let stem = file.trim_end_matches(".svg");
    if let Some(key) = stem.strip_prefix("hit_ratio_") {
        format!(
            "The hit ratio against {key} (log scale), one line per combination of the other grid keys; a dashed \
             line is Belady's optimum at the same capacity, the most any policy could hit. The miss-ratio curve \
             is this one upside down."
        )
    } else if let Some(name) = stem.strip_prefix("cdf_") {
        if r.rows.len() > 12 {
            format!("{name}'s p50, p90, p99 and maximum per point (too many points for one CDF each).")
        } else {
            format!(
                "The distribution of {name} per point, as steps through its measured quantiles: the further \
                 left a line, the faster that point."
            )
        }
    } else if stem == "tier_mix" {
        "Per point, the share of chunk reads each tier served, stacked to 100%.".into()
    } else {
        format!("The chart {file}.")
    }
}

/// The page for `r` and its charts; `files` are the data files written beside it.
pub fn page(r: &SweepResults, charts: &[Chart], files: Vec<String>) -> Page {
    let metrics: Vec<String> = r.metric_names().into_iter().take(TABLE_METRICS).collect();
    let header = ["#".to_string(), "point".to_string()].into_iter().chain(metrics.iter().cloned()).collect();
    let rows = r
        .rows
        .iter()
        .map(|row| {
            [row.index.to_string(), row.label.clone()]
                .into_iter()
                .chain(metrics.iter().map(|m| row.metrics.get(m).map_or("-".into(), |v| format!("{v:.4}"))))
                .collect()
        })
        .collect();
    let inputs: Vec<String> = r.inputs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    let mut points = Section::new("The points").table(header, rows);
    if !inputs.is_empty() {
        points = points.text(format!("Inputs: {}.", inputs.join("; ")));
    }
    let mut charts_section = Section::new("The charts");
    if charts.is_empty() {
        charts_section =
            charts_section.text("This grid gives no chart (no capacity key, no distribution, no tier mix).");
    }
    for c in charts {
        charts_section =
            charts_section.figure(Figure::new(c.svg.clone(), reading(&c.file, r)).file(c.file.clone()));
    }
    Page {
        title: format!("chunkload sweep: {} over {}", r.experiment, r.grid),
        lead: vec![
            r.provenance(),
            format!("{} of {} points; seeding: {}.", r.rows.len(), r.points, r.seeding),
        ],
        sections: vec![points, charts_section],
        files,
        folded: vec![Folded {
            title: format!("Seed {} and the base scenario every point's overrides apply to", r.seed),
            text: readable_toml(&r.scenario),
        }],
    }
}
