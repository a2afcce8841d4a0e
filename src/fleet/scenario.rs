//! Fleet scenario files: the built-in `paper-region` scenario (scenarios/paper-region.toml, compiled
//! in) with a user's file and `key.path=value` overrides laid over it, then parsed strictly: every
//! key known, every unit explicit. Parsing the merged table (rather than relying on serde defaults)
//! keeps one source for every default: the built-in file, which is also the documented template.

use serde::{Deserialize, Serialize};

use crate::sim::config::{L1Config, L2Config};
use crate::sim::latency::{LatencyDist, TierLatencies};
use crate::sim::time::SimDuration;
use crate::units::ByteSize;

/// The built-in scenario's text: the template every scenario file is laid over.
pub const PAPER_REGION_TOML: &str = include_str!("../../scenarios/paper-region.toml");

/// Why a fleet scenario was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FleetScenarioError {
    #[error("{origin}: not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    #[error("scenario: {0}")]
    Parse(String),
    /// A `--set key.path=value` the scenario rejected (the shared override engine's error).
    #[error(transparent)]
    Override(#[from] crate::overrides::OverrideError),
    #[error("scenario: {0}")]
    Invalid(String),
}

/// The sparsest spatial sample `sampling.one_in` accepts.
pub const MAX_ONE_IN: u32 = 1024;

/// Every knob of a fleet simulation. Serialised back (the effective configuration) in every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetScenario {
    pub name: String,
    /// The measured window.
    pub duration: SimDuration,
    /// The shortest warm-up: simulated time before the window (same world, not measured, a
    /// cache-only pass). The warm-up then goes on in steps of `steady.check` until the headline
    /// figures stop drifting (`[steady]`), up to `steady.max_warmup`.
    pub warmup: SimDuration,
    /// Workload step: demand per function is drawn once per tick.
    pub tick: SimDuration,
    /// Hour of the week at the start of the warm-up (0 = Monday 00:00): places cron spikes and the
    /// diurnal swing.
    pub start_hour_of_week: f64,
    #[serde(deserialize_with = "crate::quantity::de::chunk_size")]
    pub chunk_size: ByteSize,
    /// A worker that decodes an AZ-cache chunk around a missing stripe writes the missing stripes
    /// back. The paper does not describe repair, but says a deploy (every node restarted in turn)
    /// costs no hit rate, which needs one: without it, every restart after the first erases the
    /// chunks that had a stripe on an earlier restarted node too.
    pub l2_read_repair: bool,
    /// Also compute Belady's bound (MIN, offline optimal) for the AZ cache's request stream in the
    /// window (replayed from the start of the warm-up, like the cache), as one cache of the
    /// cluster's whole capacity. Costs ~13 bytes of memory per AZ read.
    pub l2_belady: bool,
    pub failures: Vec<Failure>,
    pub steady: SteadyConfig,
    pub sampling: SamplingConfig,
    pub world: WorldConfig,
    pub sizing: SizingConfig,
    pub population: PopulationConfig,
    pub uploads: UploadConfig,
    pub workload: WorkloadConfig,
    pub cron: CronConfig,
    pub bursts: BurstConfig,
    pub placement: PlacementConfig,
    pub start: StartConfig,
    pub l1: L1Config,
    pub l2: L2Config,
    pub s3: S3Config,
    pub latency: TierLatencies,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationConfig {
    pub functions: usize,
    pub base: LayerLevel,
    pub runtime: LayerLevel,
    pub deps: LayerLevel,
    pub app: AppLayer,
    /// Large functions: a share whose own layer is a big application or model.
    pub large: LargeFunctions,
    /// Real converted images mixed in (`[[population.real]]`; none in `paper-region`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real: Vec<RealImageConfig>,
}

/// A real converted image and the functions that run it (`fleet::real` loads it). Paths are as
/// given (relative ones from the working directory). Its functions are extra to
/// `population.functions`, each with a popularity rank drawn like a new function's; they are not
/// updated during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealImageConfig {
    /// A sealed manifest file, or the name of a manifest in `store`.
    pub manifest: String,
    /// The chunk store the image was converted into.
    pub store: std::path::PathBuf,
    /// The customer key: needed only to map `trace` (the block metadata is encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<std::path::PathBuf>,
    /// A start's file-access trace (docs/trace-format.md) mapped onto the image: the working set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<std::path::PathBuf>,
    /// Without a trace: the share of the image's stored chunks a start reads (a seeded draw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_fraction: Option<f64>,
    /// How many functions run this image.
    pub functions: usize,
}

/// One level of the layer chain shared between images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerLevel {
    /// Distinct layers per parent layer (per image for `base`).
    pub choices: usize,
    /// Zipf exponent of the pick among `choices`.
    pub zipf: f64,
    pub size_median: ByteSize,
    /// Sigma of the log-normal layer size.
    pub size_sigma: f64,
    /// Share of the layer's chunks a start reads.
    pub read_fraction: f64,
}

/// The function's own layer, unique to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppLayer {
    pub size_median: ByteSize,
    pub size_sigma: f64,
    pub read_fraction: f64,
}

/// A share of functions whose own layer is large (a model, a big application): their first
/// starts read hundreds of MiB nobody has cached, the multi-second first flood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargeFunctions {
    /// Share of functions (initial and new) that are large.
    pub share: f64,
    /// Their own layer's size (log-normal) and the share of it a start reads.
    pub size_median: ByteSize,
    pub size_sigma: f64,
    pub read_fraction: f64,
    /// Share of a large function's deploys that ship a new model (the whole own layer new);
    /// the others change code as any function's do.
    pub model_change_share: f64,
}

/// When the warm-up has reached a steady state (`fleet::steady`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteadyConfig {
    /// Length of the intervals compared: the warm-up ends at the end of the first interval (after
    /// `warmup`) whose figures differ from the interval before by less than every tolerance.
    pub check: SimDuration,
    /// The longest warm-up; reached without a steady state, the report says so.
    pub max_warmup: SimDuration,
    /// Largest change, in share points, of the worker-cache share of chunk reads.
    pub l1_share_drift: f64,
    /// Largest change of the AZ cache's hit rate.
    pub az_hit_rate_drift: f64,
    /// Largest change of the S3 share of chunk reads.
    pub s3_share_drift: f64,
    /// How long before each check point the warm-up simulates the AZ nodes' memory tiers (which
    /// decide only whether a hit is served from memory or flash, and turn over in seconds under
    /// load); before that, hits are served from flash and memory is left out. At least
    /// `max_warmup`: memory is simulated throughout.
    pub az_memory_lead: SimDuration,
}

/// Simulating a spatial sample of the chunks (hash-based, as SHARDS does), for long runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Simulate the chunk ids whose hash falls in one in this many, in caches of this fraction of
    /// the configured sizes; every sampled read stands for `one_in` reads (on its start's read
    /// lanes, in S3's request rate and in every count). 1 simulates every chunk. Shares and hit
    /// rates are estimates whose agreement with full runs docs/performance.md measures.
    pub one_in: u32,
}

/// Measuring reuse and sizing the caches the way the paper sizes them (`sim::sizing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingConfig {
    /// The AZ cache's hit-rate goal (the paper: a median of 99.9%).
    pub hit_rate_goal: f64,
    /// Share of chunk ids whose requests the reuse measurement follows (hash-based spatial
    /// sampling, as SHARDS does): the miss-ratio curves, the window working sets and Belady's bound
    /// of both tiers come from it.
    pub sample_rate: f64,
    /// The same for each worker's request stream. Lower than the AZ cache's: the figures
    /// aggregate a thousand streams, so a quarter of the rate moves them by under 0.2 points
    /// (docs/fleet-model.md), for a quarter of the work and memory.
    pub worker_sample_rate: f64,
    /// Prices of holding bytes in the AZ cache and of S3 GETs, each with its source.
    pub pricing: crate::sim::sizing::PricingConfig,
}

/// The open world: functions come and go, shared layers get new versions, salts rotate and
/// workers are replaced, all as Poisson processes (`fleet::population`, `fleet::workload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldConfig {
    /// Customers owning the functions (a function's owner is Zipf(`customer_zipf`) by customer).
    pub customers: usize,
    pub customer_zipf: f64,
    /// Share of a customer's functions built on the customer's own stack (base, runtime and
    /// dependency layers); the others draw their stack like anyone else.
    pub customer_stack_share: f64,
    /// Mean life of a function (exponential) before it is abandoned: no more invocations.
    pub function_lifetime: SimDuration,
    /// Mean time between new versions (security updates) of each base layer lineage.
    pub base_update_interval: SimDuration,
    /// Mean time between new versions of each language-runtime layer lineage.
    pub runtime_update_interval: SimDuration,
    /// The convergent-encryption salt changes every this long: uploads after a rotation produce
    /// new chunks for the same bytes (dedup traded for blast radius).
    pub salt_rotation: SimDuration,
    /// Mean life of a worker (exponential); a replaced worker comes back with an empty cache.
    pub worker_lifetime: SimDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    pub new_functions_per_hour: f64,
    /// Deploys of existing functions (picked by popularity). Each rebuilds the image on the latest
    /// base and runtime versions and the current salt; what else changes is below.
    pub updates_per_hour: f64,
    /// Share of deploys that change the function's code.
    pub code_change_share: f64,
    /// Share of the app layer's read chunks a code change rewrites: log-normal median and sigma.
    pub code_change_median: f64,
    pub code_change_sigma: f64,
    /// Share of deploys that change the dependency layer (a package bump), and the share of its
    /// read chunks such a change rewrites.
    pub deps_change_share: f64,
    pub deps_change_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub total_concurrency: f64,
    pub popularity_zipf: f64,
    pub diurnal_amplitude: f64,
    pub peak_hour: f64,
    pub keep_alive: SimDuration,
    pub sandbox_lifetime: SimDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronConfig {
    pub hourly_functions: usize,
    pub daily_functions: usize,
    pub weekly_functions: usize,
    pub on_the_hour_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstConfig {
    pub new_function_sandboxes_median: f64,
    pub new_function_sandboxes_sigma: f64,
    pub new_function_delay: SimDuration,
    pub new_function_duration: SimDuration,
    pub scale_ups_per_hour: f64,
    pub scale_up_factor: f64,
    pub scale_up_duration: SimDuration,
}

/// Where a function's new sandbox goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementPolicy {
    /// Any worker with room.
    Random,
    /// One of the function's preferred workers with room, else any worker with room.
    Sticky,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    pub workers: usize,
    pub sandbox_slots: u32,
    pub policy: PlacementPolicy,
    pub sticky_workers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartConfig {
    pub read_parallelism: usize,
    pub init: LatencyDist,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub max_requests_per_second: f64,
}

/// A failure or deploy of the AZ cache. `at` counts from the start of the measured window, so a
/// scenario reads the same whatever its warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Failure {
    /// One node is lost for good (its contents gone; the ring moves its share elsewhere).
    NodeLoss { at: SimDuration, node: u32 },
    /// Every node restarts empty, one after another, `interval` apart (a deploy).
    RollingRestart { at: SimDuration, interval: SimDuration },
    /// The whole AZ cache restarts empty at once (and, if `workers`, every worker cache too): the
    /// metastable case the paper warns about.
    EmptyRestart { at: SimDuration, workers: bool },
}

impl Failure {
    pub fn at(&self) -> SimDuration {
        match *self {
            Failure::NodeLoss { at, .. }
            | Failure::RollingRestart { at, .. }
            | Failure::EmptyRestart { at, .. } => at,
        }
    }
}

impl FleetScenario {
    /// The built-in `paper-region` scenario.
    pub fn paper_region() -> Self {
        Self::load(None, &[]).expect("the built-in scenario parses")
    }

    /// `paper-region`, with `file` (its text and a name for errors) laid over it, then each
    /// `key.path=value` override, then validated.
    pub fn load(file: Option<(&str, &str)>, overrides: &[String]) -> Result<Self, FleetScenarioError> {
        let mut table = parse_table("paper-region", PAPER_REGION_TOML)?;
        if let Some((origin, text)) = file {
            merge(&mut table, parse_table(origin, text)?);
        }
        apply_overrides(&mut table, overrides)?;
        let sc: FleetScenario =
            FleetScenario::deserialize(table).map_err(|e| FleetScenarioError::Parse(e.to_string()))?;
        sc.validate()?;
        Ok(sc)
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a fleet scenario always serialises")
    }

    pub fn validate(&self) -> Result<(), FleetScenarioError> {
        let bad = |m: String| Err(FleetScenarioError::Invalid(m));
        let share = |name: &str, v: f64| -> Result<(), FleetScenarioError> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(FleetScenarioError::Invalid(format!("{name} = {v} must be a share in 0..=1")))
            }
        };
        let positive = |name: &str, v: f64| -> Result<(), FleetScenarioError> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(FleetScenarioError::Invalid(format!("{name} = {v} must be a finite number >= 0")))
            }
        };
        if self.duration.is_zero() || self.tick.is_zero() {
            return bad("duration and tick must be above zero".into());
        }
        if !self.duration.as_nanos().is_multiple_of(self.tick.as_nanos())
            || !self.warmup.as_nanos().is_multiple_of(self.tick.as_nanos())
            || !self.steady.max_warmup.as_nanos().is_multiple_of(self.tick.as_nanos())
        {
            return bad(format!(
                "duration, warmup and steady.max_warmup must be whole multiples of tick ({})",
                self.tick
            ));
        }
        if self.tick > SimDuration::from_secs(60)
            || !SimDuration::from_secs(60).as_nanos().is_multiple_of(self.tick.as_nanos())
        {
            return bad(format!("tick {} must divide one minute", self.tick));
        }
        let chunk = self.chunk_size.bytes();
        if chunk == 0 || chunk > u64::from(u32::MAX) {
            return bad(format!("chunk_size {} must be above zero and below 4GiB", self.chunk_size));
        }
        positive("start_hour_of_week", self.start_hour_of_week)?;
        let p = &self.population;
        if p.functions == 0 {
            return bad("population.functions must be at least 1".into());
        }
        for (name, l) in [("base", &p.base), ("runtime", &p.runtime), ("deps", &p.deps)] {
            if l.choices == 0 {
                return bad(format!("population.{name}.choices must be at least 1"));
            }
            positive(&format!("population.{name}.zipf"), l.zipf)?;
            positive(&format!("population.{name}.size_sigma"), l.size_sigma)?;
            share(&format!("population.{name}.read_fraction"), l.read_fraction)?;
        }
        for (i, r) in p.real.iter().enumerate() {
            let at = format!("population.real[{i}] ({})", r.manifest);
            if r.functions == 0 {
                return bad(format!("{at}: functions must be at least 1"));
            }
            match (&r.trace, r.read_fraction) {
                (None, None) => return bad(format!("{at}: needs a trace or a read_fraction")),
                (Some(_), Some(_)) => {
                    return bad(format!("{at}: give a trace or a read_fraction, not both"));
                }
                (Some(_), None) if r.key.is_none() => {
                    return bad(format!("{at}: mapping the trace onto the image needs its key"));
                }
                (None, Some(f)) => share(&format!("{at}.read_fraction"), f)?,
                _ => {}
            }
        }
        positive("population.app.size_sigma", p.app.size_sigma)?;
        share("population.app.read_fraction", p.app.read_fraction)?;
        share("population.large.share", p.large.share)?;
        positive("population.large.size_sigma", p.large.size_sigma)?;
        share("population.large.read_fraction", p.large.read_fraction)?;
        share("population.large.model_change_share", p.large.model_change_share)?;
        let u = &self.uploads;
        positive("uploads.new_functions_per_hour", u.new_functions_per_hour)?;
        positive("uploads.updates_per_hour", u.updates_per_hour)?;
        share("uploads.code_change_share", u.code_change_share)?;
        share("uploads.code_change_median", u.code_change_median)?;
        positive("uploads.code_change_sigma", u.code_change_sigma)?;
        share("uploads.deps_change_share", u.deps_change_share)?;
        share("uploads.deps_change_fraction", u.deps_change_fraction)?;
        let st = &self.steady;
        if st.check.is_zero() || !st.check.as_nanos().is_multiple_of(self.tick.as_nanos()) {
            return bad(format!("steady.check must be a whole number of ticks above zero ({})", self.tick));
        }
        if st.max_warmup < self.warmup {
            return bad(format!(
                "steady.max_warmup {} is shorter than warmup {}",
                st.max_warmup, self.warmup
            ));
        }
        for (name, v) in [
            ("steady.l1_share_drift", st.l1_share_drift),
            ("steady.az_hit_rate_drift", st.az_hit_rate_drift),
            ("steady.s3_share_drift", st.s3_share_drift),
        ] {
            share(name, v)?;
        }
        self.validate_sampling()?;
        share("sizing.hit_rate_goal", self.sizing.hit_rate_goal)?;
        for (name, rate) in [
            ("sizing.sample_rate", self.sizing.sample_rate),
            ("sizing.worker_sample_rate", self.sizing.worker_sample_rate),
        ] {
            if !(rate > 0.0 && rate <= 1.0) {
                return bad(format!("{name} = {rate} must be in (0, 1]"));
            }
        }
        self.sizing
            .pricing
            .validate()
            .map_err(|e| FleetScenarioError::Invalid(format!("sizing.pricing: {e}")))?;
        let wd = &self.world;
        if wd.customers == 0 {
            return bad("world.customers must be at least 1".into());
        }
        positive("world.customer_zipf", wd.customer_zipf)?;
        share("world.customer_stack_share", wd.customer_stack_share)?;
        for (name, d) in [
            ("world.function_lifetime", wd.function_lifetime),
            ("world.base_update_interval", wd.base_update_interval),
            ("world.runtime_update_interval", wd.runtime_update_interval),
            ("world.salt_rotation", wd.salt_rotation),
            ("world.worker_lifetime", wd.worker_lifetime),
        ] {
            if d.is_zero() {
                return bad(format!("{name} must be above zero"));
            }
        }
        let w = &self.workload;
        positive("workload.total_concurrency", w.total_concurrency)?;
        positive("workload.popularity_zipf", w.popularity_zipf)?;
        share("workload.diurnal_amplitude", w.diurnal_amplitude)?;
        positive("workload.peak_hour", w.peak_hour)?;
        if w.sandbox_lifetime.is_zero() {
            return bad("workload.sandbox_lifetime must be above zero".into());
        }
        let c = &self.cron;
        if c.hourly_functions + c.daily_functions + c.weekly_functions > p.functions {
            return bad("cron: more scheduled functions than population.functions".into());
        }
        share("cron.on_the_hour_share", c.on_the_hour_share)?;
        let b = &self.bursts;
        positive("bursts.new_function_sandboxes_median", b.new_function_sandboxes_median)?;
        positive("bursts.new_function_sandboxes_sigma", b.new_function_sandboxes_sigma)?;
        positive("bursts.scale_ups_per_hour", b.scale_ups_per_hour)?;
        positive("bursts.scale_up_factor", b.scale_up_factor)?;
        let pl = &self.placement;
        if pl.workers == 0 || pl.sandbox_slots == 0 || pl.workers > u32::MAX as usize {
            return bad("placement: workers and sandbox_slots must be at least 1".into());
        }
        if pl.policy == PlacementPolicy::Sticky && pl.sticky_workers == 0 {
            return bad("placement.sticky_workers must be at least 1 for the sticky policy".into());
        }
        if !(1..=64).contains(&self.start.read_parallelism) {
            return bad("start.read_parallelism must be in 1..=64".into());
        }
        self.start.init.validate("start.init").map_err(|e| FleetScenarioError::Invalid(e.to_string()))?;
        self.latency.validate().map_err(|e| FleetScenarioError::Invalid(format!("latency: {e}")))?;
        self.l1.disk_hit.validate("l1.disk_hit").map_err(|e| FleetScenarioError::Invalid(e.to_string()))?;
        if self.l2.nodes < 5 && self.l2.redundancy == crate::sim::RedundancyName::ErasureCoded {
            return bad("l2: 4-of-5 erasure coding needs at least 5 nodes".into());
        }
        if self.l2.nodes == 0 {
            return bad("l2.nodes must be at least 1".into());
        }
        if !(self.s3.max_requests_per_second.is_finite() && self.s3.max_requests_per_second > 0.0) {
            return bad("s3.max_requests_per_second must be above zero".into());
        }
        for f in &self.failures {
            if f.at() >= self.duration {
                return bad(format!(
                    "failure at {} is not inside the measured window ({})",
                    f.at(),
                    self.duration
                ));
            }
            match *f {
                Failure::NodeLoss { node, .. } if node as usize >= self.l2.nodes => {
                    return bad(format!(
                        "failure: node {node} does not exist (l2.nodes = {})",
                        self.l2.nodes
                    ));
                }
                Failure::RollingRestart { interval, .. } if interval.is_zero() => {
                    return bad("failure: a rolling restart needs an interval above zero".into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate_sampling(&self) -> Result<(), FleetScenarioError> {
        let n = self.sampling.one_in;
        if !(1..=MAX_ONE_IN).contains(&n) {
            return Err(FleetScenarioError::Invalid(format!(
                "sampling.one_in = {n} must be in 1..={MAX_ONE_IN}"
            )));
        }
        let sim = self.simulated();
        for (name, full, scaled) in [
            ("l1.memory_capacity", self.l1.memory_capacity, sim.l1.memory_capacity),
            ("l1.disk_capacity", self.l1.disk_capacity, sim.l1.disk_capacity),
            ("l2.node_capacity", self.l2.node_capacity, sim.l2.node_capacity),
        ] {
            if n > 1 && full.bytes() >= self.chunk_size.bytes() && scaled < self.chunk_size {
                return Err(FleetScenarioError::Invalid(format!(
                    "sampling.one_in = {n} leaves {name} ({full}) below one chunk ({}) in the sampled caches",
                    self.chunk_size
                )));
            }
        }
        Ok(())
    }

    /// The scenario the caches are simulated with: under `sampling.one_in` = N, the worker caches'
    /// and AZ nodes' capacities divided by N (SHARDS' scaled caches for a 1/N sample of the chunks).
    /// Everything else, S3's request rate included, stays: every sampled S3 miss makes N GETs.
    pub fn simulated(&self) -> FleetScenario {
        let n = u64::from(self.sampling.one_in.max(1));
        let mut sim = self.clone();
        sim.l1.memory_capacity = ByteSize(self.l1.memory_capacity.bytes() / n);
        sim.l1.disk_capacity = ByteSize(self.l1.disk_capacity.bytes() / n);
        sim.l2.node_capacity = ByteSize(self.l2.node_capacity.bytes() / n);
        sim
    }

    /// Ticks in `d` (a whole number of ticks).
    pub fn ticks_in(&self, d: SimDuration) -> u64 {
        d.as_nanos() / self.tick.as_nanos()
    }
}

fn parse_table(origin: &str, text: &str) -> Result<toml::Table, FleetScenarioError> {
    text.parse::<toml::Table>()
        .map_err(|e| FleetScenarioError::Syntax { origin: origin.to_string(), message: e.to_string() })
}

/// Lays `over` onto `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `a.b.c=value`: the value is TOML (`3`, `0.5`, `"x"`, `true`, `{ fixed = "1ms" }`); a bare word
/// that is not TOML is taken as a string (`l2.policy=lru`). The path must name an existing key:
/// a typo is an error here rather than a silently ignored new key.
/// Lays each `key.path=value` over `table` through the shared override engine
/// (`crate::overrides`), the same code and wording as `sweep --grid`. The merged file is checked
/// first, so a mistake in the file is not blamed on the first override.
fn apply_overrides(table: &mut toml::Table, specs: &[String]) -> Result<(), FleetScenarioError> {
    if specs.is_empty() {
        return Ok(());
    }
    let pairs = specs.iter().map(|s| crate::overrides::parse_spec(s)).collect::<Result<Vec<_>, _>>()?;
    FleetScenario::deserialize(table.clone()).map_err(|e| FleetScenarioError::Parse(e.to_string()))?;
    crate::overrides::apply_to_table::<FleetScenario>(table, &pairs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::PolicyKind;

    #[test]
    fn built_in_parses_and_round_trips() {
        let sc = FleetScenario::paper_region();
        assert_eq!(sc.population.functions, 10_000);
        assert_eq!(sc.placement.workers, 1_000);
        let back = FleetScenario::load(Some(("echo", &sc.to_toml())), &[]).unwrap();
        assert_eq!(back, sc);
    }

    #[test]
    fn shipped_scenario_files_parse() {
        for (name, text) in [
            ("paper-region-small.toml", include_str!("../../scenarios/paper-region-small.toml")),
            ("node-loss.toml", include_str!("../../scenarios/node-loss.toml")),
            ("rolling-restart.toml", include_str!("../../scenarios/rolling-restart.toml")),
            ("empty-restart.toml", include_str!("../../scenarios/empty-restart.toml")),
        ] {
            let sc = FleetScenario::load(Some((name, text)), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(format!("{}.toml", sc.name), name);
        }
    }

    #[test]
    fn files_and_overrides_layer_over_the_built_in() {
        let sc = FleetScenario::load(
            Some(("f.toml", "duration = \"10min\"\n[l2]\nnodes = 10\n")),
            &["l1.policy=fifo".into(), "placement.workers=7".into(), "l2.redundancy=\"single-copy\"".into()],
        )
        .unwrap();
        assert_eq!(sc.duration, SimDuration::from_secs(600));
        assert_eq!(sc.l2.nodes, 10);
        assert_eq!(sc.l2.node_capacity, FleetScenario::paper_region().l2.node_capacity);
        assert_eq!(sc.l1.policy, PolicyKind::Fifo);
        assert_eq!(sc.placement.workers, 7);
    }

    #[test]
    fn unknown_keys_bad_units_and_bad_values_are_named() {
        let e = FleetScenario::load(Some(("f", "[l2]\nnode_capcity = \"1GiB\"\n")), &[]).unwrap_err();
        assert!(e.to_string().contains("node_capcity"), "{e}");
        let e = FleetScenario::load(Some(("f", "duration = \"10 fortnights\"\n")), &[]).unwrap_err();
        assert!(e.to_string().contains("fortnights"), "{e}");
        let e = FleetScenario::load(Some(("f", "duration = \"10\"\n")), &[]).unwrap_err();
        assert!(e.to_string().contains("missing unit"), "{e}");
        let e = FleetScenario::load(None, &["l2.nodez=3".into()]).unwrap_err();
        assert!(e.to_string().contains("l2.nodez"), "{e}");
        let e = FleetScenario::load(None, &["uploads.code_change_share=1.5".into()]).unwrap_err();
        assert!(e.to_string().contains("code_change_share"), "{e}");
        let e = FleetScenario::load(Some(("f", "duration = [\n")), &[]).unwrap_err();
        assert!(e.to_string().starts_with("f: not valid TOML"), "{e}");
        let e = FleetScenario::load(
            Some(("f", "[[failures]]\nkind = \"node-loss\"\nat = \"5min\"\nnode = 99\n")),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("node 99"), "{e}");
    }

    #[test]
    fn sampling_divides_the_caches_and_refuses_what_cannot_be_sampled() {
        let sc = FleetScenario::load(None, &["sampling.one_in=4".into()]).unwrap();
        let sim = sc.simulated();
        assert_eq!(sim.l1.disk_capacity.bytes() * 4, sc.l1.disk_capacity.bytes());
        assert_eq!(sim.l2.node_capacity.bytes() * 4, sc.l2.node_capacity.bytes());
        assert_eq!(sim.s3.max_requests_per_second, sc.s3.max_requests_per_second, "every GET is made");
        assert_eq!(FleetScenario::paper_region().simulated(), FleetScenario::paper_region());
        for (set, named) in [
            ("sampling.one_in=0", "sampling.one_in = 0"),
            ("sampling.one_in=5000", "1..=1024"),
            ("sampling.one_in=-1", "one_in"),
        ] {
            let e = FleetScenario::load(None, &[set.into()]).unwrap_err();
            assert!(e.to_string().contains(named), "{set}: {e}");
        }
        let e =
            FleetScenario::load(None, &["sampling.one_in=8".into(), "l1.memory_capacity=\"2MiB\"".into()])
                .unwrap_err();
        assert!(e.to_string().contains("l1.memory_capacity (2MiB) below one chunk"), "{e}");
    }
}
