//! What an unpickled stream is made of.
//!
//! Containers live in an arena ([`Heap`]) and values point at them by [`NodeId`]. That gives Python's
//! sharing semantics for free (a memoised dict filled later by `SETITEMS`, an object completed by
//! `BUILD` after `BINPUT`), and it keeps hostile input harmless: self-referencing containers cannot
//! leak, and dropping a million-deep nesting is a flat `Vec` drop, not a recursion that overflows.

use std::rc::Rc;

use crate::DType;

/// A pickle value. Cheap to clone: strings and bytes are shared, containers are references.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as pickled (little-endian two's complement).
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Global(Global),
    Ref(NodeId),
}

/// Index of a container in the [`Heap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub(super) usize);

/// A container or an inert call record.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Key/value pairs in insertion order; a repeated key appears twice (readers take the last).
    Dict(Vec<(Value, Value)>),
    /// An instance of an allowlisted class (TorchScript `__torch__.*`), never constructed: only its
    /// class name and the state `BUILD` gave it.
    Object {
        class: Rc<str>,
        state: Option<Value>,
    },
    /// An allowlisted function applied to arguments, recorded rather than run; the torch loaders
    /// interpret it (e.g. `_rebuild_tensor_v2(storage, offset, size, stride, ...)`).
    Call {
        func: Global,
        args: Vec<Value>,
    },
    /// A persistent id (`BINPERSID`): in torch files, a reference to a storage record.
    Persistent(Value),
}

/// The globals a torch checkpoint may name. Anything else is refused at `GLOBAL` time.
#[derive(Debug, Clone, PartialEq)]
pub enum Global {
    /// `collections.OrderedDict`: calling it makes an empty (or pre-filled) dict.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`: recorded as a [`Node::Call`].
    RebuildTensorV2,
    /// Wrappers that return their first argument: `torch._utils._rebuild_parameter`,
    /// `_rebuild_parameter_with_state`, and TorchScript's `torch.jit._pickle.restore_type_tag` and
    /// `build_{int,double,bool,tensor}list` (typed containers).
    FirstArg(&'static str),
    /// `torch.HalfStorage`, `torch.FloatStorage`, ...: the element type of a storage record.
    Storage(DType),
    /// `torch.device`: recorded as a [`Node::Call`], never needed for CPU loading.
    Device,
    /// A TorchScript module class (`__torch__.clip.model.CLIP`); only allowed when reading a
    /// TorchScript archive, and only ever instantiated as an inert [`Node::Object`].
    ScriptClass(Rc<str>),
}

/// Which optional parts of the allowlist a reader accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowlist {
    /// Accept `__torch__.*` classes (TorchScript archives only).
    pub script_classes: bool,
}

impl Global {
    /// Resolves `module.name` against the allowlist; `None` means refused.
    pub fn resolve(module: &str, name: &str, allow: Allowlist) -> Option<Global> {
        let storage = |dtype| Some(Global::Storage(dtype));
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => {
                Some(Global::FirstArg("torch._utils._rebuild_parameter"))
            }
            ("torch._utils", "_rebuild_parameter_with_state") => Some(Global::FirstArg(
                "torch._utils._rebuild_parameter_with_state",
            )),
            ("torch.jit._pickle", "restore_type_tag") => {
                Some(Global::FirstArg("torch.jit._pickle.restore_type_tag"))
            }
            ("torch.jit._pickle", "build_intlist") => {
                Some(Global::FirstArg("torch.jit._pickle.build_intlist"))
            }
            ("torch.jit._pickle", "build_doublelist") => {
                Some(Global::FirstArg("torch.jit._pickle.build_doublelist"))
            }
            ("torch.jit._pickle", "build_boollist") => {
                Some(Global::FirstArg("torch.jit._pickle.build_boollist"))
            }
            ("torch.jit._pickle", "build_tensorlist") => {
                Some(Global::FirstArg("torch.jit._pickle.build_tensorlist"))
            }
            ("torch", "HalfStorage") => storage(DType::F16),
            ("torch", "BFloat16Storage") => storage(DType::BF16),
            ("torch", "FloatStorage") => storage(DType::F32),
            ("torch", "DoubleStorage") => storage(DType::F64),
            ("torch", "LongStorage") => storage(DType::I64),
            ("torch", "IntStorage") => storage(DType::I32),
            ("torch", "ByteStorage") => storage(DType::U8),
            ("torch", "BoolStorage") => storage(DType::Bool),
            ("torch", "device") => Some(Global::Device),
            (m, n)
                if allow.script_classes
                    && (m == "__torch__" || m.starts_with("__torch__."))
                    && is_identifier(n) =>
            {
                Some(Global::ScriptClass(format!("{m}.{n}").into()))
            }
            _ => None,
        }
    }

    /// The dotted name, for error messages.
    pub fn name(&self) -> String {
        match self {
            Global::OrderedDict => "collections.OrderedDict".into(),
            Global::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2".into(),
            Global::FirstArg(name) => (*name).into(),
            Global::Storage(dtype) => format!("torch storage of {dtype:?}"),
            Global::Device => "torch.device".into(),
            Global::ScriptClass(name) => name.to_string(),
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The arena of containers built while unpickling.
#[derive(Debug, Default)]
pub struct Heap {
    nodes: Vec<Node>,
}

impl Heap {
    pub(super) fn alloc(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        NodeId(self.nodes.len() - 1)
    }

    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.0]
    }

    /// Every node, in creation order (to scan for persistent ids).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// The container a value refers to, if it is a reference.
    pub fn node(&self, v: &Value) -> Option<&Node> {
        match v {
            Value::Ref(id) => self.nodes.get(id.0),
            _ => None,
        }
    }

    /// Items of a tuple or list.
    pub fn seq(&self, v: &Value) -> Option<&[Value]> {
        match self.node(v)? {
            Node::Tuple(items) | Node::List(items) => Some(items),
            _ => None,
        }
    }

    /// Pairs of a dict.
    pub fn dict(&self, v: &Value) -> Option<&[(Value, Value)]> {
        match self.node(v)? {
            Node::Dict(items) => Some(items),
            _ => None,
        }
    }

    /// The value under a string key of a dict (the last one, as Python keeps).
    pub fn dict_get<'a>(&'a self, v: &Value, key: &str) -> Option<&'a Value> {
        self.dict(v)?
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}
