//! JPEG through libjpeg-turbo's decoder (the `mozjpeg-sys` build of it, C compiled by `cc`), set
//! up as Pillow leaves it: accurate integer IDCT (`JDCT_ISLOW`), fancy upsampling, no scaling.
//! That makes the pixels identical to the reference's libjpeg-turbo.
//!
//! libjpeg reports fatal errors through `error_exit`, which must not return. We unwind out of it
//! with `resume_unwind` (no panic hook, no message on stderr), the C code being compiled with
//! `-fexceptions`, and turn the payload back into an error. A premature end of data is only a
//! warning to libjpeg (it pads with gray); Pillow refuses such files, so we do too.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mozjpeg_sys as ffi;

use super::{image, DecodeOptions, Decoded};
use crate::error::{ImageError, Source};
use crate::exif;
use crate::image::Pixels;

/// Why libjpeg stopped: carried through the unwind.
enum Abort {
    Fatal(String),
    Truncated,
}

/// libjpeg's message for the current `msg_code`.
///
/// # Safety
/// `cinfo.err` must point to a live error manager, as it does in every `cinfo` that libjpeg hands
/// to the error callbacks.
unsafe fn message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    let mut buf = [0u8; 200]; // JMSG_LENGTH_MAX

    // SAFETY: the caller guarantees that `cinfo.err` points to a live error manager; it is a
    // separate allocation (`Decompressor::_err`), so this borrow does not overlap `cinfo`.
    let err = unsafe { &*cinfo.err };
    match err.format_message {
        Some(format) => {
            // The binding types the buffer as `&[u8; 80]`, but libjpeg writes up to
            // JMSG_LENGTH_MAX bytes into it: writing through a shared reference is undefined
            // behaviour, so the formatter is called through the C signature it really has
            // (`char *buffer`).
            type Formatter = unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, *mut u8);
            // SAFETY: the two function pointer types differ only in the buffer parameter, a
            // reference in one and a raw pointer in the other: the same ABI (one pointer).
            let format: Formatter = unsafe { std::mem::transmute(format) };
            // SAFETY: `format` is libjpeg's own formatter (installed by `jpeg_std_error`), called
            // with the `cinfo` it belongs to and a buffer of JMSG_LENGTH_MAX bytes, the most it
            // writes.
            unsafe { format(cinfo, buf.as_mut_ptr()) };
            CStr::from_bytes_until_nul(&buf)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        }
        None => format!("libjpeg error {}", err.msg_code),
    }
}

/// libjpeg's fatal-error callback: must not return, so it unwinds to the `catch_unwind` in
/// [`decode`] (the C code is built with `-fexceptions`, the binding declares `C-unwind`).
///
/// # Safety
/// Only for libjpeg to call: `cinfo.err` must point to a live error manager.
unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    // SAFETY: libjpeg calls this with a `cinfo` whose `err` is the manager installed in
    // `Decompressor::new`, alive as long as the decompressor.
    let msg = unsafe { message(cinfo) };
    resume_unwind(Box::new(Abort::Fatal(msg)));
}

/// libjpeg's warning and trace callback: turns the one warning Pillow treats as fatal (premature
/// end of data) into an unwind, and drops the rest.
///
/// # Safety
/// Only for libjpeg to call: `cinfo.err` must point to a live error manager.
unsafe extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // Level -1 is a warning. Other warnings (corrupt data that libjpeg recovers from) are ignored,
    // as Pillow ignores them.
    // SAFETY: libjpeg calls this with a `cinfo` whose `err` is the manager installed in
    // `Decompressor::new`, alive as long as the decompressor.
    if level < 0 && unsafe { (*cinfo.err).msg_code } == ffi::JWRN_JPEG_EOF as c_int {
        resume_unwind(Box::new(Abort::Truncated));
    }
}

/// Owns the libjpeg decompressor; destroys it on every exit, unwinding included.
struct Decompressor {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    _err: Box<ffi::jpeg_error_mgr>,
}

impl Decompressor {
    /// A decompressor whose errors go to [`error_exit`] and [`emit_message`]. Both structs are
    /// boxed: libjpeg keeps a pointer to the error manager, and the boxes keep their addresses
    /// when `Self` moves. May unwind (libjpeg's fatal error), so call it inside `catch_unwind`.
    fn new() -> Self {
        // SAFETY: `jpeg_error_mgr` is a C struct of integers, raw pointers and optional function
        // pointers, for all of which all-zero bytes are a valid value (null / `None`);
        // `jpeg_std_error` then fills it in.
        let mut err: Box<ffi::jpeg_error_mgr> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `err` is a valid, exclusively borrowed error manager for the call.
        unsafe { ffi::jpeg_std_error(&mut err) };
        err.error_exit = Some(error_exit);
        err.emit_message = Some(emit_message);
        // SAFETY: as above, a C struct for which all-zero bytes are valid (`jpeg_create_decompress`
        // clears it again, keeping only `err` and `client_data`).
        let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        // SAFETY: `cinfo` is a valid, boxed struct whose `err` points to the boxed manager above,
        // which `Self` keeps alive (and in place) for as long as `cinfo`.
        unsafe { ffi::jpeg_create_decompress(&mut *cinfo) };
        Self { cinfo, _err: err }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: `cinfo` was initialised by `jpeg_create_decompress` in `new` and is destroyed
        // only here, once; libjpeg allows destroying a decompressor in any state, including after
        // a fatal error, and `_err` is still alive (fields drop after this).
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) }
    }
}

const APP1: c_int = 0xE1;

/// The output of libjpeg before it becomes an image: size, samples, and the EXIF block if asked.
struct Raw {
    width: u32,
    height: u32,
    components: usize,
    samples: Vec<u8>,
    exif: Option<Vec<u8>>,
}

/// Everything that may call into libjpeg (and so unwind: call it inside `catch_unwind`). Size and
/// component errors found here are returned normally.
fn run(bytes: &[u8], src: Source, opts: &DecodeOptions) -> Result<Raw, ImageError> {
    let mut d = Decompressor::new();
    let cinfo = &mut *d.cinfo;
    // SAFETY: `cinfo` is a created decompressor; libjpeg reads at most `bytes.len()` bytes from
    // `bytes`, which outlives `d` (dropped at the end of this function). A length beyond
    // `c_ulong` (32-bit on Windows) would only be truncated, never read past.
    unsafe { ffi::jpeg_mem_src(cinfo, bytes.as_ptr(), bytes.len() as _) };
    if opts.apply_exif_orientation {
        // SAFETY: `cinfo` is a created decompressor, before `jpeg_read_header` as required.
        unsafe { ffi::jpeg_save_markers(cinfo, APP1, 0xFFFF) };
    }
    // SAFETY: `cinfo` is a created decompressor with a source; errors unwind out of the call.
    unsafe { ffi::jpeg_read_header(cinfo, 1) };
    let (width, height) = (cinfo.image_width, cinfo.image_height);
    src.check_size(u64::from(width), u64::from(height), opts.max_pixels)?;
    // Pillow's JpegImagePlugin: 1 component -> L, 3 -> RGB, 4 -> CMYK; anything else is refused.
    let components = match cinfo.num_components {
        1 => {
            cinfo.out_color_space = ffi::J_COLOR_SPACE::JCS_GRAYSCALE;
            1
        }
        3 => {
            cinfo.out_color_space = ffi::J_COLOR_SPACE::JCS_RGB;
            3
        }
        4 => {
            cinfo.out_color_space = ffi::J_COLOR_SPACE::JCS_CMYK;
            4
        }
        n => return Err(src.unsupported(format!("cannot handle {n}-component images"))),
    };
    // libjpeg's defaults, restated because exactness depends on them.
    cinfo.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
    cinfo.do_fancy_upsampling = 1;
    cinfo.scale_num = 1;
    cinfo.scale_denom = dct_scale_denominator(width, height, opts.jpeg_min_side);

    let mut exif = None;
    let mut marker = cinfo.marker_list;
    while !marker.is_null() && exif.is_none() {
        // SAFETY: a non-null node of libjpeg's saved-marker list, allocated in `cinfo`'s pool,
        // which lives until `jpeg_destroy_decompress` (after this loop).
        let m = unsafe { &*marker };
        if c_int::from(m.marker) == APP1 && !m.data.is_null() {
            // SAFETY: libjpeg saved `data_length` bytes at `data` (non-null, checked), in the same
            // pool; they are copied out before the decompressor is destroyed.
            let data = unsafe { std::slice::from_raw_parts(m.data, m.data_length as usize) };
            if data.starts_with(b"Exif\0\0") {
                exif = Some(data.to_vec());
            }
        }
        marker = m.next;
    }

    // SAFETY: `cinfo` has read its header; errors unwind out of the call.
    unsafe { ffi::jpeg_start_decompress(cinfo) };
    let row_len = cinfo.output_width as usize * components;
    // libjpeg's scaled size: ceil(size / denominator).
    let denom = cinfo.scale_denom;
    let (width, height) = (width.div_ceil(denom), height.div_ceil(denom));
    if cinfo.output_components as usize != components
        || cinfo.output_width != width
        || cinfo.output_height != height
    {
        return Err(src.corrupt("decoder output does not match the header"));
    }
    let mut samples = vec![0u8; row_len * height as usize];
    while cinfo.output_scanline < cinfo.output_height {
        let y = cinfo.output_scanline as usize;
        let mut row = samples[y * row_len..].as_mut_ptr();
        // SAFETY: decompression has started; `row` points to `row_len` writable bytes of
        // `samples` (`y < output_height == height`), and `row_len` is one output row
        // (`output_width * output_components`, checked against the header above).
        if unsafe { ffi::jpeg_read_scanlines(cinfo, &mut row, 1) } != 1 {
            return Err(src.truncated("decoder stopped early"));
        }
    }
    // No jpeg_finish_decompress: it only reads up to EOI, and a file whose image data is complete
    // but whose EOI marker is missing should not fail.
    Ok(Raw {
        width,
        height,
        components,
        samples,
        exif,
    })
}

/// The DCT scaling denominator (8, 4, 2 or 1) for [`DecodeOptions::jpeg_min_side`]: the largest
/// whose output keeps the shorter side at or above `min_side`.
fn dct_scale_denominator(width: u32, height: u32, min_side: Option<u32>) -> u32 {
    let Some(min_side) = min_side else { return 1 };
    let short = width.min(height);
    [8, 4, 2]
        .into_iter()
        .find(|&d| short.div_ceil(d) >= min_side.max(1))
        .unwrap_or(1)
}

pub(crate) fn decode(
    bytes: &[u8],
    src: Source,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    let raw = match catch_unwind(AssertUnwindSafe(|| run(bytes, src, opts))) {
        Ok(result) => result?,
        Err(payload) => match payload.downcast::<Abort>() {
            Ok(abort) => {
                return Err(match *abort {
                    Abort::Truncated => src.truncated("premature end of JPEG data"),
                    Abort::Fatal(msg) => src.corrupt(msg),
                })
            }
            // A genuine panic of ours: let it continue.
            Err(other) => resume_unwind(other),
        },
    };
    let pixels = match raw.components {
        1 => Pixels::L(raw.samples),
        3 => Pixels::Rgb(raw.samples),
        // Pillow reads every 4-component JPEG with raw mode CMYK;I (Adobe's inverted convention).
        _ => Pixels::Cmyk(raw.samples.into_iter().map(|v| 255 - v).collect()),
    };
    let orientation = raw.exif.as_deref().and_then(exif::orientation);
    Ok(Decoded {
        image: image(src, raw.width, raw.height, pixels)?,
        orientation,
    })
}
