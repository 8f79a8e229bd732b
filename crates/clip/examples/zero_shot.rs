//! Zero-shot classification with the library API.
//!
//! `cargo run --release -p clip --example zero_shot -- [MODEL] [IMAGE] [LABEL]...`
//! Defaults to the committed fixture model (random weights: the numbers test exactness, not
//! accuracy) and a committed photo.

use clip::{tokenizer::Overflow, Clip};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "fixtures/models/tiny-vit.safetensors".into());
    let image = args
        .next()
        .unwrap_or_else(|| "fixtures/images/good/chelsea_small.bmp".into());
    let mut labels: Vec<String> = args.collect();
    if labels.is_empty() {
        labels = vec![
            "a photo of a cat".into(),
            "a photo of a dog".into(),
            "a photo of a rocket".into(),
        ];
    }

    let clip = Clip::load(&model)?;
    let decoded = clip::image::decode_file(image.as_ref(), &Default::default())?;
    let image_embeddings = clip.encode_images(&[decoded])?;
    let label_embeddings = clip.encode_texts(&labels, Overflow::Truncate)?;
    let probs = clip.zero_shot(&image_embeddings, &label_embeddings);
    println!("{image} with {model}:");
    for (label, p) in labels.iter().zip(&probs[0]) {
        println!("  {:>7.2}%  {label}", p * 100.0);
    }
    Ok(())
}
