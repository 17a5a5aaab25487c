//! Call-ID → call slot lookup for one driver.
//!
//! A load run keeps one entry per call in progress, 100,000 and more at once, so the
//! entry is kept small: the Call-ID text is not copied into the index (the call holds
//! it); an entry is the Call-ID's hash and the slot number, and a lookup confirms a
//! hash match by comparing the Call-ID the slot's call reports.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;

#[derive(Default)]
pub struct CallIndex {
    table: HashTable<(u64, u32)>,
    hasher: DefaultHashBuilder,
}

impl CallIndex {
    /// The slot of the call with this Call-ID; `id_of(slot)` reads a slot's Call-ID.
    pub fn find<'s>(
        &self,
        call_id: &str,
        id_of: impl Fn(usize) -> Option<&'s str>,
    ) -> Option<usize> {
        let hash = self.hasher.hash_one(call_id);
        self.table
            .find(hash, |&(h, slot)| {
                h == hash && id_of(slot as usize) == Some(call_id)
            })
            .map(|&(_, slot)| slot as usize)
    }

    /// Index `slot` under `call_id` (the caller makes sure it is not indexed yet).
    pub fn insert(&mut self, call_id: &str, slot: usize) {
        let hash = self.hasher.hash_one(call_id);
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        self.table.insert_unique(hash, (hash, slot), |&(h, _)| h);
    }

    /// Forget `slot`, indexed under `call_id`.
    pub fn remove(&mut self, call_id: &str, slot: usize) {
        let hash = self.hasher.hash_one(call_id);
        if let Ok(entry) = self
            .table
            .find_entry(hash, |&(h, s)| h == hash && s as usize == slot)
        {
            entry.remove();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_insert_remove() {
        let ids = ["a@h", "b@h", "c@h"];
        let id_of = |slot: usize| ids.get(slot).copied();
        let mut index = CallIndex::default();
        assert!(index.is_empty());
        for (slot, id) in ids.iter().enumerate() {
            index.insert(id, slot);
        }
        assert_eq!(index.len(), 3);
        assert_eq!(index.find("b@h", id_of), Some(1));
        assert_eq!(index.find("d@h", id_of), None);
        index.remove("b@h", 1);
        assert_eq!(index.find("b@h", id_of), None);
        assert_eq!(index.find("c@h", id_of), Some(2));
        // Removing what is not there is harmless.
        index.remove("b@h", 1);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn a_slot_reused_for_another_call_is_not_found_under_the_old_id() {
        let mut ids = ["old@h"];
        let mut index = CallIndex::default();
        index.insert("old@h", 0);
        index.remove("old@h", 0);
        ids[0] = "new@h";
        index.insert("new@h", 0);
        let id_of = |slot: usize| ids.get(slot).copied();
        assert_eq!(index.find("old@h", id_of), None);
        assert_eq!(index.find("new@h", id_of), Some(0));
    }
}
