// SPDX-License-Identifier: GPL-2.0

//! Which metadata copy holds the table (docs/on-disk-format.md, "Load"): the one
//! copy-selection policy of the module's load (`src/metadata.rs`) and of `dm-remap-tool`.
//!
//! Both read every copy into a [`CopyState`] and then ask, in this order: which state may
//! be loaded ([`choose`]), which copy to apply next when applying one fails midway
//! ([`next_candidate`]), which copies hold that state and whether a checkpoint must
//! rewrite the others ([`health`]), and in which order a checkpoint rewrites the copies
//! ([`rewrite_order`]). Every checkpoint and commit takes a new sequence number, so the
//! highest one is the newest state any copy holds.

use super::format::{CopyScan, FormatError, JournalEnd, Superblock, VERSION};

/// What reading one copy found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyState {
    /// The copy's superblock if one decodes, whatever else is wrong with the copy.
    pub sb: Option<Superblock>,
    /// Where the copy's journal ends when the copy is valid ([`CopyState::scan`]).
    pub end: Option<JournalEnd>,
    /// Why the copy is not valid.
    pub why: Option<FormatError>,
}

impl CopyState {
    /// The state of a copy that read as `r`, whose superblock decoded as `sb`.
    pub fn new(r: Result<CopyScan, FormatError>, sb: Option<Superblock>) -> Self {
        match r {
            Ok(scan) => Self {
                sb: Some(scan.sb),
                end: Some(scan.end),
                why: None,
            },
            Err(e) => Self {
                sb,
                end: None,
                why: Some(e),
            },
        }
    }

    /// The copy's state when it is valid: its superblock and where its journal ends.
    pub fn scan(&self) -> Option<CopyScan> {
        Some(CopyScan {
            sb: self.sb?,
            end: self.end?,
        })
    }

    /// Marks the copy not valid after all (reading it failed when it was read again).
    pub fn unreadable(&mut self) {
        self.end = None;
        self.why = Some(FormatError::Space);
    }
}

/// Why no copy may be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No copy is valid (and no copy in its own place says why better).
    NoValidCopy,
    /// No copy is valid, and one holds metadata for another main device or geometry.
    Identity,
    /// No copy is valid, and one holds metadata for a longer target.
    Shorter,
    /// Copy `copy`, of the same set as the newest valid copy `newest`, holds a newer
    /// checkpoint than any valid copy's state but is not valid itself (`why`). Loading the
    /// older state could send blocks to spare blocks since reused, and the checkpoint (or
    /// repair) that follows would overwrite the newer state.
    Newer {
        /// The copy holding the newer state.
        copy: usize,
        /// The newest valid copy.
        newest: usize,
        /// Why `copy` is not valid.
        why: Option<FormatError>,
    },
}

/// The highest sequence number any copy shows: a superblock's checkpoint (of any set) or
/// a valid copy's last record. A checkpoint or format takes a number above it.
pub fn max_seq(states: &[CopyState]) -> u64 {
    states
        .iter()
        .map(|s| {
            let sb = s.sb.map_or(0, |sb| sb.seq);
            sb.max(s.end.map_or(0, |e| e.seq))
        })
        .max()
        .unwrap_or(0)
}

/// The newest valid copy: the highest sequence number after replaying its journal, and on
/// a tie the lowest index.
pub fn newest_copy(states: &[CopyState]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, s) in states.iter().enumerate() {
        let Some(end) = s.end else { continue };
        if best.is_none_or(|(_, seq)| end.seq > seq) {
            best = Some((i, end.seq));
        }
    }
    best.map(|(i, _)| i)
}

/// Whether copy `c` holds exactly the state of `newest`: the same set, checkpoint and
/// journal end, so a commit can append its record at the same place in both.
pub fn is_current(c: &CopyScan, newest: &CopyScan) -> bool {
    c.sb.uuid == newest.sb.uuid
        && c.sb.seq == newest.sb.seq
        && c.end.seq == newest.end.seq
        && c.end.tail == newest.end.tail
}

/// The state to load: the newest valid copy (its index and state), unless no copy is
/// valid or a copy of its set holds a newer state that cannot be loaded.
pub fn choose(states: &[CopyState]) -> Result<(usize, CopyScan), Refusal> {
    let Some(k) = newest_copy(states) else {
        return Err(no_valid_copy(states));
    };
    let Some(scan) = states[k].scan() else {
        return Err(Refusal::NoValidCopy);
    };
    if let Some(copy) = newer_unreadable(states, &scan) {
        return Err(Refusal::Newer {
            copy,
            newest: k,
            why: states[copy].why,
        });
    }
    Ok((k, scan))
}

/// Why no copy is valid, from copies in their own place: one for another geometry or a
/// longer target says so (the first such, by index); otherwise there is no valid copy.
fn no_valid_copy(states: &[CopyState]) -> Refusal {
    let in_place = |(i, s): (usize, &CopyState)| s.sb.is_some_and(|sb| sb.copy_index as usize == i);
    let why = states
        .iter()
        .enumerate()
        .filter(|&x| in_place(x))
        .find_map(|(_, s)| {
            s.why
                .filter(|e| matches!(e, FormatError::Shorter | FormatError::Identity))
        });
    match why {
        Some(FormatError::Shorter) => Refusal::Shorter,
        Some(_) => Refusal::Identity,
        None => Refusal::NoValidCopy,
    }
}

/// The first copy that is not valid but whose superblock belongs to the set of `newest`
/// and has a newer checkpoint than `newest`'s state (a copy whose checkpoint cannot be
/// read, or one for a longer target).
pub fn newer_unreadable(states: &[CopyState], newest: &CopyScan) -> Option<usize> {
    states.iter().position(|s| {
        s.end.is_none()
            && s.sb
                .is_some_and(|sb| sb.uuid == newest.sb.uuid && sb.seq > newest.end.seq)
    })
}

/// The copy to apply for the state ending at sequence number `newest` (the newest valid
/// copy's, see [`choose`]) once copies that failed while being applied were marked not
/// valid: the newest valid copy left, if it holds that state. `None` means no readable
/// copy holds the newest state any more.
pub fn next_candidate(states: &[CopyState], newest: u64) -> Option<(usize, CopyScan)> {
    let k = newest_copy(states)?;
    states[k]
        .scan()
        .filter(|s| s.end.seq == newest)
        .map(|s| (k, s))
}

/// Marks in `current` (one per copy) the copies holding exactly the state of `chosen`:
/// they take journal appends. Returns whether a checkpoint must rewrite the copies before
/// anything is appended: some copy does not hold that state, or a higher sequence number
/// than `chosen`'s end was seen (`max_seq`: another table's leftover superblock, a failed
/// commit's record), which must be superseded.
pub fn health(states: &[CopyState], chosen: &CopyScan, max_seq: u64, current: &mut [bool]) -> bool {
    let mut all_current = true;
    for (c, s) in current.iter_mut().zip(states) {
        *c = s.scan().is_some_and(|s| is_current(&s, chosen));
        all_current &= *c;
    }
    !all_current || max_seq != chosen.end.seq
}

/// Whether a copy marked in `current` (see [`health`]) has a superblock of a format
/// version older than [`VERSION`]: it must be rewritten by a checkpoint before a record is
/// appended to its journal, since a module of that version would misread entries of this
/// one behind it.
pub fn older_version(states: &[CopyState], current: &[bool]) -> bool {
    states
        .iter()
        .zip(current)
        .any(|(s, &c)| c && s.sb.is_some_and(|sb| sb.version < VERSION))
}

/// The order in which a checkpoint (or a repair) rewrites the superblocks of the copies,
/// given which hold the current state: those that do not first, then those that do, each
/// by index. A copy holding the current state is switched only when the others already
/// hold the new checkpoint, so a crash between any two superblock writes leaves the
/// current state or the new one on a copy that can be loaded.
pub fn rewrite_order(current: &[bool]) -> impl Iterator<Item = u32> + '_ {
    [false, true].into_iter().flat_map(move |want| {
        current
            .iter()
            .enumerate()
            .filter(move |&(_, &c)| c == want)
            .map(|(i, _)| i as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const UUID: [u8; 16] = *b"0123456789abcdef";

    fn sb(copy_index: u32, seq: u64) -> Superblock {
        Superblock {
            version: crate::format::VERSION,
            uuid: UUID,
            seq,
            copy_index,
            active_slot: 0,
            identity: crate::format::tests::identity(),
            io_unit: 512,
            cp_entries: 0,
            cp_crc: 0,
            journal_bytes: 16384,
            total_blocks: 4096,
            scan: Default::default(),
        }
    }

    /// A valid copy `i` with checkpoint `base` and journal up to `seq`, ending at `tail`.
    fn valid(i: u32, base: u64, seq: u64, tail: usize) -> CopyState {
        let sb = sb(i, base);
        let end = JournalEnd {
            seq,
            tail,
            records: (seq - base) as usize,
        };
        CopyState::new(Ok(CopyScan { sb, end }), Some(sb))
    }

    /// A copy whose superblock decodes (checkpoint `base`) but that is not valid (`why`).
    fn invalid(i: u32, base: u64, why: FormatError) -> CopyState {
        CopyState::new(Err(why), Some(sb(i, base)))
    }

    /// A copy whose superblock does not decode.
    fn undecodable(why: FormatError) -> CopyState {
        CopyState::new(Err(why), None)
    }

    #[test]
    fn the_newest_copy_and_current_copies() {
        let states = [
            valid(0, 8, 10, 1024),
            undecodable(FormatError::Checksum),
            valid(2, 8, 12, 2048),
            valid(3, 8, 12, 2048),
            valid(4, 11, 11, 0),
        ];
        assert_eq!(newest_copy(&states), Some(2));
        let (k, newest) = choose(&states).unwrap();
        assert_eq!(k, 2);
        let current: Vec<bool> = states
            .iter()
            .map(|s| s.scan().is_some_and(|s| is_current(&s, &newest)))
            .collect();
        assert_eq!(current, [false, false, true, true, false]);
        assert_eq!(newest_copy(&[CopyState::default(); 2]), None);
        assert_eq!(max_seq(&states), 12);
    }

    #[test]
    fn max_seq_counts_superblocks_of_invalid_copies_and_other_sets() {
        let mut other = sb(1, 30);
        other.uuid = [7; 16];
        let states = [
            valid(0, 8, 10, 1024),
            CopyState::new(Err(FormatError::Identity), Some(other)),
            invalid(2, 9, FormatError::Checksum),
        ];
        assert_eq!(max_seq(&states), 30);
        assert_eq!(max_seq(&states[..1]), 10);
        assert_eq!(max_seq(&[]), 0);
    }

    #[test]
    fn no_valid_copy_says_why_from_copies_in_their_own_place() {
        let blank = [undecodable(FormatError::Blank); 3];
        assert_eq!(choose(&blank), Err(Refusal::NoValidCopy));
        // A copy for a longer target in its own place: the target is too short.
        let states = [
            undecodable(FormatError::Checksum),
            invalid(1, 5, FormatError::Shorter),
            invalid(2, 5, FormatError::Identity),
        ];
        assert_eq!(choose(&states), Err(Refusal::Shorter));
        assert_eq!(choose(&states[1..]), Err(Refusal::NoValidCopy));
        let states = [
            invalid(0, 5, FormatError::Identity),
            invalid(1, 5, FormatError::Shorter),
        ];
        assert_eq!(choose(&states), Err(Refusal::Identity));
        // A superblock found in another copy's place says nothing about this region.
        let states = [
            invalid(1, 5, FormatError::Identity),
            undecodable(FormatError::Space),
        ];
        assert_eq!(choose(&states), Err(Refusal::NoValidCopy));
    }

    #[test]
    fn a_newer_copy_that_cannot_be_read_refuses_the_older_one() {
        // Copy 2 was switched to checkpoint 13 and its slot cannot be read; copies 0 and 1
        // still hold state 12. Loading 12 could send blocks to spare blocks since reused,
        // and rewriting from it would overwrite 13.
        let states = [
            valid(0, 8, 12, 2048),
            valid(1, 8, 12, 2048),
            invalid(2, 13, FormatError::Checksum),
        ];
        let refused = Refusal::Newer {
            copy: 2,
            newest: 0,
            why: Some(FormatError::Checksum),
        };
        assert_eq!(choose(&states), Err(refused));
        assert_eq!(
            newer_unreadable(&states, &states[0].scan().unwrap()),
            Some(2)
        );
        // The same for a newer copy for a longer target.
        let mut longer = states;
        longer[2] = invalid(2, 13, FormatError::Shorter);
        assert!(matches!(
            choose(&longer),
            Err(Refusal::Newer {
                copy: 2,
                why: Some(FormatError::Shorter),
                ..
            })
        ));
        // Not newer than the state (a checkpoint at 12 is the state of copies 0 and 1), or
        // of another set: the older copy is loaded.
        let mut same = states;
        same[2] = invalid(2, 12, FormatError::Checksum);
        assert_eq!(choose(&same).map(|(k, _)| k), Ok(0));
        let mut other = sb(2, 40);
        other.uuid = [7; 16];
        let mut foreign = states;
        foreign[2] = CopyState::new(Err(FormatError::Checksum), Some(other));
        assert_eq!(choose(&foreign).map(|(k, _)| k), Ok(0));
        // A superblock that does not decode says nothing.
        let mut unknown = states;
        unknown[2] = undecodable(FormatError::Checksum);
        assert_eq!(choose(&unknown).map(|(k, _)| k), Ok(0));
    }

    #[test]
    fn the_next_candidate_holds_the_newest_state() {
        let mut states = [
            valid(0, 8, 10, 1024),
            valid(1, 8, 12, 2048),
            valid(2, 8, 12, 2048),
        ];
        let (k, s) = choose(&states).unwrap();
        assert_eq!(k, 1);
        assert_eq!(next_candidate(&states, s.end.seq), Some((1, s)));
        // Copy 1 failed while it was applied: copy 2 holds the same state.
        states[1].unreadable();
        assert_eq!(
            next_candidate(&states, s.end.seq),
            Some((2, states[2].scan().unwrap()))
        );
        // Then copy 2 too: copy 0 holds an older state only.
        states[2].unreadable();
        assert_eq!(next_candidate(&states, s.end.seq), None);
    }

    #[test]
    fn health_and_whether_a_checkpoint_is_due() {
        let states = [
            valid(0, 8, 12, 2048),
            valid(1, 8, 12, 2048),
            valid(2, 8, 12, 2048),
        ];
        let chosen = states[0].scan().unwrap();
        let mut current = [false; 3];
        assert!(!health(&states, &chosen, 12, &mut current));
        assert_eq!(current, [true; 3]);
        // A higher number seen anywhere (a failed commit's record) must be superseded.
        assert!(health(&states, &chosen, 13, &mut current));
        assert_eq!(current, [true; 3]);
        // A copy behind, or one that is not valid.
        let mut behind = states;
        behind[1] = valid(1, 8, 11, 1536);
        assert!(health(&behind, &chosen, 12, &mut current));
        assert_eq!(current, [true, false, true]);
        behind[1] = undecodable(FormatError::Space);
        assert!(health(&behind, &chosen, 12, &mut current));
        assert_eq!(current, [true, false, true]);
        // Same sequence numbers but another journal end is not the same state.
        let mut torn = states;
        torn[2] = valid(2, 8, 12, 2560);
        assert!(health(&torn, &chosen, 12, &mut current));
        assert_eq!(current, [true, true, false]);
    }

    #[test]
    fn copies_of_version_1_holding_the_state_are_rewritten() {
        let mut states = [
            valid(0, 8, 12, 2048),
            valid(1, 8, 12, 2048),
            invalid(2, 5, FormatError::Checksum),
        ];
        let chosen = states[0].scan().unwrap();
        let mut current = [false; 3];
        assert!(health(&states, &chosen, 12, &mut current));
        assert!(!older_version(&states, &current));
        // A version 1 copy that is not current is rewritten anyway.
        let v1 = |sb: Superblock| Superblock { version: 1, ..sb };
        states[2].sb = states[2].sb.map(v1);
        assert!(!older_version(&states, &current));
        // A current one must be before anything is appended.
        states[1].sb = states[1].sb.map(v1);
        assert!(older_version(&states, &current));
        assert!(!older_version(&states, &[true, false, false]));
    }

    #[test]
    fn copies_not_holding_the_current_state_are_rewritten_first() {
        let order: Vec<u32> = rewrite_order(&[true, false, true, false, false]).collect();
        assert_eq!(order, [1, 3, 4, 0, 2]);
        let order: Vec<u32> = rewrite_order(&[true; 3]).collect();
        assert_eq!(order, [0, 1, 2]);
        let order: Vec<u32> = rewrite_order(&[false; 2]).collect();
        assert_eq!(order, [0, 1]);
        assert_eq!(rewrite_order(&[]).count(), 0);
    }
}
