//! Test-only crash points: `CHUNKLOAD_CRASH_AT=POINT[:N]` makes the process abort (SIGABRT, no
//! unwinding, no destructors, like `kill -9`) the Nth time (default 1st) it passes POINT.
//!
//! The crash-safety tests (`tests/integration/store_cli.rs`) use it to stop `convert` and
//! `store copy-forward` at exact places: `chunk-temp` (a chunk's temporary file is written, its
//! name not yet linked), `chunk-linked` (the name is linked, the temporary file not yet removed),
//! `flush` (before the chunk directories are synced), `manifest-temp` (a manifest's temporary file
//! is written, not yet renamed into place) and `copy-forward-manifest` (copy-forward has replaced
//! a manifest). Unset, a point costs one load of a cached `Option`. Documented in
//! `docs/store-format.md`; not for production use.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the crash point.
pub const CRASH_ENV: &str = "CHUNKLOAD_CRASH_AT";

struct Target {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let spec = std::env::var(CRASH_ENV).ok()?;
            let (point, nth) = match spec.split_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().ok()?),
                None => (spec, 1),
            };
            Some(Target { point, nth, seen: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Aborts the process if `CHUNKLOAD_CRASH_AT` names `point` and this is the Nth pass.
pub fn crash_point(point: &str) {
    if let Some(t) = target().filter(|t| t.point == point)
        && t.seen.fetch_add(1, Ordering::SeqCst) + 1 == t.nth
    {
        std::process::abort();
    }
}
