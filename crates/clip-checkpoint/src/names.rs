//! One naming for every format: whatever a loader read, the model sees OpenAI's state-dict names.
//! This is the single place where names change, so the loaders only find bytes.

use std::path::Path;

use crate::{huggingface, CheckpointError, StateDict};

/// Maps a loaded state dict to OpenAI names: strips the `module.` prefix of (Distributed)
/// DataParallel checkpoints, maps Hugging Face `CLIPModel` names, lifts open_clip's
/// `CustomTextCLIP` text tower (`text.*`) to the top level, and drops what the model never reads.
pub(crate) fn to_openai(path: &Path, state: StateDict) -> Result<StateDict, CheckpointError> {
    let state: StateDict = state
        .into_iter()
        .map(|(n, t)| (strip(n, "module."), t))
        .collect();
    let state = if state.names().any(huggingface::is_hf_name) {
        huggingface::to_openai(path, state)?
    } else {
        state
    };
    Ok(state
        .into_iter()
        .map(|(n, t)| (strip(n, "text."), t))
        .filter(|(n, _)| !is_unused(n))
        .collect())
}

fn strip(name: String, prefix: &str) -> String {
    match name.strip_prefix(prefix) {
        Some(rest) => rest.to_string(),
        None => name,
    }
}

/// Entries that are state but not weights: BatchNorm step counters, the causal mask (rebuilt by
/// the model), HF's position ids, and the hyper-parameter scalars OpenAI's TorchScript archives
/// carry (the reference `build_model` deletes them too).
fn is_unused(name: &str) -> bool {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    matches!(leaf, "num_batches_tracked" | "attn_mask" | "position_ids")
        || matches!(name, "input_resolution" | "context_length" | "vocab_size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorData;

    #[test]
    fn prefixes_are_stripped_and_unused_entries_dropped() {
        let t = TensorData::from_f32(vec![1], &[1.0]);
        let state: StateDict = [
            "module.visual.conv1.weight",
            "module.visual.bn1.num_batches_tracked",
            "text.transformer.resblocks.0.attn.in_proj_weight",
            "text.attn_mask",
            "transformer.resblocks.0.attn_mask",
            "input_resolution",
            "context_length",
            "vocab_size",
            "logit_scale",
        ]
        .into_iter()
        .map(|n| (n.to_string(), t.clone()))
        .collect();
        let out = to_openai(Path::new("x"), state).unwrap();
        let names: Vec<_> = out.names().collect();
        assert_eq!(
            names,
            [
                "logit_scale",
                "transformer.resblocks.0.attn.in_proj_weight",
                "visual.conv1.weight"
            ]
        );
    }
}
