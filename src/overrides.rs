//! Dotted-key overrides (`key.path=value`) on any serde scenario: the one engine behind
//! `simulate --set` and `sweep --grid`.
//!
//! The scenario is a TOML tree; an override sets one key there and the tree is deserialised back
//! into the scenario's type after every override. So the scenario's own rules validate each
//! value: `deny_unknown_fields`, unit parsing (`ByteSize` reads `"4GiB"`), enum names (`lru-k`),
//! and an error names the key and value that broke it.
//!
//! Only keys the scenario already has can be set (a typo is an error listing the keys that exist
//! there); optional fields that are unset are not in the tree and so cannot be set. A value is
//! read as a TOML literal when it is one (integer, float, boolean, quoted string, array, inline
//! table) and as a bare string otherwise, so `16` is a number and `1GiB` a string.
//!
//! This module knows no scenario type: it sits beside `units` at the crate root, so the fleet
//! (below the line) and the sweep (above it) both use it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

/// Why an override was rejected: the key, the value as written, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("override {key}={value}: {reason}")]
pub struct OverrideError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

fn err(key: &str, value: &str, reason: impl Into<String>) -> OverrideError {
    OverrideError { key: key.to_string(), value: value.to_string(), reason: reason.into() }
}

/// One `key.path=value` as written on the command line, split at the first `=` (both sides
/// trimmed; the key must not be empty).
pub fn parse_spec(spec: &str) -> Result<(String, String), OverrideError> {
    match spec.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(err(spec, "", "expected key.path=value (a TOML value; bare words are strings)")),
    }
}

/// The scenario as a TOML tree.
pub fn to_table<T: Serialize>(scenario: &T) -> Result<Table, OverrideError> {
    Table::try_from(scenario)
        .map_err(|e| err("", "", format!("the scenario does not serialise to TOML: {e}")))
}

/// A value as written on the command line: a TOML literal if it parses as one, else a string.
pub fn parse_value(raw: &str) -> Value {
    let doc = format!("v = {raw}");
    match doc.parse::<Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(Value::Datetime(_)) | None => Value::String(raw.to_string()),
            Some(v) => v,
        },
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Sets `key` (dotted path) in `table`; the key must exist already.
pub fn set(table: &mut Table, key: &str, raw: &str) -> Result<(), OverrideError> {
    let mut node = table;
    let mut path: Vec<&str> = Vec::new();
    let segments: Vec<&str> = key.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let here = if path.is_empty() {
            "the scenario's top level".to_string()
        } else {
            format!("[{}]", path.join("."))
        };
        let known = || {
            let names: Vec<&str> = node.keys().map(String::as_str).collect();
            format!("unknown key: {here} has {}", names.join(", "))
        };
        if !node.contains_key(*seg) {
            return Err(err(key, raw, known()));
        }
        if last {
            node.insert(seg.to_string(), parse_value(raw));
            return Ok(());
        }
        path.push(seg);
        node = match node.get_mut(*seg) {
            Some(Value::Table(t)) => t,
            _ => return Err(err(key, raw, format!("{} is a value, not a table", path.join(".")))),
        };
    }
    unreachable!("a key has at least one segment")
}

/// Applies every override to `table`, in order, checking after each that the tree still reads
/// as a `T`: an error names the key and value that broke the scenario.
pub fn apply_to_table<T: DeserializeOwned>(
    table: &mut Table,
    overrides: &[(String, String)],
) -> Result<(), OverrideError> {
    for (key, value) in overrides {
        set(table, key, value)?;
        Value::Table(table.clone())
            .try_into::<T>()
            .map_err(|e: toml::de::Error| err(key, value, e.message().trim().to_string()))?;
    }
    Ok(())
}

/// `base` with every override applied, in order (see [`apply_to_table`]).
pub fn apply<T: Serialize + DeserializeOwned>(
    base: &T,
    overrides: &[(String, String)],
) -> Result<T, OverrideError> {
    let mut table = to_table(base)?;
    apply_to_table::<T>(&mut table, overrides)?;
    Value::Table(table).try_into().map_err(|e: toml::de::Error| err("", "", e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::PolicyKind;
    use crate::replay::Scenario;
    use crate::units::ByteSize;

    fn ov(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn overrides_go_through_the_scenarios_own_parsers() {
        let base = Scenario::default();
        let sc = apply(
            &base,
            &ov(&[
                ("l1.memory_capacity", "4GiB"),
                ("l2.policy", "s3-fifo"),
                ("fetch.concurrency", "32"),
                ("cpu_scale", "0.5"),
                ("fetch.prefetch_working_set", "true"),
                ("l2.redundancy", "single-copy"),
                ("l1.disk_capacity", "1048576"),
            ]),
        )
        .unwrap();
        assert_eq!(sc.l1.memory_capacity, ByteSize::gib(4));
        assert_eq!(sc.l2.policy, PolicyKind::S3Fifo);
        assert_eq!(sc.fetch.concurrency, 32);
        assert_eq!(sc.cpu_scale, 0.5);
        assert!(sc.fetch.prefetch_working_set);
        assert_eq!(sc.l1.disk_capacity, ByteSize::mib(1));
        // Nothing else moved.
        assert_eq!(sc.latency, base.latency);
        assert_eq!(apply(&base, &[]).unwrap(), base);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        let base = Scenario::default();
        let e = apply(&base, &ov(&[("l1.capacity", "1GiB")])).unwrap_err().to_string();
        assert!(
            e.contains("l1.capacity=1GiB") && e.contains("unknown key") && e.contains("memory_capacity"),
            "{e}"
        );
        let e = apply(&base, &ov(&[("l3.policy", "lru")])).unwrap_err().to_string();
        assert!(
            e.contains("l3.policy=lru: unknown key: the scenario's top level has") && e.contains("l1, l2"),
            "{e}"
        );
        let e = apply(&base, &ov(&[("l1.memory_capacity", "12XB")])).unwrap_err().to_string();
        assert!(e.contains("l1.memory_capacity=12XB") && e.contains("invalid byte size"), "{e}");
        let e = apply(&base, &ov(&[("l2.policy", "mru")])).unwrap_err().to_string();
        assert!(e.contains("l2.policy=mru"), "{e}");
        let e = apply(&base, &ov(&[("fetch.concurrency", "lots")])).unwrap_err().to_string();
        assert!(e.contains("fetch.concurrency=lots"), "{e}");
        let e = apply(&base, &ov(&[("cpu_scale.x", "1")])).unwrap_err().to_string();
        assert!(e.contains("not a table"), "{e}");
    }

    #[test]
    fn simulate_set_and_sweep_grid_word_errors_alike() {
        use crate::fleet::FleetScenario;
        let e = FleetScenario::load(None, &["l1.capacity=1GiB".into()]).unwrap_err().to_string();
        assert!(e.starts_with("override l1.capacity=1GiB: unknown key: [l1] has "), "{e}");
        assert!(e.contains("memory_capacity"), "{e}");
        let base = FleetScenario::paper_region();
        let sweep = apply(&base, &ov(&[("l1.capacity", "1GiB")])).unwrap_err().to_string();
        assert_eq!(e, sweep);
        // Units are checked by the scenario's own types, naming the override.
        let e = FleetScenario::load(None, &["duration=ten minutes".into()]).unwrap_err().to_string();
        assert!(e.starts_with("override duration=ten minutes: "), "{e}");
        // A mistake in the file is the file's, not the first override's.
        let e = FleetScenario::load(Some(("f.toml", "[l1]\ncapacity = 1\n")), &["name=x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("scenario: ") && !e.contains("override"), "{e}");
    }

    #[test]
    fn specs_split_at_the_first_equals_sign() {
        assert_eq!(parse_spec(" l1.policy = lru ").unwrap(), ("l1.policy".into(), "lru".into()));
        assert_eq!(parse_spec("name=a=b").unwrap(), ("name".into(), "a=b".into()));
        for bad in ["l1.policy", "=lru", " = lru"] {
            let e = parse_spec(bad).unwrap_err().to_string();
            assert!(e.contains("expected key.path=value"), "{bad}: {e}");
        }
    }

    #[test]
    fn values_read_as_toml_literals_or_strings() {
        assert_eq!(parse_value("16"), Value::Integer(16));
        assert_eq!(parse_value("0.25"), Value::Float(0.25));
        assert_eq!(parse_value("false"), Value::Boolean(false));
        assert_eq!(parse_value("1GiB"), Value::String("1GiB".into()));
        assert_eq!(parse_value("\"1 GiB\""), Value::String("1 GiB".into()));
        assert_eq!(parse_value("lru-k"), Value::String("lru-k".into()));
        assert_eq!(parse_value("2024-01-01"), Value::String("2024-01-01".into()));
    }
}
