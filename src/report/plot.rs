//! Small SVG charts for reports: eCDFs, XY lines (miss-ratio curves), bars (tier mix) and time
//! series, alone or as panels stacked in one file. Every chart chunkload draws (the demo, the
//! fleet's figures, the sweep's charts) goes through here. Built on `plotters`' SVG backend with its built-in text estimate (no font files, no
//! system libraries), so a chart is a pure function of its data: same input, same bytes.
//!
//! Data goes in as named [`Series`] (or [`BarGroup`]s for bars) plus [`ChartOptions`]; a chart
//! comes out as an SVG `String`, and [`write_svg`] stores one. Empty or degenerate data (no
//! points, one point, all-equal values, non-finite numbers) draws an empty or widened chart
//! instead of failing: a sweep that produced nothing still gets a readable file saying so.
//!
//! ```
//! use chunkload::report::plot::{ChartOptions, Series, line_chart};
//! let lru = Series::new("lru", vec![(1.0, 0.4), (4.0, 0.7), (16.0, 0.9)]);
//! let opt = Series::new("belady", vec![(1.0, 0.6), (4.0, 0.85), (16.0, 0.95)]).dashed();
//! let svg = line_chart(&[lru, opt], &ChartOptions::new("hit rate", "capacity (GiB)", "hit rate").log_x())
//!     .unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("belady"));
//! ```

use std::ops::Range;
use std::path::Path;

use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One named line: points in data units, drawn in the given order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (bounds and references, e.g. Belady's optimum, next to measured series).
    pub dashed: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points, dashed: false }
    }

    pub fn dashed(self) -> Self {
        self.with_dashed(true)
    }

    pub fn with_dashed(mut self, dashed: bool) -> Self {
        self.dashed = dashed;
        self
    }

    /// The empirical CDF of `samples` as a step line: (value, fraction of samples <= value).
    /// Non-finite samples are dropped.
    pub fn ecdf(name: impl Into<String>, samples: &[f64]) -> Self {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let mut points = Vec::with_capacity(2 * v.len());
        for (i, x) in v.iter().enumerate() {
            points.push((*x, i as f64 / n));
            points.push((*x, (i + 1) as f64 / n));
        }
        Series::new(name, points)
    }

    /// A step line from cumulative points `(value, share of samples at or below value)` in
    /// ascending order (e.g. a histogram's eCDF): each point rises from the previous share.
    pub fn steps(name: impl Into<String>, cumulative: &[(f64, f64)]) -> Self {
        let mut points = Vec::with_capacity(2 * cumulative.len());
        let mut below = 0.0;
        for &(x, share) in cumulative {
            points.push((x, below));
            points.push((x, share));
            below = share;
        }
        Series::new(name, points)
    }
}

/// One bar's segments, for grouped or stacked bar charts: `values[i]` belongs to segment
/// `segments[i]` of [`bar_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub values: Vec<f64>,
}

/// How tick labels print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AxisFormat {
    /// Plain numbers, up to 3 significant decimals.
    #[default]
    Number,
    /// Byte counts with binary suffixes (`512KiB`, `4GiB`).
    Bytes,
    /// Fractions in 0..=1 printed as percentages.
    Percent,
}

/// Title, axis labels (say the unit: `"start time (ms)"`) and scale choices.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartOptions {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic x axis; points with x <= 0 cannot be placed and are left out.
    pub log_x: bool,
    pub x_format: AxisFormat,
    pub y_format: AxisFormat,
    /// Fixed x range; points outside it are left out. Default: fitted to the data.
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range; default: fitted to the data (from 0 when all values are positive).
    pub y_range: Option<(f64, f64)>,
    /// Ticks exactly at these x values (e.g. the capacities a sweep ran) instead of automatic ones.
    pub x_ticks: Option<Vec<f64>>,
    /// Bars: stack segments (tier mix adds up) instead of placing them side by side.
    pub stacked: bool,
    /// Ticks on whole numbers only (counts, minutes): no `2.5` chunks, no half-minute ticks.
    pub integer_x: bool,
    pub integer_y: bool,
    pub width: u32,
    pub height: u32,
}

impl ChartOptions {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        ChartOptions {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            x_format: AxisFormat::Number,
            y_format: AxisFormat::Number,
            x_range: None,
            y_range: None,
            x_ticks: None,
            stacked: false,
            integer_x: false,
            integer_y: false,
            width: 800,
            height: 500,
        }
    }

    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    pub fn x_format(mut self, f: AxisFormat) -> Self {
        self.x_format = f;
        self
    }

    pub fn y_format(mut self, f: AxisFormat) -> Self {
        self.y_format = f;
        self
    }

    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }

    /// The SVG's size in pixels (default 800 x 500).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    pub fn x_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.x_ticks = Some(ticks);
        self
    }

    pub fn stacked(mut self) -> Self {
        self.stacked = true;
        self
    }

    /// Whole-number ticks on x (minutes, counts).
    pub fn integer_x(mut self) -> Self {
        self.integer_x = true;
        self
    }

    /// Whole-number ticks on y (counts).
    pub fn integer_y(mut self) -> Self {
        self.integer_y = true;
        self
    }
}

/// Why a chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("chart {title:?}: {reason}")]
    Draw { title: String, reason: String },
    #[error("cannot write chart {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Colours in a fixed order, series `i` always the same colour, so charts of related runs
/// compare at a glance. Taken from the Okabe-Ito set (safe for the common colour-vision
/// deficiencies) and ordered so the first four also differ in lightness (greyscale luma 87,
/// 162, 26, 195: blue, orange, near-black, light sky blue); later series add marker shapes.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(26, 26, 26),
    RGBColor(154, 208, 240),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(119, 119, 119),
];

/// The one chart style: fonts, margins and grid, the same for every command's charts.
mod style {
    pub const FONT: &str = "sans-serif";
    pub const TITLE: u32 = 18;
    pub const LABEL: u32 = 13;
    pub const DESC: u32 = 14;
    pub const LEGEND: u32 = 13;
    /// Room around the plot: the right margin keeps the last tick label inside the SVG.
    pub const MARGIN: u32 = 12;
    pub const MARGIN_RIGHT: u32 = 44;
    pub const X_AREA: u32 = 48;
    pub const Y_AREA: u32 = 72;
    /// Legend rows below the plot (never over the data).
    pub const LEGEND_ROW: u32 = 22;
    /// Estimated width of a legend character at `LEGEND` px (plotters' SVG text estimate).
    pub const CHAR_W: f64 = 7.2;
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Series `i`'s colour as CSS (`#0072b2`), for pages that colour other things to match a chart.
pub fn color_css(i: usize) -> String {
    let c = color(i);
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Several named lines on one pair of axes (miss-ratio curves, percentiles against a knob).
pub fn line_chart(series: &[Series], opt: &ChartOptions) -> Result<String, PlotError> {
    xy(series, opt, true)
}

/// Empirical CDFs: each series holds step points from [`Series::ecdf`]; y is fixed to 0..1.
pub fn ecdf_chart(series: &[Series], opt: &ChartOptions) -> Result<String, PlotError> {
    let mut opt = opt.clone();
    opt.y_range.get_or_insert((0.0, 1.0));
    xy(series, &opt, false)
}

/// Values over time (e.g. per simulated minute): lines with a marker on every sample, so gaps
/// between samples stay visible.
pub fn time_series_chart(series: &[Series], opt: &ChartOptions) -> Result<String, PlotError> {
    xy(series, opt, true)
}

/// Time series as panels stacked top to bottom in one SVG (e.g. a hit rate above a request
/// count, on their own scales): each panel is `time_series_chart` of its series and options, and
/// takes its options' height; the SVG is as wide as the widest panel.
pub fn time_series_panels(panels: &[(&[Series], &ChartOptions)]) -> Result<String, PlotError> {
    let width = panels.iter().map(|p| p.1.width).max().unwrap_or(800);
    let height: u32 = panels.iter().map(|p| p.1.height).sum();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height.max(1))).into_drawing_area();
        let mut rest = root.clone();
        for (series, opt) in panels {
            let (top, bottom) = rest.split_vertically(opt.height);
            xy_on(&top, series, opt, true)?;
            rest = bottom;
        }
        if let Some((_, opt)) = panels.first() {
            root.present().map_err(draw_err(opt))?;
        }
    }
    Ok(svg)
}

/// Writes an SVG string to `path` (whole file; callers write to their own output directory).
pub fn write_svg(path: &Path, svg: &str) -> Result<(), PlotError> {
    std::fs::write(path, svg).map_err(|source| PlotError::Write { path: path.display().to_string(), source })
}

fn draw_err<E: std::fmt::Display>(opt: &ChartOptions) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError::Draw { title: opt.title.clone(), reason: e.to_string() }
}

fn fmt_value(v: f64, f: AxisFormat) -> String {
    match f {
        AxisFormat::Number => {
            let a = v.abs();
            if a != 0.0 && !(1e-3..1e6).contains(&a) {
                format!("{v:.2e}")
            } else {
                let s = format!("{v:.3}");
                let s = s.trim_end_matches('0').trim_end_matches('.');
                if s == "-0" { "0".into() } else { s.to_string() }
            }
        }
        AxisFormat::Bytes => {
            if v < 0.0 || !v.is_finite() {
                return fmt_value(v, AxisFormat::Number);
            }
            let units = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
            for (name, shift) in units {
                let unit = (1u64 << shift) as f64;
                if v >= unit {
                    return format!("{}{name}", fmt_value(v / unit, AxisFormat::Number));
                }
            }
            format!("{}B", fmt_value(v, AxisFormat::Number))
        }
        AxisFormat::Percent => format!("{}%", fmt_value(v * 100.0, AxisFormat::Number)),
    }
}

/// The finite points of a series that the x scale can place (inside the fixed x range, if any).
fn usable(s: &Series, opt: &ChartOptions) -> Vec<(f64, f64)> {
    let inside = |x: f64| opt.x_range.is_none_or(|(lo, hi)| (lo..=hi).contains(&x));
    s.points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!opt.log_x || *x > 0.0) && inside(*x))
        .collect()
}

/// A range that contains `lo..=hi` and is never empty (degenerate data gets a margin).
fn widen(lo: f64, hi: f64, log: bool) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return if log { 1.0..10.0 } else { 0.0..1.0 };
    }
    if hi > lo {
        return lo..hi;
    }
    if log {
        lo / 2.0..hi * 2.0
    } else if lo == 0.0 {
        0.0..1.0
    } else {
        let m = lo.abs() / 2.0;
        lo - m..hi + m
    }
}

fn bounds(it: impl Iterator<Item = f64>) -> (f64, f64) {
    it.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn xy(series: &[Series], opt: &ChartOptions, markers: bool) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (opt.width, opt.height)).into_drawing_area();
        xy_on(&root, series, opt, markers)?;
        root.present().map_err(draw_err(opt))?;
    }
    Ok(svg)
}

/// Draws an XY chart on `root` (a whole SVG or one panel of it).
fn xy_on(root: &Area<'_>, series: &[Series], opt: &ChartOptions, markers: bool) -> Result<(), PlotError> {
    let pts: Vec<Vec<(f64, f64)>> = series.iter().map(|s| usable(s, opt)).collect();
    let all = || pts.iter().flatten();
    let x = match opt.x_range {
        Some((lo, hi)) => widen(lo, hi, opt.log_x),
        None => {
            let (x0, x1) = bounds(all().map(|p| p.0).chain(opt.x_ticks.iter().flatten().copied()));
            widen(x0, x1, opt.log_x)
        }
    };
    let y = match opt.y_range {
        Some((lo, hi)) => widen(lo, hi, false),
        None => {
            let (y0, y1) = bounds(all().map(|p| p.1));
            let y0 = if y0 > 0.0 && y0.is_finite() { 0.0 } else { y0 };
            let r = widen(y0, y1, false);
            // A little headroom so the top line is not drawn on the frame.
            r.start..r.end + (r.end - r.start) * 0.05
        }
    };
    let ticks = opt.x_ticks.clone().map(|t| {
        let mut t: Vec<f64> = t.into_iter().filter(|v| v.is_finite() && (!opt.log_x || *v > 0.0)).collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    });
    let empty = pts.iter().all(Vec::is_empty);
    // Counts and minutes: whole-number data gets whole-number ticks, asked for or not.
    let whole = |v: f64| v.fract() == 0.0;
    let mut opt = opt.clone();
    opt.integer_x |= !empty && all().all(|p| whole(p.0));
    opt.integer_y |= !empty && all().all(|p| whole(p.1)) && opt.y_format == AxisFormat::Number;
    let opt = &opt;
    if opt.log_x {
        let x = Ticked { inner: LogCoord::<f64>::from(x.log_scale()), ticks, integer: false };
        draw_xy(root, x, y, series, &pts, opt, markers, empty)
    } else {
        let x = Ticked { inner: RangedCoordf64::from(x), ticks, integer: opt.integer_x };
        draw_xy(root, x, y, series, &pts, opt, markers, empty)
    }
}

/// An x axis with ticks exactly where the caller wants them (else the inner axis' own), and the
/// default label formatting plotters' mesh needs (its `with_key_points` lacks it).
struct Ticked<R> {
    inner: R,
    ticks: Option<Vec<f64>>,
    /// Only whole-number ticks (when `ticks` is not given).
    integer: bool,
}

/// Whole-number ticks in `range`, about `max` of them, at steps of 1, 2 or 5 times a power of ten.
fn integer_ticks(range: &Range<f64>, max: usize) -> Vec<f64> {
    let (lo, hi) = (range.start.ceil(), range.end.floor());
    if !(lo.is_finite() && hi.is_finite()) || hi < lo {
        return Vec::new();
    }
    let max = max.max(2) as f64;
    let raw = ((hi - lo) / (max - 1.0)).max(1.0);
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * pow).find(|s| *s >= raw).unwrap_or(10.0 * pow);
    let first = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut v = first;
    while v <= hi && out.len() < 1000 {
        out.push(v);
        v += step;
    }
    out
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        match &self.ticks {
            _ if hint.weight().allow_light_points() && (self.ticks.is_some() || self.integer) => Vec::new(),
            Some(t) => t.clone(),
            None if self.integer => integer_ticks(&self.inner.range(), hint.max_num_points().min(11)),
            None => self.inner.key_points(hint),
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// One legend entry: a series' name, colour and how its sample is drawn.
struct Key {
    name: String,
    color: RGBColor,
    /// `None`: a filled box (bars); `Some(dashed)`: a line.
    line: Option<bool>,
    /// The marker shape drawn on the series' points, if any (index into [`draw_marker`]'s shapes).
    marker: Option<usize>,
}

/// Legend entries laid out in rows within `width`: per entry, its row and x offset.
fn legend_layout(keys: &[Key], width: u32) -> Vec<(u32, i32)> {
    let mut out = Vec::with_capacity(keys.len());
    let (mut row, mut x) = (0u32, style::MARGIN as i32 + 8);
    let limit = width.saturating_sub(style::MARGIN) as i32;
    for k in keys {
        let w = 34 + (k.name.chars().count() as f64 * style::CHAR_W).ceil() as i32 + 18;
        if x + w > limit && x > style::MARGIN as i32 + 8 {
            row += 1;
            x = style::MARGIN as i32 + 8;
        }
        out.push((row, x));
        x += w;
    }
    out
}

/// Height of the legend strip below a chart (0 without entries).
fn legend_height(keys: &[Key], width: u32) -> u32 {
    match legend_layout(keys, width).last() {
        Some((rows, _)) => (rows + 1) * style::LEGEND_ROW + 6,
        None => 0,
    }
}

/// Splits `root` into the chart's area and, below it, the legend's (so no legend covers data).
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn split_legend<'a>(root: &Area<'a>, keys: &[Key]) -> (Area<'a>, Area<'a>) {
    let (w, h) = root.dim_in_pixel();
    let lh = legend_height(keys, w).min(h / 2);
    root.split_vertically(h - lh)
}

fn draw_legend(area: &Area<'_>, keys: &[Key], opt: &ChartOptions) -> Result<(), PlotError> {
    let e = draw_err(opt);
    let (w, _) = area.dim_in_pixel();
    let font = (style::FONT, style::LEGEND).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, (row, x)) in keys.iter().zip(legend_layout(keys, w)) {
        let y = (row * style::LEGEND_ROW + style::LEGEND_ROW / 2) as i32;
        match k.line {
            None => {
                area.draw(&Rectangle::new([(x + 6, y - 6), (x + 22, y + 6)], k.color.filled()))
                    .map_err(&e)?;
                area.draw(&Rectangle::new([(x + 6, y - 6), (x + 22, y + 6)], BLACK.stroke_width(1)))
                    .map_err(&e)?;
            }
            Some(false) => {
                area.draw(&PathElement::new(vec![(x, y), (x + 28, y)], k.color.stroke_width(2)))
                    .map_err(&e)?;
            }
            Some(true) => {
                for dx in [0, 10, 20] {
                    area.draw(&PathElement::new(vec![(x + dx, y), (x + dx + 6, y)], k.color.stroke_width(2)))
                        .map_err(&e)?;
                }
            }
        }
        if let Some(m) = k.marker {
            draw_marker(area, (x + 14, y), m, k.color).map_err(&e)?;
        }
        area.draw(&Text::new(k.name.clone(), (x + 34, y), font.clone())).map_err(&e)?;
    }
    Ok(())
}

/// Draws marker shape `m` (circle, square, triangle, diamond, repeating) centred at a pixel.
fn draw_marker(
    area: &Area<'_>,
    (x, y): (i32, i32),
    m: usize,
    c: RGBColor,
) -> Result<(), plotters::drawing::DrawingAreaErrorKind<std::io::Error>> {
    let fill = c.filled();
    match m % 4 {
        0 => area.draw(&Circle::new((x, y), 3, fill)),
        1 => area.draw(&Rectangle::new([(x - 3, y - 3), (x + 3, y + 3)], fill)),
        2 => area.draw(&Polygon::new(vec![(x, y - 4), (x + 4, y + 3), (x - 4, y + 3)], fill)),
        _ => area.draw(&Polygon::new(vec![(x, y - 4), (x + 4, y), (x, y + 4), (x - 4, y)], fill)),
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_xy<X>(
    root: &Area<'_>,
    x: X,
    y: Range<f64>,
    series: &[Series],
    pts: &[Vec<(f64, f64)>],
    opt: &ChartOptions,
    markers: bool,
    empty: bool,
) -> Result<(), PlotError>
where
    X: Ranged<ValueType = f64, FormatOption = DefaultFormatting>,
{
    let e = draw_err(opt);
    root.fill(&WHITE).map_err(&e)?;
    let keys: Vec<Key> = series
        .iter()
        .enumerate()
        .map(|(i, s)| Key {
            name: s.name.clone(),
            color: color(i),
            line: Some(s.dashed),
            marker: markers.then_some(i),
        })
        .collect();
    let (plot_area, legend_area) = split_legend(root, &keys);
    let caption = if empty { format!("{} (no data)", opt.title) } else { opt.title.clone() };
    let y = Ticked { inner: RangedCoordf64::from(y), ticks: None, integer: opt.integer_y };
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(caption, (style::FONT, style::TITLE))
        .margin(style::MARGIN)
        .margin_right(style::MARGIN_RIGHT)
        .x_label_area_size(style::X_AREA)
        .y_label_area_size(style::Y_AREA)
        .build_cartesian_2d(x, y)
        .map_err(&e)?;
    let (xf, yf) = (opt.x_format, opt.y_format);
    chart
        .configure_mesh()
        .x_desc(opt.x_label.as_str())
        .y_desc(opt.y_label.as_str())
        .x_label_formatter(&|v| fmt_value(*v, xf))
        .y_label_formatter(&|v| fmt_value(*v, yf))
        .label_style((style::FONT, style::LABEL))
        .axis_desc_style((style::FONT, style::DESC))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(&e)?;
    for (i, (s, p)) in series.iter().zip(pts).enumerate() {
        let c = color(i);
        let style = c.stroke_width(2);
        if s.dashed {
            chart.draw_series(DashedLineSeries::new(p.iter().copied(), 6, 4, style)).map_err(&e)?;
        } else {
            chart.draw_series(LineSeries::new(p.iter().copied(), style)).map_err(&e)?;
        }
        if markers {
            let (f, it) = (c.filled(), p.iter().copied());
            match i % 4 {
                0 => {
                    chart.draw_series(it.map(|pt| EmptyElement::at(pt) + Circle::new((0, 0), 3, f))).map(drop)
                }
                1 => chart
                    .draw_series(it.map(|pt| EmptyElement::at(pt) + Rectangle::new([(-3, -3), (3, 3)], f)))
                    .map(drop),
                2 => chart
                    .draw_series(
                        it.map(|pt| EmptyElement::at(pt) + Polygon::new(vec![(0, -4), (4, 3), (-4, 3)], f)),
                    )
                    .map(drop),
                _ => chart
                    .draw_series(it.map(|pt| {
                        EmptyElement::at(pt) + Polygon::new(vec![(0, -4), (4, 0), (0, 4), (-4, 0)], f)
                    }))
                    .map(drop),
            }
            .map_err(&e)?;
        }
    }
    draw_legend(&legend_area, &keys, opt)
}

/// Bars, one group per [`BarGroup`], one colour per segment; segments side by side or stacked
/// ([`ChartOptions::stacked`]). Negative and non-finite values count as zero.
pub fn bar_chart(segments: &[String], groups: &[BarGroup], opt: &ChartOptions) -> Result<String, PlotError> {
    let e = draw_err(opt);
    let val = |g: &BarGroup, i: usize| {
        g.values.get(i).copied().filter(|v| v.is_finite() && *v > 0.0).unwrap_or(0.0)
    };
    let top = groups
        .iter()
        .map(|g| {
            let vs = (0..segments.len()).map(|i| val(g, i));
            if opt.stacked { vs.sum::<f64>() } else { vs.fold(0.0, f64::max) }
        })
        .fold(0.0, f64::max);
    let y = match opt.y_range {
        Some((lo, hi)) => widen(lo, hi, false),
        None => {
            let r = widen(0.0, top, false);
            r.start..r.end * 1.05
        }
    };
    let n = groups.len().max(1);
    let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    let centers: Vec<f64> = (0..groups.len()).map(|i| i as f64).collect();
    let empty = groups.is_empty() || top == 0.0;
    let integer_y = opt.integer_y
        || (opt.y_format == AxisFormat::Number
            && groups.iter().all(|g| (0..segments.len()).all(|i| val(g, i).fract() == 0.0)));
    let keys: Vec<Key> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| Key { name: s.clone(), color: color(i), line: None, marker: None })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (opt.width, opt.height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        // One series needs no legend: the y axis names it.
        let keys = if keys.len() > 1 { keys } else { Vec::new() };
        let (plot_area, legend_area) = split_legend(&root, &keys);
        let caption = if empty { format!("{} (no data)", opt.title) } else { opt.title.clone() };
        let x = Ticked {
            inner: RangedCoordf64::from(-0.5..n as f64 - 0.5),
            ticks: Some(centers),
            integer: false,
        };
        let y = Ticked { inner: RangedCoordf64::from(y), ticks: None, integer: integer_y };
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(caption, (style::FONT, style::TITLE))
            .margin(style::MARGIN)
            .margin_right(style::MARGIN_RIGHT)
            .x_label_area_size(style::X_AREA)
            .y_label_area_size(style::Y_AREA)
            .build_cartesian_2d(x, y)
            .map_err(&e)?;
        let yf = opt.y_format;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(opt.x_label.as_str())
            .y_desc(opt.y_label.as_str())
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-9 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| fmt_value(*v, yf))
            .label_style((style::FONT, style::LABEL))
            .axis_desc_style((style::FONT, style::DESC))
            .bold_line_style(BLACK.mix(0.08))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(&e)?;
        let k = segments.len().max(1) as f64;
        let width = 0.8;
        for (si, _) in segments.iter().enumerate() {
            let c = color(si);
            let rects = |fill: bool| {
                groups.iter().enumerate().filter(|(_, g)| val(g, si) > 0.0).map(move |(gi, g)| {
                    let left = gi as f64 - width / 2.0;
                    let (x0, x1, y0, y1) = if opt.stacked {
                        let below: f64 = (0..si).map(|j| val(g, j)).sum();
                        (left, left + width, below, below + val(g, si))
                    } else {
                        let w = width / k;
                        (left + w * si as f64, left + w * (si as f64 + 1.0), 0.0, val(g, si))
                    };
                    let style = if fill { c.filled() } else { WHITE.stroke_width(1) };
                    Rectangle::new([(x0, y0), (x1, y1)], style)
                })
            };
            chart.draw_series(rects(true)).map_err(&e)?;
            // A white outline keeps stacked segments apart in greyscale too.
            chart.draw_series(rects(false)).map_err(&e)?;
        }
        draw_legend(&legend_area, &keys, opt)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ChartOptions {
        ChartOptions::new("hit rate vs capacity", "L1 capacity", "hit rate").x_format(AxisFormat::Bytes)
    }

    #[test]
    fn line_chart_renders_every_series_with_title_labels_and_legend() {
        let gib = (1u64 << 30) as f64;
        let a = Series::new("lru", vec![(gib, 0.5), (4.0 * gib, 0.7), (16.0 * gib, 0.9)]);
        let b = Series::new("belady", vec![(gib, 0.6), (4.0 * gib, 0.8), (16.0 * gib, 0.95)]).dashed();
        let svg =
            line_chart(&[a.clone(), b.clone()], &opts().log_x().x_ticks(vec![gib, 4.0 * gib, 16.0 * gib]))
                .unwrap();
        for text in ["hit rate vs capacity", "L1 capacity", "lru", "belady", "1GiB", "4GiB", "16GiB"] {
            assert!(svg.contains(text), "{text} missing");
        }
        // Series colours come from the palette in order; the dashed one is drawn as many pieces.
        let pieces =
            |svg: &str, c: &str| svg.matches(&format!("stroke=\"{c}\" stroke-width=\"2\" points")).count();
        assert!(pieces(&svg, "#0072B2") >= 1, "the solid series is drawn");
        assert!(pieces(&svg, "#E69F00") > 5, "the dashed series is drawn in dashes");
        let solid = line_chart(&[a, b.clone().with_dashed(false)], &opts().log_x()).unwrap();
        assert!(pieces(&solid, "#E69F00") <= 2, "undashed: one line (+ legend)");
    }

    /// The y of every `<text>` whose content is `label`.
    fn text_y(svg: &str, label: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for part in svg.split("<text").skip(1) {
            let body = part.split_once('>').map_or("", |(_, b)| b);
            if body.trim_start().starts_with(label) {
                let y = part.split("y=\"").nth(1).and_then(|r| r.split('"').next());
                out.extend(y.and_then(|v| v.parse::<f64>().ok()));
            }
        }
        out
    }

    #[test]
    fn legends_sit_below_the_plot_never_over_the_data() {
        let s =
            [Series::new("top series", vec![(0.0, 1.0), (1.0, 2.0)]), Series::new("other", vec![(0.0, 2.0)])];
        let o = ChartOptions::new("t", "x axis", "y axis").size(400, 300);
        let svg = line_chart(&s, &o).unwrap();
        let (legend, axis) = (text_y(&svg, "top series"), text_y(&svg, "x axis"));
        assert_eq!(legend.len(), 1, "{svg}");
        assert!(legend[0] > axis[0], "legend at y {} above the x axis title at {}", legend[0], axis[0]);
        let g = [BarGroup { label: "a".into(), values: vec![3.0, 4.0] }];
        let svg = bar_chart(&["stored".into(), "new".into()], &g, &o.clone().stacked()).unwrap();
        assert!(text_y(&svg, "new")[0] > text_y(&svg, "x axis")[0]);
        // A single segment needs no legend: the y axis names it.
        let svg = bar_chart(&["only".into()], &g, &o).unwrap();
        assert!(text_y(&svg, "only").is_empty());
    }

    #[test]
    fn counts_and_minutes_get_whole_number_ticks() {
        assert_eq!(integer_ticks(&(0.0..4.0), 10), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(integer_ticks(&(-0.2..4.3), 10), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(integer_ticks(&(0.0..5250.0), 6), vec![0.0, 2000.0, 4000.0]);
        assert!(integer_ticks(&(0.2..0.8), 10).is_empty());
        // Whole-number data: no "2.5" tick and no "5000.0".
        let s = [Series::new("GETs", vec![(0.0, 5.0), (1.0, 4800.0), (2.0, 0.0), (3.0, 40.0), (4.0, 0.0)])];
        let svg = time_series_chart(&s, &ChartOptions::new("t", "minute", "GETs")).unwrap();
        assert!(!svg.contains(".5\n") && !svg.contains(">0.5<") && !svg.contains("5000.0"), "{svg}");
        assert!(text_y(&svg, "4\n").len() + text_y(&svg, "4<").len() <= 2);
    }

    #[test]
    fn no_tick_label_runs_past_the_edge() {
        // The sweep's capacities: the last tick's long label sits at the right end of the axis.
        let gib = (1u64 << 30) as f64;
        let xs = vec![0.25 * gib, 1.172 * gib];
        let s = [Series::new("lru", vec![(xs[0], 0.4), (xs[1], 0.9)])];
        let o = ChartOptions::new("t", "capacity", "hit rate")
            .log_x()
            .x_ticks(xs)
            .x_format(AxisFormat::Bytes)
            .size(720, 440);
        let svg = line_chart(&s, &o).unwrap();
        for part in svg.split("<text").skip(1) {
            let attr = |name: &str| {
                part.split(&format!(" {name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map(str::to_string)
            };
            let x: f64 = attr("x").unwrap().parse().unwrap();
            let text = part.split_once('>').unwrap().1.split('<').next().unwrap().trim();
            let half = text.chars().count() as f64 * style::CHAR_W / 2.0;
            let right = match attr("text-anchor").as_deref() {
                Some("middle") => x + half,
                Some("end") => x,
                _ => x + 2.0 * half,
            };
            assert!(right <= 720.0, "{text:?} ends at {right}");
        }
        assert!(svg.contains("1.172GiB"));
    }

    #[test]
    fn the_first_four_colours_differ_in_greyscale() {
        let luma = |c: RGBColor| 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
        let mut l: Vec<f64> = PALETTE[..4].iter().map(|c| luma(*c)).collect();
        l.sort_by(f64::total_cmp);
        assert!(l.windows(2).all(|w| w[1] - w[0] >= 25.0), "{l:?}");
    }

    #[test]
    fn same_data_gives_the_same_bytes() {
        let s = [Series::ecdf("p1", &[3.0, 1.0, 2.0, 10.0]), Series::ecdf("p2", &[0.5, 8.0])];
        let o = ChartOptions::new("start time", "start time (ms)", "fraction of starts").log_x();
        assert_eq!(ecdf_chart(&s, &o).unwrap(), ecdf_chart(&s, &o).unwrap());
        let g = [BarGroup { label: "a".into(), values: vec![1.0, 2.0] }];
        let seg = ["l1".to_string(), "s3".to_string()];
        let o = o.stacked();
        assert_eq!(bar_chart(&seg, &g, &o).unwrap(), bar_chart(&seg, &g, &o).unwrap());
    }

    #[test]
    fn ecdf_steps_up_to_one() {
        let s = Series::ecdf("x", &[2.0, f64::NAN, 1.0]);
        assert_eq!(s.points, vec![(1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]);
        let h = Series::steps("h", &[(1.0, 0.25), (4.0, 1.0)]);
        assert_eq!(h.points, vec![(1.0, 0.0), (1.0, 0.25), (4.0, 0.25), (4.0, 1.0)]);
    }

    #[test]
    fn a_fixed_x_range_leaves_out_the_points_outside_it() {
        let o = opts().x_range(1.0, 10.0);
        let s = Series::new("s", vec![(0.5, 1.0), (2.0, 2.0), (20.0, 3.0)]);
        assert_eq!(usable(&s, &o), vec![(2.0, 2.0)]);
        assert!(line_chart(&[Series::new("out", vec![(20.0, 1.0)])], &o).unwrap().contains("(no data)"));
    }

    #[test]
    fn panels_stack_in_one_svg() {
        let a = [Series::new("hit rate", vec![(0.0, 99.0), (1.0, 100.0)])];
        let b = [Series::new("gets", vec![(0.0, 5.0), (1.0, 7.0)])];
        let (oa, ob) = (
            ChartOptions::new("top panel", "minute", "%").size(300, 200),
            ChartOptions::new("bottom panel", "minute", "GETs").size(300, 250),
        );
        let svg = time_series_panels(&[(&a, &oa), (&b, &ob)]).unwrap();
        assert!(svg.contains("width=\"300\" height=\"450\""), "{}", &svg[..200]);
        assert!(svg.contains("top panel") && svg.contains("bottom panel"));
    }

    #[test]
    fn empty_and_degenerate_data_draw_without_panicking() {
        let o = opts();
        assert!(line_chart(&[], &o).unwrap().contains("(no data)"));
        assert!(line_chart(&[Series::new("e", vec![])], &o.clone().log_x()).unwrap().contains("(no data)"));
        let one = Series::new("one", vec![(5.0, 5.0)]);
        line_chart(std::slice::from_ref(&one), &o).unwrap();
        line_chart(&[one], &o.clone().log_x()).unwrap();
        let bad = Series::new("bad", vec![(0.0, 1.0), (-1.0, f64::NAN), (f64::INFINITY, 2.0)]);
        assert!(line_chart(&[bad], &o.clone().log_x()).unwrap().contains("(no data)"));
        ecdf_chart(&[Series::ecdf("none", &[])], &o).unwrap();
        time_series_chart(&[Series::new("flat", vec![(0.0, 0.0), (1.0, 0.0)])], &o).unwrap();
        assert!(bar_chart(&[], &[], &o).unwrap().contains("(no data)"));
        let g = [BarGroup { label: "zero".into(), values: vec![0.0, -3.0] }];
        bar_chart(&["a".into(), "b".into()], &g, &o).unwrap();
    }

    #[test]
    fn tick_labels_read_as_units() {
        assert_eq!(fmt_value(512.0 * 1024.0, AxisFormat::Bytes), "512KiB");
        assert_eq!(fmt_value(1.5 * (1u64 << 30) as f64, AxisFormat::Bytes), "1.5GiB");
        assert_eq!(fmt_value(0.25, AxisFormat::Percent), "25%");
        assert_eq!(fmt_value(2.0, AxisFormat::Number), "2");
        assert_eq!(fmt_value(1e9, AxisFormat::Number), "1.00e9");
    }
}
