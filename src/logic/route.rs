// SPDX-License-Identifier: GPL-2.0

//! Where each part of a bio goes: the split rules of the I/O path.
//!
//! A bio covers target-relative sectors `sector..sector + sectors`. The table says, per
//! main block, whether it is remapped (to a spare block) or known to be failing. [`route`]
//! decides for the *front* of the bio: how many sectors to accept and where they go.
//! device-mapper then resubmits the rest (`dm_accept_partial_bio`), and `map` routes it
//! again. So a bio over no remapped block is accepted whole, a bio starting in unremapped
//! blocks is cut just before the first remapped one, and a remapped block is served alone.

/// What the remap table records for one main block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The block's data lives in this spare block.
    Remapped(u64),
    /// Reading the block failed; it is not remapped yet, the next write remaps it.
    Failing,
    /// The block is being moved. Its data is still where it was: on the main device
    /// (`None`) or in a spare block. Reads go there; writes wait for the move.
    Moving(Option<u64>),
}

/// Largest spare block number an entry can hold.
pub const MAX_SPARE_BLOCK: u64 = (1 << 59) - 1;

const TAG_REMAPPED: u64 = 0;
const TAG_FAILING: u64 = 1;
const TAG_MOVING_FROM_MAIN: u64 = 2;
const TAG_MOVING_FROM_SPARE: u64 = 3;

impl Entry {
    /// Encodes the entry in 61 bits (for the kernel's tagged-integer tree values).
    pub fn to_raw(self) -> u64 {
        match self {
            Self::Remapped(b) => (b << 2) | TAG_REMAPPED,
            Self::Failing => TAG_FAILING,
            Self::Moving(None) => TAG_MOVING_FROM_MAIN,
            Self::Moving(Some(b)) => (b << 2) | TAG_MOVING_FROM_SPARE,
        }
    }

    /// Decodes [`Entry::to_raw`].
    pub fn from_raw(raw: u64) -> Self {
        match raw & 3 {
            TAG_REMAPPED => Self::Remapped(raw >> 2),
            TAG_FAILING => Self::Failing,
            TAG_MOVING_FROM_MAIN => Self::Moving(None),
            _ => Self::Moving(Some(raw >> 2)),
        }
    }

    /// Where reads of the block go: a spare block, or `None` for the main device.
    pub fn read_location(self) -> Option<u64> {
        match self {
            Self::Remapped(b) | Self::Moving(Some(b)) => Some(b),
            Self::Failing | Self::Moving(None) => None,
        }
    }
}

/// Read-only view of the remap table.
pub trait Lookup {
    /// The first entry for a block in `from..=last`, with its block number.
    fn first_in(&self, from: u64, last: u64) -> Option<(u64, Entry)>;

    /// The entry of block `block` (a bio within one block, the common case: the module's
    /// table answers it from a hash index rather than a tree walk).
    fn get(&self, block: u64) -> Option<Entry> {
        self.first_in(block, block).map(|(_, e)| e)
    }
}

/// What kind of access a bio makes, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads go where the data is; failing blocks are read from main (and may fail).
    Read,
    /// Writes, discards, write-zeroes: also isolate failing and moving blocks, which the
    /// worker handles.
    Write,
}

impl Entry {
    /// Whether an access of this kind must be routed by this entry (otherwise it goes to
    /// the main device as if there were no entry).
    fn matters_for(self, access: Access) -> bool {
        match access {
            Access::Read => self.read_location().is_some(),
            Access::Write => true,
        }
    }
}

/// Where the accepted front of a bio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The main device, at the same target-relative sector.
    Main,
    /// The spare device, in this spare block, at the same offset within the block.
    Spare {
        /// Spare block.
        block: u64,
        /// Sector offset inside the block.
        offset: u64,
    },
    /// A write to a failing or moving block: the worker handles it.
    Worker {
        /// The main block.
        block: u64,
    },
}

/// Routing decision for the front of a bio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Where the accepted sectors go.
    pub dest: Destination,
    /// How many sectors of the bio to accept (the whole bio when equal to its length).
    pub sectors: u32,
}

/// Routes the front of a bio over `sector..sector + sectors` (target-relative, `sectors > 0`)
/// with blocks of `1 << block_shift` sectors.
#[inline]
pub fn route(
    sector: u64,
    sectors: u32,
    block_shift: u32,
    access: Access,
    table: &impl Lookup,
) -> Route {
    let first = sector >> block_shift;
    let last = (sector + u64::from(sectors) - 1) >> block_shift;
    if first != last {
        return route_range(sector, sectors, block_shift, access, table, first, last);
    }
    route_block(
        sector,
        sectors,
        block_shift,
        access,
        first,
        table.get(first),
    )
}

/// [`route`] for a bio within block `block`, whose entry the caller looked up (`entry`).
#[inline]
pub fn route_block(
    sector: u64,
    sectors: u32,
    block_shift: u32,
    access: Access,
    block: u64,
    entry: Option<Entry>,
) -> Route {
    match entry.filter(|e| e.matters_for(access)) {
        Some(e) => route_in(sector, sectors, block_shift, access, block, e),
        None => Route {
            dest: Destination::Main,
            sectors,
        },
    }
}

/// [`route`] for a bio over blocks `first..=last`, `first < last`.
#[inline(never)]
fn route_range(
    sector: u64,
    sectors: u32,
    block_shift: u32,
    access: Access,
    table: &impl Lookup,
    first: u64,
    last: u64,
) -> Route {
    let mut from = first;
    // Skip entries this access ignores (for reads, blocks whose data is on main).
    let found = loop {
        match table.first_in(from, last) {
            Some((b, e)) if !e.matters_for(access) => {
                if b == last {
                    break None;
                }
                from = b + 1;
            }
            other => break other,
        }
    };
    let Some((b, entry)) = found else {
        return Route {
            dest: Destination::Main,
            sectors,
        };
    };
    if b > first {
        // Unremapped blocks first: up to the start of block b.
        return Route {
            dest: Destination::Main,
            sectors: ((b << block_shift) - sector) as u32,
        };
    }
    route_in(sector, sectors, block_shift, access, b, entry)
}

/// Routes the front of a bio over `sector..sector + sectors` that starts in block `b`,
/// whose entry `entry` matters for `access`: up to the end of the block, by the entry.
#[inline]
fn route_in(
    sector: u64,
    sectors: u32,
    block_shift: u32,
    access: Access,
    b: u64,
    entry: Entry,
) -> Route {
    let block_end = (b + 1) << block_shift;
    let n = (block_end - sector).min(u64::from(sectors)) as u32;
    let dest = match (access, entry) {
        (Access::Write, Entry::Failing | Entry::Moving(_)) => Destination::Worker { block: b },
        (_, e) => match e.read_location() {
            Some(spare) => Destination::Spare {
                block: spare,
                offset: sector - (b << block_shift),
            },
            // Unreachable: entries without a spare location do not matter for reads, and
            // for writes they are handled above.
            None => Destination::Main,
        },
    };
    Route { dest, sectors: n }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    impl Lookup for BTreeMap<u64, Entry> {
        fn first_in(&self, from: u64, last: u64) -> Option<(u64, Entry)> {
            self.range(from..=last).next().map(|(&b, &e)| (b, e))
        }
    }

    #[test]
    fn entry_encoding() {
        for e in [
            Entry::Failing,
            Entry::Remapped(0),
            Entry::Remapped(MAX_SPARE_BLOCK),
            Entry::Moving(None),
            Entry::Moving(Some(MAX_SPARE_BLOCK)),
        ] {
            assert_eq!(Entry::from_raw(e.to_raw()), e);
            assert!(e.to_raw() < 1 << 61);
        }
    }

    #[test]
    fn examples() {
        let t: BTreeMap<u64, Entry> = [(2, Entry::Remapped(7)), (3, Entry::Failing)].into();
        // 4 KiB blocks (shift 3). A bio over blocks 0-1 stays whole.
        assert_eq!(route(0, 16, 3, Access::Read, &t).sectors, 16);
        // A 1 MiB bio from 0 is cut before block 2.
        let r = route(0, 2048, 3, Access::Write, &t);
        assert_eq!((r.dest, r.sectors), (Destination::Main, 16));
        // Block 2 alone, to spare block 7, keeping the offset within the block.
        let r = route(17, 100, 3, Access::Read, &t);
        assert_eq!(
            (r.dest, r.sectors),
            (
                Destination::Spare {
                    block: 7,
                    offset: 1
                },
                7
            )
        );
        // Reads ignore failing block 3; writes isolate it.
        assert_eq!(route(24, 100, 3, Access::Read, &t).sectors, 100);
        let r = route(24, 100, 3, Access::Write, &t);
        assert_eq!((r.dest, r.sectors), (Destination::Worker { block: 3 }, 8));
    }

    /// Routes a whole bio as device-mapper would (accept, resubmit the rest) and returns
    /// where each sector went.
    fn route_all(
        t: &BTreeMap<u64, Entry>,
        sector: u64,
        sectors: u32,
        shift: u32,
        access: Access,
    ) -> std::vec::Vec<(u64, Destination)> {
        let mut out = std::vec::Vec::new();
        let (mut s, mut left) = (sector, sectors);
        while left > 0 {
            let r = route(s, left, shift, access, t);
            assert!(r.sectors > 0 && r.sectors <= left);
            for i in 0..u64::from(r.sectors) {
                let d = match r.dest {
                    Destination::Spare { block, offset } => Destination::Spare {
                        block,
                        offset: offset + i,
                    },
                    d => d,
                };
                out.push((s + i, d));
            }
            s += u64::from(r.sectors);
            left -= r.sectors;
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn every_sector_goes_where_the_table_says(
            entries in proptest::collection::btree_map(0u64..64, (0u64..1000, 0u8..6), 0..20),
            sector in 0u64..400,
            sectors in 1u32..300,
            shift in 0u32..5,
            write in proptest::bool::ANY,
        ) {
            let t: BTreeMap<u64, Entry> = entries
                .into_iter()
                .map(|(b, (s, kind))| (b, match kind {
                    0 => Entry::Failing,
                    1 => Entry::Moving(None),
                    2 => Entry::Moving(Some(s)),
                    _ => Entry::Remapped(s),
                }))
                .collect();
            let access = if write { Access::Write } else { Access::Read };
            let mut pieces = 0;
            let mut last_dest = None;
            for (s, d) in route_all(&t, sector, sectors, shift, access) {
                let b = s >> shift;
                let want = match t.get(&b) {
                    Some(Entry::Failing | Entry::Moving(_)) if write => Destination::Worker { block: b },
                    Some(Entry::Remapped(spare) | Entry::Moving(Some(spare))) => Destination::Spare {
                        block: *spare,
                        offset: s - (b << shift),
                    },
                    _ => Destination::Main,
                };
                proptest::prop_assert_eq!(d, want, "sector {}", s);
                if d == Destination::Main && last_dest == Some(Destination::Main) {
                    continue;
                }
                pieces += 1;
                last_dest = Some(d);
            }
            // A bio over no relevant entry is never split.
            let relevant = t.iter().any(|(&b, &e)| {
                b >= sector >> shift
                    && b <= (sector + u64::from(sectors) - 1) >> shift
                    && (write || e.read_location().is_some())
            });
            if !relevant {
                proptest::prop_assert_eq!(pieces, 1);
            }
        }
    }
}
