//! A bounded map that keeps what is in use, for the channel's caches (verified client
//! certificates, session state): two generations of at most `capacity` entries each; a
//! lookup that finds an entry in the older generation moves it to the newer, and when the
//! newer fills, the older is dropped. Memory stays under twice the capacity, and what is
//! looked up at least once per turn stays. Entries are copies of what is kept elsewhere, so
//! forgetting one costs only the work of finding it again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// See the module documentation.
#[derive(Debug)]
pub struct Generations<K, V> {
    capacity: usize,
    maps: Mutex<[HashMap<K, V>; 2]>,
}

impl<K: Eq + Hash, V: Clone> Generations<K, V> {
    /// Generations of at most `capacity` entries each.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            maps: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }

    /// The entry for `key`, if kept.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut maps = self.lock();
        if let Some(v) = maps[0].get(key) {
            return Some(v.clone());
        }
        // Still in use: into the newer generation, so the next turn keeps it.
        let (k, v) = maps[1].remove_entry(key)?;
        let found = v.clone();
        Self::put(&mut maps, self.capacity, k, v);
        Some(found)
    }

    /// Keeps `value` for `key`.
    pub fn insert(&self, key: K, value: V) {
        let mut maps = self.lock();
        maps[1].remove(&key);
        Self::put(&mut maps, self.capacity, key, value);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        let mut maps = self.lock();
        maps[0].remove(key);
        maps[1].remove(key);
    }

    /// Entries kept, in both generations.
    pub fn len(&self) -> usize {
        let maps = self.lock();
        maps[0].len() + maps[1].len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(maps: &mut [HashMap<K, V>; 2], capacity: usize, key: K, value: V) {
        if maps[0].len() >= capacity && !maps[0].contains_key(&key) {
            maps[1] = std::mem::take(&mut maps[0]);
        }
        maps[0].insert(key, value);
    }

    /// Locks the maps, going on after a panic elsewhere: they hold copies, no invariant.
    fn lock(&self) -> MutexGuard<'_, [HashMap<K, V>; 2]> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_what_is_in_use() {
        const CAP: usize = 100;
        let g = Generations::new(CAP);
        assert_eq!(g.get(&0), None);
        g.insert(0, "zero");
        g.insert(1, "one");
        assert_eq!(g.get(&0), Some("zero"));
        // Fill the newer generation: it turns, the first entries go to the older one.
        for n in 2..=CAP {
            g.insert(n, "n");
        }
        // An entry still in use is found in the older generation and moves back.
        assert_eq!(g.get(&0), Some("zero"));
        // Another turn: what was not looked up is forgotten, what was is kept.
        for n in 0..CAP {
            g.insert(CAP + 1 + n, "n");
        }
        assert_eq!(g.get(&0), Some("zero"));
        assert_eq!(g.get(&1), None);
        assert!(g.len() <= 2 * CAP);
        g.remove(&0);
        assert_eq!(g.get(&0), None);
    }

    #[test]
    fn a_new_value_replaces_the_old_in_either_generation() {
        let g = Generations::new(2);
        g.insert("a", 1);
        g.insert("b", 2);
        g.insert("c", 3); // turns: a and b are older
        g.insert("a", 10);
        assert_eq!(g.get(&"a"), Some(10));
        assert_eq!(g.len(), 3);
    }
}
