//! The fleet report's charts (the paper's figures 7, 8, 9 and 11, cold starts and the per-minute
//! series), expressed as data for `report::plot`, which draws every chart chunkload makes: no
//! drawing code here, one error type (`report::plot::PlotError`).

use super::engine::MinuteRow;
use super::histogram::LogHistogram;
use super::report::FleetReport;
use crate::report::plot::{self, AxisFormat, BarGroup, ChartOptions, PlotError, Series};

/// The fleet charts' size in pixels.
const SIZE: (u32, u32) = (720, 440);

fn options(title: &str, x_label: &str, y_label: &str) -> ChartOptions {
    ChartOptions::new(title, x_label, y_label).size(SIZE.0, SIZE.1)
}

/// Every chart as `(file name, SVG text)`.
pub fn all(r: &FleetReport) -> Result<Vec<(String, String)>, PlotError> {
    let h = &r.histograms;
    let rates: Vec<f64> = r.minutes.iter().filter_map(MinuteRow::l2_hit_rate).map(|v| v * 100.0).collect();
    let lo = rates.iter().copied().fold(99.0, f64::min).floor();
    let ecdf = |title: &str, x_label: &str| options(title, x_label, "share");
    Ok(vec![
        ("fig7-sources.svg".into(), sources(r)?),
        (
            "fig8-l2-minute-hit-rate.svg".into(),
            plot::ecdf_chart(
                &[Series::ecdf("per minute", &rates)],
                &ecdf("AZ cache hit rate per minute (eCDF)", "hit rate, %").x_range(lo, 100.0),
            )?,
        ),
        (
            "fig9-stripe-fetch.svg".into(),
            plot::ecdf_chart(
                &[
                    ms_steps("configured (4-of-5)", &h.stripe_fetch_ec),
                    ms_steps("no parity (4-of-4)", &h.stripe_fetch_no_parity),
                ],
                &ecdf("AZ cache read, with and without parity (eCDF)", "ms").log_x().x_range(0.05, 20.0),
            )?,
        ),
        (
            "fig11-agent-read.svg".into(),
            plot::ecdf_chart(
                &[ms_steps("agent reads", &h.agent_read)],
                &ecdf("Agent read latency (eCDF)", "ms").log_x().x_range(0.01, 500.0),
            )?,
        ),
        (
            "cold-start.svg".into(),
            plot::ecdf_chart(
                &[ms_steps("cold starts", &h.cold_start)],
                &ecdf("Cold-start duration (eCDF)", "ms").log_x().x_range(10.0, 100_000.0),
            )?,
        ),
        ("minutes.svg".into(), minutes(r)?),
    ])
}

/// A histogram's eCDF in milliseconds, as steps.
fn ms_steps(name: &str, h: &LogHistogram) -> Series {
    let points: Vec<(f64, f64)> = h.ecdf().into_iter().map(|(d, s)| (d.as_millis_f64(), s)).collect();
    Series::steps(name, &points)
}

/// Figure 7: the share of chunk reads each tier served, one bar per tier.
fn sources(r: &FleetReport) -> Result<String, PlotError> {
    let s = &r.sources;
    let groups: Vec<BarGroup> = [("L1 (worker)", s.l1_share), ("L2 (AZ)", s.l2_share), ("S3", s.s3_share)]
        .into_iter()
        .map(|(tier, v)| BarGroup { label: format!("{tier}: {:.3}%", v * 100.0), values: vec![v] })
        .collect();
    plot::bar_chart(
        &["chunk reads".to_string()],
        &groups,
        &options("Chunks served by tier, %", "tier", "% of chunk reads")
            .y_format(AxisFormat::Percent)
            .y_range(0.0, 1.0),
    )
}

/// The AZ cache's hit rate per minute above the S3 GETs per minute, on their own scales.
fn minutes(r: &FleetReport) -> Result<String, PlotError> {
    let rates: Vec<(f64, f64)> =
        r.minutes.iter().filter_map(|m| m.l2_hit_rate().map(|v| (f64::from(m.minute), v * 100.0))).collect();
    let s3: Vec<(f64, f64)> = r.minutes.iter().map(|m| (f64::from(m.minute), m.s3_reads as f64)).collect();
    let lo = rates.iter().map(|p| p.1).fold(99.0, f64::min).floor();
    let top = [Series::new("AZ cache hit rate", rates)];
    let bottom = [Series::new("S3 GETs", s3)];
    // Whole minutes on x.
    let minutes: Vec<f64> = r.minutes.iter().map(|m| f64::from(m.minute)).collect();
    let top_opt = options("AZ cache hit rate per minute, %", "minute", "hit rate, %")
        .y_range(lo, 100.0)
        .x_ticks(minutes.clone());
    let bottom_opt = options("S3 GETs per minute", "minute", "GETs").x_ticks(minutes);
    plot::time_series_panels(&[(&top, &top_opt), (&bottom, &bottom_opt)])
}
