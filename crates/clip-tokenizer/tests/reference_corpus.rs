//! Every line of the reference tokenizer corpus must tokenise exactly as `clip.tokenize` does:
//! `ids` (context 77, no truncation; `null` where the reference raises), `truncated` (context 77,
//! truncate=True) and `ids_cl16` (context 16, truncate=True). Failures list every differing line.

use clip_tokenizer::{Overflow, Tokenizer, CONTEXT_LENGTH};

#[derive(serde::Deserialize)]
struct Golden {
    text: String,
    ids: Option<Vec<u32>>,
    truncated: Vec<u32>,
    ids_cl16: Vec<u32>,
}

fn goldens() -> Vec<Golden> {
    let path = clip_fixtures::committed("tokenizer/goldens.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i}: {e}")))
        .collect()
}

#[test]
fn all_corpus_lines_match_the_reference() {
    let goldens = goldens();
    assert_eq!(goldens.len(), 1502);
    let tok = Tokenizer::global();
    let mut failures = Vec::new();
    let mut matching = [0usize; 3];
    for (line, g) in goldens.iter().enumerate() {
        // `None` where the reference raises (its only error: too long).
        let ids = tok
            .tokenize_unpadded(&g.text, CONTEXT_LENGTH, Overflow::Error)
            .ok();
        let truncated = tok
            .tokenize_unpadded(&g.text, CONTEXT_LENGTH, Overflow::Truncate)
            .ok();
        let cl16 = tok.tokenize_unpadded(&g.text, 16, Overflow::Truncate).ok();
        let checks = [
            ("ids", g.ids.clone(), ids),
            ("truncated", Some(g.truncated.clone()), truncated),
            ("ids_cl16", Some(g.ids_cl16.clone()), cl16),
        ];
        for (k, (field, expected, got)) in checks.into_iter().enumerate() {
            if expected == got {
                matching[k] += 1;
            } else {
                failures.push(format!(
                    "line {line} {field}: text {:?}\n  cleaned  {:?}\n  expected {expected:?}\n  got      {got:?}",
                    g.text,
                    clip_tokenizer::clean_text(&g.text)
                ));
            }
        }
    }
    println!(
        "matching lines: ids {}, truncated {}, ids_cl16 {} of {}",
        matching[0],
        matching[1],
        matching[2],
        goldens.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn padded_rows_have_the_context_length() {
    let tok = Tokenizer::global();
    for g in goldens().iter().take(50) {
        let row = tok
            .tokenize(&g.text, CONTEXT_LENGTH, Overflow::Truncate)
            .unwrap();
        assert_eq!(row.len(), CONTEXT_LENGTH);
        assert_eq!(&row[..g.truncated.len()], &g.truncated[..]);
        assert!(row[g.truncated.len()..].iter().all(|&id| id == 0));
    }
}
