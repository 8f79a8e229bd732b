//! `clip bench`: the arguments of the engine's benchmark harness ([`clip::bench`]) and its JSON.

use clap::Args;
use clip::bench::BenchConfig;
use clip::Precision;

use crate::output::print_json;

/// `clip bench` arguments.
#[derive(Args)]
pub struct BenchArgs {
    /// Architecture: RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14,
    /// ViT-L/14@336px, siglip2-base-patch16-224.
    #[arg(long)]
    arch: String,
    /// Benchmark the text tower instead of the image tower.
    #[arg(long)]
    text: bool,
    /// Inputs per timed call.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Compute threads (sets RAYON_NUM_THREADS / CANDLE_NUM_THREADS before any work); default:
    /// the environment's RAYON_NUM_THREADS, else one per available core.
    #[arg(long)]
    threads: Option<usize>,
    /// Precision of the linear layers: f32 (the reference's numbers), bf16, f16 (half weights,
    /// f32 arithmetic) or int8 (dynamic quantisation).
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Timed rounds; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip the batch-1 latency measurement.
    #[arg(long)]
    no_b1: bool,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON line (the default output is also JSON; kept for symmetry with the peers).
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let report = clip::bench::run(&BenchConfig {
        arch: args.arch,
        text: args.text,
        batch: args.batch,
        threads: args.threads,
        precision: args.precision,
        rounds: args.rounds,
        b1: !args.no_b1,
        seed: args.seed,
    })?;
    print_json(&report)?;
    Ok(0)
}
