//! The demo's page (index.html): the four sections as the terminal prints them, each chart
//! beside the sentence that reads it (and the paper's figure beside ours), the start's timeline
//! under the four cache states, the data files, and the seed and scenarios folded away.

use super::{DemoError, DemoReport};
use crate::report::html::{Figure, Folded, Page, readable_toml};
use crate::teach::explain::timeline::{section, timeline};
use crate::teach::fleet_page;

/// The page's file name in the demo's output folder.
pub const PAGE: &str = "index.html";

impl DemoReport {
    /// The whole demo as one page.
    pub fn page(&self) -> Result<Page, DemoError> {
        let figs: std::collections::BTreeMap<&str, String> = self.figures()?.into_iter().collect();
        let fig = |name: &str, reading: String| Figure::new(figs[name].clone(), reading).file(name);

        // 2. The store.
        let up = &self.store.uploads;
        let mut uploads = String::from(
            "Each bar is one upload, in upload order: the lower part holds the chunks the store already had, \
             the upper part the new chunks it had to store.",
        );
        if let Some(first) = up.first() {
            uploads.push_str(&format!(" {} brings all its {} chunks.", first.tag, first.new));
        }
        if let Some(least) = up.iter().skip(1).filter(|u| u.new > 0).min_by_key(|u| (u.new, u.tag.clone())) {
            uploads.push_str(&format!(
                " Later images find most of theirs stored: {} adds only {} new of {}.",
                least.tag, least.new, least.chunks
            ));
        }
        let store = section(&self.store.to_string()).figure(fig("uploads.svg", uploads).paper(
            "Paper, figure 5: dedup saves up to 23x across images, and ~80% of new uploads add no unique chunk.",
        ));

        // 3. The start.
        let st = &self.starts;
        let served: Vec<String> = st
            .cases
            .iter()
            .map(|c| {
                let tiers: Vec<String> = c
                    .result
                    .by_tier
                    .iter()
                    .filter(|(t, n)| n.chunks > 0 && **t != crate::sim::Tier::Hole)
                    .map(|(t, n)| format!("{} from {}", n.chunks, t.label()))
                    .collect();
                format!("{}/{}: {}", c.l1.name(), c.l2.name(), tiers.join(", "))
            })
            .collect();
        let medians: Vec<String> = st
            .cases
            .iter()
            .filter_map(|c| {
                let p = c.result.read_latency.as_ref()?;
                Some(format!("{}/{} {}", c.l1.name(), c.l2.name(), p.p50))
            })
            .collect();
        let usual = st
            .cases
            .iter()
            .find(|c| (c.l1, c.l2) == (crate::replay::CacheState::Cold, crate::replay::CacheState::Warm));
        let mut times = String::from(
            "Lazy loading under each cache state, then the baselines, which download and unpack before the \
             function's first read.",
        );
        if let (Some(c), Some(b)) = (usual, &st.baselines) {
            let base: Vec<String> = b.iter().map(|x| format!("the {} {}", x.name, x.total)).collect();
            times.push_str(&format!(
                " The usual cold start (AZ cache warm) takes {}; {}.",
                c.result.start_time,
                base.join(" and ")
            ));
        }
        let mut starts = section(&st.to_string())
            .figure(fig(
                "chunk-sources.svg",
                format!(
                    "Where the chunks of each start came from, one bar per cache state (worker / AZ): {}.",
                    served.join("; ")
                ),
            ))
            .figure(fig(
                "read-latency-cdf.svg",
                format!(
                    "Each step is one device read, the further left the faster; the median read: {}. A read \
                     waits for the slowest chunk it needs.",
                    medians.join(", ")
                ),
            ))
            .figure(fig("start-times.svg", times));
        if !st.timeline.is_empty() {
            starts = starts.timeline(timeline(&st.image, st.timeline.clone()));
        }

        // 4. The region.
        let fl = &self.fleet;
        let mut region = section(&fl.to_string());
        let region_figs: Vec<(String, String)> = fl.figures()?;
        let (node_loss, rest): (Vec<_>, Vec<_>) =
            region_figs.into_iter().partition(|(n, _)| n == "fleet-node-loss.svg");
        for f in fleet_page::figures(&fl.region, rest, "fleet-") {
            region = region.figure(f);
        }
        for (name, svg) in node_loss {
            let worst = fl
                .single_copy
                .minutes
                .iter()
                .filter_map(|m| Some((m.minute, m.l2_hit_rate()?)))
                .zip(fl.region.minutes.iter().filter_map(|m| m.l2_hit_rate()))
                .map(|((minute, one), ec)| (minute, one, ec))
                .max_by(|a, b| (a.2 - a.1).total_cmp(&(b.2 - b.1)));
            let mut text = String::from(
                "The same region and seed twice: the same starts and reads, so the two lines differ only in \
                 what the lost node takes with it.",
            );
            if let Some((minute, one, ec)) = worst {
                text.push_str(&format!(
                    " The widest gap is minute {minute}: {} with erasure coding, {} with a single copy.",
                    format_pct(ec),
                    format_pct(one)
                ));
            }
            region = region.figure(Figure::new(svg, text).file(name).paper(
                "Paper: erasure coding rides out a node loss with no drop in hit rate; one copy loses ~1/20.",
            ));
        }

        let files: Vec<String> = self.files.clone();
        Ok(Page {
            title: "How a container image becomes a cold start".into(),
            lead: vec![
                format!(
                    "chunkload {} demo, seed {}, images from {}: the whole pipeline over small real images, \
                     section by section, as report.txt tells it, with each chart beside the sentence that reads \
                     it.",
                    self.chunkload_version, self.seed, self.images_dir
                ),
                format!(
                    "In short: the {} images reference {} chunks, only {} of them distinct, so the store keeps \
                     one copy of each; a start touches a small part of its image, and where it finds those \
                     chunks (the worker, the AZ cache or S3) decides its time.",
                    self.images.images.len(),
                    self.store.dedup.totals.logical_chunks,
                    self.store.dedup.totals.distinct_chunks
                ),
            ],
            sections: vec![section(&self.images.to_string()), store, starts, region],
            files,
            folded: vec![
                Folded {
                    title: format!(
                        "Seed {} and the effective start scenario (chunkload replay --scenario FILE takes it back)",
                        self.seed
                    ),
                    text: readable_toml(&self.scenario.to_toml()),
                },
                Folded {
                    title: format!("The region's scenario ({}, seed {})", fl.scenario_file, fl.region.seed),
                    text: readable_toml(&fl.region.scenario.to_toml()),
                },
                Folded { title: "The whole text report (report.txt)".into(), text: self.to_string() },
            ],
        })
    }
}

fn format_pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}
