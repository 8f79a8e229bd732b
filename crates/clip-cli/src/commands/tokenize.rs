//! `clip tokenize`: texts to CLIP token ids, as the reference `clip.tokenize` gives them.

use clap::Args;
use clip::tokenizer::{Overflow, Tokenizer, CONTEXT_LENGTH};
use serde_json::json;

use crate::output::print_json;

/// `clip tokenize` arguments.
#[derive(Args)]
pub struct TokenizeArgs {
    /// Texts to tokenize.
    #[arg(required = true)]
    texts: Vec<String>,
    /// Cut texts longer than the context (last id becomes <|endoftext|>) instead of failing.
    #[arg(long)]
    truncate: bool,
    /// Ids per row, zero-padded.
    #[arg(long, default_value_t = CONTEXT_LENGTH as u16, value_parser = clap::value_parser!(u16).range(2..))]
    context_length: u16,
}

/// Prints `{"tokens": [[...], ...]}`, one zero-padded row per text.
pub fn run(args: TokenizeArgs) -> anyhow::Result<i32> {
    let overflow = if args.truncate {
        Overflow::Truncate
    } else {
        Overflow::Error
    };
    let tokenizer = Tokenizer::global();
    let rows = args
        .texts
        .iter()
        .map(|t| tokenizer.tokenize(t, usize::from(args.context_length), overflow))
        .collect::<Result<Vec<_>, _>>()?;
    print_json(&json!({ "tokens": rows }))?;
    Ok(0)
}
