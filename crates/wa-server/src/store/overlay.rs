//! The part of the embedded store that is in memory: writes that are durable in the
//! write-ahead log but not yet in the `redb` file, layered over it.
//!
//! A read looks through the layers from the top (a job's own writes, then its batch's, then
//! the overlay's) down to the file, and the first layer that has the key answers, a deletion
//! included. Every key in a layer also remembers whether the file has it ([`Slot::in_file`]),
//! learnt when the key is first written above the file: that is what lets the overlay drop a
//! key that was written and deleted again before it reached the file (a message delivered
//! before the next flush costs the file nothing), and keep each table's length without
//! reading the file.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as Slotted;
use std::ops::Bound;

use smallvec::SmallVec;

use super::{Entry, StoreError, Table};

/// A key in a layer: held inline up to 40 bytes (a message's number, an account's key, a
/// device's inbox entry, a sent id whose message id has up to 20 characters: what a relay and
/// a receipt write), so that a search of a big overlay compares bytes in the map's own nodes
/// instead of following a pointer to each key it passes, and writing a key allocates nothing.
/// A longer key is held on the heap, as before.
pub(super) type Key = SmallVec<[u8; 40]>;

/// One key's state in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Slot {
    /// The value, or `None` for a deletion.
    pub(super) value: Option<Vec<u8>>,
    /// Whether what lies below the overlay that takes this slot has the key: the `redb` file,
    /// under a frozen overlay if one is being written to it (see `redb_store`).
    pub(super) in_file: bool,
}

/// Writes above the file: one ordered map per table.
#[derive(Debug, Default)]
pub(super) struct Layer {
    tables: [BTreeMap<Key, Slot>; Table::ALL.len()],
}

impl Layer {
    pub(super) fn table(&self, table: Table) -> &BTreeMap<Key, Slot> {
        // `Table::index` is always below `Table::ALL.len()`.
        static NONE: BTreeMap<Key, Slot> = BTreeMap::new();
        self.tables.get(table.index()).unwrap_or(&NONE)
    }

    pub(super) fn get(&self, table: Table, key: &[u8]) -> Option<&Slot> {
        self.table(table).get(key)
    }

    pub(super) fn insert(&mut self, table: Table, key: &[u8], slot: Slot) {
        if let Some(t) = self.tables.get_mut(table.index()) {
            t.insert(Key::from_slice(key), slot);
        }
    }

    /// Puts `slot` under `key`; what was there.
    pub(super) fn replace(&mut self, table: Table, key: Key, slot: Slot) -> Option<Slot> {
        self.tables.get_mut(table.index())?.insert(key, slot)
    }

    pub(super) fn remove(&mut self, table: Table, key: &[u8]) {
        if let Some(t) = self.tables.get_mut(table.index()) {
            t.remove(key);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tables.iter().all(BTreeMap::is_empty)
    }

    /// Every table's entries, in table order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Table, &Key, &Slot)> {
        Table::ALL
            .iter()
            .flat_map(move |&t| self.table(t).iter().map(move |(k, s)| (t, k, s)))
    }

    /// How this layer changes `table`'s length, seen over `below` (the next layer down, then
    /// the file).
    pub(super) fn len_change(&self, table: Table, below: &[&Layer]) -> i64 {
        self.table(table)
            .iter()
            .map(|(key, slot)| {
                let before = below
                    .iter()
                    .find_map(|l| l.get(table, key))
                    .map_or(slot.in_file, |s| s.value.is_some());
                i64::from(slot.value.is_some()) - i64::from(before)
            })
            .sum()
    }
}

/// The bytes a slot holds (key, value and bookkeeping), for the overlay's memory bound.
fn weight(key: &[u8], slot: &Slot) -> usize {
    key.len() + slot.value.as_ref().map_or(0, Vec::len) + 64
}

/// The writes that are durable in the log and not yet in the file: what every reader sees
/// over the file.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    pub(super) layer: Layer,
    /// Per table, how many more keys there are than in the file.
    len_change: [i64; Table::ALL.len()],
    bytes: usize,
    /// The overlay's number: that of its log segment, and what the file counts once it has
    /// the overlay's writes.
    number: u64,
}

impl Overlay {
    /// An empty overlay, number `number`.
    pub(super) fn numbered(number: u64) -> Overlay {
        Overlay {
            number,
            ..Overlay::default()
        }
    }

    /// The overlay's number.
    pub(super) fn number(&self) -> u64 {
        self.number
    }

    /// Takes a durable batch in. A deletion of a key the file does not have leaves nothing.
    pub(super) fn absorb(&mut self, batch: Layer) {
        for (index, table) in batch.tables.into_iter().enumerate() {
            let Some(mine) = self.layer.tables.get_mut(index) else {
                continue;
            };
            let mut change = 0;
            for (key, slot) in table {
                let keep = slot.value.is_some() || slot.in_file;
                let after = i64::from(slot.value.is_some());
                // One search of the map per key: this runs for every write of every batch.
                match mine.entry(key) {
                    Slotted::Occupied(mut old) => {
                        change += after - i64::from(old.get().value.is_some());
                        self.bytes = self.bytes.saturating_sub(weight(old.key(), old.get()));
                        if keep {
                            self.bytes += weight(old.key(), &slot);
                            old.insert(slot);
                        } else {
                            old.remove();
                        }
                    }
                    Slotted::Vacant(new) => {
                        change += after - i64::from(slot.in_file);
                        if keep {
                            self.bytes += weight(new.key(), &slot);
                            new.insert(slot);
                        }
                    }
                }
            }
            if let Some(c) = self.len_change.get_mut(index) {
                *c += change;
            }
        }
    }

    /// How many more keys `table` has than the file.
    pub(super) fn len_change(&self, table: Table) -> i64 {
        self.len_change
            .get(table.index())
            .copied()
            .unwrap_or_default()
    }

    /// About how much memory the overlay holds.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What the file yields for a range: entries in the range's order.
pub(super) type FileEntries<'a> = Box<dyn Iterator<Item = Result<Entry, StoreError>> + 'a>;

/// Up to `limit` entries with `from <= key < to` (descending when `reverse`), the layers (top
/// first) over the file's entries. Values are copied only when `values` is set (else they are
/// empty: a count).
pub(super) fn merge(
    layers: &[&BTreeMap<Key, Slot>],
    file: FileEntries<'_>,
    from: &[u8],
    to: &[u8],
    reverse: bool,
    limit: usize,
    values: bool,
) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    if from >= to || limit == 0 {
        return Ok(out);
    }
    let bounds = (Bound::Included(from), Bound::Excluded(to));
    let mut heads: Vec<_> = layers
        .iter()
        .map(|l| {
            let range = l.range::<[u8], _>(bounds);
            let it: Box<dyn Iterator<Item = (&Key, &Slot)>> = if reverse {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            it.peekable()
        })
        .collect();
    let mut file = file.peekable();
    // `a` comes before `b` in the range's order.
    let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
    while out.len() < limit {
        let mut next: Option<Vec<u8>> = None;
        for head in &mut heads {
            if let Some((key, _)) = head.peek()
                && next.as_deref().is_none_or(|n| before(key, n))
            {
                next = Some(key.to_vec());
            }
        }
        match file.peek() {
            Some(Ok((key, _))) if next.as_deref().is_none_or(|n| before(key, n)) => {
                next = Some(key.clone());
            }
            Some(Err(_)) => {
                if let Some(Err(e)) = file.next() {
                    return Err(e);
                }
            }
            _ => {}
        }
        let Some(key) = next else {
            break;
        };
        // The topmost layer that has the key answers; every source moves past it.
        let mut answer: Option<Option<Vec<u8>>> = None;
        for head in &mut heads {
            if let Some((_, slot)) = head.next_if(|(k, _)| k.as_slice() == key.as_slice())
                && answer.is_none()
            {
                answer = Some(if values {
                    slot.value.clone()
                } else {
                    slot.value.as_ref().map(|_| Vec::new())
                });
            }
        }
        let from_file = match file.next_if(|e| matches!(e, Ok((k, _)) if *k == key)) {
            Some(Ok((_, value))) => Some(value),
            _ => None,
        };
        if let Some(value) = answer.unwrap_or(from_file) {
            out.push((key, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key, its value (`None`: deleted) and whether the file has it.
    type Written<'a> = (&'a [u8], Option<&'a [u8]>, bool);

    fn layer(entries: &[Written<'_>]) -> Layer {
        let mut l = Layer::default();
        for (k, v, in_file) in entries {
            l.insert(
                Table::Meta,
                k,
                Slot {
                    value: v.map(<[u8]>::to_vec),
                    in_file: *in_file,
                },
            );
        }
        l
    }

    fn file(
        entries: &[(&[u8], &[u8])],
        range: (&[u8], &[u8]),
        reverse: bool,
    ) -> FileEntries<'static> {
        let mut v: Vec<Result<Entry, StoreError>> = entries
            .iter()
            .filter(|(k, _)| range.0 <= *k && *k < range.1)
            .map(|(k, v)| Ok((k.to_vec(), v.to_vec())))
            .collect();
        if reverse {
            v.reverse();
        }
        Box::new(v.into_iter())
    }

    #[test]
    fn the_top_layer_answers_and_deletions_hide_the_file() {
        let top = layer(&[(b"b", None, true), (b"d", Some(b"top"), false)]);
        let mid = layer(&[(b"c", Some(b"mid"), false), (b"d", Some(b"mid"), false)]);
        let on_file: &[(&[u8], &[u8])] = &[(b"a", b"f"), (b"b", b"f"), (b"e", b"f")];
        let layers = [top.table(Table::Meta), mid.table(Table::Meta)];
        let got = merge(
            &layers,
            file(on_file, (b"", b"z"), false),
            b"",
            b"z",
            false,
            10,
            true,
        )
        .unwrap();
        let keys: Vec<(&[u8], &[u8])> = got
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        assert_eq!(
            keys,
            [
                (&b"a"[..], &b"f"[..]),
                (b"c", b"mid"),
                (b"d", b"top"),
                (b"e", b"f")
            ]
        );
        let back = merge(
            &layers,
            file(on_file, (b"b", b"e"), true),
            b"b",
            b"e",
            true,
            1,
            false,
        )
        .unwrap();
        assert_eq!(back, [(b"d".to_vec(), Vec::new())]);
    }

    #[test]
    fn the_overlay_forgets_what_the_file_never_had() {
        let mut overlay = Overlay::default();
        overlay.absorb(layer(&[
            (b"new", Some(b"1"), false),
            (b"old", Some(b"2"), true),
        ]));
        assert_eq!(overlay.len_change(Table::Meta), 1);
        overlay.absorb(layer(&[(b"new", None, false), (b"old", None, true)]));
        assert_eq!(overlay.len_change(Table::Meta), -1);
        // The new key is gone; the old one stays as a deletion, to hide the file's copy.
        assert!(overlay.layer.get(Table::Meta, b"new").is_none());
        assert_eq!(
            overlay
                .layer
                .get(Table::Meta, b"old")
                .map(|s| s.value.clone()),
            Some(None)
        );
        overlay.absorb(layer(&[(b"old", None, true)]));
        assert_eq!(overlay.len_change(Table::Meta), -1);
        assert!(overlay.bytes() > 0);
        assert_eq!(Overlay::numbered(3).number(), 3);
    }
}
