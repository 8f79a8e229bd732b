//! Every image decoder (sniffed from the bytes, as for a file or an HTTP body), then the header
//! probe and the reference preprocessing of whatever decodes. A panic, a hang or a memory error
//! is a bug: bad input must come back as an `ImageError`.
#![no_main]

use clip_image::{decode_bytes, probe, DecodeOptions, Preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A pixel limit that keeps each run fast (a fuzzer's 100-byte file may claim any size).
    let opts = DecodeOptions {
        max_pixels: 4_000_000,
        ..DecodeOptions::default()
    };
    let probed = probe(data, "fuzz", &opts);
    match decode_bytes(data, "fuzz", &opts) {
        Ok(image) => {
            // The probe must have read the same size from the header.
            let (w, h) = probed.expect("an image that decodes has a readable header");
            assert_eq!((w, h), (image.width(), image.height()));
            let pixels = Preprocess::clip(32).apply(&image);
            assert_eq!(pixels.len(), 3 * 32 * 32);
        }
        Err(e) => {
            // Errors name the input and never echo its bytes.
            assert!(e.to_string().starts_with("fuzz: "), "{e}");
        }
    }
});
