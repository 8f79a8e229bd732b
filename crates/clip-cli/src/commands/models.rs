//! `clip models`, and turning `--model` into a path: the CLI edge of the `clip-hub` crate.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clip_hub::{FileCheck, Hub, ModelEntry, Origin, SourceKind, DEFAULT_MODEL};
use serde_json::json;

use super::inputs::path_text;
use super::ModelArgs;
use crate::output::print_json;

/// `clip models` arguments.
#[derive(Args)]
pub struct ModelsArgs {
    /// Extra model names: a TOML or JSON file of entries {name, url, sha256, format}.
    #[arg(long, env = "CLIP_REGISTRY")]
    registry: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Check every cached file again (its published SHA-256, else its structure); a damaged one
    /// is moved aside (`<name>.bad`) so the next use downloads it again. Exit 1 if any was.
    #[arg(long)]
    verify: bool,
}

/// Prints every known model (built-in and `--registry`): family, format, size, licence, its
/// sources in the order they are tried, and whether it is cached.
pub fn run(args: ModelsArgs) -> anyhow::Result<i32> {
    let hub = Hub::from_env(args.registry.as_deref())?;
    if args.verify {
        return verify(&hub, args.json);
    }
    let entries = hub.registry().entries();
    if args.json {
        let models: Vec<_> = entries.iter().map(|e| entry_json(&hub, e)).collect();
        print_json(
            &json!({"cache_dir": path_text(hub.cache_dir()), "default": DEFAULT_MODEL, "models": models}),
        )?;
        return Ok(0);
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(4);
    println!(
        "{:width$}  {:<6}  {:<11}  {:>4}  {:>4}  {:>8}  {:<10}  {:<10}  {:<18}  CACHED",
        "NAME", "FAMILY", "FORMAT", "RES", "DIM", "SIZE", "ACTIVATION", "LICENSE", "SOURCES"
    );
    for e in entries {
        let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
        let sources: Vec<&str> = e.sources.iter().map(|s| s.kind.as_str()).collect();
        println!(
            "{:width$}  {:<6}  {:<11}  {:>4}  {:>4}  {:>8}  {:<10}  {:<10}  {:<18}  {}",
            e.name,
            e.family.as_str(),
            e.format().as_str(),
            opt(e.resolution),
            opt(e.embed_dim),
            e.size_bytes().map_or("-".to_string(), human_size),
            e.activation.map_or("-", |a| a.as_str()),
            e.license.as_deref().unwrap_or("-"),
            sources.join(", "),
            if hub.is_cached(e) { "yes" } else { "no" },
        );
    }
    println!(
        "\ncache: {}  (default model: {DEFAULT_MODEL}; sizes are approximate)",
        hub.cache_dir().display()
    );
    Ok(0)
}

/// `--verify`: every cached model's files checked again; damaged ones moved aside.
fn verify(hub: &Hub, json: bool) -> anyhow::Result<i32> {
    let mut damaged = 0;
    let mut report = Vec::new();
    for e in hub.registry().entries().iter().filter(|e| {
        let dir = hub.model_path(e);
        dir.exists()
    }) {
        let files: Vec<_> = hub
            .verify(e)?
            .into_iter()
            .map(|(name, check)| {
                let (status, detail) = match check {
                    FileCheck::Missing => ("missing", None),
                    FileCheck::HashMatches => ("sha256 ok", None),
                    FileCheck::StructureSound => ("structure ok", None),
                    FileCheck::Unchecked => ("unchecked", None),
                    FileCheck::MovedAside { reason, aside } => {
                        damaged += 1;
                        (
                            "damaged",
                            Some(format!("{reason}; moved to {}", path_text(&aside))),
                        )
                    }
                };
                (name, status, detail)
            })
            .collect();
        report.push((e.name.clone(), files));
    }
    if json {
        let models: Vec<_> = report
            .iter()
            .map(|(name, files)| {
                let files: Vec<_> = files
                    .iter()
                    .map(|(f, status, detail)| json!({"name": f, "status": status, "detail": detail}))
                    .collect();
                json!({"name": name, "files": files})
            })
            .collect();
        print_json(&json!({"cache_dir": path_text(hub.cache_dir()), "models": models}))?;
    } else {
        for (name, files) in &report {
            for (f, status, detail) in files {
                match detail {
                    Some(d) => println!("{name}  {f}  {status}: {d}"),
                    None => println!("{name}  {f}  {status}"),
                }
            }
        }
        if report.is_empty() {
            println!("no cached models in {}", hub.cache_dir().display());
        }
    }
    Ok(if damaged > 0 { 1 } else { 0 })
}

/// One model as `clip models --json` prints it. `format`, `size_bytes` and `files` are those of
/// its first source; `sources` lists every source in the order they are tried.
fn entry_json(hub: &Hub, e: &ModelEntry) -> serde_json::Value {
    let files = |files: &[clip_hub::RemoteFile]| -> Vec<serde_json::Value> {
        files
            .iter()
            .map(|f| json!({"name": f.name, "url": f.url, "sha256": f.sha256}))
            .collect()
    };
    let sources: Vec<_> = e
        .sources
        .iter()
        .map(|s| {
            json!({
                "kind": s.kind.as_str(),
                "repo": match &s.kind {
                    SourceKind::HuggingFace(repo) => Some(repo.as_str()),
                    _ => None,
                },
                "label": s.label(),
                "format": s.format.as_str(),
                "size_bytes": s.size_bytes,
                "checksum": if s.files.iter().all(|f| f.sha256.is_some()) {
                    "published sha256"
                } else if s.honours_declared_hash() {
                    "sha256 declared by the server, and structure"
                } else {
                    "structure"
                },
                "cached": hub.is_source_cached(s),
                "path": path_text(&hub.source_path(s)),
                "files": files(&s.files),
            })
        })
        .collect();
    json!({
        "name": e.name,
        "aliases": e.aliases,
        "family": e.family.as_str(),
        "format": e.format().as_str(),
        "resolution": e.resolution,
        "embed_dim": e.embed_dim,
        "size_bytes": e.size_bytes(),
        "activation": e.activation.map(|a| a.as_str()),
        "license": e.license,
        "cached": hub.is_cached(e),
        "path": path_text(&hub.model_path(e)),
        "source": match &e.origin {
            Origin::Builtin => json!("builtin"),
            Origin::User(path) => json!(path_text(path)),
        },
        "files": files(e.files()),
        "sources": sources,
    })
}

/// `338 MB`, `1.26 GB`: decimal units, as download sizes are usually quoted.
fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.2} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{} MB", b / 1_000_000),
        b => format!("{b} B"),
    }
}

/// See [`ModelArgs::resolve`]. The registry (and `--registry` file) is only read when the model is
/// not an existing path, so a path keeps working whatever the environment says.
pub fn resolve(args: &ModelArgs) -> anyhow::Result<PathBuf> {
    let given = args.path()?;
    if given.exists() {
        return Ok(given.to_path_buf());
    }
    let name = given
        .to_str()
        .with_context(|| format!("model {}: no such file or folder", given.display()))?;
    let resolved = Hub::from_env(args.registry.as_deref()).and_then(|hub| hub.resolve(name));
    match args.model {
        Some(_) => Ok(resolved?),
        None => resolved
            .with_context(|| format!("no --model given, so the default {DEFAULT_MODEL} is used")),
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_download_sizes() {
        assert_eq!(human_size(338_000_000), "338 MB");
        assert_eq!(human_size(1_260_000_000), "1.26 GB");
        assert_eq!(human_size(512), "512 B");
    }
}
