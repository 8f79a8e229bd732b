//! Zero-shot classification with the library API: the engine embeds, the task layer classifies.
//!
//! `cargo run --release -p clip-tasks --example zero_shot -- [MODEL] [IMAGE] [LABEL]...`
//! Defaults to the committed fixture model (random weights: the numbers test exactness, not
//! accuracy) and a committed photo.

use clip::{tokenizer::Overflow, Clip};
use clip_tasks::zero_shot::{Classifier, Prompts};

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
    let prompts = Prompts::new(labels, Vec::new())?;
    let classifier = Classifier::build(&prompts, clip.scoring(), None, |texts| {
        clip.encode_texts(texts, Overflow::Truncate)
    })?;
    let decoded = clip::image::decode_file(image.as_ref(), &Default::default())?;
    let probs = classifier.probabilities(&clip.encode_images(&[decoded])?);
    println!("{image} with {model}:");
    for (label, p) in classifier.labels().iter().zip(&probs[0]) {
        println!("  {:>7.2}%  {label}", p * 100.0);
    }
    Ok(())
}
