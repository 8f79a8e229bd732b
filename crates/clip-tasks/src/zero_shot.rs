//! Zero-shot classification as in the CLIP paper: labels become prompts (verbatim, or through
//! templates whose embeddings are averaged into one "class embedding"), and images are scored
//! against the class embeddings under the model's scoring (a softmax over all labels for CLIP, a
//! sigmoid per label for SigLIP) or, in multi-label mode, by thresholding each label's cosine on
//! its own.

use clip::{normalize, Embeddings, Scoring};

use crate::cache::EmbeddingCache;
use crate::similarity::{cosine_matrix, logits, probabilities};

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

/// A built-in template set by name (`imagenet`, `simple`); an unknown name is an error that lists
/// the known ones.
pub fn builtin_templates(name: &str) -> Result<&'static [&'static str], PromptError> {
    match name {
        "imagenet" => Ok(IMAGENET_TEMPLATES),
        "simple" => Ok(SIMPLE_TEMPLATES),
        _ => Err(PromptError::UnknownTemplateSet {
            name: name.to_string(),
            known: BUILTIN_TEMPLATE_SETS.join(", "),
        }),
    }
}

/// Bad zero-shot inputs: each names what was wrong so the CLI and the server can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No labels at all.
    #[error("empty label list: give at least one label")]
    EmptyLabels,
    /// A template without the `{}` the label goes into.
    #[error("template {0:?} has no {{}} placeholder for the label")]
    NoPlaceholder(String),
    /// A template set name that is not built in.
    #[error("unknown template set {name:?} (built-in sets: {known})")]
    UnknownTemplateSet {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
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

    /// The labels, in order.
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

/// One L2-normalised embedding per group of prompts, from the embeddings of every prompt of every
/// group in order (raw or normalised): the prompts' normalised embeddings averaged, then
/// renormalised (`zeroshot_classifier` of OpenAI's ImageNet notebook). A group of one prompt
/// gives that prompt's normalised embedding.
///
/// # Panics
/// If `prompt_embeddings` does not hold one row per prompt (a caller's bug, never user input).
pub fn ensemble(groups: &[Vec<String>], prompt_embeddings: &Embeddings) -> Embeddings {
    let total: usize = groups.iter().map(Vec::len).sum();
    assert_eq!(
        prompt_embeddings.len(),
        total,
        "one embedding per prompt expected"
    );
    let all = prompt_embeddings.normalized();
    let dim = all.dim();
    let mut out = Vec::with_capacity(groups.len() * dim);
    let mut rows = all.rows();
    for group in groups {
        let mut mean = vec![0f32; dim];
        for row in rows.by_ref().take(group.len()) {
            mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
        }
        mean.iter_mut()
            .for_each(|m| *m /= group.len().max(1) as f32);
        normalize(&mut mean);
        out.extend(mean);
    }
    Embeddings::new(dim, out)
}

/// The class embeddings of `groups` ([`ensemble`]), read from `cache` when it holds them; else
/// `embed` is asked for every prompt of every group (in order) and the result is stored. `embed`
/// decides how over-long prompts are handled (the CLI and the server truncate them, as
/// classification should not fail on a wordy label).
pub fn class_embeddings<E>(
    groups: &[Vec<String>],
    cache: Option<&EmbeddingCache>,
    embed: impl FnOnce(&[String]) -> Result<Embeddings, E>,
) -> Result<Embeddings, E> {
    if let Some(hit) = cache.and_then(|c| c.get(groups)) {
        return Ok(hit);
    }
    let prompts: Vec<String> = groups.iter().flatten().cloned().collect();
    let classes = ensemble(groups, &embed(&prompts)?);
    if let Some(cache) = cache {
        cache.put(groups, &classes);
    }
    Ok(classes)
}

/// A zero-shot classifier: labels with their (ensembled) class embeddings and the model's scoring.
#[derive(Debug, Clone)]
pub struct Classifier {
    labels: Vec<String>,
    classes: Embeddings,
    scoring: Scoring,
}

impl Classifier {
    /// A classifier over `prompts`' labels whose class embeddings come from [`class_embeddings`].
    pub fn build<E>(
        prompts: &Prompts,
        scoring: Scoring,
        cache: Option<&EmbeddingCache>,
        embed: impl FnOnce(&[String]) -> Result<Embeddings, E>,
    ) -> Result<Self, E> {
        let classes = class_embeddings(&prompts.groups(), cache, embed)?;
        Ok(Self::new(prompts.labels().to_vec(), classes, scoring))
    }

    /// A classifier from ready class embeddings (one row per label).
    ///
    /// # Panics
    /// If the numbers of labels and class embeddings differ.
    pub fn new(labels: Vec<String>, classes: Embeddings, scoring: Scoring) -> Self {
        assert_eq!(labels.len(), classes.len(), "one class embedding per label");
        Self {
            labels,
            classes,
            scoring,
        }
    }

    /// The labels, in order.
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

    /// `[image][label]` probabilities under the model's scoring: for CLIP a softmax over the
    /// labels of `scale * cosine` (one row per image, summing to 1: exactly one label is assumed
    /// true); for SigLIP each label's own sigmoid of `scale * cosine + bias`.
    pub fn probabilities(&self, images: &Embeddings) -> Vec<Vec<f32>> {
        probabilities(&logits(&self.cosines(images), &self.scoring), &self.scoring)
    }
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
    fn unknown_template_sets_list_the_known_ones() {
        assert_eq!(builtin_templates("simple").unwrap(), SIMPLE_TEMPLATES);
        let err = builtin_templates("cifar").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown template set \"cifar\" (built-in sets: imagenet, simple)"
        );
    }

    #[test]
    fn ensembles_average_normalised_prompts_then_renormalise() {
        let groups = vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string()],
        ];
        let prompts = Embeddings::new(2, vec![2.0, 0.0, 0.0, 5.0, 0.0, -3.0]);
        let classes = ensemble(&groups, &prompts);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert_eq!(classes.row(0), &[h, h]);
        assert_eq!(classes.row(1), &[0.0, -1.0]);
    }

    #[test]
    fn class_embeddings_ask_for_every_prompt_once_in_order() {
        let groups = vec![
            vec!["x".to_string(), "y".to_string()],
            vec!["z".to_string()],
        ];
        let mut asked = Vec::new();
        let classes = class_embeddings::<()>(&groups, None, |texts| {
            asked.extend_from_slice(texts);
            Ok(Embeddings::new(1, vec![1.0, 1.0, -1.0]))
        })
        .unwrap();
        assert_eq!(asked, ["x", "y", "z"]);
        assert_eq!(classes.as_slice(), &[1.0, -1.0]);
    }
}
