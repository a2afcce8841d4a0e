//! A scenario's TOML (integers in nanoseconds and bytes, as the engines read it) with a
//! comment a person reads beside each such value: `median = 36000000  # 36 ms`. The text stays
//! valid TOML, so it can still be passed back with `--scenario`.

use std::fmt::Write as _;

/// Which unit an integer key holds, by the key's name (the scenarios' naming conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Nanos,
    Bytes,
    BytesPerSec,
}

fn unit_of(key: &str) -> Option<Unit> {
    let k = key.trim();
    if k.contains("bandwidth") || k.contains("per_sec") || k.ends_with("_speed") {
        return Some(Unit::BytesPerSec);
    }
    if k.contains("capacity")
        || k == "chunk_size"
        || k.ends_with("_bytes")
        || k.ends_with("_limit")
        || k == "zip_limit"
    {
        return Some(Unit::Bytes);
    }
    if k.starts_with("size_") && !k.contains("sigma") {
        return Some(Unit::Bytes);
    }
    let durations = [
        "duration",
        "warmup",
        "tick",
        "keep_alive",
        "lifetime",
        "delay",
        "median",
        "p50",
        "p99",
        "p999",
        "_ns",
    ];
    if durations
        .iter()
        .any(|d| k == *d || k.ends_with(&format!("_{d}")) || (d.starts_with('_') && k.ends_with(d)))
    {
        return Some(Unit::Nanos);
    }
    None
}

fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn bytes(v: u64) -> String {
    for (name, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if v >= 1 << shift {
            return format!("{} {name}", short(v as f64 / (1u64 << shift) as f64));
        }
    }
    format!("{v} B")
}

fn nanos(v: u64) -> String {
    let v = v as f64;
    for (name, unit) in [("h", 3.6e12), ("min", 6e10), ("s", 1e9), ("ms", 1e6), ("us", 1e3)] {
        if v >= unit {
            return format!("{} {name}", short(v / unit));
        }
    }
    format!("{v} ns")
}

/// `toml` with a readable unit comment after every integer in nanoseconds or bytes.
pub fn readable_toml(toml: &str) -> String {
    let mut out = String::with_capacity(toml.len() * 5 / 4);
    for line in toml.lines() {
        let note = line.split_once('=').and_then(|(k, v)| {
            let v: u64 = v.trim().replace('_', "").parse().ok()?;
            let unit = unit_of(k)?;
            Some(match unit {
                Unit::Nanos => nanos(v),
                Unit::Bytes => bytes(v),
                Unit::BytesPerSec => format!("{}/s", bytes(v)),
            })
        });
        match note {
            Some(n) if !line.trim_start().starts_with('#') => {
                let _ = writeln!(out, "{line}  # {n}");
            }
            _ => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_and_bytes_get_readable_comments() {
        let t = "seed = 12648430\nduration = 3600000000000\n[latency.s3_get.log_normal]\nmedian = 36000000\n\
                 [l1]\nmemory_capacity = 1073741824\nsize_median = 62914560\nsize_sigma = 1\n\
                 [fetch]\nnic_bandwidth = 3125000000\nconcurrency = 16\n";
        let r = readable_toml(t);
        assert!(r.contains("duration = 3600000000000  # 1 h"), "{r}");
        assert!(r.contains("median = 36000000  # 36 ms"));
        assert!(r.contains("memory_capacity = 1073741824  # 1 GiB"));
        assert!(r.contains("size_median = 62914560  # 60 MiB"));
        assert!(r.contains("nic_bandwidth = 3125000000  # 2.91 GiB/s"));
        for plain in ["seed = 12648430\n", "size_sigma = 1\n", "concurrency = 16\n"] {
            assert!(r.contains(plain), "{plain} left alone");
        }
        // Still TOML with the same values.
        let a: toml::Value = toml::from_str(t).unwrap();
        let b: toml::Value = toml::from_str(&r).unwrap();
        assert_eq!(a, b);
    }
}
