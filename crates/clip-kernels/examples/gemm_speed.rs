//! GFLOP/s of the linear-layer kernels on ViT-B/32-sized products (batch 32 x 50 tokens), every
//! precision and kernel set this CPU runs (f32 included), next to candle's f32 matmul.
//!
//! `cargo run --release -p clip-kernels --example gemm_speed [KERNELS...]` (set `RAYON_NUM_THREADS` to pin
//! threads; `GEMM_SHAPES="1600x768x3072;50x768x2304"` for other `m x k x n`); naming kernel sets
//! (`amx`, `avx512`, ...) measures only those, without candle.

use std::time::Instant;

use candle_core::{Device, Tensor};
use clip_kernels::{Epilogue, Isa, PackedMatrix, Precision};

fn median_secs(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..5)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[2]
}

fn main() -> candle_core::Result<()> {
    let only: Vec<String> = std::env::args().skip(1).map(|a| a.to_lowercase()).collect();
    let wanted = |isa: Isa| only.is_empty() || only.contains(&format!("{isa:?}").to_lowercase());
    let shapes: Vec<(usize, usize, usize)> = match std::env::var("GEMM_SHAPES") {
        Ok(s) => s
            .split(';')
            .map(|t| {
                let d: Vec<usize> = t.split('x').map(|v| v.trim().parse().unwrap()).collect();
                (d[0], d[1], d[2])
            })
            .collect(),
        Err(_) => vec![
            (1600, 768, 3072),
            (1600, 3072, 768),
            (50, 768, 2304),
            (1, 512, 512),
        ],
    };
    for (m, k, n) in shapes {
        let flop = 2.0 * (m * k * n) as f64;
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let xt = Tensor::from_slice(&x, (m, k), &Device::Cpu)?;
        let wt = Tensor::from_slice(&w, (k, n), &Device::Cpu)?;
        if only.is_empty() {
            let s = median_secs(|| {
                xt.matmul(&wt).unwrap();
            });
            println!("{m}x{k}x{n} candle f32: {:.1} GFLOP/s", flop / s / 1e9);
        }
        for p in Precision::ALL {
            for isa in Isa::available(p).into_iter().filter(|&i| wanted(i)) {
                let packed = PackedMatrix::pack(k, n, p, isa, |a, b| w[a * n + b]);
                let s = median_secs(|| {
                    packed.matmul(&x, m, &Epilogue::default());
                });
                println!("{m}x{k}x{n} {p} {isa:?}: {:.1} GFLOP/s", flop / s / 1e9);
            }
        }
    }
    Ok(())
}
