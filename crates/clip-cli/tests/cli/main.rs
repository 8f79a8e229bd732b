//! End-to-end tests of the `clip` binary: they run the real binary and check its output against
//! goldens made by the reference implementations (never against our own earlier output). One test
//! binary, as ripgrep has, one module per command family, the shared helpers in [`util`].

mod cache_history;
mod chroma_store;
mod discovery;
mod embed;
mod export;
mod families;
mod fast_modes;
mod hostile;
mod index_search;
mod models;
mod moderate;
mod serve;
mod util;
mod zero_shot;
