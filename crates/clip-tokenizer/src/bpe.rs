//! Byte-level BPE of one pre-token, as `SimpleTokenizer.bpe` does it.
//!
//! The reference repeatedly takes the adjacent pair with the lowest merge rank and merges all its
//! non-overlapping occurrences left to right, until no pair is in the merge list. Rescanning the
//! whole word for every merge is quadratic in the word length, so this implementation keeps the
//! candidate pairs in a heap ordered by (rank, position) and processes one rank at a time ("a
//! round"): the pairs a round creates are only queued after it, exactly as the reference only
//! looks at them in its next iteration. That keeps the result identical even for merge lists in
//! which a merge's product takes part in a lower-ranked merge.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rustc_hash::FxHashMap;
use std::sync::Mutex;

use crate::vocab::Vocab;

/// Words cached at most; the reference caches without bound, but a long-running process
/// tokenising arbitrary text should not grow forever. Beyond this, words are recomputed.
const CACHE_CAPACITY: usize = 100_000;

const NONE: usize = usize::MAX;

pub(crate) struct Bpe {
    /// (left id, right id) -> (rank, id of the merged token).
    /// Static table: a fast non-keyed hash (it is built at every start-up).
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// Id of each byte's character, inside a word and at its end (with `</w>`).
    byte_id: [u32; 256],
    byte_end_id: [u32; 256],
    /// Pre-token -> ids; the reference keeps the same cache.
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl Bpe {
    pub(crate) fn new(vocab: &Vocab) -> Bpe {
        let mut byte_id = [0u32; 256];
        let mut byte_end_id = [0u32; 256];
        for (b, &c) in vocab.byte_char.iter().enumerate() {
            // Both forms are part of the vocabulary by construction.
            byte_id[b] = vocab.id(&c.to_string()).unwrap_or_default();
            byte_end_id[b] = vocab.id(&format!("{c}</w>")).unwrap_or_default();
        }
        let mut merges =
            FxHashMap::with_capacity_and_hasher(vocab.merges().len(), Default::default());
        for (rank, (a, b)) in vocab.merges().iter().enumerate() {
            // A merge whose halves are not tokens can never apply; its product is always a token.
            if let (Some(ia), Some(ib), Some(merged)) =
                (vocab.id(a), vocab.id(b), vocab.id(&format!("{a}{b}")))
            {
                // `dict(zip(merges, ranks))`: a repeated pair keeps its last rank.
                merges.insert((ia, ib), (rank as u32, merged));
            }
        }
        Bpe {
            merges,
            byte_id,
            byte_end_id,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Appends the ids of one pre-token (a non-empty string from the pre-tokeniser).
    pub(crate) fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        if let Some(ids) = self.cache.lock().ok().and_then(|c| c.get(word).cloned()) {
            out.extend_from_slice(&ids);
            return;
        }
        let ids = self.merge_word(word.as_bytes());
        out.extend_from_slice(&ids);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() < CACHE_CAPACITY {
                cache.insert(word.to_owned(), ids);
            }
        }
    }

    fn merge_word(&self, bytes: &[u8]) -> Vec<u32> {
        let Some((&last, init)) = bytes.split_last() else {
            return Vec::new();
        };
        // Symbols as a doubly linked list over a vector; merged-away nodes are marked dead.
        let mut ids: Vec<u32> = init.iter().map(|&b| self.byte_id[b as usize]).collect();
        ids.push(self.byte_end_id[last as usize]);
        let n = ids.len();
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut alive = vec![true; n];

        let rank_at = |ids: &[u32], next: &[usize], left: usize| -> Option<u32> {
            let right = next[left];
            if right == NONE {
                return None;
            }
            self.merges
                .get(&(ids[left], ids[right]))
                .map(|&(rank, _)| rank)
        };

        let mut heap: BinaryHeap<Reverse<(u32, usize)>> = (0..n)
            .filter_map(|i| rank_at(&ids, &next, i).map(|rank| Reverse((rank, i))))
            .collect();
        let mut touched: Vec<usize> = Vec::new();

        while let Some(&Reverse((round_rank, _))) = heap.peek() {
            // One round: every occurrence of this pair, left to right.
            while let Some(&Reverse((rank, left))) = heap.peek() {
                if rank != round_rank {
                    break;
                }
                heap.pop();
                // Ranks identify pairs, so an entry is current iff its pair still has this rank.
                if !alive[left] || rank_at(&ids, &next, left) != Some(rank) {
                    continue;
                }
                let right = next[left];
                let Some(&(_, merged)) = self.merges.get(&(ids[left], ids[right])) else {
                    continue;
                };
                ids[left] = merged;
                alive[right] = false;
                next[left] = next[right];
                if next[right] != NONE {
                    prev[next[right]] = left;
                }
                touched.push(left);
                if prev[left] != NONE {
                    touched.push(prev[left]);
                }
            }
            // The pairs this round created are candidates from the next round on.
            touched.sort_unstable();
            touched.dedup();
            for &left in &touched {
                if alive[left] {
                    if let Some(rank) = rank_at(&ids, &next, left) {
                        heap.push(Reverse((rank, left)));
                    }
                }
            }
            touched.clear();
        }

        let mut result = Vec::new();
        let mut i = 0;
        while i != NONE {
            result.push(ids[i]);
            i = next[i];
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference algorithm, transcribed literally (quadratic), to check the heap version.
    fn reference_bpe(vocab: &Vocab, word: &str) -> Vec<u32> {
        let ranks: HashMap<(String, String), usize> = vocab
            .merges()
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, m)| (m, i))
            .collect();
        let chars: Vec<String> = word
            .bytes()
            .map(|b| vocab.byte_char[b as usize].to_string())
            .collect();
        let mut symbols: Vec<String> = chars.clone();
        if let Some(last) = symbols.last_mut() {
            last.push_str("</w>");
        }
        loop {
            if symbols.len() < 2 {
                break;
            }
            let best = symbols
                .windows(2)
                .filter_map(|w| {
                    ranks
                        .get(&(w[0].clone(), w[1].clone()))
                        .map(|&r| (r, w[0].clone(), w[1].clone()))
                })
                .min();
            let Some((_, first, second)) = best else {
                break;
            };
            let mut merged = Vec::new();
            let mut i = 0;
            while i < symbols.len() {
                if i + 1 < symbols.len() && symbols[i] == first && symbols[i + 1] == second {
                    merged.push(format!("{first}{second}"));
                    i += 2;
                } else {
                    merged.push(symbols[i].clone());
                    i += 1;
                }
            }
            symbols = merged;
        }
        symbols.iter().map(|s| vocab.id(s).unwrap()).collect()
    }

    #[test]
    fn matches_the_literal_algorithm() {
        let vocab = Vocab::embedded();
        let bpe = Bpe::new(&vocab);
        let words = [
            "a",
            "cat",
            "photo",
            "supercalifragilisticexpialidocious",
            "aaaaaaaaaaaaaaaaaaaaaaa",
            "ababababababab",
            "zzzzzzzzz",
            "привет",
            "日本語",
            "😀😀😀",
            "!!!!!!",
            "hellohellohello",
            "thequickbrownfoxjumpsoverthelazydog",
            "llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch",
        ];
        for word in words {
            assert_eq!(
                bpe.merge_word(word.as_bytes()),
                reference_bpe(&vocab, word),
                "{word}"
            );
        }
        assert_eq!(bpe.merge_word(b"cat"), vec![vocab.id("cat</w>").unwrap()]);
    }

    #[test]
    fn cache_returns_the_same_ids() {
        let vocab = Vocab::embedded();
        let bpe = Bpe::new(&vocab);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        bpe.encode_word("tokenizer", &mut a);
        bpe.encode_word("tokenizer", &mut b);
        assert_eq!(a, b);
        assert!(!a.is_empty());
    }

    #[test]
    fn long_words_are_fast() {
        let vocab = Vocab::embedded();
        let bpe = Bpe::new(&vocab);
        let word: String = (0..200_000)
            .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
            .collect();
        let start = std::time::Instant::now();
        let ids = bpe.merge_word(word.as_bytes());
        assert!(!ids.is_empty());
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    }
}
