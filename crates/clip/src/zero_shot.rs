//! Zero-shot classification as in the CLIP paper: labels become prompts (verbatim, or through
//! templates whose embeddings are averaged into one "class embedding"), and images are scored
//! against the class embeddings, either as a softmax over all labels or, in multi-label mode, by
//! thresholding each label's cosine on its own.

use crate::embedding_cache::EmbeddingCache;
use crate::similarity::{cosine_matrix, normalize, softmax, Embeddings};
use crate::tokenizer::Overflow;
use crate::{Clip, ClipError};

/// The single template of the CLIP README's zero-shot examples.
pub const SIMPLE_TEMPLATES: &[&str] = &["a photo of a {}."];

/// The 80 ImageNet prompt templates of the CLIP paper, in the order of OpenAI's notebook
/// "Prompt_Engineering_for_ImageNet.ipynb" (order matters only for floating-point summation).
pub const IMAGENET_TEMPLATES: &[&str] = &[
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
];

/// Names accepted by [`builtin_templates`].
pub const BUILTIN_TEMPLATE_SETS: &[&str] = &["imagenet", "simple"];

/// A built-in template set by name (`imagenet`, `simple`).
pub fn builtin_templates(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "imagenet" => Some(IMAGENET_TEMPLATES),
        "simple" => Some(SIMPLE_TEMPLATES),
        _ => None,
    }
}

/// Bad zero-shot inputs: each names what was wrong so the CLI can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("empty label list: give at least one label")]
    EmptyLabels,
    #[error("template {0:?} has no {{}} placeholder for the label")]
    NoPlaceholder(String),
    #[error("unknown template set {name:?} (built-in sets: {known})")]
    UnknownTemplateSet { name: String, known: String },
}

/// Labels and the templates that turn each label into prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompts {
    labels: Vec<String>,
    templates: Vec<String>,
}

impl Prompts {
    /// With no templates every label is its own single prompt, verbatim, so the scores equal the
    /// reference's `logits_per_image` for those strings. Every template must contain `{}`.
    pub fn new(labels: Vec<String>, templates: Vec<String>) -> Result<Self, PromptError> {
        if labels.is_empty() {
            return Err(PromptError::EmptyLabels);
        }
        if let Some(t) = templates.iter().find(|t| !t.contains("{}")) {
            return Err(PromptError::NoPlaceholder(t.clone()));
        }
        Ok(Self { labels, templates })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// For each label, the texts to embed: the label itself, or every template applied to it
    /// (Python's `template.format(label)`, i.e. each `{}` replaced).
    pub fn groups(&self) -> Vec<Vec<String>> {
        self.labels
            .iter()
            .map(|label| {
                if self.templates.is_empty() {
                    vec![label.clone()]
                } else {
                    self.templates
                        .iter()
                        .map(|t| t.replace("{}", label))
                        .collect()
                }
            })
            .collect()
    }
}

/// One L2-normalised embedding per group of prompts: the prompts' normalised embeddings averaged,
/// then renormalised (`zeroshot_classifier` of OpenAI's ImageNet notebook). A group of one prompt
/// gives that prompt's normalised embedding. Long prompts are truncated, as classification should
/// not fail on a wordy label.
pub fn ensemble_embeddings(clip: &Clip, groups: &[Vec<String>]) -> Result<Embeddings, ClipError> {
    let flat: Vec<&str> = groups.iter().flatten().map(String::as_str).collect();
    let all = clip.encode_texts(&flat, Overflow::Truncate)?.normalized();
    let dim = all.dim();
    let mut out = Vec::with_capacity(groups.len() * dim);
    let mut row = 0;
    for group in groups {
        let mut mean = vec![0f32; dim];
        for _ in group {
            mean.iter_mut().zip(all.row(row)).for_each(|(m, x)| *m += x);
            row += 1;
        }
        mean.iter_mut()
            .for_each(|m| *m /= group.len().max(1) as f32);
        normalize(&mut mean);
        out.extend(mean);
    }
    Ok(Embeddings::new(dim, out))
}

/// [`ensemble_embeddings`] through an on-disk cache keyed by the model and the exact prompts.
pub fn cached_ensemble_embeddings(
    clip: &Clip,
    groups: &[Vec<String>],
    cache: Option<&EmbeddingCache>,
) -> Result<Embeddings, ClipError> {
    match cache {
        Some(cache) => cache.get_or_compute(clip, groups, || ensemble_embeddings(clip, groups)),
        None => ensemble_embeddings(clip, groups),
    }
}

/// A zero-shot classifier: labels with their (ensembled) class embeddings.
pub struct Classifier {
    labels: Vec<String>,
    classes: Embeddings,
    logit_scale: f32,
}

impl Classifier {
    pub fn new(
        clip: &Clip,
        prompts: &Prompts,
        cache: Option<&EmbeddingCache>,
    ) -> Result<Self, ClipError> {
        Ok(Self {
            labels: prompts.labels().to_vec(),
            classes: cached_ensemble_embeddings(clip, &prompts.groups(), cache)?,
            logit_scale: clip.logit_scale(),
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The normalised class embeddings, one row per label.
    pub fn class_embeddings(&self) -> &Embeddings {
        &self.classes
    }

    /// `[image][label]` cosine similarities.
    pub fn cosines(&self, images: &Embeddings) -> Vec<Vec<f32>> {
        cosine_matrix(images, &self.classes)
    }

    /// `[image][label]` probabilities: softmax over the labels of `logit_scale * cosine`, one row
    /// per image summing to 1 (the labels compete: exactly one is assumed true).
    pub fn probabilities(&self, images: &Embeddings) -> Vec<Vec<f32>> {
        self.cosines(images)
            .iter()
            .map(|row| softmax(&row.iter().map(|c| c * self.logit_scale).collect::<Vec<_>>()))
            .collect()
    }
}

/// Indices of `scores` sorted best first, cut to `top_k` when given.
pub fn ranked(scores: &[f32], top_k: Option<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(top_k.unwrap_or(order.len()));
    order
}

/// Multi-label decision: label `j` applies to an image when its cosine is at least `threshold`.
/// Each label is judged on its own (no softmax, no sigmoid), so an image can match none, one or
/// several labels. Cosines of CLIP models cluster in a narrow band (roughly 0.15-0.35 for ViT-B/32
/// photos and captions), so the threshold must be chosen per model and label set.
pub fn label_applies(cosine: f32, threshold: f32) -> bool {
    cosine >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_set_has_80_distinct_templates_with_placeholders() {
        assert_eq!(IMAGENET_TEMPLATES.len(), 80);
        let unique: std::collections::HashSet<_> = IMAGENET_TEMPLATES.iter().collect();
        assert_eq!(unique.len(), 80);
        assert!(IMAGENET_TEMPLATES
            .iter()
            .all(|t| t.matches("{}").count() == 1));
    }

    #[test]
    fn prompts_apply_templates_or_keep_labels_verbatim() {
        let p = Prompts::new(vec!["cat".into(), "dog".into()], vec![]).unwrap();
        assert_eq!(
            p.groups(),
            vec![vec!["cat".to_string()], vec!["dog".to_string()]]
        );
        let p = Prompts::new(vec!["cat".into()], vec!["a {}.".into(), "the {}!".into()]).unwrap();
        assert_eq!(
            p.groups(),
            vec![vec!["a cat.".to_string(), "the cat!".to_string()]]
        );
    }

    #[test]
    fn prompts_reject_empty_labels_and_templates_without_placeholder() {
        assert!(matches!(
            Prompts::new(vec![], vec![]),
            Err(PromptError::EmptyLabels)
        ));
        let err = Prompts::new(vec!["cat".into()], vec!["a photo".into()]).unwrap_err();
        assert!(err.to_string().contains("\"a photo\""), "{err}");
    }

    #[test]
    fn ranked_sorts_best_first_and_cuts() {
        assert_eq!(ranked(&[0.1, 0.7, 0.2], None), vec![1, 2, 0]);
        assert_eq!(ranked(&[0.1, 0.7, 0.2], Some(1)), vec![1]);
    }
}
