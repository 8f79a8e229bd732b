//! Writes `Preprocess::apply` of each image as raw little-endian f32 (`[3, n, n]`, CHW) to
//! `<out_dir>/<file name>.f32`, for comparing with the reference processors outside the test suite
//! (`tools/family_preprocess_check.py`).
//!
//! ```text
//! preprocess_dump <n> <shortest|squash|longest:R,G,B> <bicubic|bilinear> <after|white-first>
//!                 <mean R,G,B> <std R,G,B> <out_dir> <image>...
//! ```

use std::path::Path;

use clip_image::{
    decode_file, DecodeOptions, Interpolation, Normalization, Preprocess, ResizeMode, RgbConversion,
};

fn triple<T: std::str::FromStr>(s: &str) -> [T; 3]
where
    T::Err: std::fmt::Debug,
{
    let v: Vec<T> = s.split(',').map(|x| x.trim().parse().unwrap()).collect();
    match <[T; 3]>::try_from(v) {
        Ok(t) => t,
        Err(_) => panic!("expected three comma-separated values, got {s:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert!(args.len() >= 8, "usage: see the module documentation");
    let resize = match args[1].as_str() {
        "shortest" => ResizeMode::Shortest,
        "squash" => ResizeMode::Squash,
        s => match s.strip_prefix("longest:") {
            Some(fill) => ResizeMode::Longest { fill: triple(fill) },
            None => panic!("unknown resize mode {s:?}"),
        },
    };
    let pre = Preprocess {
        resolution: args[0].parse().unwrap(),
        resize,
        interpolation: match args[2].as_str() {
            "bicubic" => Interpolation::Bicubic,
            "bilinear" => Interpolation::Bilinear,
            s => panic!("unknown interpolation {s:?}"),
        },
        rgb: match args[3].as_str() {
            "after" => RgbConversion::AfterResize,
            "white-first" => RgbConversion::BeforeResizeOnWhite,
            s => panic!("unknown RGB conversion {s:?}"),
        },
        normalization: Normalization {
            mean: triple(&args[4]),
            std: triple(&args[5]),
        },
    };
    let out = Path::new(&args[6]);
    std::fs::create_dir_all(out).unwrap();
    for image in &args[7..] {
        let path = Path::new(image);
        let img = decode_file(path, &DecodeOptions::default()).unwrap();
        let bytes: Vec<u8> = pre
            .apply(&img)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let name = path.file_name().unwrap().to_string_lossy();
        std::fs::write(out.join(format!("{name}.f32")), bytes).unwrap();
    }
    println!("{}", pre.describe());
}
