//! `clip moderate`: images (or folders of them) judged against a moderation policy, with an exit
//! code a script can branch on.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clip_tasks::discover::find_images;
use clip_tasks::moderation::{Moderator, Policy, DEFAULT_POLICY_TOML};
use serde_json::json;

use super::inputs::{embed_images, embed_prompts, path_text, CacheArgs, NON_UTF8_NAME};
use super::{ImageArgs, ModelArgs};
use crate::output::print_json;
use crate::EXIT_ERROR;

/// Exit status when at least one image is flagged (and none failed).
const EXIT_FLAGGED: i32 = 1;

/// `clip moderate` arguments.
#[derive(Args)]
pub struct ModerateArgs {
    /// Images, or folders searched recursively for images.
    #[arg(required_unless_present = "print_policy")]
    inputs: Vec<PathBuf>,
    /// Policy TOML (categories with prompts and thresholds); default: the built-in policy.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Print the built-in policy's TOML (a starting point for --policy) and exit.
    #[arg(long)]
    print_policy: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// `--model`, `--registry`, `--precision`.
    #[command(flatten)]
    model: ModelArgs,
    /// `--no-cache`.
    #[command(flatten)]
    cache: CacheArgs,
    /// `--exif-orientation`, `--fast-jpeg`.
    #[command(flatten)]
    image_args: ImageArgs,
}

/// How many categories the table shows per image.
const TABLE_CATEGORIES: usize = 3;

/// Prints one verdict per readable image; exits 2 when any image could not be checked, else 1
/// when any is flagged, else 0.
pub fn run(args: ModerateArgs) -> anyhow::Result<i32> {
    if args.print_policy {
        std::io::stdout().write_all(DEFAULT_POLICY_TOML.as_bytes())?;
        return Ok(0);
    }
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => Policy::builtin(),
    };
    let mut paths = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let found = find_images(std::slice::from_ref(input))
                .with_context(|| format!("{}: cannot list folder", input.display()))?;
            for (path, reason) in &found.problems {
                eprintln!("clip: warning: {}: {reason}", path.display());
            }
            anyhow::ensure!(
                !found.files.is_empty(),
                "{}: no image files in this folder",
                input.display()
            );
            paths.extend(found.files.into_iter().map(|f| f.path));
        } else {
            paths.push(input.clone());
        }
    }
    // JSON cannot carry a name that is not UTF-8: such a file is a failure of its own.
    let mut unnamed = Vec::new();
    if args.json {
        paths.retain(|p| {
            let ok = p.to_str().is_some();
            if !ok {
                unnamed.push(p.clone());
            }
            ok
        });
    }
    let clip = args.model.load()?;
    let cache = args.cache.cache(&clip)?;
    let moderator = Moderator::build(policy, clip.scoring(), cache.as_ref(), embed_prompts(&clip))?;
    let embedded = embed_images(&clip, &paths, &args.image_args)?;
    let verdicts = moderator.moderate(&embedded.embeddings);

    if args.json {
        let results: Vec<_> = embedded
            .ok
            .iter()
            .zip(&verdicts)
            .map(|(&i, v)| {
                let categories: Vec<_> = v
                    .categories
                    .iter()
                    .map(|c| json!({"name": c.name, "score": c.score, "threshold": c.threshold}))
                    .collect();
                json!({"path": path_text(&paths[i]), "flagged": v.flagged, "categories": categories})
            })
            .collect();
        print_json(&json!({"policy": moderator.policy().id(), "results": results}))?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "policy {}", moderator.policy().id())?;
        for (&i, v) in embedded.ok.iter().zip(&verdicts) {
            let top: Vec<String> = v
                .categories
                .iter()
                .take(TABLE_CATEGORIES)
                .map(|c| match c.threshold {
                    Some(t) => format!("{} {:.3} (>= {t})", c.name, c.score),
                    None => format!("{} {:.3}", c.name, c.score),
                })
                .collect();
            writeln!(
                out,
                "{:<8} {}  {}",
                if v.flagged { "FLAGGED" } else { "clean" },
                paths[i].display(),
                top.join(", ")
            )?;
        }
    }
    for (_, err) in &embedded.failed {
        eprintln!("clip: error: {err}");
    }
    for path in &unnamed {
        eprintln!("clip: error: {}: {NON_UTF8_NAME}", path.display());
    }
    // An image that could not be checked is not a clean one: errors win over verdicts.
    Ok(if !embedded.failed.is_empty() || !unnamed.is_empty() {
        EXIT_ERROR
    } else if verdicts.iter().any(|v| v.flagged) {
        EXIT_FLAGGED
    } else {
        0
    })
}
