use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use chunkload::chunk::{ChunkSize, ConvertOptions};
use chunkload::crypto::Salt;
use chunkload::ingest::Opened;
use chunkload::replay::CacheState;
use chunkload::teach::demo;
use chunkload::teach::explain::{self, ExplainOptions, StoredImage, Subject, timeline};

use super::common::{self, ImageFlags, StartFlags};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An OCI image (DIR[:TAG], OCI or docker archive), converted in memory; or, with --key, a sealed
    /// manifest file or the name of a manifest in --store.
    subject: String,
    /// The start's file-access trace (docs/trace-format.md), e.g. images/traces/hello-py.trace.
    #[arg(long)]
    trace: PathBuf,
    /// A chunk store to compare with: which chunks are already there, under which salt. Read only:
    /// explain never writes to it. Required with --key.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Customer key that sealed SUBJECT: SUBJECT is then a manifest, not an image.
    #[arg(long, value_name = "KEYFILE")]
    key: Option<PathBuf>,
    /// With a manifest: the image it came from (for the layers story and the baselines).
    #[arg(long)]
    image: Option<String>,
    /// Salt for converting an image (chunks under different salts never deduplicate).
    #[arg(long, default_value = "default")]
    salt: Salt,
    /// Chunk size for converting an image.
    #[arg(long, default_value = "512KiB")]
    chunk_size: ChunkSize,
    /// How many reads to narrate one by one.
    #[arg(long, default_value_t = 10)]
    reads: usize,
    /// Worker cache before the start: cold (empty), warm (this image) or store (the store's other
    /// images, as their starts would have left it).
    #[arg(long, default_value = "cold")]
    l1: CacheState,
    /// AZ cache before the start: cold, warm or store.
    #[arg(long, default_value = "warm")]
    l2: CacheState,
    #[command(flatten)]
    start: StartFlags,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the story as one self-contained HTML page (FILE), with a timeline of the start
    /// under this cache state and the demo's four, to explore read by read in a browser.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let mut scenario = args.start.scenario()?;
    let records = common::read_trace_for(&args.trace, &mut scenario)?;
    let store = match &args.store {
        Some(dir) => Some(common::open_store(dir)?),
        None if args.key.is_some() => bail!("--key names a manifest, which needs --store to read its chunks"),
        None => None,
    };
    // The subject: a sealed manifest and its store, or an image converted in memory.
    let opened = match (&args.key, &store) {
        (Some(keyfile), Some(store)) => {
            let key = common::load_key(keyfile)?;
            common::sniff_manifest(&args.subject)?;
            if let Some(image) = &args.image {
                common::sniff_image(image)?;
            }
            let options = args.flags.options();
            let dir = args.store.as_deref().expect("a store is opened only from --store");
            common::precheck_store(store, &args.subject, dir)?;
            let opened =
                Opened::sealed(&args.subject, store, &key, args.image.as_deref().map(|r| (r, &options)))
                    .map_err(|e| common::explain_open_error(e.into(), &args.subject, keyfile))?;
            common::warn_if_expired(store, &opened.manifest.header().salt, &args.subject)?;
            opened
        }
        _ => {
            if args.image.is_some() {
                bail!("--image goes with a manifest SUBJECT (and --key); here SUBJECT is the image itself");
            }
            if chunkload::sniff::sniff(std::path::Path::new(&args.subject))
                .is_ok_and(|k| k == chunkload::sniff::Kind::Manifest)
            {
                bail!(
                    "{} is a sealed chunkload manifest: explain reads a manifest with --key KEYFILE \
                     and --store DIR (without them SUBJECT must be an image)",
                    args.subject
                );
            }
            common::sniff_image(&args.subject)?;
            let options = ConvertOptions { chunk_size: args.chunk_size, salt: args.salt.clone() };
            Opened::convert(&args.subject, &args.flags.options(), &options)?
        }
    };
    common::check_trace_fit(&args.trace, &args.subject, &opened.meta, &records, true)?;
    let others = match &store {
        Some(store) => opened
            .store_images(store)?
            .into_iter()
            .map(|s| StoredImage { name: s.name.to_string(), manifest: s.manifest })
            .collect(),
        None => Vec::new(),
    };
    let subject = Subject {
        name: args.subject.clone(),
        flat: opened.flat.as_ref(),
        layer_history: opened.image.as_ref().map(explain::layer_history).unwrap_or_default(),
        manifest: &opened.public,
        meta: &opened.meta,
        store: &others,
    };
    let opts =
        ExplainOptions { scenario, l1: args.l1, l2: args.l2, mmap: args.start.mmap, reads: args.reads };
    let story = explain::explain(&subject, records.clone(), &opts);
    if let Some(path) = &args.html {
        // Every read of the start as asked, then of the demo's cache states not already shown.
        let mut fills = vec![(args.l1, args.l2, format!("as asked: {}/{}", args.l1.name(), args.l2.name()))];
        for (name, l1, l2) in demo::CASES {
            if !fills.iter().any(|f| (f.0, f.1) == (l1, l2)) {
                fills.push((l1, l2, format!("{}/{}: {name}", l1.name(), l2.name())));
            }
        }
        let states = fills
            .into_iter()
            .map(|(l1, l2, label)| {
                let o = ExplainOptions { l1, l2, reads: usize::MAX, ..opts.clone() };
                let s = explain::explain(&subject, records.clone(), &o);
                timeline::timeline_state(format!("{}/{}", l1.name(), l2.name()), label, &s)
            })
            .collect();
        let html = timeline::page(&story, states).render();
        std::fs::write(path, html).with_context(|| format!("cannot write --html {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&story)?);
    } else {
        print!("{story}");
    }
    Ok(())
}
