//! The published checkpoints known by name.
//!
//! OpenAI URLs are those of the reference `clip.py` `_MODELS` table; as there, the SHA-256 of each
//! file is the path segment before its name, and every download is checked against it. That server
//! has answered 404 since 2025, so each OpenAI name also lists the Hugging Face copy of the same
//! weights where OpenAI published one (the ViTs; the ResNets have no official copy, so they keep
//! their one source). Hugging Face `resolve/main` URLs pin no hash in the URL: those files are
//! checked against the SHA-256 the hub declares for LFS files (the `X-Linked-Etag` / `ETag`
//! header), when it declares one, and always for length and structure (JSON parses, safetensors
//! header and data agree). Hashes cannot be pinned here for them: a repository's `main` may be
//! re-uploaded, and pinning would turn a harmless re-upload into a hard failure.
//!
//! Sizes are approximate download sizes (the Hugging Face ones as the hub's file listing rounds
//! them), for `clip models` and as an upper bound on each file.

use clip_checkpoint::Family;

use crate::registry::{ArtifactFormat, ModelEntry, Origin, RemoteFile, Source, SourceKind};
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

/// Hugging Face copies of OpenAI weights: (OpenAI name, repo, size in MB). The repos hold
/// `config.json` + `model.safetensors` (and a `pytorch_model.bin` of the same weights).
const OPENAI_ON_HF: [(&str, &str, u64); 4] = [
    ("ViT-B/32", "openai/clip-vit-base-patch32", 605),
    ("ViT-B/16", "openai/clip-vit-base-patch16", 599),
    ("ViT-L/14", "openai/clip-vit-large-patch14", 1710),
    ("ViT-L/14@336px", "openai/clip-vit-large-patch14-336", 1710),
];

/// OpenCLIP checkpoints on the Hugging Face hub (trained with GELU, not QuickGELU):
/// (open_clip-style name, repo, resolution, embed dim, size in MB).
const OPEN_CLIP: [(&str, &str, u32, u32, u64); 4] = [
    (
        "ViT-B-32/laion2b_s34b_b79k",
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        224,
        512,
        605,
    ),
    (
        "ViT-B-32-256/datacomp_s34b_b86k",
        "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K",
        256,
        512,
        605,
    ),
    (
        "ViT-L-14/laion2b_s32b_b82k",
        "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
        224,
        768,
        1710,
    ),
    (
        "ViT-H-14/laion2b_s32b_b79k",
        "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
        224,
        1024,
        3940,
    ),
];

/// SigLIP checkpoints: (name, repo, resolution, embed dim, size in MB, SigLIP 2).
/// Sizes are approximate: the base towers plus the 256k-token Gemma embedding of SigLIP 2.
const SIGLIP: [(&str, &str, u32, u32, u64, bool); 4] = [
    (
        "siglip2-base-patch16-224",
        "google/siglip2-base-patch16-224",
        224,
        768,
        1550,
        true,
    ),
    (
        "siglip2-base-patch16-256",
        "google/siglip2-base-patch16-256",
        256,
        768,
        1550,
        true,
    ),
    (
        "siglip2-base-patch32-256",
        "google/siglip2-base-patch32-256",
        256,
        768,
        1560,
        true,
    ),
    (
        "siglip-base-patch16-224",
        "google/siglip-base-patch16-224",
        224,
        768,
        815,
        false,
    ),
];

/// The files of a SigLIP 2 folder (a Gemma tokenizer, as `tokenizer.json`).
const SIGLIP2_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// The files of a SigLIP folder (a SentencePiece tokenizer, `spiece.model`).
const SIGLIP_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "spiece.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

const MB: u64 = 1_000_000;

/// A Hugging Face repository's files as a source, cached in the repository's folder.
fn hf_source(repo: &str, format: ArtifactFormat, files: &[&str], mb: u64) -> Source {
    Source {
        kind: SourceKind::HuggingFace(repo.to_string()),
        format,
        files: files
            .iter()
            .map(|f| RemoteFile {
                name: f.to_string(),
                url: format!("https://huggingface.co/{repo}/resolve/main/{f}"),
                sha256: None,
            })
            .collect(),
        cache_key: repo.to_string(),
        size_bytes: Some(mb * MB),
    }
}

const HF_CLIP_FILES: [&str; 2] = ["config.json", "model.safetensors"];
const OPEN_CLIP_FILES: [&str; 2] = ["open_clip_config.json", "open_clip_model.safetensors"];

pub(crate) fn entries() -> Vec<ModelEntry> {
    let mit = || Some("MIT".to_string());
    let openai = OPENAI
        .iter()
        .map(|&(name, sha, file, resolution, dim, mb)| {
            let mut sources = vec![Source {
                kind: SourceKind::OpenAi,
                format: ArtifactFormat::Openai,
                files: vec![RemoteFile {
                    name: file.to_string(),
                    url: format!("{OPENAI_BASE}/{sha}/{file}"),
                    sha256: Some(sha.to_string()),
                }],
                cache_key: name.to_string(),
                size_bytes: Some(mb * MB),
            }];
            sources.extend(OPENAI_ON_HF.iter().filter(|(n, ..)| *n == name).map(
                |&(_, repo, mb)| hf_source(repo, ArtifactFormat::Huggingface, &HF_CLIP_FILES, mb),
            ));
            ModelEntry {
                name: name.to_string(),
                // open_clip spells them `ViT-B-32` with the pretrained tag `openai`.
                aliases: vec![format!(
                    "{}/openai",
                    name.replace("@336px", "-336").replace('/', "-")
                )],
                family: Family::Clip,
                sources,
                resolution: Some(resolution),
                embed_dim: Some(dim),
                activation: Some(Activation::QuickGelu),
                license: mit(),
                origin: Origin::Builtin,
            }
        });
    let hf = OPENAI_ON_HF.iter().map(|&(openai_name, repo, mb)| {
        let base = OPENAI.iter().find(|o| o.0 == openai_name).expect("listed");
        ModelEntry {
            name: repo.to_string(),
            aliases: Vec::new(),
            family: Family::Clip,
            sources: vec![hf_source(
                repo,
                ArtifactFormat::Huggingface,
                &HF_CLIP_FILES,
                mb,
            )],
            resolution: Some(base.3),
            embed_dim: Some(base.4),
            activation: Some(Activation::QuickGelu),
            license: mit(),
            origin: Origin::Builtin,
        }
    });
    let open_clip = OPEN_CLIP
        .iter()
        .map(|&(name, repo, resolution, dim, mb)| ModelEntry {
            name: name.to_string(),
            aliases: vec![repo.to_string()],
            family: Family::Clip,
            sources: vec![hf_source(
                repo,
                ArtifactFormat::OpenClip,
                &OPEN_CLIP_FILES,
                mb,
            )],
            resolution: Some(resolution),
            embed_dim: Some(dim),
            activation: Some(Activation::Gelu),
            license: mit(),
            origin: Origin::Builtin,
        });
    let siglip = SIGLIP
        .iter()
        .map(|&(name, repo, resolution, dim, mb, v2)| ModelEntry {
            name: name.to_string(),
            aliases: vec![repo.to_string()],
            family: Family::Siglip,
            sources: vec![hf_source(
                repo,
                ArtifactFormat::Huggingface,
                if v2 { &SIGLIP2_FILES } else { &SIGLIP_FILES },
                mb,
            )],
            resolution: Some(resolution),
            embed_dim: Some(dim),
            // `gelu_pytorch_tanh`, which the activation type does not name; the config says it.
            activation: None,
            license: Some("Apache-2.0".to_string()),
            origin: Origin::Builtin,
        });
    openai.chain(hf).chain(open_clip).chain(siglip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_hashes_are_the_url_segment_before_the_file_name() {
        for e in entries()
            .iter()
            .filter(|e| e.format() == ArtifactFormat::Openai)
        {
            let f = &e.files()[0];
            let mut segments = f.url.rsplit('/');
            assert_eq!(segments.next(), Some(f.name.as_str()));
            assert_eq!(segments.next(), f.sha256.as_deref(), "{}", e.name);
        }
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let all: Vec<String> = entries()
            .iter()
            .flat_map(|e| std::iter::once(e.name.clone()).chain(e.aliases.clone()))
            .collect();
        for (i, n) in all.iter().enumerate() {
            assert!(
                all[i + 1..].iter().all(|o| !o.eq_ignore_ascii_case(n)),
                "{n}"
            );
        }
    }

    #[test]
    fn every_openai_vit_falls_back_to_its_hugging_face_copy_and_resnets_have_one_source() {
        for e in entries()
            .iter()
            .filter(|e| e.format() == ArtifactFormat::Openai)
        {
            let kinds: Vec<&str> = e.sources.iter().map(|s| s.kind.as_str()).collect();
            if e.name.starts_with("RN") {
                assert_eq!(kinds, ["openai"], "{}", e.name);
            } else {
                assert_eq!(kinds, ["openai", "huggingface"], "{}", e.name);
                let hf = &e.sources[1];
                assert_eq!(hf.format, ArtifactFormat::Huggingface);
                assert!(hf.files.iter().all(|f| f.sha256.is_none()));
                assert_eq!(hf.files[1].name, "model.safetensors");
            }
            assert_eq!(e.license.as_deref(), Some("MIT"));
        }
    }

    #[test]
    fn siglip_folders_carry_their_tokenizer_files() {
        let all = entries();
        let get = |n: &str| all.iter().find(|e| e.name == n).unwrap();
        let v2 = get("siglip2-base-patch32-256");
        assert_eq!(v2.family, Family::Siglip);
        assert!(v2.files().iter().any(|f| f.name == "tokenizer.json"));
        let v1 = get("siglip-base-patch16-224");
        assert!(v1.files().iter().any(|f| f.name == "spiece.model"));
        assert_eq!(v1.aliases, ["google/siglip-base-patch16-224"]);
        assert_eq!(v1.license.as_deref(), Some("Apache-2.0"));
        let dc = get("ViT-B-32-256/datacomp_s34b_b86k");
        assert_eq!(dc.format(), ArtifactFormat::OpenClip);
        assert_eq!(dc.resolution, Some(256));
    }
}
