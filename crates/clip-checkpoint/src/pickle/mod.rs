//! A restricted pickle reader: enough of the pickle machine (protocols 0 to 5, the binary opcodes
//! torch writes) to read `torch.save` state dicts and TorchScript module trees, and nothing more.
//!
//! It never executes anything. `GLOBAL` resolves only an allowlist ([`Global`]); every other name is
//! refused ("disallowed pickle global os.system"). Allowlisted functions are not called either: a
//! `REDUCE` of `_rebuild_tensor_v2` becomes a [`Node::Call`] that the torch loaders interpret, and
//! TorchScript classes become inert [`Node::Object`]s holding their `BUILD` state.
//!
//! Hostile input is expected: every claimed length is checked against the bytes that are really
//! there before anything is allocated, the stack, memo and heap are bounded, and truncated or
//! garbage streams end in an error, never a panic.

mod ops;
mod value;
mod vm;

pub use value::{Allowlist, Global, Heap, Node, Value};
pub use vm::{unpickle, Unpickled};

/// Why a pickle stream was refused: the byte offset of the opcode and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pickle byte {})", self.message, self.offset)
    }
}

impl std::error::Error for PickleError {}
