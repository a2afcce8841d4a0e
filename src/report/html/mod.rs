//! One self-contained HTML page per run: `demo`, `explain --html`, `simulate --out` and
//! `sweep --out` describe what they found as data ([`Page`]: sections of sentences, preformatted
//! text, tables, inline SVG charts each beside the sentence that reads it, the paper's figure
//! named beside ours, an interactive cold-start [`timeline`], links to the data files, and the
//! seed and effective scenario folded away at the end), and [`Page::render`] turns it into one
//! HTML file that needs nothing but a browser: no network, no external script, style or font.
//!
//! A presentation leaf like `report::plot`: it imports nothing of the crate, so any layer may
//! build a page. The page's CSS and its one small script are hand-written assets, compiled in.

use std::fmt::Write as _;

mod readable;
pub mod timeline;

pub use readable::readable_toml;
pub use timeline::{TierKey, Timeline, TimelineChunk, TimelineRead, TimelineState};

const CSS: &str = include_str!("assets/page.css");
const SCRIPT: &str = include_str!("assets/timeline.js");

/// A whole report page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub title: String,
    /// Opening sentences, under the title.
    pub lead: Vec<String>,
    pub sections: Vec<Section>,
    /// Data files beside the page, relative to it (linked at the end).
    pub files: Vec<String>,
    /// Folded away at the end: the seed, the effective scenario, the full text report.
    pub folded: Vec<Folded>,
}

/// One section: a numbered part of the story.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
pub enum Block {
    /// A paragraph.
    Text(String),
    /// Preformatted text (the terminal report's tables, as printed).
    Pre(String),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Figure(Figure),
    Timeline(Timeline),
}

/// A chart and the sentence that reads it.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The chart's SVG text, inlined.
    pub svg: String,
    /// The chart's own file beside the page, if written.
    pub file: Option<String>,
    /// What the chart shows, read in a sentence or two.
    pub reading: String,
    /// The paper's figure this one stands beside, and what it shows.
    pub paper: Option<String>,
}

/// A block folded away (`<details>`), shown as preformatted text.
#[derive(Debug, Clone)]
pub struct Folded {
    pub title: String,
    pub text: String,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Self {
        Section { title: title.into(), blocks: Vec::new() }
    }

    pub fn text(mut self, s: impl Into<String>) -> Self {
        self.blocks.push(Block::Text(s.into()));
        self
    }

    pub fn pre(mut self, s: impl Into<String>) -> Self {
        self.blocks.push(Block::Pre(s.into()));
        self
    }

    pub fn figure(mut self, f: Figure) -> Self {
        self.blocks.push(Block::Figure(f));
        self
    }

    pub fn table(mut self, header: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        self.blocks.push(Block::Table { header, rows });
        self
    }

    pub fn timeline(mut self, t: Timeline) -> Self {
        self.blocks.push(Block::Timeline(t));
        self
    }
}

impl Figure {
    pub fn new(svg: impl Into<String>, reading: impl Into<String>) -> Self {
        Figure { svg: svg.into(), file: None, reading: reading.into(), paper: None }
    }

    pub fn file(mut self, name: impl Into<String>) -> Self {
        self.file = Some(name.into());
        self
    }

    pub fn paper(mut self, p: impl Into<String>) -> Self {
        self.paper = Some(p.into());
        self
    }
}

/// `s` with the five characters HTML gives meaning to escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG chart made to scale with the page: a `viewBox` from its width and height (plotters
/// writes none), its XML prologue dropped.
fn scalable_svg(svg: &str) -> String {
    let svg = svg.trim_start();
    let svg = match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, r)| r.trim_start()),
        None => svg,
    };
    let Some(open_end) = svg.find('>') else { return escape(svg) };
    let open = &svg[..open_end];
    if !open.starts_with("<svg") || open.contains("viewBox") {
        return svg.to_string();
    }
    let attr = |name: &str| {
        let key = format!(" {name}=\"");
        let at = open.find(&key)? + key.len();
        open[at..].split('"').next()?.parse::<f64>().ok()
    };
    match (attr("width"), attr("height")) {
        (Some(w), Some(h)) => format!(
            "<svg viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\"{}",
            &svg[4..]
        ),
        _ => svg.to_string(),
    }
}

/// An id for a heading: lower-case letters and digits, runs of anything else as one `-`.
fn slug(s: &str, n: usize) -> String {
    let mut out = format!("s{n}-");
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
        if out.len() > 40 {
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

/// JSON made safe inside a `<script>` element.
fn script_json(json: &str) -> String {
    json.replace("</", "<\\/").replace("<!--", "<\\!--")
}

impl Page {
    /// The whole page as one HTML document.
    pub fn render(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        for p in &self.lead {
            let _ = writeln!(h, "<p class=\"lead\">{}</p>", escape(p));
        }
        let ids: Vec<String> = self.sections.iter().enumerate().map(|(i, s)| slug(&s.title, i + 1)).collect();
        if self.sections.len() > 1 {
            h.push_str("<nav><ul>\n");
            for (s, id) in self.sections.iter().zip(&ids) {
                let _ = writeln!(h, "<li><a href=\"#{id}\">{}</a></li>", escape(&s.title));
            }
            h.push_str("</ul></nav>\n");
        }
        for (s, id) in self.sections.iter().zip(&ids) {
            let _ = writeln!(h, "<section id=\"{id}\">\n<h2>{}</h2>", escape(&s.title));
            for b in &s.blocks {
                render_block(&mut h, b);
            }
            h.push_str("</section>\n");
        }
        if !self.files.is_empty() {
            h.push_str("<section id=\"files\">\n<h2>Data files</h2>\n<ul class=\"files\">\n");
            for f in &self.files {
                let _ = writeln!(h, "<li><a href=\"{0}\">{0}</a></li>", escape(f));
            }
            h.push_str("</ul>\n</section>\n");
        }
        for f in &self.folded {
            let _ = writeln!(
                h,
                "<details class=\"folded\">\n<summary>{}</summary>\n<pre>{}</pre>\n</details>",
                escape(&f.title),
                escape(&f.text)
            );
        }
        h.push_str("</main>\n");
        if self.has_timeline() {
            let _ = writeln!(h, "<script>\n{SCRIPT}</script>");
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    fn has_timeline(&self) -> bool {
        self.sections.iter().flat_map(|s| &s.blocks).any(|b| matches!(b, Block::Timeline(_)))
    }
}

fn render_block(h: &mut String, b: &Block) {
    match b {
        Block::Text(t) => {
            let _ = writeln!(h, "<p>{}</p>", escape(t));
        }
        Block::Pre(t) => {
            let _ = writeln!(h, "<pre class=\"text\">{}</pre>", escape(t.trim_end()));
        }
        Block::Table { header, rows } => {
            h.push_str("<div class=\"table\"><table>\n<thead><tr>");
            for c in header {
                let _ = write!(h, "<th>{}</th>", escape(c));
            }
            h.push_str("</tr></thead>\n<tbody>\n");
            for r in rows {
                h.push_str("<tr>");
                for c in r {
                    let _ = write!(h, "<td>{}</td>", escape(c));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</tbody></table></div>\n");
        }
        Block::Figure(f) => {
            let file = f.file.as_deref().map(escape).unwrap_or_default();
            let _ = write!(
                h,
                "<figure class=\"chart\" data-file=\"{file}\">\n<div class=\"svg\">{}</div>\n<figcaption>\n<p>{}</p>\n",
                scalable_svg(&f.svg),
                escape(&f.reading)
            );
            if let Some(p) = &f.paper {
                let _ = writeln!(h, "<p class=\"paper\">{}</p>", escape(p));
            }
            if !file.is_empty() {
                let _ = writeln!(h, "<p class=\"file\"><a href=\"{file}\">{file}</a></p>");
            }
            h.push_str("</figcaption>\n</figure>\n");
        }
        Block::Timeline(t) => {
            let json = serde_json::to_string(t).expect("a timeline serializes");
            let _ = write!(
                h,
                "<div class=\"timeline\">\n<h3>{}</h3>\n<p>{}</p>\n<div class=\"tl-controls\">\
                 <label>caches before the start <select class=\"tl-state\">",
                escape(&t.title),
                escape(&t.reading)
            );
            for (i, s) in t.states.iter().enumerate() {
                let _ = write!(h, "<option value=\"{i}\">{}</option>", escape(&s.label));
            }
            h.push_str("</select></label><span class=\"tl-summary\"></span></div>\n<ul class=\"tl-key\">");
            for k in &t.tiers {
                let _ = write!(
                    h,
                    "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
                    escape(&k.color),
                    escape(&k.label)
                );
            }
            let _ = write!(
                h,
                "</ul>\n<div class=\"tl-plot\"></div>\n<pre class=\"tl-detail\" aria-live=\"polite\">{}</pre>\n\
                 <script type=\"application/json\" class=\"tl-data\">{}</script>\n</div>\n",
                escape(timeline::HINT),
                script_json(&json)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page {
        Page {
            title: "A <test> page".into(),
            lead: vec!["seed 7 & more".into()],
            sections: vec![
                Section::new("1. One")
                    .text("a sentence")
                    .pre("col  col\n1    2\n")
                    .figure(
                        Figure::new(
                            "<?xml version=\"1.0\"?>\n<svg width=\"400\" height=\"300\" xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>",
                            "reads 4 new chunks",
                        )
                        .file("uploads.svg")
                        .paper("Paper figure 5"),
                    ),
                Section::new("2. Two").table(vec!["a".into()], vec![vec!["</td>".into()]]),
            ],
            files: vec!["report.json".into()],
            folded: vec![Folded { title: "Effective scenario".into(), text: "seed = 7".into() }],
        }
    }

    #[test]
    fn a_page_is_self_contained_escaped_and_in_order() {
        let html = page().render();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>A &lt;test&gt; page</title>"));
        assert!(html.contains("seed 7 &amp; more"));
        assert!(html.contains("<td>&lt;/td&gt;</td>"));
        // The chart is inline and scales: a viewBox, no XML prologue.
        assert!(html.contains("<svg viewBox=\"0 0 400 300\""), "{html}");
        assert!(!html.contains("<?xml"));
        assert!(html.find("reads 4 new chunks").unwrap() > html.find("<svg viewBox").unwrap());
        assert!(html.contains("<a href=\"uploads.svg\">") && html.contains("<a href=\"report.json\">"));
        assert!(html.find("<details").unwrap() > html.find("id=\"files\"").unwrap());
        // Nothing is fetched: no external script, style, font or image.
        for bad in ["src=\"http", "href=\"http", "@import", "url(", "<link"] {
            assert!(!html.contains(bad), "{bad}");
        }
        // No timeline, no script.
        assert!(!html.contains("<script"));
        assert!(html.find("s1-1-one").unwrap() < html.find("s2-2-two").unwrap());
    }

    #[test]
    fn timeline_data_cannot_close_its_script_element() {
        let t = Timeline {
            title: "t".into(),
            reading: "r".into(),
            tiers: vec![],
            states: vec![TimelineState {
                name: "cold".into(),
                label: "cold".into(),
                start_ms: 1.0,
                threads: vec![1],
                reads: vec![TimelineRead {
                    thread: 1,
                    start_us: 0.0,
                    end_us: 1.0,
                    tier: "s3".into(),
                    op: "read".into(),
                    path: "/x</script><script>alert(1)".into(),
                    chunks: vec![],
                    story: String::new(),
                }],
            }],
        };
        let html = Page { sections: vec![Section::new("s").timeline(t)], ..Page::default() }.render();
        assert_eq!(html.matches("</script>").count(), 2, "the data block and the page script");
        assert!(html.contains("<option value=\"0\">cold</option>"));
    }
}
