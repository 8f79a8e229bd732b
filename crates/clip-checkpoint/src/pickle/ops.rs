//! The pickle wire format: decoding one opcode and its inline argument from the byte stream.
//! Semantics live in `vm.rs`; here every length is checked against the remaining input, so a
//! claimed 4 GiB string in a 100-byte file is an error before any allocation.

/// One decoded opcode with its inline argument (borrowed from the input).
#[derive(Debug, Clone, PartialEq)]
pub enum Op<'a> {
    Proto(u8),
    Frame,
    Stop,
    Mark,
    Pop,
    PopMark,
    Dup,
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits: little-endian two's complement bytes.
    BigInt(&'a [u8]),
    Float(f64),
    Str(&'a str),
    Bytes(&'a [u8]),
    EmptyTuple,
    Tuple,
    Tuple1,
    Tuple2,
    Tuple3,
    EmptyList,
    List,
    Append,
    Appends,
    EmptyDict,
    Dict,
    SetItem,
    SetItems,
    Put(u64),
    Get(u64),
    Memoize,
    Global(&'a str, &'a str),
    StackGlobal,
    Reduce,
    NewObj,
    NewObjEx,
    Build,
    PersId(&'a str),
    BinPersId,
}

/// A cursor over the pickle bytes that never reads past the end.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Self { data, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = self.data.len() - self.pos;
        if n > left as u64 {
            return Err(format!("truncated pickle: {n} bytes claimed, {left} left"));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self
            .take(N as u64)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    /// A `\n`-terminated text argument (protocol 0 forms and `GLOBAL`), at most 4 KiB.
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .take(4096)
            .position(|&b| b == b'\n')
            .ok_or("unterminated text argument")?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| "text argument is not UTF-8")?;
        self.pos += end + 1;
        Ok(text)
    }

    fn utf8(&mut self, n: u64) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(n)?).map_err(|_| "string is not valid UTF-8".to_string())
    }

    fn decimal(&mut self) -> Result<i64, String> {
        let line = self.line()?;
        line.trim_end_matches('L')
            .parse()
            .map_err(|_| format!("bad or too large integer {line:?}"))
    }

    /// `LONG1`/`LONG4` payload: little-endian two's complement of any width.
    fn long(&mut self, n: u64) -> Result<Op<'a>, String> {
        let b = self.take(n)?;
        if b.len() > 8 {
            return Ok(Op::BigInt(b));
        }
        let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut full = [fill; 8];
        full[..b.len()].copy_from_slice(b);
        Ok(Op::Int(i64::from_le_bytes(full)))
    }

    /// Decodes the next opcode.
    pub fn op(&mut self) -> Result<Op<'a>, String> {
        let code = self
            .u8()
            .map_err(|_| "truncated pickle: no STOP opcode".to_string())?;
        Ok(match code {
            0x80 => Op::Proto(self.u8()?),
            0x95 => {
                self.take(8)?;
                Op::Frame
            }
            b'.' => Op::Stop,
            b'(' => Op::Mark,
            b'0' => Op::Pop,
            b'1' => Op::PopMark,
            b'2' => Op::Dup,
            b'N' => Op::None,
            0x88 => Op::Bool(true),
            0x89 => Op::Bool(false),
            b'I' => match self.line()? {
                "01" => Op::Bool(true),
                "00" => Op::Bool(false),
                s => Op::Int(s.parse().map_err(|_| format!("bad integer {s:?}"))?),
            },
            b'L' => Op::Int(self.decimal()?),
            b'J' => Op::Int(i32::from_le_bytes(self.array()?) as i64),
            b'K' => Op::Int(self.u8()? as i64),
            b'M' => Op::Int(u16::from_le_bytes(self.array()?) as i64),
            0x8a => {
                let n = self.u8()? as u64;
                self.long(n)?
            }
            0x8b => {
                let n = u32::from_le_bytes(self.array()?) as u64;
                self.long(n)?
            }
            b'G' => Op::Float(f64::from_be_bytes(self.array()?)),
            b'X' => {
                let n = u32::from_le_bytes(self.array()?) as u64;
                Op::Str(self.utf8(n)?)
            }
            0x8c => {
                let n = self.u8()? as u64;
                Op::Str(self.utf8(n)?)
            }
            0x8d => {
                let n = u64::from_le_bytes(self.array()?);
                Op::Str(self.utf8(n)?)
            }
            // Python 2 `str` (BINSTRING, SHORT_BINSTRING): torch.load decodes them as UTF-8.
            b'T' => {
                let n = u32::from_le_bytes(self.array()?) as u64;
                Op::Str(self.utf8(n)?)
            }
            b'U' => {
                let n = self.u8()? as u64;
                Op::Str(self.utf8(n)?)
            }
            b'B' => {
                let n = u32::from_le_bytes(self.array()?) as u64;
                Op::Bytes(self.take(n)?)
            }
            b'C' => {
                let n = self.u8()? as u64;
                Op::Bytes(self.take(n)?)
            }
            0x8e | 0x96 => {
                let n = u64::from_le_bytes(self.array()?);
                Op::Bytes(self.take(n)?)
            }
            b')' => Op::EmptyTuple,
            b't' => Op::Tuple,
            0x85 => Op::Tuple1,
            0x86 => Op::Tuple2,
            0x87 => Op::Tuple3,
            b']' => Op::EmptyList,
            b'l' => Op::List,
            b'a' => Op::Append,
            b'e' => Op::Appends,
            b'}' => Op::EmptyDict,
            b'd' => Op::Dict,
            b's' => Op::SetItem,
            b'u' => Op::SetItems,
            b'p' => Op::Put(
                self.decimal()?
                    .try_into()
                    .map_err(|_| "negative memo index")?,
            ),
            b'q' => Op::Put(self.u8()? as u64),
            b'r' => Op::Put(u32::from_le_bytes(self.array()?) as u64),
            0x94 => Op::Memoize,
            b'g' => Op::Get(
                self.decimal()?
                    .try_into()
                    .map_err(|_| "negative memo index")?,
            ),
            b'h' => Op::Get(self.u8()? as u64),
            b'j' => Op::Get(u32::from_le_bytes(self.array()?) as u64),
            b'c' => {
                let module = self.line()?;
                Op::Global(module, self.line()?)
            }
            0x93 => Op::StackGlobal,
            b'R' => Op::Reduce,
            0x81 => Op::NewObj,
            0x92 => Op::NewObjEx,
            b'b' => Op::Build,
            b'P' => Op::PersId(self.line()?),
            b'Q' => Op::BinPersId,
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Op<'_>, String> {
        Reader::new(bytes, 0).op()
    }

    #[test]
    fn integers() {
        assert_eq!(one(b"K\xff"), Ok(Op::Int(255)));
        assert_eq!(one(b"M\x00\x10"), Ok(Op::Int(4096)));
        assert_eq!(one(b"J\xff\xff\xff\xff"), Ok(Op::Int(-1)));
        assert_eq!(one(b"\x8a\x02\x00\x80"), Ok(Op::Int(-32768)));
        assert_eq!(one(b"\x8a\x00"), Ok(Op::Int(0)));
        assert_eq!(one(b"\x8a\x01\x7f"), Ok(Op::Int(127)));
        assert_eq!(one(b"I01\n"), Ok(Op::Bool(true)));
        assert_eq!(one(b"I-42\n"), Ok(Op::Int(-42)));
        assert_eq!(one(b"L12L\n"), Ok(Op::Int(12)));
        // torch's legacy magic number does not fit 64 bits
        let magic = b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19";
        assert_eq!(one(magic), Ok(Op::BigInt(&magic[2..])));
    }

    #[test]
    fn strings_and_floats() {
        assert_eq!(one(b"X\x02\x00\x00\x00hi"), Ok(Op::Str("hi")));
        assert_eq!(one(b"\x8c\x03abc"), Ok(Op::Str("abc")));
        assert_eq!(one(b"C\x01z"), Ok(Op::Bytes(b"z")));
        assert_eq!(one(b"G?\xf0\x00\x00\x00\x00\x00\x00"), Ok(Op::Float(1.0)));
        assert_eq!(
            one(b"ctorch\nFloatStorage\n"),
            Ok(Op::Global("torch", "FloatStorage"))
        );
        assert!(one(b"X\x02\x00\x00\x00\xff\xfe")
            .unwrap_err()
            .contains("UTF-8"));
    }

    #[test]
    fn claimed_lengths_are_checked_before_use() {
        let err = one(b"X\xff\xff\xff\xffabc").unwrap_err();
        assert!(err.contains("4294967295 bytes claimed, 3 left"), "{err}");
        let err = one(b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
        assert!(err.contains("claimed"), "{err}");
        assert!(one(b"\x8b\xff\xff\xff\x7f").is_err());
        assert!(one(b"cos\nsys").is_err());
        assert!(one(b"").unwrap_err().contains("no STOP"));
        assert!(one(b"\xff")
            .unwrap_err()
            .contains("unsupported pickle opcode 0xff"));
    }
}
