//! The fleet model: many functions, many workers, one AZ cache and S3, over simulated hours.
//!
//! [`run`] is pure and deterministic: a scenario and a seed give the same [`FleetReport`] every
//! time. Two stages run on two threads: the workload ([`workload`]: which sandboxes start where,
//! tick by tick) and the worker caches ([`worker`]: which reads hit L1) feed the engine
//! ([`engine`]: the misses through L2 and S3, and every read's latency). Neither of the first two
//! depends on what comes after, so the pipeline changes nothing but speed.
//! docs/fleet-model.md describes the model and how close it lands to the paper.

pub mod engine;
pub mod failure;
pub mod histogram;
pub mod plots;

pub mod popularity;
pub mod population;
pub mod report;
pub mod scenario;
pub mod throttle;
pub mod worker;
pub mod workload;

use std::sync::mpsc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use report::FleetReport;
pub use scenario::{FleetScenario, FleetScenarioError, PAPER_REGION_TOML};

use crate::cache::ring::mix64;

/// The random stream of one component: ChaCha8 seeded from the run's seed and the component's name.
pub(crate) fn stream(seed: u64, component: &str) -> ChaCha8Rng {
    let tag = component
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    ChaCha8Rng::seed_from_u64(mix64(seed ^ mix64(tag)))
}

/// Simulates `scenario` with `seed`. Pure: no I/O, same inputs, same report.
pub fn run(scenario: &FleetScenario, seed: u64) -> FleetReport {
    let pop = population::Population::generate(scenario, seed);
    let (warm_ticks, total_ticks) = scenario.ticks();
    let (tx, rx) = mpsc::sync_channel::<workload::TickBatch>(64);
    let (workload_summary, measured) = std::thread::scope(|s| {
        let pop = &pop;
        let producer = s.spawn(move || {
            let mut w = workload::Workload::new(scenario, pop, seed);
            let mut l1 = worker::WorkerCaches::new(scenario, pop, seed);
            for t in 0..total_ticks {
                let mut batch = w.tick(t, t >= warm_ticks);
                l1.fill(&mut batch);
                if tx.send(batch).is_err() {
                    break;
                }
            }
            w.summary
        });
        let mut engine = engine::Engine::new(scenario, pop, seed);
        for batch in rx {
            engine.batch(&batch);
        }
        let measured = engine.finish();
        (producer.join().expect("the workload thread does not panic"), measured)
    });
    FleetReport::build(scenario, seed, pop.summary.clone(), workload_summary, measured)
}
