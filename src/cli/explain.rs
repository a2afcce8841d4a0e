use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use chunkload::chunk::{self, ChunkSize, ChunkedImage, ConvertOptions};
use chunkload::crypto::{CustomerKey, Manifest, ManifestPublic, Salt};
use chunkload::flatten;
use chunkload::image::Image;
use chunkload::store::{ChunkStore, ManifestName, MemStore};
use chunkload::teach::explain::{self, CacheFill, ExplainOptions, StoredImage, Subject};
use chunkload::trace::Reader;

use super::ImageFlags;
use super::replay::StartFlags;

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
    l1: CacheFill,
    /// AZ cache before the start: cold, warm or store.
    #[arg(long, default_value = "warm")]
    l2: CacheFill,
    #[command(flatten)]
    start: StartFlags,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    flags: ImageFlags,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let scenario = args.start.scenario()?;
    let records = Reader::open(&args.trace)?.collect::<chunkload::trace::Result<Vec<_>>>()?;
    let store = match &args.store {
        Some(dir) => Some(super::common::open_existing_store(dir)?),
        None if args.key.is_some() => bail!("--key names a manifest, which needs --store to read its chunks"),
        None => None,
    };
    let mem = MemStore::new();
    // The subject: an image converted in memory, or a sealed manifest and its store.
    type Opened<'s> = (Option<Image>, Option<flatten::Flattened>, Manifest, &'s dyn ChunkStore, Skip);
    let (image, flat, manifest, chunks, skip): Opened<'_> = match &args.key {
        Some(key) => {
            let store = store.as_ref().expect("checked above");
            let key = CustomerKey::load(key)?;
            let (bytes, name) = if std::path::Path::new(&args.subject).is_file() {
                (std::fs::read(&args.subject).with_context(|| format!("cannot read {}", args.subject))?, None)
            } else {
                let name: ManifestName = args.subject.parse()?;
                (store.get_manifest(&name)?, Some(name))
            };
            let manifest =
                Manifest::open(&bytes, &key).with_context(|| format!("manifest {}", args.subject))?;
            let image = match &args.image {
                Some(r) => Some(Image::open(r, &args.flags.options())?),
                None => None,
            };
            let flat = match &image {
                Some(i) => Some(flatten::flatten(i)?),
                None => None,
            };
            (image, flat, manifest, store as &dyn ChunkStore, Skip { name, bytes: Some(bytes) })
        }
        None => {
            if args.image.is_some() {
                bail!("--image goes with a manifest SUBJECT (and --key); here SUBJECT is the image itself");
            }
            let image = Image::open(&args.subject, &args.flags.options())?;
            let flat = flatten::flatten(&image)?;
            let options = ConvertOptions { chunk_size: args.chunk_size, salt: args.salt.clone() };
            let manifest = chunk::convert(&image, &flat, &options, &mem)?.manifest;
            (Some(image), Some(flat), manifest, &mem, Skip::default())
        }
    };
    let public = manifest.public();
    if let (Some(image), Some(_)) = (&image, &args.key)
        && public.header.source != image.digest().to_string()
    {
        bail!(
            "manifest {} was converted from {}, not from --image {} ({})",
            args.subject,
            public.header.source,
            image.reference,
            image.digest()
        );
    }
    let (meta, _) = ChunkedImage { manifest, store: chunks }.tree()?;
    let mut others = Vec::new();
    if let Some(store) = &store {
        for name in store.list_manifests()? {
            if skip.name.as_ref() == Some(&name) {
                continue;
            }
            let bytes = store.get_manifest(&name)?;
            if skip.bytes.as_deref() == Some(&bytes[..]) {
                continue;
            }
            let manifest =
                ManifestPublic::parse(&bytes).with_context(|| format!("manifest {name} in the store"))?;
            others.push(StoredImage { name: name.to_string(), manifest });
        }
    }
    let subject = Subject {
        name: args.subject.clone(),
        flat: flat.as_ref(),
        layer_history: image.as_ref().map(explain::layer_history).unwrap_or_default(),
        manifest: &public,
        meta: &meta,
        store: &others,
    };
    let opts =
        ExplainOptions { scenario, l1: args.l1, l2: args.l2, mmap: args.start.mmap, reads: args.reads };
    let story = explain::explain(&subject, records, &opts);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&story)?);
    } else {
        print!("{story}");
    }
    Ok(())
}

/// The store's copy of the subject, left out of the comparison.
#[derive(Default)]
struct Skip {
    name: Option<ManifestName>,
    bytes: Option<Vec<u8>>,
}
