//! The checkpoint readers through their one entry point: safetensors headers, `torch.save` zips
//! and TorchScript archives, legacy pickles (the restricted pickle VM), detected from the bytes,
//! then the model's own checks. The bytes go through a file because that is what users hand
//! over (and what the readers memory-map). Any panic is a bug: a hostile checkpoint must be
//! refused with a `CheckpointError` or `ModelError`.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("clip-fuzz-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The reader picks the format from the content; the name only matters for safetensors.
    let name = if data.first() == Some(&b'{') || data.get(8) == Some(&b'{') {
        "model.safetensors"
    } else {
        "model.pt"
    };
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(data))
        .unwrap();
    if let Ok(checkpoint) = clip_checkpoint::load_checkpoint(&path) {
        let _ = clip::ClipModel::new(&checkpoint, &clip::candle::Device::Cpu);
    }
    let _ = std::fs::remove_file(&path);
});
