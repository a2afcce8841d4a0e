use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use chunkload::mount::{self, OutputGuard, Recorder, Signals, trace_header};

use super::ManifestFlags;
use super::serve::ServeFlags;

#[derive(Debug, Args)]
pub struct MountArgs {
    #[command(flatten)]
    manifest: ManifestFlags,
    /// An existing empty directory to mount the image's root on (read-only).
    mountpoint: PathBuf,
    #[command(flatten)]
    serve: ServeFlags,
    /// Record every request the kernel sends (lookups, opens, reads incl. mmap page faults) as a
    /// trace (`.zst` compresses).
    #[arg(long, value_name = "TRACE")]
    record: Option<PathBuf>,
    /// Replace an existing --record file.
    #[arg(long)]
    force: bool,
    /// The command being traced, for the trace header (free text).
    #[arg(long, default_value = "")]
    command: String,
    /// Print the unmount report as JSON.
    #[arg(long)]
    json: bool,
    /// Honour the image's set-uid and set-gid bits (default: nosuid). Only for an image you
    /// trust, when you will run its set-uid programs from the mount on this host (e.g. `sudo`
    /// in a chroot you build on it): otherwise its set-uid binaries would run as their owner,
    /// root, here.
    #[arg(long)]
    suid: bool,
    /// Honour the image's device nodes (default: nodev). Only for an image you trust, when a
    /// program run on the mount must open the device files in it: otherwise a node the image
    /// ships (say, a block device's numbers) would open this host's device.
    #[arg(long)]
    dev: bool,
}

pub fn run(args: MountArgs) -> Result<()> {
    if let Some(out) = &args.record {
        let manifest = PathBuf::from(&args.manifest.manifest);
        super::output::check_file(
            "--record",
            out,
            &[
                ("manifest", &manifest),
                (super::output::STORE, &args.manifest.store),
                ("--key file", &args.manifest.key),
                ("mount point", &args.mountpoint),
            ],
            args.force,
        )?;
    }
    let opened = args.manifest.open_for_mount()?;
    let recorder = match &args.record {
        Some(p) => Some(Arc::new(Recorder::create(p, &trace_header(&args.command, &opened.label))?)),
        None => None,
    };
    let output = OutputGuard(args.record.clone());
    let signals = Signals::new().context("installing signal handlers")?;
    let (options, latency, _temp) = args.serve.options(&opened.label, args.suid, args.dev)?;
    let mounted = mount::mount(
        opened.meta,
        opened.manifest,
        opened.store,
        &args.mountpoint,
        &options,
        latency,
        recorder,
    )?;
    eprintln!(
        "mounted {} at {} (read-only, {}, {}); Ctrl-C or SIGTERM unmounts",
        args.manifest.manifest,
        if args.suid { "suid" } else { "nosuid" },
        if args.dev { "dev" } else { "nodev" },
        args.mountpoint.display()
    );
    while !mounted.is_finished() && !signals.received() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = mounted.unmount()?;
    output.keep();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
