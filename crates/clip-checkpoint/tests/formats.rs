//! Every fixture format of the tiny models loads to the same OpenAI-named tensors, bit for bit,
//! and every malformed fixture is refused with the error `models/malformed/README.md` asks for.

mod common;

use std::path::{Path, PathBuf};

use clip_checkpoint::{
    load_checkpoint, Activation, ArchHints, Checkpoint, CheckpointFormat, DType, StateDict,
};
use common::Scratch;

fn load(path: &Path) -> Checkpoint {
    load_checkpoint(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn models() -> Option<PathBuf> {
    clip_fixtures::reference("models")
}

/// Same names, shapes and f32 values (compared as bits).
fn assert_same(got: &StateDict, want: &StateDict, what: &str) {
    let (g, w): (Vec<_>, Vec<_>) = (got.names().collect(), want.names().collect());
    assert_eq!(g, w, "{what}: names differ");
    for (name, t) in want.iter() {
        let other = got.get(name).unwrap();
        assert_eq!(other.shape(), t.shape(), "{what}: shape of {name}");
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert!(
            bits(other.to_f32_vec()) == bits(t.to_f32_vec()),
            "{what}: values of {name} differ"
        );
    }
}

#[test]
fn committed_tiny_vit_loads_with_openai_defaults() {
    let ckpt = load(&clip_fixtures::committed("models/tiny-vit.safetensors"));
    assert_eq!(ckpt.format, CheckpointFormat::Safetensors);
    assert_eq!(
        ckpt.hints,
        ArchHints {
            activation: Activation::QuickGelu,
            vision_heads: None,
            text_heads: None,
            ..ArchHints::default()
        }
    );
    assert_eq!(ckpt.state.len(), 62);
    let conv = ckpt.state.get("visual.conv1.weight").unwrap();
    assert_eq!(
        (conv.dtype(), conv.shape()),
        (DType::F16, &[128, 3, 32, 32][..])
    );
    assert!(conv.is_mapped());
    if let Some(models) = models() {
        assert_same(
            &ckpt.state,
            &load(&models.join("tiny-vit/tiny-vit.safetensors")).state,
            "committed copy",
        );
    }
}

#[test]
fn every_tiny_vit_format_gives_the_same_tensors() {
    let Some(models) = models() else { return };
    let want = load(&models.join("tiny-vit/tiny-vit.safetensors")).state;
    for (rel, format) in [
        ("tiny-vit/tiny-vit.pt", CheckpointFormat::TorchZip),
        (
            "tiny-vit/tiny-vit.torchscript.pt",
            CheckpointFormat::TorchScript,
        ),
        ("tiny-vit-hf", CheckpointFormat::HuggingFace),
        // a bare Hugging Face file is recognised by its names and mapped the same way
        ("tiny-vit-hf/pytorch_model.bin", CheckpointFormat::TorchZip),
        (
            "tiny-vit-hf/model.safetensors",
            CheckpointFormat::Safetensors,
        ),
    ] {
        let ckpt = load(&models.join(rel));
        assert_eq!(ckpt.format, format, "{rel}");
        assert_same(&ckpt.state, &want, rel);
    }
}

#[test]
fn hugging_face_folder_falls_back_to_pytorch_model_bin() {
    let Some(models) = models() else { return };
    let dir = Scratch::new("hf-bin");
    for f in ["config.json", "pytorch_model.bin"] {
        std::fs::copy(models.join("tiny-vit-hf").join(f), dir.path(f)).unwrap();
    }
    let ckpt = load(&dir.0);
    assert_eq!(ckpt.format, CheckpointFormat::HuggingFace);
    assert_eq!(
        ckpt.hints,
        ArchHints {
            activation: Activation::QuickGelu,
            vision_heads: Some(2),
            text_heads: Some(1),
            ..ArchHints::default()
        }
    );
    assert_same(
        &ckpt.state,
        &load(&models.join("tiny-vit/tiny-vit.safetensors")).state,
        "HF pytorch_model.bin",
    );
}

#[test]
fn hugging_face_hints_come_from_config() {
    let Some(models) = models() else { return };
    let ckpt = load(&models.join("tiny-vit-hf"));
    assert_eq!(
        ckpt.hints,
        ArchHints {
            activation: Activation::QuickGelu,
            vision_heads: Some(2),
            text_heads: Some(1),
            ..ArchHints::default()
        }
    );
}

#[test]
fn torch_zip_tensors_are_mapped_not_copied() {
    let Some(models) = models() else { return };
    let ckpt = load(&models.join("tiny-vit/tiny-vit.pt"));
    assert!(ckpt.state.iter().all(|(_, t)| t.is_mapped()));
    let hf = load(&models.join("tiny-vit-hf/pytorch_model.bin"));
    // only the q/k/v packs and transposed projections are new buffers
    assert!(hf.state.get("visual.conv1.weight").unwrap().is_mapped());
}

#[test]
fn torchscript_keeps_openai_mixed_dtypes() {
    let Some(models) = models() else { return };
    let ckpt = load(&models.join("tiny-vit/tiny-vit.torchscript.pt"));
    let dtype = |n: &str| ckpt.state.get(n).unwrap().dtype();
    assert_eq!(dtype("visual.conv1.weight"), DType::F16);
    assert_eq!(dtype("visual.proj"), DType::F16);
    assert_eq!(dtype("visual.class_embedding"), DType::F32);
    assert_eq!(dtype("positional_embedding"), DType::F32);
    assert_eq!(dtype("ln_final.weight"), DType::F32);
}

#[test]
fn tiny_rn_torchscript_matches_safetensors() {
    let Some(models) = models() else { return };
    let want = load(&models.join("tiny-rn/tiny-rn.safetensors"));
    let got = load(&models.join("tiny-rn/tiny-rn.torchscript.pt"));
    assert_eq!(got.format, CheckpointFormat::TorchScript);
    assert!(want
        .state
        .names()
        .all(|n| !n.ends_with("num_batches_tracked")));
    assert!(
        want.state.contains("visual.bn1.running_var")
            && want.state.contains("visual.attnpool.q_proj.weight")
    );
    assert_eq!(
        want.state.len(),
        153 - 19,
        "19 BatchNorm step counters dropped"
    );
    assert_same(&got.state, &want.state, "tiny-rn torchscript");
}

#[test]
fn openclip_folder_gives_gelu_and_config_heads() {
    let Some(models) = models() else { return };
    let ckpt = load(&models.join("tiny-vit-openclip-gelu"));
    assert_eq!(ckpt.format, CheckpointFormat::OpenClip);
    assert_eq!(
        ckpt.hints,
        ArchHints {
            activation: Activation::Gelu,
            vision_heads: Some(2),
            text_heads: Some(1),
            ..ArchHints::default()
        }
    );
    let vit = load(&models.join("tiny-vit/tiny-vit.safetensors"));
    assert!(ckpt.state.names().eq(vit.state.names()));
    // the bare weights file has no config: OpenAI defaults
    let bare = load(&models.join("tiny-vit-openclip-gelu/open_clip_model.safetensors"));
    assert_eq!(bare.hints, ArchHints::default());
    assert_same(&bare.state, &ckpt.state, "bare OpenCLIP file");
}

#[test]
fn malformed_files_are_refused_with_named_errors() {
    let Some(models) = models() else { return };
    let bad = models.join("malformed");
    let _ = std::fs::remove_file("/tmp/clip-evil-pickle-ran");
    for (file, phrases) in [
        (
            "truncated.safetensors",
            &["truncated: tensor ", " needs bytes [", "but the file has "][..],
        ),
        (
            "bad-header.safetensors",
            &["header length 10485760 exceeds file size"],
        ),
        (
            "empty.safetensors",
            &["no tensors", "not a CLIP checkpoint"],
        ),
        (
            "not-a-checkpoint.pt",
            &["not a PyTorch zip/TorchScript/pickle file"],
        ),
        ("truncated.pt", &["corrupt or truncated zip archive"]),
        ("evil-pickle.pt", &["disallowed pickle global os.system"]),
        (
            "evil-plain.pkl",
            &["disallowed pickle global builtins.eval"],
        ),
        (
            "hf-missing-config",
            &["Hugging Face folder without config.json"],
        ),
    ] {
        let err = load_checkpoint(&bad.join(file))
            .err()
            .unwrap_or_else(|| panic!("{file} loaded"))
            .to_string();
        assert!(
            err.contains(file),
            "{file}: error does not name the file: {err}"
        );
        for phrase in phrases {
            assert!(err.contains(phrase), "{file}: {err:?} lacks {phrase:?}");
        }
    }
    assert!(
        !Path::new("/tmp/clip-evil-pickle-ran").exists(),
        "a pickle ran code"
    );
}

#[test]
fn tensor_level_defects_load_here_and_are_left_to_the_model() {
    let Some(models) = models() else { return };
    for file in [
        "missing-tensor.safetensors",
        "wrong-shape.safetensors",
        "nan-weights.safetensors",
    ] {
        let ckpt = load(&models.join("malformed").join(file));
        assert_eq!(
            ckpt.state.get("token_embedding.weight").unwrap().shape(),
            [1000, 64],
            "{file}"
        );
    }
}

#[test]
fn missing_paths_and_unknown_folders_are_errors() {
    let err = load_checkpoint(Path::new("/nonexistent/clip.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/clip.pt") && err.contains("No such file"),
        "{err}"
    );
    let dir = Scratch::new("unknown-folder");
    std::fs::write(dir.path("notes.txt"), "hello").unwrap();
    let err = load_checkpoint(&dir.0).unwrap_err().to_string();
    assert!(
        err.contains("unknown-folder") && err.contains("not a checkpoint folder"),
        "{err}"
    );
    let empty = dir.path("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    assert!(load_checkpoint(&empty)
        .unwrap_err()
        .to_string()
        .contains("not a PyTorch zip/TorchScript/pickle file"));
    // A config without its weights names the folder and the files looked for, in both kinds.
    let Some(models) = models() else { return };
    for (kind, config, src, first) in [
        (
            "hf-no-weights",
            "config.json",
            "tiny-vit-hf",
            "model.safetensors",
        ),
        (
            "openclip-no-weights",
            "open_clip_config.json",
            "tiny-vit-openclip-gelu",
            "open_clip_model.safetensors",
        ),
    ] {
        let folder = Scratch::new(kind);
        std::fs::copy(models.join(src).join(config), folder.path(config)).unwrap();
        let err = load_checkpoint(&folder.0).unwrap_err().to_string();
        assert!(
            err.contains(kind) && err.contains("folder without weights") && err.contains(first),
            "{err}"
        );
    }
}
