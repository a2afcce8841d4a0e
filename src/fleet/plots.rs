//! SVG charts of a fleet report (the paper's figures 7, 8, 9 and 11, cold starts and the
//! per-minute series), drawn with plotters' SVG backend into strings: no files, no fonts to load.

use plotters::prelude::*;

use super::engine::MinuteRow;
use super::histogram::LogHistogram;
use super::report::FleetReport;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {name}: {message}")]
pub struct PlotError {
    name: &'static str,
    message: String,
}

const SIZE: (u32, u32) = (720, 440);

fn err<E: std::fmt::Display>(name: &'static str) -> impl Fn(E) -> PlotError {
    move |e| PlotError { name, message: e.to_string() }
}

/// Every chart as `(file name, SVG text)`.
pub fn all(r: &FleetReport) -> Result<Vec<(String, String)>, PlotError> {
    let h = &r.histograms;
    let mut rates: Vec<f64> = r.minutes.iter().filter_map(MinuteRow::l2_hit_rate).collect();
    rates.sort_by(f64::total_cmp);
    let rate_ecdf: Vec<(f64, f64)> =
        rates.iter().enumerate().map(|(i, &v)| (v * 100.0, (i + 1) as f64 / rates.len() as f64)).collect();
    let lo = rate_ecdf.first().map_or(99.0, |p| p.0).min(99.0).floor();
    Ok(vec![
        ("fig7-sources.svg".into(), sources(r)?),
        (
            "fig8-l2-minute-hit-rate.svg".into(),
            ecdf_chart(
                "fig8",
                "AZ cache hit rate per minute (eCDF)",
                "hit rate, %",
                lo..100.0,
                false,
                &[("per minute", rate_ecdf)],
            )?,
        ),
        (
            "fig9-stripe-fetch.svg".into(),
            ecdf_chart(
                "fig9",
                "AZ cache read, with and without parity (eCDF)",
                "ms",
                0.05..20.0,
                true,
                &[
                    ("configured (4-of-5)", ms_ecdf(&h.stripe_fetch_ec)),
                    ("no parity (4-of-4)", ms_ecdf(&h.stripe_fetch_no_parity)),
                ],
            )?,
        ),
        (
            "fig11-agent-read.svg".into(),
            ecdf_chart(
                "fig11",
                "Agent read latency (eCDF)",
                "ms",
                0.01..500.0,
                true,
                &[("agent reads", ms_ecdf(&h.agent_read))],
            )?,
        ),
        (
            "cold-start.svg".into(),
            ecdf_chart(
                "cold-start",
                "Cold-start duration (eCDF)",
                "ms",
                10.0..100_000.0,
                true,
                &[("cold starts", ms_ecdf(&h.cold_start))],
            )?,
        ),
        ("minutes.svg".into(), minutes(r)?),
    ])
}

fn ms_ecdf(h: &LogHistogram) -> Vec<(f64, f64)> {
    h.ecdf().into_iter().map(|(d, s)| (d.as_millis_f64(), s)).collect()
}

fn ecdf_chart(
    name: &'static str,
    title: &str,
    x_label: &str,
    x: std::ops::Range<f64>,
    log_x: bool,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err(name))?;
        let colors = [BLUE, RED, GREEN];
        let mut builder = ChartBuilder::on(&root);
        builder.caption(title, ("sans-serif", 18)).margin(12).x_label_area_size(40).y_label_area_size(50);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart.configure_mesh().x_desc(x_label).y_desc("share").draw().map_err(err(name))?;
                for (i, (label, pts)) in series.iter().enumerate() {
                    let color = colors[i % colors.len()];
                    let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0 > 0.0).collect();
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(err(name))?
                        .label(*label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::LowerRight)
                    .draw()
                    .map_err(err(name))?;
            }};
        }
        if log_x {
            draw!(builder.build_cartesian_2d(x.log_scale(), 0.0..1.0).map_err(err(name))?);
        } else {
            draw!(builder.build_cartesian_2d(x, 0.0..1.0).map_err(err(name))?);
        }
        root.present().map_err(err(name))?;
    }
    Ok(svg)
}

fn sources(r: &FleetReport) -> Result<String, PlotError> {
    let name = "fig7";
    let s = &r.sources;
    let bars =
        [("L1 (worker)", s.l1_share * 100.0), ("L2 (AZ)", s.l2_share * 100.0), ("S3", s.s3_share * 100.0)];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err(name))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Chunks served by tier, %", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..3.0, 0.0..100.0)
            .map_err(err(name))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("% of chunk reads")
            .draw()
            .map_err(err(name))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, &(_, v))| {
                Rectangle::new([(i as f64 + 0.2, 0.0), (i as f64 + 0.8, v)], BLUE.mix(0.7).filled())
            }))
            .map_err(err(name))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, &(tier, v))| {
                Text::new(
                    format!("{tier}: {v:.3}%"),
                    (i as f64 + 0.2, (v + 4.0).min(97.0)),
                    ("sans-serif", 14),
                )
            }))
            .map_err(err(name))?;
        root.present().map_err(err(name))?;
    }
    Ok(svg)
}

fn minutes(r: &FleetReport) -> Result<String, PlotError> {
    let name = "minutes";
    let n = r.minutes.len().max(1) as f64;
    let rates: Vec<(f64, f64)> =
        r.minutes.iter().filter_map(|m| m.l2_hit_rate().map(|v| (f64::from(m.minute), v * 100.0))).collect();
    let s3: Vec<(f64, f64)> = r.minutes.iter().map(|m| (f64::from(m.minute), m.s3_reads as f64)).collect();
    let s3_max = s3.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let lo = rates.iter().map(|p| p.1).fold(99.0, f64::min).floor();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, SIZE.1 * 2)).into_drawing_area();
        root.fill(&WHITE).map_err(err(name))?;
        let (top, bottom) = root.split_vertically(SIZE.1);
        let mut a = ChartBuilder::on(&top)
            .caption("AZ cache hit rate per minute, %", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n, lo..100.0)
            .map_err(err(name))?;
        a.configure_mesh().x_desc("minute").draw().map_err(err(name))?;
        a.draw_series(LineSeries::new(rates, BLUE.stroke_width(2))).map_err(err(name))?;
        let mut b = ChartBuilder::on(&bottom)
            .caption("S3 GETs per minute", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n, 0.0..s3_max)
            .map_err(err(name))?;
        b.configure_mesh().x_desc("minute").draw().map_err(err(name))?;
        b.draw_series(LineSeries::new(s3, RED.stroke_width(2))).map_err(err(name))?;
        root.present().map_err(err(name))?;
    }
    Ok(svg)
}
