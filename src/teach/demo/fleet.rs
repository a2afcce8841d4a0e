//! Section 4: a small region (scenarios/demo-region.toml) through the fleet model, twice with
//! the same seed: 4-of-5 erasure coding and a single copy in the AZ cache, across one node loss.

use std::fmt;

use serde::Serialize;

use super::{DemoError, Files, indent};
use crate::fleet::{self, FleetReport, FleetScenario, FleetScenarioError};
use crate::report::Table;
use crate::report::plot::{self, ChartOptions, Series};
use crate::sim::SimDuration;

/// The region the demo simulates (scenarios/demo-region.toml, compiled in so the demo needs no
/// file but the images).
pub const FLEET_SCENARIO_FILE: &str = "scenarios/demo-region.toml";
const FLEET_SCENARIO_TOML: &str = include_str!("../../../scenarios/demo-region.toml");

/// The demo's region, as `chunkload simulate --scenario scenarios/demo-region.toml` runs it.
pub fn fleet_scenario() -> Result<FleetScenario, FleetScenarioError> {
    FleetScenario::load(Some((FLEET_SCENARIO_FILE, FLEET_SCENARIO_TOML)), &[])
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetSection {
    pub scenario_file: &'static str,
    /// The region as configured (4-of-5 erasure coding in the AZ cache).
    pub region: FleetReport,
    /// The same region and seed with a single copy of each chunk in the AZ cache.
    pub single_copy: FleetReport,
}

/// Runs the region twice, erasure coded and single copy, with the same seed: the same functions,
/// starts and reads, so the two differ only in what the lost node takes with it.
pub fn fleet_section(scenario: &FleetScenario, seed: u64) -> FleetSection {
    let mut single = scenario.clone();
    single.l2.redundancy = crate::sim::RedundancyName::SingleCopy;
    let (region, single_copy) = rayon::join(|| fleet::run(scenario, seed), || fleet::run(&single, seed));
    FleetSection { scenario_file: FLEET_SCENARIO_FILE, region, single_copy }
}

/// How a run's AZ cache stores a chunk, for labels.
fn redundancy_name(r: &FleetReport) -> &'static str {
    match r.scenario.l2.redundancy {
        crate::sim::RedundancyName::ErasureCoded => "4-of-5 erasure coding",
        crate::sim::RedundancyName::SingleCopy => "single copy",
    }
}

fn minutes(d: SimDuration) -> String {
    format!("{:.0}", d.as_millis_f64() / 60_000.0)
}

/// A share in 0..=1 as a percentage with two decimals.
fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

impl FleetSection {
    /// The fleet charts (`fleet::plots`, prefixed `fleet-`) and the per-minute AZ cache hit rate
    /// of both redundancies across the node loss.
    pub fn figures(&self) -> Result<Vec<(String, String)>, DemoError> {
        let mut out: Vec<(String, String)> = fleet::plots::all(&self.region)?
            .into_iter()
            .map(|(n, svg)| (format!("fleet-{n}"), svg))
            .collect();
        let series = |name: &str, r: &FleetReport| {
            Series::new(
                name,
                r.minutes
                    .iter()
                    .filter_map(|m| Some((f64::from(m.minute), m.l2_hit_rate()? * 100.0)))
                    .collect(),
            )
        };
        let at = self
            .region
            .failures
            .first()
            .map_or(String::new(), |fr| format!(" (node lost at minute {:.0})", fr.at_s / 60.0));
        let lines =
            [series(redundancy_name(&self.region), &self.region), series("single copy", &self.single_copy)];
        // Zoom on the top of the scale, where the two redundancies differ; whole minutes on x.
        let low = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(100.0, f64::min);
        let minutes = self.region.minutes.iter().map(|m| f64::from(m.minute)).collect();
        out.push((
            "fleet-node-loss.svg".into(),
            plot::time_series_chart(
                &lines,
                &ChartOptions::new(
                    format!(
                        "AZ cache hit rate per minute, one node of {} lost{at}",
                        self.region.scenario.l2.nodes
                    ),
                    "minute of the window",
                    "AZ cache hit rate (%)",
                )
                .y_range((low - 1.0).floor(), 100.5)
                .x_ticks(minutes),
            )?,
        ));
        Ok(out)
    }

    /// The region's data files: per-minute series of both runs, metrics, eCDFs, the effective
    /// scenario, and the figures.
    pub fn write_files(&self, put: &mut Files<'_>) -> Result<(), DemoError> {
        let region = &self.region;
        put.put("fleet-minutes.csv", region.minutes_csv().as_bytes())?;
        put.put("fleet-minutes-single-copy.csv", self.single_copy.minutes_csv().as_bytes())?;
        put.put("fleet-metrics.csv", region.metrics_csv().as_bytes())?;
        put.put("fleet-ecdf.csv", region.ecdf_csv().as_bytes())?;
        let toml = format!(
            "# seed {}, chunkload {}; chunkload simulate --scenario THIS_FILE --seed {}\n{}",
            region.seed,
            region.chunkload_version,
            region.seed,
            region.scenario.to_toml()
        );
        put.put("fleet-scenario.toml", toml.as_bytes())?;
        for (name, svg) in self.figures()? {
            put.put(&name, svg.as_bytes())?;
        }
        Ok(())
    }
}

impl fmt::Display for FleetSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.region;
        let sc = &r.scenario;
        writeln!(
            f,
            "4. A region: {} functions on {} workers sharing one AZ cache of {} nodes, {} simulated minutes",
            sc.population.functions,
            sc.placement.workers,
            sc.l2.nodes,
            minutes(sc.duration)
        )?;
        writeln!(
            f,
            "   ({}: a tenth of paper-region, seed {}; {} minutes of cache-only warm-up from empty\n   \
             caches first, not counted)",
            self.scenario_file,
            r.seed,
            minutes(sc.warmup)
        )?;
        writeln!(
            f,
            "   Functions share base, runtime and dependency layers; a few are popular, most are not. Sandboxes\n   \
             start and retire, cron jobs fire on the minute, new functions and deploys bring new chunks.\n   \
             {} cold starts read {} chunks.",
            r.workload.cold_starts, r.sources.reads
        )?;
        let s = &r.sources;
        let mut t = Table::new(["where the chunks came from (paper fig. 7)", "chunks", "ours", "paper"]);
        t.row([
            "worker cache (L1)".into(),
            (s.l1_memory + s.l1_disk).to_string(),
            pct(s.l1_share),
            "67%".into(),
        ]);
        t.row(["AZ cache (L2)".into(), s.l2.to_string(), pct(s.l2_share), "32%".into()]);
        t.row(["S3".into(), s.s3.to_string(), pct(s.s3_share), "0.06%".into()]);
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   Two thirds of the chunks are on the worker already: the popular base and runtime layers. The\n   \
             rest come from the AZ cache, which almost always has them; S3 serves chunks nobody read yet and\n   \
             chunks the AZ cache evicted (the paper's 0.06% is a week's average; five minutes are few)."
        )?;
        let mut t =
            Table::new(["minute", "cold starts", "AZ cache hit rate (fig. 8)", "single copy", "S3 GETs"]);
        for (m, one) in r.minutes.iter().zip(&self.single_copy.minutes) {
            let rate = |x: &fleet::engine::MinuteRow| x.l2_hit_rate().map_or("-".into(), pct);
            t.row([
                m.minute.to_string(),
                m.cold_starts.to_string(),
                rate(m),
                rate(one),
                m.s3_reads.to_string(),
            ]);
        }
        indent(f, &t.to_string())?;
        let worst = r.minutes.iter().max_by_key(|m| (m.s3_reads, std::cmp::Reverse(m.minute)));
        if worst.is_some_and(|m| m.s3_reads == 0) {
            writeln!(
                f,
                "   No minute needed S3: every chunk was in a worker cache or the AZ cache. The paper's median\n   \
                 minute hits ~99.8% and ~4% of minutes fall below 99%, at cron spikes and new-function bursts;\n   \
                 the report of `simulate` names the cause of every such minute."
            )?;
        } else if let Some(m) = worst {
            let causes: Vec<String> = fleet::engine::S3_CAUSES
                .iter()
                .zip(m.s3_causes)
                .filter(|(_, n)| *n > 0)
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            writeln!(
                f,
                "   Minute {} is the worst: {} S3 GETs against a typical minute's {}{}. The paper's median minute\n   \
                 hits ~99.8% and ~4% of minutes fall below 99%, at cron spikes and new-function bursts; the\n   \
                 report of `simulate` names the cause of every such minute.",
                m.minute,
                m.s3_reads,
                r.s3.median_minute_requests,
                if causes.is_empty() { String::new() } else { format!(" (for: {})", causes.join(", ")) }
            )?;
        }
        for (name, x) in [(redundancy_name(r), r), ("single copy", &self.single_copy)] {
            for fr in &x.failures {
                writeln!(
                    f,
                    "   AZ cache node {} lost at minute {:.0}, with {}: {} of the cached chunks became\n   \
                     unreadable{}.",
                    fr.node.map_or("(all)".into(), |n| n.to_string()),
                    fr.at_s / 60.0,
                    name,
                    pct(fr.lost_share),
                    if x.l2.degraded_hits > 0 {
                        format!(" ({} reads decoded from the four stripes left)", x.l2.degraded_hits)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        writeln!(
            f,
            "   The paper: erasure coding rides out a node loss with no drop in hit rate; one copy loses ~1/20."
        )?;
        let ms = |v: f64| format!("{v:.2} ms");
        let mut t = Table::new(["latency", "p50", "p90", "p99", "paper"]);
        let c = &r.cold_start;
        t.row(["cold start".into(), ms(c.p50_ms), ms(c.p90_ms), ms(c.p99_ms), "not given".into()]);
        let a = &r.agent_read.quantiles;
        t.row(["chunk read (fig. 11)".into(), ms(a.p50_ms), ms(a.p90_ms), ms(a.p99_ms), "two modes".into()]);
        let (e, n) = (&r.stripe_fetch_ec, &r.stripe_fetch_no_parity);
        t.row([
            "AZ read, 4 of 5 stripes (fig. 9)".into(),
            ms(e.p50_ms),
            ms(e.p90_ms),
            ms(e.p99_ms),
            "~1.3 ms p50".into(),
        ]);
        t.row([
            "AZ read, all 4 of 4 (fig. 9)".into(),
            ms(n.p50_ms),
            ms(n.p90_ms),
            ms(n.p99_ms),
            "~1.45 ms p50".into(),
        ]);
        indent(f, &t.to_string())?;
        writeln!(
            f,
            "   Chunk reads are bimodal: {} took under 0.1 ms (the worker cache; paper ~69%) and {} under\n   \
             3.8 ms (the AZ cache; paper 97.5%), with almost nothing between. Reading any 4 of 5 stripes cuts the\n   \
             AZ read's tail: the slowest stripe is never waited for. A cold start is mostly the runtime's own\n   \
             initialisation; chunk reads add milliseconds, an S3 read ~40 ms. docs/fleet-model.md has more.",
            pct(r.agent_read.under_100us),
            pct(r.agent_read.under_3_8ms)
        )?;
        writeln!(
            f,
            "   The whole-size region (10,000 functions, 1,000 workers, an hour): chunkload simulate --out DIR"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::RedundancyName;

    fn tiny() -> FleetScenario {
        let text = include_str!("../../../tests/fixtures/tiny-region.toml");
        let mut sc = FleetScenario::load(Some(("tiny-region.toml", text)), &[]).unwrap();
        sc.failures = fleet_scenario().unwrap().failures;
        sc
    }

    #[test]
    fn the_demo_region_parses_and_loses_a_node() {
        let sc = fleet_scenario().unwrap();
        assert_eq!(sc.l2.redundancy, RedundancyName::ErasureCoded);
        assert_eq!(sc.failures.len(), 1);
    }

    #[test]
    fn both_runs_see_the_same_starts_and_differ_in_redundancy_only() {
        let s = fleet_section(&tiny(), 7);
        assert_eq!(s.region.scenario.l2.redundancy, RedundancyName::ErasureCoded);
        assert_eq!(s.single_copy.scenario.l2.redundancy, RedundancyName::SingleCopy);
        assert_eq!(s.region.workload.cold_starts, s.single_copy.workload.cold_starts);
        assert_eq!(s.region.sources.reads, s.single_copy.sources.reads);
        assert_eq!(redundancy_name(&s.region), "4-of-5 erasure coding");
        let names: Vec<String> = s.figures().unwrap().into_iter().map(|f| f.0).collect();
        assert!(names.iter().all(|n| n.starts_with("fleet-")), "{names:?}");
        assert!(names.contains(&"fleet-node-loss.svg".to_string()));
        assert_eq!(minutes(SimDuration::from_secs(180)), "3");
        assert_eq!(pct(0.5), "50.00%");
    }
}
