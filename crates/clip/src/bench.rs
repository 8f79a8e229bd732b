//! The benchmark harness behind `clip bench`: throughput, batch-1 latency and peak memory of one tower on RANDOM weights of a
//! released architecture, built in memory (no download), measured the way the peer scripts of
//! `shared/perf` measure: one warm-up call, then the median of `--rounds` calls on the whole batch;
//! the b1 latency is the median of at least 3 batch-1 calls after a batch-1 warm-up.
//!
//! Image input: a random `[B, 3, R, R]` tensor (preprocessing not timed). Text input: B realistic
//! captions (the 32 of `shared/perf/common.py`, cycled); the timed call starts from the strings, so
//! tokenisation is included. `peak_rss_mb` is VmHWM while running inference with the model
//! resident (reset after the build, as the peers do); `build_peak_rss_mb` is the peak of building;
//! `weights_mb` what the built tower's weights take in the run precision
//! ([`ClipModel::weight_bytes`]) and `rss_over_weights` the ratio of the two. Every `_mb` is MiB
//! (2^20 bytes), as the kernel reports VmHWM.

use std::time::Instant;

use candle_core::{Device, Tensor};
use clip_kernels::{runs_packed, Isa, Precision};
use clip_tokenizer::{Overflow, Tokenizer};
use serde_json::{json, Value};

use crate::model::random::{arch_config, random_checkpoint, ARCHITECTURES};
use crate::model::{ClipModel, LoadOptions, ModelError, Towers};

/// The captions of `shared/perf/common.py` (5-20 words each); the first is the b1 caption.
const CAPTIONS: [&str; 32] = [
    "a photo of a cat sitting on a red sofa next to a window",
    "a dog running on the beach",
    "two children playing football in a muddy field after the rain",
    "a bowl of fresh fruit on a wooden kitchen table",
    "an old man reading a newspaper on a park bench in autumn",
    "a red car parked in front of a brick house",
    "aerial view of a city at night",
    "a plate of spaghetti with tomato sauce and basil leaves",
    "a woman in a yellow raincoat walking her dog through a busy street market on a grey morning",
    "a black and white photograph of a lighthouse",
    "three horses grazing in a green meadow under a cloudy sky",
    "close up of a bee on a sunflower",
    "a man riding a bicycle across a bridge over a wide river while boats pass underneath",
    "a snowy mountain peak at sunrise",
    "a group of friends having dinner at a long table in a restaurant with candles and wine",
    "a laptop and a cup of coffee on a desk",
    "a small boat on a calm lake",
    "a baby laughing in a high chair while her father feeds her with a spoon in the kitchen",
    "a train arriving at a crowded station platform",
    "an orange tabby kitten sleeping in a cardboard box",
    "the skyline of a large city seen from across the harbour",
    "a chef slicing vegetables",
    "a child drawing with crayons on a large sheet of paper at school",
    "a vintage camera on a shelf",
    "a field of tulips in many colours stretching towards a windmill on the horizon",
    "a surfer riding a large wave",
    "two people shaking hands in an office",
    "a stack of books next to a reading lamp",
    "a fire truck with its lights on driving down a wet road at night in heavy rain",
    "a hamburger with fries",
    "a squirrel eating a nut on a tree branch",
    "an astronaut floating inside a space station looking out of a round window at the earth below",
];

/// What to measure (the `clip bench` arguments).
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Architecture: RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14,
    /// ViT-L/14@336px, siglip2-base-patch16-224.
    pub arch: String,
    /// The text tower instead of the image tower.
    pub text: bool,
    /// Inputs per timed call.
    pub batch: usize,
    /// Compute threads (sets `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS` before any work);
    /// `None`: the environment's `RAYON_NUM_THREADS`, else one per available core.
    pub threads: Option<usize>,
    /// Precision of the linear layers.
    pub precision: Precision,
    /// Timed rounds; the median is reported.
    pub rounds: usize,
    /// Measure the batch-1 latency too.
    pub b1: bool,
    /// Seed of the random weights.
    pub seed: u64,
}

/// Refuses a batch whose activations would not fit in the memory available now (an abort on
/// allocation otherwise): a rough count of the largest tensors of one input, times the batch.
fn check_memory(config: &crate::ModelConfig, args: &BenchConfig) -> Result<(), BenchError> {
    let per_input = if args.text {
        // The residual stream and the MLP's hidden layer (4x wide) at every position, f32.
        let t = &config.text;
        t.context_length * t.width * 4 * 6
    } else {
        let r = config.image_resolution();
        let width = match config.vision {
            crate::VisionConfig::Vit { width, .. } => width,
            crate::VisionConfig::ResNet { width, .. } => width * 32,
        };
        // The pixels, then per patch (at most one per 14 x 14 pixels) the residual and the MLP.
        3 * r * r * 4 + (r * r / 196 + 1) * width * 4 * 6
    };
    let need = (per_input as u64).saturating_mul(args.batch as u64);
    if let Some(available) = available_memory() {
        if need > available / 2 {
            return Err(BenchError::TooLarge {
                batch: args.batch,
                need_mib: need >> 20,
                available_mib: available >> 20,
            });
        }
    }
    Ok(())
}

/// `MemAvailable` in bytes (`None` where /proc is missing).
fn available_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A count that must be positive was 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The batch's activations would not fit in the memory available now.
    #[error("--batch {batch} needs about {need_mib} MiB of activations, more than half of the {available_mib} MiB available: use a smaller batch")]
    TooLarge {
        /// The batch asked for.
        batch: usize,
        /// The estimate.
        need_mib: u64,
        /// `MemAvailable` now.
        available_mib: u64,
    },
    /// The architecture name is not one of [`ARCHITECTURES`].
    #[error("unknown architecture {0:?}; one of {list}", list = ARCHITECTURES.join(", "))]
    UnknownArch(String),
    /// Building or running the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// Tokenising the captions failed.
    #[error(transparent)]
    Tokenize(#[from] clip_tokenizer::TokenizeError),
}

/// A `kB` field of `/proc/self/status` (`None` where /proc is missing).
fn status_kb(field: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok()
}

const MIB: f64 = 1024.0 * 1024.0;

/// VmHWM in MiB (0 where /proc is missing).
fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:").map_or(0.0, |kb| kb * 1024.0 / MIB)
}

/// Gives freed heap back to the OS, then resets VmHWM to the current RSS (Linux >= 4.0).
fn reset_peak_rss() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's `malloc_trim`, declared above with its C signature, has no
        // preconditions: it only returns free heap pages to the OS.
        unsafe {
            malloc_trim(0);
        }
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One warm-up call of `f`, then `rounds` timed ones; the times in seconds.
fn time_calls(
    rounds: usize,
    mut f: impl FnMut() -> Result<(), BenchError>,
) -> Result<Vec<f64>, BenchError> {
    f()?;
    let mut t = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    Ok(t)
}

/// Builds the tower on random weights and measures it; the report is one JSON object (the keys
/// the peer scripts print, see the module documentation).
pub fn run(args: &BenchConfig) -> Result<Value, BenchError> {
    let t_start = Instant::now();
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(BenchError::Zero("threads"));
        }
        // Before any candle or rayon work: both read these once, when their pools start
        // (candle's matmul also reads RAYON_NUM_THREADS on every call).
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    }
    if args.batch == 0 {
        return Err(BenchError::Zero("batch"));
    }
    if args.rounds == 0 {
        return Err(BenchError::Zero("rounds"));
    }
    let config =
        arch_config(&args.arch).ok_or_else(|| BenchError::UnknownArch(args.arch.clone()))?;
    check_memory(&config, args)?;
    let device = Device::Cpu;
    let ckpt = random_checkpoint(&args.arch, args.seed).expect("known architecture");
    // Only the measured tower is built, as the text-only and image-only commands do.
    let towers = if args.text {
        Towers::Text
    } else {
        Towers::Image
    };
    let options = LoadOptions {
        precision: args.precision,
        towers,
        kernels: None,
    };
    let model = ClipModel::with_options(&ckpt, &device, options)?;
    drop(ckpt);
    if args.text {
        // Part of loading a text model, as in `Clip::load_with` (and the peers' model loading):
        // its start-up tables are built, and their scratch freed, before the peak is reset.
        Tokenizer::global();
    }
    let load_s = t_start.elapsed().as_secs_f64();
    let build_peak = peak_rss_mb();
    let peak_reset = reset_peak_rss();

    let threads = args.threads.unwrap_or_else(|| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    let (tower, per_s_key, rounds_b, rounds_1) = if args.text {
        let ctx = config.text.context_length;
        let captions: Vec<&str> = (0..args.batch)
            .map(|i| CAPTIONS[i % CAPTIONS.len()])
            .collect();
        let encode = |texts: &[&str]| -> Result<(), BenchError> {
            let mut ids = Vec::with_capacity(texts.len() * ctx);
            for t in texts {
                ids.extend(Tokenizer::global().tokenize(t, ctx, Overflow::Truncate)?);
            }
            let input = Tensor::from_vec(ids, (texts.len(), ctx), &device)?;
            let out = model.encode_text(&input)?;
            std::hint::black_box(out);
            Ok(())
        };
        let tb = time_calls(args.rounds, || encode(&captions))?;
        let t1 = if !args.b1 {
            Vec::new()
        } else {
            time_calls(args.rounds.max(3), || encode(&captions[..1]))?
        };
        ("text", "texts_per_s", tb, t1)
    } else {
        let r = config.image_resolution();
        // Deterministic pseudo-random pixels in roughly the normalised range.
        let n = args.batch * 3 * r * r;
        let mut state = 0x1234_5678_u32;
        let px: Vec<f32> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
            })
            .collect();
        let batch = Tensor::from_vec(px, (args.batch, 3, r, r), &device)?;
        let one = batch.narrow(0, 0, 1)?.contiguous()?;
        let encode = |x: &Tensor| -> Result<(), BenchError> {
            std::hint::black_box(model.encode_image(x)?);
            Ok(())
        };
        let tb = time_calls(args.rounds, || encode(&batch))?;
        let t1 = if !args.b1 {
            Vec::new()
        } else {
            time_calls(args.rounds.max(3), || encode(&one))?
        };
        ("image", "images_per_s", tb, t1)
    };
    let per_s = args.batch as f64 / median(&rounds_b);
    let (peak_mb, weights_mb) = (peak_rss_mb(), model.weight_bytes() as f64 / MIB);
    let b1 = if rounds_1.is_empty() {
        Value::Null
    } else {
        json!(round3(median(&rounds_1) * 1000.0))
    };
    let mut out = json!({
        "impl": "clip-rs",
        "arch": args.arch,
        "tower": tower,
        "batch": args.batch,
        "threads": threads,
        "precision": args.precision.as_str(),
        "kernels": match Isa::detect(args.precision) {
            isa if runs_packed(args.precision, isa) => format!("{isa:?}").to_lowercase(),
            _ => "candle-gemm".to_string(),
        },
        "towers": "one",
        "b1_latency_ms": b1,
        "peak_rss_mb": round3(peak_mb),
        "weights_mb": round3(weights_mb),
        "rss_over_weights": round3(peak_mb / weights_mb),
        "build_peak_rss_mb": round3(build_peak),
        "peak_reset": peak_reset,
        "load_s": round3(load_s),
        "rounds": args.rounds,
        "round_s": rounds_b.iter().map(|&t| round3(t * 1000.0) / 1000.0).collect::<Vec<_>>(),
        "b1_round_ms": rounds_1.iter().map(|&t| round3(t * 1000.0)).collect::<Vec<_>>(),
    });
    out[per_s_key] = json!(round3(per_s));
    Ok(out)
}
