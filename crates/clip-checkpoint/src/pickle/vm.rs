//! The pickle machine: a stack, a mark stack and a memo, driven by the opcodes of `ops.rs`.
//! Semantics follow CPython's `_pickle.c` (including the mark "fence": popping below the last MARK
//! is an underflow), minus everything that would run code.

use std::collections::HashMap;
use std::rc::Rc;

use super::ops::{Op, Reader};
use super::value::{Allowlist, Global, Heap, Node, Value};
use super::PickleError;

/// Bounds that keep a hostile stream's memory use proportional to its size, and small.
const MAX_STACK: usize = 1 << 20;
const MAX_MARKS: usize = 1 << 16;
const MAX_MEMO: usize = 1 << 20;
const MAX_NODES: usize = 1 << 22;

/// The result of one pickle: the heap of containers, the root value, and where the stream ended
/// (legacy `torch.save` files hold several pickles back to back).
#[derive(Debug)]
pub struct Unpickled {
    pub heap: Heap,
    pub root: Value,
    pub end: usize,
}

/// Reads one pickle starting at `start`, up to and including its `STOP`.
pub fn unpickle(data: &[u8], start: usize, allow: Allowlist) -> Result<Unpickled, PickleError> {
    let mut vm = Vm {
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        heap: Heap::default(),
        allow,
    };
    let mut reader = Reader::new(data, start);
    loop {
        let offset = reader.pos();
        let fail = |message: String| PickleError { offset, message };
        let op = reader.op().map_err(fail)?;
        if op == Op::Stop {
            let root = vm.pop().map_err(fail)?;
            return Ok(Unpickled {
                heap: vm.heap,
                root,
                end: reader.pos(),
            });
        }
        vm.step(op).map_err(fail)?;
    }
}

struct Vm {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    heap: Heap,
    allow: Allowlist,
}

impl Vm {
    fn step(&mut self, op: Op<'_>) -> Result<(), String> {
        match op {
            Op::Proto(p) if p > 5 => return Err(format!("unsupported pickle protocol {p}")),
            Op::Proto(_) | Op::Frame => {}
            Op::Stop => unreachable!("handled by the caller"),
            Op::Mark => {
                if self.marks.len() >= MAX_MARKS {
                    return Err("too many nested MARKs".into());
                }
                self.marks.push(self.stack.len());
            }
            Op::Pop => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else {
                    self.pop_mark()?;
                }
            }
            Op::PopMark => {
                self.pop_mark()?;
            }
            Op::Dup => {
                let top = self.top()?.clone();
                self.push(top)?;
            }
            Op::None => self.push(Value::None)?,
            Op::Bool(b) => self.push(Value::Bool(b))?,
            Op::Int(i) => self.push(Value::Int(i))?,
            Op::BigInt(b) => self.push(Value::BigInt(b.into()))?,
            Op::Float(f) => self.push(Value::Float(f))?,
            Op::Str(s) => self.push(Value::Str(s.into()))?,
            Op::Bytes(b) => self.push(Value::Bytes(b.into()))?,
            Op::EmptyTuple => self.push_node(Node::Tuple(Vec::new()))?,
            Op::Tuple => {
                let items = self.pop_mark()?;
                self.push_node(Node::Tuple(items))?;
            }
            Op::Tuple1 | Op::Tuple2 | Op::Tuple3 => {
                let n = match op {
                    Op::Tuple1 => 1,
                    Op::Tuple2 => 2,
                    _ => 3,
                };
                if self.stack.len() < self.fence() + n {
                    return Err("pickle stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_node(Node::Tuple(items))?;
            }
            Op::EmptyList => self.push_node(Node::List(Vec::new()))?,
            Op::List => {
                let items = self.pop_mark()?;
                self.push_node(Node::List(items))?;
            }
            Op::Append => {
                let v = self.pop()?;
                self.list_of_top()?.push(v);
            }
            Op::Appends => {
                let items = self.pop_mark()?;
                self.list_of_top()?.extend(items);
            }
            Op::EmptyDict => self.push_node(Node::Dict(Vec::new()))?,
            Op::Dict => {
                let items = pairs(self.pop_mark()?)?;
                self.push_node(Node::Dict(items))?;
            }
            Op::SetItem => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.dict_of_top()?.push((k, v));
            }
            Op::SetItems => {
                let items = pairs(self.pop_mark()?)?;
                self.dict_of_top()?.extend(items);
            }
            Op::Put(i) => {
                let top = self.top()?.clone();
                self.memoize(i, top)?;
            }
            Op::Memoize => {
                let top = self.top()?.clone();
                self.memoize(self.memo.len() as u64, top)?;
            }
            Op::Get(i) => {
                let v = self
                    .memo
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| format!("memo entry {i} was never stored"))?;
                self.push(v)?;
            }
            Op::Global(module, name) => self.push_global(module, name)?,
            Op::StackGlobal => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module.as_str(), name.as_str()) {
                    (Some(m), Some(n)) => self.push_global(m, n)?,
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            Op::Reduce => {
                let args = self.pop()?;
                let func = self.pop()?;
                let args = self
                    .heap
                    .seq(&args)
                    .ok_or("REDUCE arguments are not a tuple")?
                    .to_vec();
                self.reduce(func, args)?;
            }
            Op::NewObj => {
                let _args = self.pop()?;
                let class = self.pop()?;
                self.new_object(class)?;
            }
            Op::NewObjEx => {
                let _kwargs = self.pop()?;
                let _args = self.pop()?;
                let class = self.pop()?;
                self.new_object(class)?;
            }
            Op::Build => {
                let state = self.pop()?;
                let not_object = || "BUILD on something that is not an object".to_string();
                let &Value::Ref(id) = self.top()? else {
                    return Err(not_object());
                };
                match self.heap.node_mut(id) {
                    Node::Object { state: slot, .. } => *slot = Some(state),
                    // OrderedDict's instance __dict__ (torch's `_metadata`): not needed.
                    Node::Dict(_) => {}
                    _ => return Err(not_object()),
                }
            }
            Op::PersId(pid) => self.push_node(Node::Persistent(Value::Str(pid.into())))?,
            Op::BinPersId => {
                let pid = self.pop()?;
                self.push_node(Node::Persistent(pid))?;
            }
        }
        Ok(())
    }

    /// Stack index below which the current MARK forbids popping.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Value) -> Result<(), String> {
        if self.stack.len() >= MAX_STACK {
            return Err("pickle stack too deep".into());
        }
        self.stack.push(v);
        Ok(())
    }

    fn push_node(&mut self, node: Node) -> Result<(), String> {
        if self.heap.len() >= MAX_NODES {
            return Err("too many pickle objects".into());
        }
        let id = self.heap.alloc(node);
        self.push(Value::Ref(id))
    }

    fn pop(&mut self) -> Result<Value, String> {
        if self.stack.len() <= self.fence() {
            return Err("pickle stack underflow".into());
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<&Value, String> {
        if self.stack.len() <= self.fence() {
            return Err("pickle stack underflow".into());
        }
        Ok(self.stack.last().expect("checked above"))
    }

    /// Everything above the last MARK, removing the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no MARK on the pickle stack")?;
        Ok(self.stack.split_off(mark))
    }

    fn memoize(&mut self, index: u64, v: Value) -> Result<(), String> {
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err("pickle memo too large".into());
        }
        self.memo.insert(index, v);
        Ok(())
    }

    fn list_of_top(&mut self) -> Result<&mut Vec<Value>, String> {
        match self.top()? {
            &Value::Ref(id) => match self.heap.node_mut(id) {
                Node::List(items) => Ok(items),
                _ => Err("APPEND to something that is not a list".into()),
            },
            _ => Err("APPEND to something that is not a list".into()),
        }
    }

    fn dict_of_top(&mut self) -> Result<&mut Vec<(Value, Value)>, String> {
        match self.top()? {
            &Value::Ref(id) => match self.heap.node_mut(id) {
                Node::Dict(items) => Ok(items),
                _ => Err("SETITEM on something that is not a dict".into()),
            },
            _ => Err("SETITEM on something that is not a dict".into()),
        }
    }

    fn push_global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let global = Global::resolve(module, name, self.allow)
            .ok_or_else(|| format!("disallowed pickle global {module}.{name}"))?;
        self.push(Value::Global(global))
    }

    /// `REDUCE`: only allowlisted functions, and none of them is run.
    fn reduce(&mut self, func: Value, args: Vec<Value>) -> Result<(), String> {
        let Value::Global(global) = func else {
            return Err("REDUCE of something that is not an allowlisted function".into());
        };
        match global {
            Global::OrderedDict => {
                let items = match args.as_slice() {
                    [] => Vec::new(),
                    [items] => {
                        let items = self
                            .heap
                            .seq(items)
                            .ok_or("OrderedDict argument is not a list of pairs")?;
                        let pairs: Option<Vec<_>> = items
                            .iter()
                            .map(|p| match self.heap.seq(p) {
                                Some([k, v]) => Some((k.clone(), v.clone())),
                                _ => None,
                            })
                            .collect();
                        pairs.ok_or("OrderedDict argument is not a list of pairs")?
                    }
                    _ => return Err("OrderedDict called with several arguments".into()),
                };
                self.push_node(Node::Dict(items))
            }
            Global::FirstArg(name) => {
                let first = args
                    .into_iter()
                    .next()
                    .ok_or_else(|| format!("{name} called without arguments"))?;
                self.push(first)
            }
            Global::RebuildTensorV2 | Global::Device => {
                self.push_node(Node::Call { func: global, args })
            }
            Global::Storage(_) | Global::ScriptClass(_) => {
                Err(format!("{} cannot be called", global.name()))
            }
        }
    }

    /// `NEWOBJ`: only TorchScript classes, as inert objects awaiting `BUILD`.
    fn new_object(&mut self, class: Value) -> Result<(), String> {
        match class {
            Value::Global(Global::ScriptClass(name)) => self.push_node(Node::Object {
                class: Rc::clone(&name),
                state: None,
            }),
            Value::Global(g) => Err(format!("{} cannot be instantiated", g.name())),
            _ => Err("NEWOBJ of something that is not a class".into()),
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if items.len() % 2 == 1 {
        return Err("odd number of items for a dict".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TORCH: Allowlist = Allowlist {
        script_classes: false,
    };
    const SCRIPT: Allowlist = Allowlist {
        script_classes: true,
    };

    fn load(bytes: &[u8], allow: Allowlist) -> Result<Unpickled, PickleError> {
        unpickle(bytes, 0, allow)
    }

    fn s(text: &str) -> Vec<u8> {
        let mut out = vec![b'X'];
        out.extend((text.len() as u32).to_le_bytes());
        out.extend(text.as_bytes());
        out
    }

    #[test]
    fn scalars_and_containers() {
        // (1, -2, 3.5, None, True, "a", b"b") in a list, protocol 2
        let mut p = b"\x80\x02](K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00N\x88".to_vec();
        p.extend(s("a"));
        p.extend(b"C\x01bta.");
        let u = load(&p, TORCH).unwrap();
        let items = u.heap.seq(&u.root).unwrap();
        assert_eq!(items.len(), 1);
        let t = u.heap.seq(&items[0]).unwrap();
        assert_eq!(
            t[..5],
            [
                Value::Int(1),
                Value::Int(-2),
                Value::Float(3.5),
                Value::None,
                Value::Bool(true)
            ]
        );
        assert_eq!(t[5].as_str(), Some("a"));
        assert_eq!(t[6], Value::Bytes(b"b"[..].into()));
        assert_eq!(u.end, p.len());
    }

    #[test]
    fn tuples_dicts_and_memo_share_containers() {
        // d = {}; memo[0] = d; l = [d, d]; d["k"] = (1, 2, 3): both list items see the key
        let mut p = b"\x80\x02}q\x00](h\x00h\x00eq\x01h\x00".to_vec();
        p.extend(s("k"));
        p.extend(b"K\x01K\x02K\x03\x87s0h\x01.");
        let u = load(&p, TORCH).unwrap();
        let items = u.heap.seq(&u.root).unwrap();
        assert_eq!(items[0], items[1]);
        let v = u.heap.dict_get(&items[0], "k").unwrap();
        assert_eq!(
            u.heap.seq(v).unwrap(),
            [Value::Int(1), Value::Int(2), Value::Int(3)]
        );
    }

    #[test]
    fn memoize_and_long_binget() {
        let p = b"\x80\x04K\x07\x94j\x00\x00\x00\x00\x86.";
        let u = load(p, TORCH).unwrap();
        assert_eq!(u.heap.seq(&u.root).unwrap(), [Value::Int(7), Value::Int(7)]);
        assert!(load(b"\x80\x02h\x05.", TORCH)
            .unwrap_err()
            .message
            .contains("memo entry 5"));
    }

    #[test]
    fn ordered_dict_and_build_of_metadata() {
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)R(".to_vec();
        p.extend(s("w"));
        p.extend(b"K\x01u}b.");
        let u = load(&p, TORCH).unwrap();
        assert_eq!(u.heap.dict_get(&u.root, "w"), Some(&Value::Int(1)));
    }

    #[test]
    fn stack_global_and_rebuild_tensor_call() {
        let mut p = b"\x80\x04".to_vec();
        p.extend(b"\x8c\x0ctorch._utils\x8c\x12_rebuild_tensor_v2\x93");
        p.extend(b"((\x8c\x07storage\x8c\x05torch\x8c\x0cFloatStorage\x93\x8c\x010\x8c\x03cpuK\x04t\x94Q");
        p.extend(b"K\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt\x94R.");
        let u = load(&p, TORCH).unwrap();
        let Some(Node::Call {
            func: Global::RebuildTensorV2,
            args,
        }) = u.heap.node(&u.root)
        else {
            panic!("{:?}", u.heap.node(&u.root))
        };
        assert_eq!(args.len(), 6);
        let Some(Node::Persistent(pid)) = u.heap.node(&args[0]) else {
            panic!()
        };
        let pid = u.heap.seq(pid).unwrap();
        assert_eq!(pid[1], Value::Global(Global::Storage(crate::DType::F32)));
    }

    #[test]
    fn disallowed_globals_are_refused_before_anything_runs() {
        let err = load(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.", TORCH).unwrap_err();
        assert_eq!(err.message, "disallowed pickle global os.system");
        let err = load(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", TORCH).unwrap_err();
        assert_eq!(err.message, "disallowed pickle global builtins.eval");
        // TorchScript classes only when asked for, and never callable
        let obj = b"\x80\x02c__torch__.clip.model\nCLIP\n)\x81}b.";
        assert!(load(obj, TORCH)
            .unwrap_err()
            .message
            .contains("disallowed pickle global __torch__.clip.model.CLIP"));
        let u = load(obj, SCRIPT).unwrap();
        assert!(matches!(
            u.heap.node(&u.root),
            Some(Node::Object { state: Some(_), .. })
        ));
        let call = b"\x80\x02c__torch__.m\nC\n)R.";
        assert!(load(call, SCRIPT)
            .unwrap_err()
            .message
            .contains("cannot be called"));
        assert!(load(b"\x80\x02ctorch\nFloatStorage\n)\x81.", TORCH)
            .unwrap_err()
            .message
            .contains("cannot be instantiated"));
        assert!(load(b"\x80\x02K\x01)R.", TORCH)
            .unwrap_err()
            .message
            .contains("not an allowlisted function"));
    }

    #[test]
    fn malformed_streams_error_without_panicking() {
        for (bytes, what) in [
            (&b"\x80\x02."[..], "underflow"),
            (b"\x80\x02K\x01s.", "underflow"),
            (b"\x80\x02K\x05(K\x01e.", "not a list"),
            (b"\x80\x02}K\x01a.", "not a list"),
            (b"\x80\x02(K\x01d.", "odd number"),
            (b"\x80\x02t.", "no MARK"),
            (b"\x80\x09.", "protocol 9"),
            (b"\x80\x02K\x01K\x02b.", "not an object"),
            (b"\x80\x02(K\x01", "no STOP"),
        ] {
            let err = load(bytes, TORCH).unwrap_err();
            assert!(err.message.contains(what), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn every_prefix_and_random_garbage_is_an_error_not_a_panic() {
        let mut p = b"\x80\x02}q\x00(".to_vec();
        p.extend(s("key"));
        p.extend(b"ccollections\nOrderedDict\n)R]K\x01aK\x02G?\xf0\x00\x00\x00\x00\x00\x00\x86u.");
        assert!(load(&p, TORCH).is_ok());
        for n in 0..p.len() {
            assert!(load(&p[..n], TORCH).is_err(), "prefix {n}");
        }
        // xorshift garbage, biased towards opcode bytes
        let mut state = 0x9e3779b97f4a7c15u64;
        let alphabet =
            b"().012NIJKMGXhqjr]}atsuedlRbQ\x80\x81\x85\x86\x87\x88\x89\x8a\x8c\x93\x94\x95cp";
        for _ in 0..20_000 {
            let len = (state % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state % 3 == 1 {
                        (state >> 8) as u8
                    } else {
                        alphabet[(state >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let _ = load(&bytes, SCRIPT);
        }
    }

    #[test]
    fn deep_nesting_and_cycles_are_harmless() {
        // a list that contains itself
        let u = load(b"\x80\x02]q\x00h\x00a.", TORCH).unwrap();
        assert_eq!(u.heap.seq(&u.root).unwrap()[0], u.root);
        // 200k nested lists built through the memo: dropping them must not recurse
        let mut p = b"\x80\x02]q\x00".to_vec();
        for _ in 0..200_000 {
            p.extend(b"h\x00]q\x01a0h\x01q\x000");
        }
        p.extend(b"h\x00.");
        assert!(load(&p, TORCH).is_ok());
    }
}
