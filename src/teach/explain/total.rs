//! Story 4: the whole start: its time, the chunks each tier served, and the baselines (a full
//! pull and a zip) it is compared with.

use std::fmt;

use serde::Serialize;

use crate::replay::Baselines;
use crate::replay::ReplayResult;
use crate::stats::percent as pct;
use crate::units::ByteSize;

#[derive(Debug, Clone, Serialize)]
pub struct TotalStory {
    pub lazy: ReplayResult,
    pub baselines: Option<Baselines>,
}

impl fmt::Display for TotalStory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.lazy;
        writeln!(f, "4. The whole start")?;
        writeln!(
            f,
            "   {} from the first access to the last: {} of {} chunks touched ({:.1}%), {} fetched.",
            l.start_time,
            l.chunks_touched,
            l.chunks_in_image,
            pct(l.chunks_touched, l.chunks_in_image),
            ByteSize(l.bytes_fetched)
        )?;
        for (tier, c) in &l.by_tier {
            if c.chunks == 0 {
                writeln!(f, "   reads also waited {} on chunks this start had already fetched", c.stall)?;
                continue;
            }
            writeln!(
                f,
                "   {:<34} {:>5} chunks {:>10}   reads waited {} on them",
                tier.phrase(),
                c.chunks,
                ByteSize(c.bytes).to_string(),
                c.stall
            )?;
        }
        if let Some(b) = &self.baselines {
            writeln!(f, "   Without lazy loading the worker would first download and unpack:")?;
            for x in b.iter() {
                writeln!(f, "   {:<10} {x}", x.name)?;
            }
            writeln!(f, "   lazy       {}", l.start_time)?;
            if b.zip_over_limit {
                writeln!(f, "   (the zip would exceed Lambda's limit on unzipped packages)")?;
            }
        } else {
            writeln!(f, "   (pass --image IMAGE to compare with a full pull and a zip package)")?;
        }
        Ok(())
    }
}
