//! Writes a synthetic request trace in libCacheSim's oracleGeneral format: Zipf-distributed
//! requests over a fixed set of objects, each with a stable 64-bit id and a size. Used by
//! scripts/measure-cachesim.sh to compare `chunkload cachesim` with libCacheSim on the same file.
//!
//! `cargo run --release --example zipf_trace -- OUT REQUESTS OBJECTS ALPHA [SEED]`
//!
//! Object ranks are mapped to ids by a seeded hash (as real traces' ids are opaque), and each
//! object's size is 1..=64 KiB, a function of its id; a thousand requests per second.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chunkload::requests::{OracleWriter, Request, TimeUnit};
use chunkload::sim::rng;
use chunkload::sim::time::SimTime;
use rand::RngExt;
use rand_distr::Zipf;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: zipf_trace OUT REQUESTS OBJECTS ALPHA [SEED]");
    }
    let out = PathBuf::from(&args[0]);
    let requests: u64 = args[1].parse().context("REQUESTS")?;
    let objects: u64 = args[2].parse().context("OBJECTS")?;
    let alpha: f64 = args[3].parse().context("ALPHA")?;
    let seed: u64 = args.get(4).map(|s| s.parse()).transpose().context("SEED")?.unwrap_or(rng::DEFAULT_SEED);
    let mut r = rng::stream(seed, "zipf-trace");
    let zipf = Zipf::new(objects as f64, alpha).context("Zipf parameters")?;
    let key = rng::derive(seed, 1);
    let mut w = OracleWriter::create(&out, TimeUnit::S)?;
    for i in 0..requests {
        let rank = r.sample(zipf) as u64;
        let id = mix(rank ^ key);
        let size = 1 + (mix(id) % 65_536) as u32;
        w.push(Request { time: SimTime::from_nanos(i * 1_000_000), object: id, size })?;
    }
    let s = w.finish()?;
    eprintln!(
        "{}: {} requests, {} objects, {} bytes requested, working set {} bytes",
        out.display(),
        s.requests,
        s.objects,
        s.request_bytes,
        s.object_bytes
    );
    Ok(())
}
