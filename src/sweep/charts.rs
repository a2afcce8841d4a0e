//! Charts drawn from sweep results, by metric-name convention so any experiment gets them:
//!
//! - hit-ratio curves (`hit_ratio_<key>.svg`; the miss-ratio curve read upside down): for each grid key whose last part names a capacity (`l2.node_capacity`),
//!   metric `hit_ratio.<first part of the key>` against that key (log x, one series per
//!   combination of the other keys, e.g. per policy), with `belady.hit_ratio.<tier>` dashed
//!   (Belady does not depend on the policy, so its series ignore `*policy` keys);
//! - CDFs: every distribution, one series per point;
//! - tier mix: metrics `tier_chunks.<tier>` as stacked shares, one bar per point.
//!
//! Each SVG carries the results' provenance (version, seed, grid, scenario) in a comment.

use std::collections::BTreeMap;

use super::results::SweepResults;
use super::{QUANTILE_LEVELS, SweepError};
use crate::report::plot::{self, AxisFormat, BarGroup, ChartOptions, Series};
use crate::units::ByteSize;

/// One chart: its file name and SVG text.
pub struct Chart {
    pub file: String,
    pub svg: String,
}

/// Every chart the results support (none if, e.g., the grid sweeps no capacity).
pub fn charts(r: &SweepResults) -> Result<Vec<Chart>, SweepError> {
    let mut out = Vec::new();
    for key in r.keys() {
        if let Some(c) = hit_ratio(r, &key)? {
            out.push(c);
        }
    }
    let dists: std::collections::BTreeSet<&String> =
        r.rows.iter().flat_map(|row| row.distributions.keys()).collect();
    for d in dists {
        out.push(cdf(r, d)?);
    }
    if let Some(c) = tier_mix(r)? {
        out.push(c);
    }
    for c in &mut out {
        c.svg = stamp(&c.svg, r);
    }
    Ok(out)
}

fn last_part(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn as_number(v: &str) -> Option<f64> {
    v.parse::<ByteSize>().ok().map(|b| b.bytes() as f64).or_else(|| v.parse::<f64>().ok())
}

/// `k=v;k=v` of the row's overrides for `keys` (in grid order).
fn group_label(r: &SweepResults, row: &super::Row, keys: &[&String]) -> String {
    let _ = r;
    keys.iter()
        .map(|k| format!("{k}={}", row.overrides.get(*k).map(String::as_str).unwrap_or("")))
        .collect::<Vec<_>>()
        .join(";")
}

fn series_by_group(r: &SweepResults, key: &str, metric: &str, group_keys: &[&String]) -> Vec<Series> {
    let mut groups: BTreeMap<(usize, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut first_seen: BTreeMap<String, usize> = BTreeMap::new();
    for row in &r.rows {
        let (Some(x), Some(y)) = (row.overrides.get(key).and_then(|v| as_number(v)), row.metrics.get(metric))
        else {
            continue;
        };
        let g = group_label(r, row, group_keys);
        let order = *first_seen.entry(g.clone()).or_insert(row.index);
        groups.entry((order, g)).or_default().push((x, *y));
    }
    groups
        .into_iter()
        .map(|((_, g), mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series::new(if g.is_empty() { metric.to_string() } else { g }, pts)
        })
        .collect()
}

fn hit_ratio(r: &SweepResults, key: &str) -> Result<Option<Chart>, SweepError> {
    if !last_part(key).contains("capacity") {
        return Ok(None);
    }
    let tier = key.split('.').next().unwrap_or(key);
    let metric = format!("hit_ratio.{tier}");
    let keys = r.keys();
    let others: Vec<&String> = keys.iter().filter(|k| *k != key).collect();
    let mut series = series_by_group(r, key, &metric, &others);
    if series.is_empty() {
        return Ok(None);
    }
    let bound = format!("belady.{metric}");
    let not_policy: Vec<&String> =
        others.iter().copied().filter(|k| !last_part(k).contains("policy")).collect();
    let mut bounds: Vec<Series> = Vec::new();
    for s in series_by_group(r, key, &bound, &not_policy) {
        if !bounds.iter().any(|b| b.points == s.points) {
            let name = if s.name == bound {
                "Belady (MIN) bound".to_string()
            } else {
                format!("Belady (MIN) {}", s.name)
            };
            bounds.push(Series::new(name, s.points).dashed());
        }
    }
    series.extend(bounds);
    let mut ticks: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let bytes = r.rows.iter().filter_map(|row| row.overrides.get(key)).all(|v| v.parse::<ByteSize>().is_ok());
    let opt = ChartOptions::new(
        format!("{metric} vs {key} (seed {})", r.seed),
        format!("{key} (log scale)"),
        format!("hit rate ({metric})"),
    )
    .log_x()
    .x_ticks(ticks)
    .x_format(if bytes { AxisFormat::Bytes } else { AxisFormat::Number })
    .y_format(AxisFormat::Percent)
    .y_range(0.0, 1.0);
    let svg = plot::line_chart(&series, &opt)?;
    Ok(Some(Chart { file: format!("hit_ratio_{key}.svg"), svg }))
}

/// Past this many points, one CDF per point is unreadable: the chart shows percentiles per point.
const MAX_CDF_SERIES: usize = 12;

fn cdf(r: &SweepResults, name: &str) -> Result<Chart, SweepError> {
    let with: Vec<&super::Row> = r.rows.iter().filter(|row| row.distributions.contains_key(name)).collect();
    if with.len() > MAX_CDF_SERIES {
        return percentiles(r, name, &with);
    }
    let series: Vec<Series> = r
        .rows
        .iter()
        .filter_map(|row| {
            let q = row.distributions.get(name)?;
            let pts: Vec<(f64, f64)> = q.iter().copied().zip(QUANTILE_LEVELS.iter().copied()).collect();
            // The quantiles are the eCDF's known points: drawn as steps, not sloped lines between them.
            Some(Series::steps(
                if row.label.is_empty() { format!("#{}", row.index) } else { row.label.clone() },
                &pts,
            ))
        })
        .collect();
    let positive = series.iter().flat_map(|s| &s.points).all(|p| p.0 > 0.0);
    let mut opt = ChartOptions::new(
        format!("CDF of {name} per point (seed {})", r.seed),
        name.to_string(),
        "fraction of samples <= x",
    )
    .y_format(AxisFormat::Percent);
    if positive {
        opt = opt.log_x();
    }
    let svg = plot::ecdf_chart(&series, &opt)?;
    Ok(Chart { file: format!("cdf_{name}.svg"), svg })
}

/// p50, p90, p99 and max of a distribution against the point index, for sweeps too large for CDFs.
fn percentiles(r: &SweepResults, name: &str, rows: &[&super::Row]) -> Result<Chart, SweepError> {
    let level = |q: f64| QUANTILE_LEVELS.iter().position(|l| *l == q).expect("a reported level");
    let series: Vec<Series> = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)]
        .iter()
        .map(|(label, q)| {
            let i = level(*q);
            let pts = rows
                .iter()
                .filter_map(|row| Some((row.index as f64, *row.distributions[name].get(i)?)))
                .collect();
            Series::new(*label, pts)
        })
        .collect();
    let opt = ChartOptions::new(
        format!("{name} percentiles per point (seed {})", r.seed),
        "point (index; labels in results.csv)",
        name.to_string(),
    );
    Ok(Chart { file: format!("cdf_{name}.svg"), svg: plot::time_series_chart(&series, &opt)? })
}

fn tier_mix(r: &SweepResults) -> Result<Option<Chart>, SweepError> {
    const PREFIX: &str = "tier_chunks.";
    let tiers: Vec<String> = r.metric_names().into_iter().filter(|m| m.starts_with(PREFIX)).collect();
    if tiers.is_empty() {
        return Ok(None);
    }
    let groups: Vec<BarGroup> = r
        .rows
        .iter()
        .map(|row| {
            let v: Vec<f64> = tiers.iter().map(|t| row.metrics.get(t).copied().unwrap_or(0.0)).collect();
            let total: f64 = v.iter().sum();
            BarGroup {
                label: format!("#{}", row.index),
                values: v.iter().map(|x| if total > 0.0 { x / total } else { 0.0 }).collect(),
            }
        })
        .collect();
    let names: Vec<String> = tiers.iter().map(|t| t[PREFIX.len()..].to_string()).collect();
    let opt = ChartOptions::new(
        format!("tier mix: share of chunk requests per tier (seed {})", r.seed),
        "point (index; labels in results.csv)",
        "share of chunk requests",
    )
    .y_format(AxisFormat::Percent)
    .y_range(0.0, 1.0)
    .stacked();
    Ok(Some(Chart { file: "tier_mix.svg".into(), svg: plot::bar_chart(&names, &groups, &opt)? }))
}

/// Puts the provenance in a comment right after the `<svg>` tag.
fn stamp(svg: &str, r: &SweepResults) -> String {
    let clean = |s: &str| s.replace("--", "- -");
    let note = format!(
        "<!-- {}\n seeding: {}\n effective base scenario:\n{}-->\n",
        clean(&r.provenance()),
        clean(&r.seeding),
        r.scenario.lines().map(|l| format!("   {}\n", clean(l))).collect::<String>()
    );
    match svg.find('>') {
        Some(end) => format!("{}\n{note}{}", &svg[..=end], svg[end + 1..].trim_start_matches('\n')),
        None => svg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::run::tests::{ToyExperiment, toy};
    use crate::sweep::{Grid, run};

    #[test]
    fn charts_follow_the_metric_conventions() {
        let grid = Grid::parse("cache.capacity=1GiB,4GiB,16GiB;cache.policy=lru,s3-fifo").unwrap();
        let r = run(&ToyExperiment, &toy(), &grid, 3, None, &|| {}).unwrap();
        let drawn = charts(&r).unwrap();
        let files: Vec<&str> = drawn.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(files, ["hit_ratio_cache.capacity.svg", "cdf_wait_ms.svg", "tier_mix.svg"]);
        let mr = &drawn[0].svg;
        assert!(mr.starts_with("<svg"), "{}", &mr[..80]);
        assert!(mr.contains("<!-- chunkload ") && mr.contains("seed 3"), "provenance");
        for text in ["cache.policy=lru", "cache.policy=s3-fifo", "Belady (MIN) bound", "16GiB"] {
            assert!(mr.contains(text), "{text}");
        }
        // One Belady series, not one per policy.
        assert_eq!(mr.matches("Belady (MIN)").count(), 1);
        let again: Vec<String> = charts(&r).unwrap().into_iter().map(|c| c.svg).collect();
        assert_eq!(again, drawn.iter().map(|c| c.svg.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn large_sweeps_get_percentiles_instead_of_one_cdf_per_point() {
        let grid =
            Grid::parse("cache.capacity=1GiB,2GiB,4GiB,8GiB,16GiB;cache.policy=lru,s3-fifo,lfu").unwrap();
        let r = run(&ToyExperiment, &toy(), &grid, 3, None, &|| {}).unwrap();
        let c = charts(&r).unwrap().into_iter().find(|c| c.file == "cdf_wait_ms.svg").unwrap();
        assert!(c.svg.contains("percentiles per point") && c.svg.contains("\np99\n"));
    }

    #[test]
    fn no_capacity_key_no_hit_ratio_curve() {
        let grid = Grid::parse("cache.policy=lru,s3-fifo").unwrap();
        let r = run(&ToyExperiment, &toy(), &grid, 3, None, &|| {}).unwrap();
        assert!(charts(&r).unwrap().iter().all(|c| !c.file.starts_with("hit_ratio")));
    }
}
