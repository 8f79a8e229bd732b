//! The published checkpoints known by name.
//!
//! OpenAI URLs are those of the reference `clip.py` `_MODELS` table; as there, the SHA-256 of each
//! file is the path segment before its name, and every download is checked against it. Hugging
//! Face `resolve/main` URLs pin no hash, so those files are checked for length and structure
//! (JSON parses, safetensors header and data agree) rather than a checksum.
//!
//! Sizes are approximate download sizes, for `clip models` only.

use crate::registry::{ArtifactFormat, ModelEntry, Origin, RemoteFile};
use crate::Activation;

const OPENAI_BASE: &str = "https://openaipublic.azureedge.net/clip/models";

/// (name, sha256, file name, resolution, embed dim, approximate size in MB)
const OPENAI: [(&str, &str, &str, u32, u32, u64); 9] = [
    (
        "RN50",
        "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
        "RN50.pt",
        224,
        1024,
        244,
    ),
    (
        "RN101",
        "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599",
        "RN101.pt",
        224,
        512,
        278,
    ),
    (
        "RN50x4",
        "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd",
        "RN50x4.pt",
        288,
        640,
        402,
    ),
    (
        "RN50x16",
        "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa",
        "RN50x16.pt",
        384,
        768,
        630,
    ),
    (
        "RN50x64",
        "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c",
        "RN50x64.pt",
        448,
        1024,
        1260,
    ),
    (
        "ViT-B/32",
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        "ViT-B-32.pt",
        224,
        512,
        338,
    ),
    (
        "ViT-B/16",
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
        "ViT-B-16.pt",
        224,
        512,
        335,
    ),
    (
        "ViT-L/14",
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        "ViT-L-14.pt",
        224,
        768,
        890,
    ),
    (
        "ViT-L/14@336px",
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
        "ViT-L-14-336px.pt",
        336,
        768,
        891,
    ),
];

/// Hugging Face `CLIPModel` repos of the OpenAI weights: (repo, resolution, embed dim, size in MB).
const HUGGINGFACE: [(&str, u32, u32, u64); 4] = [
    ("openai/clip-vit-base-patch32", 224, 512, 605),
    ("openai/clip-vit-base-patch16", 224, 512, 599),
    ("openai/clip-vit-large-patch14", 224, 768, 1710),
    ("openai/clip-vit-large-patch14-336", 336, 768, 1710),
];

/// OpenCLIP LAION-2B checkpoints on the Hugging Face hub (trained with GELU, not QuickGELU).
const OPEN_CLIP: [(&str, u32, u32, u64); 3] = [
    ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", 224, 512, 605),
    ("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", 224, 768, 1710),
    ("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", 224, 1024, 3940),
];

const MB: u64 = 1_000_000;

pub(crate) fn entries() -> Vec<ModelEntry> {
    let openai = OPENAI
        .iter()
        .map(|&(name, sha, file, resolution, dim, mb)| ModelEntry {
            name: name.to_string(),
            format: ArtifactFormat::Openai,
            files: vec![RemoteFile {
                name: file.to_string(),
                url: format!("{OPENAI_BASE}/{sha}/{file}"),
                sha256: Some(sha.to_string()),
            }],
            resolution: Some(resolution),
            embed_dim: Some(dim),
            size_bytes: Some(mb * MB),
            activation: Some(Activation::QuickGelu),
            origin: Origin::Builtin,
        });
    let hub =
        |repo: &str, format, files: [&str; 2], resolution, dim, mb: u64, activation| ModelEntry {
            name: repo.to_string(),
            format,
            files: files
                .iter()
                .map(|f| RemoteFile {
                    name: f.to_string(),
                    url: format!("https://huggingface.co/{repo}/resolve/main/{f}"),
                    sha256: None,
                })
                .collect(),
            resolution: Some(resolution),
            embed_dim: Some(dim),
            size_bytes: Some(mb * MB),
            activation: Some(activation),
            origin: Origin::Builtin,
        };
    let hf = HUGGINGFACE.iter().map(|&(repo, res, dim, mb)| {
        hub(
            repo,
            ArtifactFormat::Huggingface,
            ["config.json", "model.safetensors"],
            res,
            dim,
            mb,
            Activation::QuickGelu,
        )
    });
    let open_clip = OPEN_CLIP.iter().map(|&(repo, res, dim, mb)| {
        hub(
            repo,
            ArtifactFormat::OpenClip,
            ["open_clip_config.json", "open_clip_model.safetensors"],
            res,
            dim,
            mb,
            Activation::Gelu,
        )
    });
    openai.chain(hf).chain(open_clip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_hashes_are_the_url_segment_before_the_file_name() {
        for e in entries()
            .iter()
            .filter(|e| e.format == ArtifactFormat::Openai)
        {
            let f = &e.files[0];
            let mut segments = f.url.rsplit('/');
            assert_eq!(segments.next(), Some(f.name.as_str()));
            assert_eq!(segments.next(), f.sha256.as_deref(), "{}", e.name);
        }
    }

    #[test]
    fn names_are_unique() {
        let all = entries();
        for (i, e) in all.iter().enumerate() {
            assert!(
                all[i + 1..]
                    .iter()
                    .all(|o| !o.name.eq_ignore_ascii_case(&e.name)),
                "{}",
                e.name
            );
        }
    }
}
