//! Failures and deploys of the AZ cache: the scenario's list expanded into timed node actions, and
//! what each did to the data the cache held.

use serde::Serialize;

use super::scenario::{Failure, FleetScenario};
use crate::cache::{ChunkId, NodeId};
use crate::sim::AzCache;
use crate::sim::time::SimTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The node is lost: contents gone, its share moved to other nodes.
    Fail(NodeId),
    /// The node restarts empty and keeps its share (a deploy).
    Restart(NodeId),
    /// Every AZ cache node restarts empty; with `workers`, every worker cache empties too.
    RestartAll { workers: bool },
}

#[derive(Debug, Clone, Copy)]
pub struct TimedAction {
    /// Since the start of the warm-up.
    pub at: SimTime,
    pub action: Action,
}

/// What one action did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureRecord {
    /// Seconds since the start of the measured window.
    pub at_s: f64,
    pub kind: &'static str,
    pub node: Option<u32>,
    /// Chunks readable from the AZ cache just before and just after.
    pub l2_chunks_before: u64,
    pub l2_chunks_after: u64,
    /// Share of the readable chunks the action made unreadable.
    pub lost_share: f64,
}

/// The scenario's failures as node actions in time order (a rolling restart is one per node),
/// counted from `window_start`, the start of the measured window.
pub fn schedule(sc: &FleetScenario, window_start: SimTime) -> Vec<TimedAction> {
    let base = window_start;
    let mut out = Vec::new();
    for f in &sc.failures {
        match *f {
            Failure::NodeLoss { at, node } => {
                out.push(TimedAction { at: base + at, action: Action::Fail(NodeId(node)) })
            }
            Failure::RollingRestart { at, interval } => {
                for n in 0..sc.l2.nodes {
                    out.push(TimedAction {
                        at: base + at + interval * n as u64,
                        action: Action::Restart(NodeId(n as u32)),
                    });
                }
            }
            Failure::EmptyRestart { at, workers } => {
                out.push(TimedAction { at: base + at, action: Action::RestartAll { workers } })
            }
        }
    }
    out.sort_by_key(|a| a.at);
    out
}

/// Chunks of `0..readable` a read would find in the AZ cache now.
pub fn resident_chunks(l2: &AzCache, readable: u32) -> u64 {
    (0..readable).filter(|&c| l2.contains(ChunkId(c))).count() as u64
}

/// Applies `action` to the AZ cache (worker caches are the engine's) and records its effect.
pub fn apply(l2: &mut AzCache, action: Action, readable: u32, at_s: f64) -> FailureRecord {
    let before = resident_chunks(l2, readable);
    let (kind, node) = match action {
        Action::Fail(n) => {
            l2.fail_node(n);
            ("node-loss", Some(n.0))
        }
        Action::Restart(n) => {
            l2.restart_node(n);
            ("node-restart", Some(n.0))
        }
        Action::RestartAll { .. } => {
            for n in 0..l2.config().nodes {
                l2.restart_node(NodeId(n as u32));
            }
            ("empty-restart", None)
        }
    };
    let after = resident_chunks(l2, readable);
    FailureRecord {
        at_s,
        kind,
        node,
        l2_chunks_before: before,
        l2_chunks_after: after,
        lost_share: if before == 0 { 0.0 } else { (before - after) as f64 / before as f64 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{AzConfig, Redundancy};
    use crate::units::ByteSize;

    fn filled(redundancy: Redundancy) -> AzCache {
        let mut c = AzConfig::new(ByteSize::gib(4), 9);
        c.redundancy = redundancy;
        let mut l2 = AzCache::new(c);
        for i in 0..20_000 {
            l2.put(ChunkId(i), ByteSize::kib(512));
        }
        l2
    }

    #[test]
    fn single_copy_loses_about_one_node_share_and_erasure_coding_nothing() {
        let mut single = filled(Redundancy::SingleCopy);
        let r = apply(&mut single, Action::Fail(NodeId(3)), 20_000, 0.0);
        assert_eq!(r.l2_chunks_before, 20_000);
        assert!((r.lost_share - 0.05).abs() < 0.015, "{}", r.lost_share);
        let mut ec = filled(Redundancy::EC_4_OF_5);
        let r = apply(&mut ec, Action::Fail(NodeId(3)), 20_000, 0.0);
        assert_eq!(r.lost_share, 0.0);
        let r = apply(&mut ec, Action::Restart(NodeId(4)), 20_000, 0.0);
        assert!(r.lost_share > 0.0, "a second node gone: chunks that had a stripe on both are lost");
        let r = apply(&mut ec, Action::RestartAll { workers: false }, 20_000, 0.0);
        assert_eq!(r.l2_chunks_after, 0);
    }

    #[test]
    fn rolling_restart_is_one_action_per_node_in_order() {
        let sc = FleetScenario::load(
            Some(("f", "[[failures]]\nkind = \"rolling-restart\"\nat = \"10min\"\ninterval = \"1min\"\n")),
            &[],
        )
        .unwrap();
        let s = schedule(&sc, SimTime::ZERO + sc.warmup);
        assert_eq!(s.len(), sc.l2.nodes);
        assert_eq!(s[1].at.saturating_duration_since(s[0].at).as_secs_f64(), 60.0);
        assert_eq!(s[0].at, SimTime::ZERO + sc.warmup + crate::sim::time::SimDuration::from_secs(600));
    }
}
