//! `clip tokenize`: texts to token ids, as the reference `clip.tokenize` gives them, or as a
//! model's own tokenizer feeds them to that model (`--model`).

use clap::Args;
use clip::tokenizer::{Overflow, Tokenizer, CONTEXT_LENGTH};
use serde_json::json;

use super::OptionalModel;
use crate::output::print_json;

/// `clip tokenize` arguments.
#[derive(Args)]
pub struct TokenizeArgs {
    /// Texts to tokenize.
    #[arg(required = true)]
    texts: Vec<String>,
    /// Cut texts longer than the context (as the model's reference truncates) instead of failing.
    #[arg(long)]
    truncate: bool,
    /// Ids per row, zero-padded (CLIP's tokenizer; a model's context length comes from it).
    #[arg(long, conflicts_with = "model", value_parser = clap::value_parser!(u16).range(2..))]
    context_length: Option<u16>,
    /// `--model`: that model's tokenizer, padded with its pad id to its context length.
    #[command(flatten)]
    model: OptionalModel,
}

/// Prints `{"tokens": [[...], ...]}`, one padded row per text.
pub fn run(args: TokenizeArgs) -> anyhow::Result<i32> {
    let overflow = if args.truncate {
        Overflow::Truncate
    } else {
        Overflow::Error
    };
    let rows = match args.model.load(clip::Towers::Text)? {
        Some(clip) => args
            .texts
            .iter()
            .map(|t| clip.tokenize(t, overflow))
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let tokenizer = Tokenizer::global();
            let n = args.context_length.map_or(CONTEXT_LENGTH, usize::from);
            args.texts
                .iter()
                .map(|t| tokenizer.tokenize(t, n, overflow))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    print_json(&json!({ "tokens": rows }))?;
    Ok(0)
}
