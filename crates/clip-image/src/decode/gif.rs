//! GIF: the first frame, as Pillow's `GifImagePlugin` opens it. The canvas is the logical screen
//! (grown to hold the frame if it sticks out), filled with the frame's transparent index (or 0)
//! and the frame's indices pasted at its offset. Mode `P` with the local palette, else the global
//! one; mode `L` when there is no palette or it is the identity gray ramp (Pillow drops those).
//! A `P` frame's transparent index is kept as palette alpha (Pillow's `info["transparency"]`).

use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions as GifOptions, MemoryLimit};

use super::{image, DecodeOptions, Decoded};
use crate::error::{ImageError, Source};
use crate::image::Pixels;

fn map_err(src: Source, e: gif::DecodingError) -> ImageError {
    match e {
        gif::DecodingError::UnexpectedEof => {
            src.truncated("data ends before the image is complete")
        }
        gif::DecodingError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            src.truncated("data ends before the image is complete")
        }
        other => src.corrupt(other),
    }
}

/// `GifImageFile._is_palette_needed`: false when entry `i` is `(i, i, i)` for every entry.
fn palette_needed(p: &[u8]) -> bool {
    p.chunks(3)
        .enumerate()
        .any(|(i, c)| c.len() < 3 || c.iter().any(|&v| usize::from(v) != i))
}

pub(crate) fn decode(
    bytes: &[u8],
    src: Source,
    opts: &DecodeOptions,
) -> Result<Decoded, ImageError> {
    let mut options = GifOptions::new();
    options.set_color_output(ColorOutput::Indexed);
    // Our own size check below comes first; the crate's limit only has to admit what we allow.
    let limit = NonZeroU64::new(opts.max_pixels.max(1)).unwrap_or(NonZeroU64::MIN);
    options.set_memory_limit(MemoryLimit::Bytes(limit));
    let mut decoder = options.read_info(bytes).map_err(|e| map_err(src, e))?;
    let (screen_w, screen_h) = (u32::from(decoder.width()), u32::from(decoder.height()));
    src.check_size(u64::from(screen_w), u64::from(screen_h), opts.max_pixels)?;
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let frame = decoder
        .next_frame_info()
        .map_err(|e| map_err(src, e))?
        .ok_or_else(|| src.corrupt("no image in GIF file"))?;
    let (left, top) = (u32::from(frame.left), u32::from(frame.top));
    let (fw, fh) = (u32::from(frame.width), u32::from(frame.height));
    let (w, h) = (screen_w.max(left + fw), screen_h.max(top + fh));
    src.check_size(u64::from(w), u64::from(h), opts.max_pixels)?;
    let transparent = frame.transparent;
    let fill = transparent.unwrap_or(0);
    let palette = match &frame.palette {
        Some(local) => palette_needed(local).then(|| local.clone()),
        None => global.filter(|g| palette_needed(g)),
    };
    let mut indices = vec![0u8; fw as usize * fh as usize];
    decoder
        .read_into_buffer(&mut indices)
        .map_err(|e| map_err(src, e))?;

    let (uw, ul, ut, ufw) = (w as usize, left as usize, top as usize, fw as usize);
    let mut canvas = vec![fill; uw * h as usize];
    if ufw > 0 {
        for (y, row) in indices.chunks_exact(ufw).enumerate() {
            let off = (ut + y) * uw + ul;
            canvas[off..off + ufw].copy_from_slice(row);
        }
    }
    let palette_alpha = match (&palette, transparent) {
        // Pillow keeps the transparent index as `info["transparency"]`: that entry alone is
        // transparent when the image goes to RGBA.
        (Some(_), Some(t)) => {
            let mut alpha = vec![255u8; usize::from(t) + 1];
            alpha[usize::from(t)] = 0;
            Some(alpha)
        }
        _ => None,
    };
    let pixels = match palette {
        Some(p) => Pixels::Palette {
            indices: canvas,
            palette: p
                .chunks_exact(3)
                .take(256)
                .map(|c| [c[0], c[1], c[2]])
                .collect(),
        },
        None => Pixels::L(canvas),
    };
    let image = image(src, w, h, pixels)?;
    Ok(Decoded::plain(match palette_alpha {
        Some(alpha) => image.with_palette_alpha(alpha),
        None => image,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_gray_palettes_are_not_needed() {
        assert!(!palette_needed(&[0, 0, 0, 1, 1, 1, 2, 2, 2]));
        assert!(palette_needed(&[0, 0, 0, 1, 1, 2]));
        assert!(palette_needed(&[0, 0, 0, 255, 255, 255]));
    }
}
