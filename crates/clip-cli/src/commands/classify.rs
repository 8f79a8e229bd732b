//! `clip classify`: zero-shot classification of images against labels, through the task layer's
//! [`Classifier`] and its class-embedding cache.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use clip_tasks::similarity::ranked;
use clip_tasks::zero_shot::{builtin_templates, label_applies, Classifier, Prompts};
use serde_json::json;

use super::inputs::{
    check_json_names, embed_all_images, embed_prompts, path_text, read_lines, CacheArgs,
};
use super::{ImageArgs, ModelArgs};
use crate::output::print_json;

/// `clip classify` arguments.
#[derive(Args)]
pub struct ClassifyArgs {
    /// Images to classify (embedded in batches).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Comma-separated labels. Used verbatim as prompts (as in the reference's examples) unless a
    /// template is given.
    #[arg(long, short = 'l', required_unless_present = "labels_file")]
    labels: Option<String>,
    /// File with one label per line (added after --labels).
    #[arg(long)]
    labels_file: Option<PathBuf>,
    /// Prompt template with {} for the label, e.g. "a photo of a {}."; repeat to ensemble.
    #[arg(long = "template")]
    template: Vec<String>,
    /// Built-in template set: "imagenet" (the CLIP paper's 80) or "simple" ("a photo of a {}.").
    #[arg(long = "templates")]
    templates: Vec<String>,
    /// File with one template per line.
    #[arg(long)]
    templates_file: Option<PathBuf>,
    /// Show only the N best labels per image.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    top_k: Option<u32>,
    /// Judge each label on its own: it applies when its cosine similarity is >= --threshold
    /// (no softmax, so an image can match no label or several).
    #[arg(long, requires = "threshold")]
    multi_label: bool,
    /// Cosine threshold for --multi-label (CLIP cosines are small: about 0.2-0.35 for matches).
    #[arg(long, requires = "multi_label", allow_negative_numbers = true, value_parser = super::finite_f32)]
    threshold: Option<f32>,
    /// `--model`, `--registry`, `--precision`.
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// `--no-cache`.
    #[command(flatten)]
    cache: CacheArgs,
    /// `--exif-orientation`, `--fast-jpeg`.
    #[command(flatten)]
    image_args: ImageArgs,
}

impl ClassifyArgs {
    /// The labels (`--labels`, then `--labels-file`) and templates (built-in sets, then
    /// `--templates-file`, then `--template`s), checked before the model is loaded so a typo
    /// costs no load time.
    fn prompts(&self) -> anyhow::Result<Prompts> {
        let mut labels: Vec<String> = self
            .labels
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if let Some(file) = &self.labels_file {
            labels.extend(
                read_lines(file, "labels")?
                    .iter()
                    .map(|l| l.trim().to_string()),
            );
        }
        if labels.is_empty() {
            bail!("empty label list: give --labels \"a dog,a cat\" or a non-empty --labels-file");
        }
        let mut templates = Vec::new();
        for name in &self.templates {
            templates.extend(builtin_templates(name)?.iter().map(|t| t.to_string()));
        }
        if let Some(file) = &self.templates_file {
            templates.extend(read_lines(file, "templates")?);
        }
        templates.extend(self.template.iter().cloned());
        Ok(Prompts::new(labels, templates)?)
    }
}

/// Prints each image's labels, best first: probabilities under the model's scoring, or with
/// `--multi-label` cosines and whether each clears `--threshold`.
pub fn run(args: ClassifyArgs) -> anyhow::Result<i32> {
    let prompts = args.prompts()?;
    if args.json {
        check_json_names(&args.images)?;
    }
    let clip = args.model.load()?;
    let cache = args.cache.cache(&clip)?;
    let classifier = Classifier::build(
        &prompts,
        clip.scoring(),
        cache.as_ref(),
        embed_prompts(&clip),
    )?;
    let image_emb = embed_all_images(&clip, &args.images, &args.image_args)?;
    let top_k = args.top_k.map(|k| k as usize);
    let labels = classifier.labels();

    let (key, scores) = if args.multi_label {
        ("cosine", classifier.cosines(&image_emb))
    } else {
        ("prob", classifier.probabilities(&image_emb))
    };
    let applies = |score: f32| args.threshold.map(|t| label_applies(score, t));
    if args.json {
        let results: Vec<_> = args
            .images
            .iter()
            .zip(&scores)
            .map(|(path, row)| {
                let scores: Vec<_> = ranked(row, top_k)
                    .into_iter()
                    .map(|j| {
                        let mut s = json!({"label": labels[j], key: row[j]});
                        if let Some(m) = applies(row[j]) {
                            s["match"] = json!(m);
                        }
                        s
                    })
                    .collect();
                json!({"path": path_text(path), "scores": scores})
            })
            .collect();
        let mut out = json!({ "results": results });
        if let Some(t) = args.threshold {
            out["threshold"] = json!(t);
        }
        print_json(&out)?;
    } else {
        let mut out = std::io::stdout().lock();
        for (path, row) in args.images.iter().zip(&scores) {
            writeln!(out, "{}", path.display())?;
            for j in ranked(row, top_k) {
                match applies(row[j]) {
                    Some(m) => writeln!(
                        out,
                        "  {:>8.4}  {}  {}",
                        row[j],
                        if m { "match" } else { "  -  " },
                        labels[j]
                    )?,
                    None => writeln!(out, "  {:>7.2}%  {}", row[j] * 100.0, labels[j])?,
                }
            }
        }
    }
    Ok(0)
}
