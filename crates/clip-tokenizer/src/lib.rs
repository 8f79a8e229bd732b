//! CLIP tokenizer (work in progress).
