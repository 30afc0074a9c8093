//! String keys to numbers without a string allocation per key: the keys lie end to end in one
//! buffer and a hash table holds only their numbers. The reader keeps one of these for user DNs,
//! one for `uid`s and one for group DNs; a `String` per key (and a `HashMap` entry pointing to a
//! copy of the external id) was most of its memory.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Keys (in a buffer) with a value each; a key inserted again takes the new value.
#[derive(Default)]
pub struct KeyIndex {
    text: String,
    /// Where each key ends in `text` (it starts where the previous one ends).
    ends: Vec<usize>,
    /// Per key, its value.
    values: Vec<u32>,
    /// Per key, its number and 32 bits of its hash: the table grows without reading (and hashing)
    /// every key again, and a lookup reads a key's text only when those bits match.
    table: HashTable<(u32, u32)>,
    hasher: DefaultHashBuilder,
}

/// Key `n` of a buffer of keys.
fn key_at<'t>(text: &'t str, ends: &[usize], n: u32) -> &'t str {
    let n = n as usize;
    let start = if n == 0 { 0 } else { ends[n - 1] };
    &text[start..ends[n]]
}

/// The 32 bits of a key's hash that the table keeps.
fn short_hash(hasher: &DefaultHashBuilder, key: &str) -> u32 {
    (hasher.hash_one(key) >> 32) as u32
}

/// A short hash as the table's 64 bits: the table takes a bucket from the low bits and a tag from
/// the top seven, which stay independent up to 2^25 buckets.
fn spread(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

impl KeyIndex {
    /// Sets the value of `key` (replacing an earlier one, as a map insert does).
    pub fn insert(&mut self, key: &str, value: u32) {
        let h = short_hash(&self.hasher, key);
        let Self {
            text,
            ends,
            values,
            table,
            ..
        } = self;
        if let Some(&(n, _)) = table.find(spread(h), |&(n, hn)| hn == h && key_at(text, ends, n) == key) {
            values[n as usize] = value;
            return;
        }
        table.insert_unique(spread(h), (ends.len() as u32, h), |&(_, hm)| spread(hm));
        text.push_str(key);
        ends.push(text.len());
        values.push(value);
    }

    pub fn get(&self, key: &str) -> Option<u32> {
        let h = short_hash(&self.hasher, key);
        self.table
            .find(spread(h), |&(n, hn)| {
                hn == h && key_at(&self.text, &self.ends, n) == key
            })
            .map(|&(n, _)| self.values[n as usize])
    }

    /// Heap bytes held (for the memory figures in the debug log).
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.ends.capacity() * size_of::<usize>()
            + self.values.capacity() * size_of::<u32>()
            + self.table.capacity() * (size_of::<(u32, u32)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_last_value() {
        let mut index = KeyIndex::default();
        for i in 0..10_000u32 {
            index.insert(&format!("uid=user{i},dc=x"), i);
        }
        index.insert("uid=user7,dc=x", 70);
        assert_eq!(index.ends.len(), 10_000);
        assert_eq!(index.get("uid=user9999,dc=x"), Some(9999));
        assert_eq!(index.get("uid=user7,dc=x"), Some(70));
        assert_eq!(index.get("uid=user10000,dc=x"), None);
        assert_eq!(index.get(""), None);
        index.insert("", 5);
        assert_eq!(index.get(""), Some(5));
    }
}
