//! Square PNG thumbnails of indexed images for the result grid: the reference resize + centre
//! crop (so the thumbnail shows exactly what the model saw), encoded as PNG.

use clip::image::{decode_bytes, resize_crop_rgb, DecodeOptions};

/// Edge of a thumbnail in pixels.
pub const THUMBNAIL_SIZE: u32 = 256;

/// The PNG bytes of the thumbnail of an encoded image (`name` names it in errors).
pub fn thumbnail_png(bytes: &[u8], name: &str, opts: &DecodeOptions) -> Result<Vec<u8>, String> {
    let image = decode_bytes(bytes, name, opts).map_err(|e| e.to_string())?;
    let planar = resize_crop_rgb(&image, THUMBNAIL_SIZE);
    let plane = (THUMBNAIL_SIZE * THUMBNAIL_SIZE) as usize;
    let mut rgb = Vec::with_capacity(planar.len());
    for i in 0..plane {
        rgb.extend([planar[i], planar[plane + i], planar[2 * plane + i]]);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, THUMBNAIL_SIZE, THUMBNAIL_SIZE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
