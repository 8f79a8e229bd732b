//! TorchScript archives pickle the module *object tree*, not a state dict: each `__torch__.*`
//! object's `BUILD` state is a dict of its attributes (parameters, buffers, submodules, plus
//! `training` flags and the like). Walking it with dotted prefixes recovers the names
//! `module.state_dict()` gives, which is what the reference's `clip.load(jit=False)` feeds to
//! `build_model`.
//!
//! Every tensor attribute is collected. A traced module (OpenAI's archives, the fixtures) has no
//! other tensor attributes than its parameters and buffers: plain tensor attributes such as
//! `attn_mask` are baked into the graph's constants. Names the model never needs are dropped
//! later for every format alike (`names.rs`).

use crate::pickle::{Heap, Node, Value};

/// Module trees deeper than this are refused (a hostile archive could nest objects, or make one
/// contain itself).
const MAX_DEPTH: usize = 64;

/// `(dotted name, value)` for every non-module attribute of every module under `root`.
pub(crate) fn module_entries(heap: &Heap, root: &Value) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    walk(heap, root, String::new(), 0, &mut out)?;
    Ok(out)
}

fn walk(
    heap: &Heap,
    module: &Value,
    prefix: String,
    depth: usize,
    out: &mut Vec<(String, Value)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "TorchScript module tree deeper than {MAX_DEPTH} levels at {prefix}"
        ));
    }
    // A module without dict state (custom `__getstate__`) holds no named parameters.
    let Some(Node::Object {
        state: Some(state), ..
    }) = heap.node(module)
    else {
        return Ok(());
    };
    let Some(attributes) = heap.dict(state) else {
        return Ok(());
    };
    for (name, value) in attributes {
        let Some(name) = name.as_str() else { continue };
        match heap.node(value) {
            Some(Node::Object { .. }) => {
                walk(heap, value, format!("{prefix}{name}."), depth + 1, out)?
            }
            _ => out.push((format!("{prefix}{name}"), value.clone())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::{unpickle, Allowlist};

    fn s(text: &str) -> Vec<u8> {
        let mut out = vec![0x8c, text.len() as u8];
        out.extend(text.as_bytes());
        out
    }

    #[test]
    fn nested_modules_get_dotted_names() {
        // CLIP{ logit_scale: 1, training: False, visual: Vit{ proj: 2, ln: LN{ weight: 3 } } }
        let mut p = b"\x80\x02c__torch__.m\nCLIP\n)\x81}(".to_vec();
        p.extend(s("logit_scale"));
        p.extend(b"K\x01");
        p.extend(s("training"));
        p.extend(b"\x89");
        p.extend(s("visual"));
        p.extend(b"c__torch__.m\nVit\n)\x81}(");
        p.extend(s("proj"));
        p.extend(b"K\x02");
        p.extend(s("ln"));
        p.extend(b"c__torch__.m\nLN\n)\x81}(");
        p.extend(s("weight"));
        p.extend(b"K\x03ububub.");
        let u = unpickle(
            &p,
            0,
            Allowlist {
                script_classes: true,
            },
        )
        .unwrap();
        assert_eq!(
            module_entries(&u.heap, &u.root).unwrap(),
            [
                ("logit_scale".to_string(), Value::Int(1)),
                ("training".to_string(), Value::Bool(false)),
                ("visual.proj".to_string(), Value::Int(2)),
                ("visual.ln.weight".to_string(), Value::Int(3)),
            ]
        );
    }

    #[test]
    fn a_module_containing_itself_is_refused() {
        let mut p = b"\x80\x02c__torch__.m\nM\n)\x81q\x00}".to_vec();
        p.extend(s("me"));
        p.extend(b"h\x00sb.");
        let u = unpickle(
            &p,
            0,
            Allowlist {
                script_classes: true,
            },
        )
        .unwrap();
        assert!(module_entries(&u.heap, &u.root)
            .unwrap_err()
            .contains("deeper than 64"));
    }
}
