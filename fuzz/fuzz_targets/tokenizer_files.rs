//! A model folder's tokenizer files, which arrive with downloaded checkpoints: `tokenizer.json`
//! (Hugging Face's `tokenizers`, with our reading of `tokenizer_config.json`) or SentencePiece's
//! `spiece.model` (our protobuf reader), chosen by the content as a folder would hold it (JSON
//! starts with `{`), so the fixtures' own files seed it. A folder that loads must then tokenise
//! any text to exactly the context length or refuse it; any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

use clip_tokenizer::{Overflow, TextTokenizer};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("clip-fuzz-tok-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if data.first() == Some(&b'{') {
        // The fixture's config beside it (class, pad token, padding side), so that a whole
        // `tokenizer.json` loads and the fuzzer reaches tokenisation.
        let config = include_str!("../../fixtures/models/tiny-siglip2/tokenizer_config.json");
        std::fs::write(dir.join("tokenizer_config.json"), config).unwrap();
        std::fs::write(dir.join("tokenizer.json"), data).unwrap();
    } else {
        std::fs::write(dir.join("spiece.model"), data).unwrap();
    }
    if let Ok(tokenizer) = TextTokenizer::from_folder(&dir, 16) {
        for text in ["a photo of a cat", "", "ein Hund 🐕 一只狗 </s> <pad>"] {
            for overflow in [Overflow::Error, Overflow::Truncate] {
                if let Ok(ids) = tokenizer.tokenize(text, overflow) {
                    assert_eq!(ids.len(), 16);
                }
            }
        }
    }
});
