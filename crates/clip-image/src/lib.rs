//! Image decoding and CLIP's reference preprocessing, reproduced bit for bit.
//!
//! The reference is `clip.clip._transform(n_px)` applied to `PIL.Image.open(path)` with Pillow 13:
//! `Resize(n_px, BICUBIC) -> CenterCrop(n_px) -> convert("RGB") -> ToTensor -> Normalize`.
//! Pillow's resize depends on the image mode, so decoding keeps the file's own mode
//! ([`Pixels`]), and the transform follows Pillow per mode (see `docs/REFERENCE_NOTES.md`,
//! "Image preprocessing").
//!
//! Other model families describe their preprocessing with the same [`Preprocess`]: open_clip's
//! resize modes ([`ResizeMode::Squash`], [`ResizeMode::Longest`] with padding), Pillow's bilinear
//! filter, and transformers' conversion to RGB over white before the resize
//! ([`RgbConversion::BeforeResizeOnWhite`]), each bit-identical with its reference.
//!
//! ```no_run
//! use clip_image::{decode_file, preprocess, DecodeOptions, Normalization};
//! let img = decode_file("cat.jpg".as_ref(), &DecodeOptions::default())?;
//! let tensor = preprocess(&img, 224, &Normalization::default()); // [3, 224, 224], CHW
//! # Ok::<(), clip_image::ImageError>(())
//! ```
//!
//! JPEG and fatal-error handling rely on unwinding out of libjpeg; build with `panic = "unwind"`
//! (the default).

#![deny(unsafe_op_in_unsafe_fn)]

mod decode;
mod error;
mod exif;
mod image;
mod modes;
mod resample;
mod transform;

pub use decode::{
    decode_bytes, decode_file, probe, read_file, sniff, DecodeOptions, PILLOW_MAX_IMAGE_PIXELS,
};
pub use error::{ImageError, ImageFormat};
pub use image::{DecodedImage, Mode, Pixels, PixelsError};
pub use transform::{
    center_crop_offsets, keep_ratio_longest_size, preprocess, resize_crop_rgb, resized_size,
    Interpolation, Normalization, Preprocess, ResizeMode, RgbConversion,
};
