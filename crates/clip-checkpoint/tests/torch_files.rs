//! torch layouts the fixtures do not cover, written by the test: deflated zip entries, strided
//! (non-contiguous) views, storage offsets, shared storages, other dtypes, the open_clip
//! `{"state_dict": ...}` wrapper with `module.` prefixes, legacy (pre-zip) files, and broken records.

mod common;

use clip_checkpoint::{load_checkpoint, CheckpointFormat, DType};
use common::{f32_bytes, legacy_file, state_dict_pickle, torch_zip, Record, Scratch};

/// Storage "0": 0..12 as f32; storage "1": 1.5, -2 as f64; storage "2": 7 as i64.
fn storages() -> Vec<(&'static str, usize, Vec<u8>)> {
    let s0 = f32_bytes(&(0..12).map(|i| i as f32).collect::<Vec<_>>());
    let s1 = [1.5f64, -2.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    (vec![
        ("0", 12, s0),
        ("1", 2, s1),
        ("2", 1, 7i64.to_le_bytes().to_vec()),
    ])
    .into_iter()
    .collect()
}

fn records() -> Vec<Record<'static>> {
    let r = |name, storage_type, key, storage_numel, offset, size, stride| Record {
        name,
        storage_type,
        key,
        storage_numel,
        offset,
        size,
        stride,
    };
    vec![
        // a [3, 4] matrix and its transpose, sharing storage 0
        r(
            "module.visual.proj",
            "FloatStorage",
            "0",
            12,
            0,
            &[3, 4],
            &[4, 1],
        ),
        r(
            "module.text_projection",
            "FloatStorage",
            "0",
            12,
            0,
            &[4, 3],
            &[1, 4],
        ),
        // a slice from an offset, every other element
        r(
            "module.ln_final.bias",
            "FloatStorage",
            "0",
            12,
            1,
            &[3],
            &[2],
        ),
        r("module.logit_scale", "DoubleStorage", "1", 2, 1, &[], &[]),
        r(
            "module.visual.bn1.num_batches_tracked",
            "LongStorage",
            "2",
            1,
            0,
            &[],
            &[],
        ),
    ]
}

fn check(path: &std::path::Path, format: CheckpointFormat) {
    let ckpt = load_checkpoint(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ckpt.format, format);
    let names: Vec<_> = ckpt.state.names().collect();
    assert_eq!(
        names,
        [
            "ln_final.bias",
            "logit_scale",
            "text_projection",
            "visual.proj"
        ]
    );
    let get = |n: &str| ckpt.state.get(n).unwrap();
    assert_eq!(get("visual.proj").shape(), [3, 4]);
    assert_eq!(
        get("visual.proj").to_f32_vec(),
        (0..12).map(|i| i as f32).collect::<Vec<_>>()
    );
    assert_eq!(
        get("text_projection").to_f32_vec(),
        [0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
    );
    assert_eq!(get("ln_final.bias").to_f32_vec(), [1., 3., 5.]);
    assert_eq!(
        (get("logit_scale").dtype(), get("logit_scale").shape()),
        (DType::F64, &[][..])
    );
    assert_eq!(get("logit_scale").to_f32_vec(), [-2.0]);
}

#[test]
fn stored_and_deflated_zips_with_strided_views() {
    let dir = Scratch::new("zips");
    let pickle = state_dict_pickle(&records(), Some("state_dict"), false);
    let data: Vec<_> = storages().into_iter().map(|(k, _, b)| (k, b)).collect();
    for deflate in [false, true] {
        let path = dir.path(&format!("model-{deflate}.pt"));
        torch_zip(&path, &pickle, &data, deflate);
        check(&path, CheckpointFormat::TorchZip);
        let ckpt = load_checkpoint(&path).unwrap();
        assert_eq!(ckpt.state.get("visual.proj").unwrap().is_mapped(), !deflate);
    }
}

#[test]
fn legacy_torch_save_files() {
    let dir = Scratch::new("legacy");
    let path = dir.path("old.pth");
    legacy_file(&path, &records(), &storages());
    check(&path, CheckpointFormat::TorchLegacy);
    // a truncated storage section
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
    let err = load_checkpoint(&path).unwrap_err().to_string();
    assert!(
        err.contains("old.pth") && err.contains("truncated: storage 2"),
        "{err}"
    );
}

#[test]
fn broken_tensor_records_name_the_tensor() {
    let dir = Scratch::new("broken");
    let r = |key, offset, size: &'static [usize]| Record {
        name: "visual.proj",
        storage_type: "HalfStorage",
        key,
        storage_numel: 4,
        offset,
        size,
        stride: &[1],
    };
    let cases = [
        (
            r("0", 2, &[3]),
            vec![("0", vec![0u8; 8])],
            "reaches element 4 of a storage of 4",
        ),
        (
            r("9", 0, &[4]),
            vec![("0", vec![0u8; 8])],
            "storage record archive/data/9 is missing",
        ),
        (
            r("0", 0, &[4]),
            vec![("0", vec![0u8; 6])],
            "storage 0 holds 6 bytes, 8 claimed",
        ),
    ];
    for (i, (record, data, phrase)) in cases.into_iter().enumerate() {
        let path = dir.path(&format!("broken-{i}.pt"));
        torch_zip(
            &path,
            &state_dict_pickle(&[record], None, false),
            &data,
            false,
        );
        let err = load_checkpoint(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("broken-{i}.pt"))
                && err.contains("visual.proj")
                && err.contains(phrase),
            "{err}"
        );
    }
}

#[test]
fn a_plain_zip_may_not_hold_torchscript_objects() {
    let dir = Scratch::new("script-in-zip");
    let path = dir.path("m.pt");
    torch_zip(
        &path,
        b"\x80\x02c__torch__.clip.model\nCLIP\n)\x81}b.",
        &[],
        false,
    );
    let err = load_checkpoint(&path).unwrap_err().to_string();
    assert!(
        err.contains("disallowed pickle global __torch__.clip.model.CLIP"),
        "{err}"
    );
}
