//! A seeded synthetic start trace for an image, for when no real trace exists: which files are
//! read, how much, and in what order, shaped like an interpreter importing its modules. By default
//! it reads 6.4% of the image's live file bytes (the share the paper cites from Slacker): many
//! small source and metadata files read whole after a lookup, and now and then a shared library
//! of which the leading part is read (its headers and the code that runs first).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use crate::flatten::{Flattened, NodeKind};
use crate::trace::{Access, Header, Record, TracePath};

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub seed: u64,
    /// Share of the image's live file bytes the start reads (default 0.064).
    pub read_share: f64,
    /// Threads the accesses are spread over.
    pub threads: u32,
    /// Mean CPU time between one thread's accesses, microseconds (exponentially distributed).
    pub mean_gap_us: f64,
    /// Share of a shared library that is read (its headers and the first-run code).
    pub library_share: f64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: crate::sim::rng::DEFAULT_SEED,
            read_share: 0.064,
            threads: 1,
            mean_gap_us: 150.0,
            library_share: 0.3,
        }
    }
}

/// A file the generator may read.
struct Candidate {
    path: Vec<u8>,
    size: u64,
    library: bool,
}

fn is_library(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    name.ends_with(b".so") || name.windows(4).any(|w| w == b".so.")
}

/// The trace and the bytes it reads.
pub struct Synthesized {
    pub header: Header,
    pub records: Vec<Record>,
    pub bytes_read: u64,
    pub live_bytes: u64,
}

pub fn synthesize(flat: &Flattened, image: &str, opts: &SynthOptions) -> Synthesized {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut candidates: Vec<Candidate> = flat
        .tree
        .inodes()
        .into_iter()
        .filter_map(|(path, id)| match flat.tree.node(id).kind {
            NodeKind::File(c) if c.size > 0 => Some(Candidate {
                library: is_library(&path),
                path: [b"/".as_slice(), &path].concat(),
                size: c.size,
            }),
            _ => None,
        })
        .collect();
    // Fisher-Yates with the seeded stream: the order files are imported in.
    for i in (1..candidates.len()).rev() {
        let j = rng.random_range(0..=i);
        candidates.swap(i, j);
    }
    let live_bytes = flat.summary.total_bytes;
    let budget = (live_bytes as f64 * opts.read_share.clamp(0.0, 1.0)) as u64;
    let threads = opts.threads.max(1);
    let gap = Exp::new(1.0 / opts.mean_gap_us.max(1.0)).expect("positive rate");
    let mut clock = vec![0u64; threads as usize];
    let mut records = Vec::new();
    let mut bytes_read = 0u64;
    let (libraries, sources): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|c| c.library);
    let (mut libs, mut srcs) = (libraries.into_iter(), sources.into_iter());
    let mut n = 0u64;
    while bytes_read < budget {
        // Roughly one library per eight modules, as an import of a data-science stack goes.
        let next = if n % 8 == 7 {
            libs.next().or_else(|| srcs.next())
        } else {
            srcs.next().or_else(|| libs.next())
        };
        let Some(file) = next else { break };
        n += 1;
        let thread = rng.random_range(0..threads);
        let mut at = |rng: &mut ChaCha8Rng| {
            let t = &mut clock[thread as usize];
            *t += gap.sample(rng).round() as u64;
            *t
        };
        let path = TracePath::new(file.path).expect("tree paths are clean and absolute");
        records.push(Record {
            t_us: at(&mut rng),
            done_us: None,
            thread,
            path: path.clone(),
            access: Access::Open,
        });
        let want =
            if file.library { ((file.size as f64 * opts.library_share) as u64).max(1) } else { file.size };
        let len = want.min(budget - bytes_read).max(1).min(file.size);
        records.push(Record {
            t_us: at(&mut rng),
            done_us: None,
            thread,
            path,
            access: Access::Read { offset: 0, len },
        });
        bytes_read += len;
    }
    // One time line for all threads (the format orders records globally).
    records.sort_by_key(|r| (r.t_us, r.thread));
    // Thread numbers are dense in order of first appearance (the format's rule).
    let mut renumber: Vec<Option<u32>> = vec![None; threads as usize];
    let mut next = 0;
    for r in &mut records {
        let slot = &mut renumber[r.thread as usize];
        r.thread = *slot.get_or_insert_with(|| {
            next += 1;
            next - 1
        });
    }
    let mut header = Header::new(
        "synthetic",
        format!(
            "chunkload trace synth --seed {} --read-share {} --threads {}",
            opts.seed, opts.read_share, threads
        ),
    );
    header.image = Some(image.to_string());
    Synthesized { header, records, bytes_read, live_bytes }
}
