//! The fleet's charts on a page: each `fleet::plots` figure with the sentence that reads it and
//! the paper's figure it stands beside, for the demo's region section and `simulate --out`'s
//! page. Readings are built from the report's numbers; a figure this file does not know still
//! appears, with a plain caption (the fleet's figures may grow without breaking the pages).

use crate::fleet::FleetReport;
use crate::report::html::{Figure, Folded, Page, Section, readable_toml};
use crate::report::plot::PlotError;

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// The reading and the paper's counterpart of the fleet figure `name` (`fig7-sources.svg`...).
pub fn reading(name: &str, r: &FleetReport) -> (String, Option<String>) {
    let s = &r.sources;
    match name {
        "fig7-sources.svg" => (
            format!(
                "Of {} chunk reads, the worker cache served {}, the AZ cache {} and S3 {}: most chunks are on \
                 the worker already, and S3 serves only what nobody read before.",
                s.reads,
                pct(s.l1_share),
                pct(s.l2_share),
                pct(s.s3_share)
            ),
            Some("Paper, figure 7: 67% worker cache, 32% AZ cache, 0.06% S3 (a week's average).".into()),
        ),
        "fig8-l2-minute-hit-rate.svg" => (
            format!(
                "Each step is one simulated minute's AZ cache hit rate: the median minute hits {}, and {} of \
                 the minutes fall below 99%.",
                pct(r.l2.minute_hit_rate_median),
                pct(r.l2.minutes_below_99)
            ),
            Some("Paper, figure 8: the median minute hits ~99.8%; ~4% of minutes fall below 99%.".into()),
        ),
        "fig9-stripe-fetch.svg" => (
            format!(
                "An AZ cache read waits for 4 of 5 stripes (median {:.2} ms, p99 {:.2} ms) instead of all 4 of 4 \
                 (median {:.2} ms, p99 {:.2} ms): the slowest stripe is never waited for.",
                r.stripe_fetch_ec.p50_ms,
                r.stripe_fetch_ec.p99_ms,
                r.stripe_fetch_no_parity.p50_ms,
                r.stripe_fetch_no_parity.p99_ms
            ),
            Some("Paper, figure 9: ~1.3 ms median with parity, ~1.45 ms without.".into()),
        ),
        "fig11-agent-read.svg" => (
            format!(
                "Chunk reads are bimodal: {} finish under 0.1 ms (the worker cache) and {} under 3.8 ms (the AZ \
                 cache), with almost nothing between.",
                pct(r.agent_read.under_100us),
                pct(r.agent_read.under_3_8ms)
            ),
            Some("Paper, figure 11: ~69% under 0.1 ms, 97.5% under 3.8 ms.".into()),
        ),
        "cold-start.svg" => (
            format!(
                "{} cold starts: median {:.0} ms, p99 {:.0} ms, mostly the runtime's own initialisation; chunk \
                 reads add milliseconds.",
                r.workload.cold_starts, r.cold_start.p50_ms, r.cold_start.p99_ms
            ),
            Some("The paper gives no cold-start distribution for this mix.".into()),
        ),
        "minutes.svg" => {
            let worst = r.minutes.iter().max_by_key(|m| (m.s3_reads, std::cmp::Reverse(m.minute)));
            (
                match worst {
                    Some(m) => format!(
                        "The AZ cache's hit rate per minute above the S3 GETs per minute: minute {} is the worst, \
                         {} GETs against a median minute's {}.",
                        m.minute, m.s3_reads, r.s3.median_minute_requests
                    ),
                    None => "No minute was measured.".into(),
                },
                Some("Paper, figure 8: dips at cron spikes and new-function bursts.".into()),
            )
        }
        other => (format!("The chart {other}, drawn from the report's data files."), None),
    }
}

/// Each figure (file name, SVG) with its reading; `prefix` is what the file names carry beside
/// the page (the demo writes `fleet-fig7-sources.svg`).
pub fn figures(r: &FleetReport, svgs: Vec<(String, String)>, prefix: &str) -> Vec<Figure> {
    svgs.into_iter()
        .map(|(name, svg)| {
            let base = name.strip_prefix(prefix).unwrap_or(&name);
            let (text, paper) = reading(base, r);
            let f = Figure::new(svg, text).file(name.clone());
            match paper {
                Some(p) => f.paper(p),
                None => f,
            }
        })
        .collect()
}

/// The page `simulate --out` writes: the report as printed, the figures with their readings,
/// the data files, and the seed and scenario folded away.
pub fn simulate_page(r: &FleetReport, files: Vec<String>) -> Result<Page, PlotError> {
    let text = r.to_string();
    let mut s = Section::new("The region's report").pre(text.trim_end());
    for f in figures(r, crate::fleet::plots::all(r)?, "") {
        s = s.figure(f);
    }
    let mut lead = vec![format!(
        "chunkload {}: {} functions on {} workers sharing an AZ cache of {} nodes; each chart beside the \
         sentence that reads it and the paper's figure it compares with.",
        r.chunkload_version,
        r.scenario.population.functions,
        r.scenario.placement.workers,
        r.scenario.l2.nodes
    )];
    let n = r.scenario.sampling.one_in;
    if n > 1 {
        lead.push(format!(
            "Sampled: one chunk id in {n} simulated, in caches 1/{n} of their sizes, each read standing for \
             {n}; the figures are estimates (docs/performance.md measures how close they come to a whole run)."
        ));
    }
    Ok(Page {
        title: format!("chunkload simulate: {} (seed {} = {:#x})", r.scenario.name, r.seed, r.seed),
        lead,
        sections: vec![s],
        files,
        folded: vec![Folded {
            title: format!(
                "Seed {} = {:#x} and the effective scenario (simulate --scenario takes it back)",
                r.seed, r.seed
            ),
            text: readable_toml(&r.scenario.to_toml()),
        }],
    })
}
