//! Splitting an ordered list of inputs over machines (`clip embed --shard i/N`).

use std::fmt;
use std::str::FromStr;

/// `--shard i/N`: item `k` of a sorted list belongs to shard `k % N`, so `N` machines given the
/// same list split it without overlap or gap, and each shard is spread over the whole list.
/// Always `index < count` (so `count > 0`): the fields are private to keep it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The whole set.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: usize, count: usize) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// This shard's number, `0 <= index < count`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many shards the list is split into.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether item `item` of the list belongs to this shard.
    pub fn contains(&self, item: usize) -> bool {
        item % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid shard {s:?}: expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(index, count).ok_or_else(bad)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        let shards: Vec<Shard> = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for item in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.contains(item)).count(), 1);
        }
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains(bad), "{bad}");
        }
    }
}
