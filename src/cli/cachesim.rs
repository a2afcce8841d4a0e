use std::fs::{self, File};
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use chunkload::cachesim::{self, Algorithm, CacheSize, Config, TraceFormat, TraceSpec, Warmup};
use chunkload::report::plot;
use chunkload::requests::CsvColumns;
use chunkload::sim::rng::DEFAULT_SEED;

#[derive(Debug, Args)]
pub struct CachesimArgs {
    /// The request trace: libCacheSim's oracleGeneral (plain or .zst), or CSV with a header
    /// (chunkload's request and chunk streams among them).
    trace: PathBuf,
    /// The trace's format; by default `csv` for *.csv and *.csv.zst, else `oracle`.
    #[arg(long, value_parser = parse_from_str::<TraceFormat>)]
    format: Option<TraceFormat>,
    /// Algorithms, comma-separated: lru, fifo, lfu, lru-k, lru-<K>, arc, s3-fifo, random, belady;
    /// or `all` (every policy and belady).
    #[arg(long, default_value = "all", value_delimiter = ',')]
    algorithms: Vec<String>,
    /// Cache sizes, comma-separated: bytes (65536, 64MiB, 2GiB), objects with --ignore-obj-size,
    /// or shares of the trace's working set (10%).
    #[arg(long, default_value = "1%,2%,5%,10%,20%,50%", value_delimiter = ',', value_parser = parse_from_str::<CacheSize>)]
    sizes: Vec<CacheSize>,
    /// Leading requests that only warm the caches: a count (1000000), a share (20%) or a span of
    /// trace time from the first request (time=3600, in the trace's time unit).
    #[arg(long, default_value = "0", value_parser = parse_from_str::<Warmup>)]
    warmup: Warmup,
    /// Spatial sampling rate in (0, 1]: keep the objects whose id hashes under it, and simulate
    /// caches that much smaller (SHARDS); for traces whose objects do not fit in memory.
    #[arg(long, value_name = "RATE")]
    sample: Option<f64>,
    /// Count every object as size 1: cache sizes are then in objects (libCacheSim's
    /// --ignore-obj-size).
    #[arg(long)]
    ignore_obj_size: bool,
    /// CSV column holding the object id (default: the first of obj_id, object_id, chunk_id, id, key).
    #[arg(long)]
    id_column: Option<String>,
    /// CSV column holding the size (default: obj_size, object_size, size or bytes; none: size 1).
    #[arg(long)]
    size_column: Option<String>,
    /// CSV column holding the time (default: time_ns, time, timestamp or clock_time).
    #[arg(long)]
    time_column: Option<String>,
    /// Seed of the random policy and of the sampling hash (decimal).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Write cachesim.json, cachesim.csv and mrc.svg (the miss-ratio curve) into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_from_str<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

pub fn run(args: CachesimArgs) -> Result<()> {
    let mut algorithms = Vec::new();
    for a in &args.algorithms {
        if a == "all" {
            algorithms.extend(Algorithm::all());
        } else {
            algorithms.push(a.parse::<Algorithm>()?);
        }
    }
    algorithms.dedup();
    let config = Config {
        algorithms,
        sizes: args.sizes,
        warmup: args.warmup,
        sample: args.sample,
        ignore_obj_size: args.ignore_obj_size,
        seed: args.seed,
    };
    let trace = TraceSpec {
        path: args.trace,
        format: args.format,
        columns: CsvColumns { id: args.id_column, size: args.size_column, time: args.time_column },
    };
    let report = cachesim::run(&trace, &config)?;
    let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
    if let Some(dir) = &args.out {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::write(dir.join("cachesim.json"), format!("{json}\n"))
            .with_context(|| format!("cannot write {}", dir.join("cachesim.json").display()))?;
        let csv = dir.join("cachesim.csv");
        let file = File::create(&csv).with_context(|| format!("cannot create {}", csv.display()))?;
        report.write_csv(BufWriter::new(file)).with_context(|| format!("cannot write {}", csv.display()))?;
        plot::write_svg(&dir.join("mrc.svg"), &report.mrc_svg()?)?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{report}");
    }
    Ok(())
}
