// SPDX-License-Identifier: GPL-2.0

//! Parsing and validation of the `remap` table line.
//!
//! The table line is
//! `<start> <len> remap <main_dev> <spare_dev> <spare_start> <spare_len> [<#feature_args> <feature_arg>...]`;
//! device-mapper strips `<start> <len> remap` and hands the rest to the constructor, which
//! passes it here as byte strings. Every way the line can be wrong has its own [`ArgError`]
//! with a message an administrator can act on.

use core::ffi::CStr;
use core::fmt;

/// Smallest remap block size in bytes.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest remap block size in bytes.
pub const MAX_BLOCK_SIZE: u32 = 64 * 1024;
/// Remap block size used when the table line does not give one.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;

/// Read retries on the main device when the table line does not say.
pub const DEFAULT_READ_RETRIES: u32 = 1;
/// Most read retries a table line may ask for.
pub const MAX_READ_RETRIES: u32 = 100;

/// Fewest metadata copies a table line may ask for.
pub const MIN_METADATA_COPIES: u32 = 2;
/// Most metadata copies (one dm-io region each; the region array of rust/dm/io.rs).
pub const MAX_METADATA_COPIES: u32 = 16;

/// The target's version (`dmsetup targets`, `/sys/kernel/dm_remap/version`).
pub const TARGET_VERSION: [u32; 3] = [0, 6, 0];

/// Bytes in a sector, the unit of every length in a table line.
pub const SECTOR_SIZE: u64 = 512;

/// Everything that can be wrong with a table line, each with its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgError {
    /// Fewer than four positional arguments, or extra words after the feature arguments.
    ArgCount,
    /// `<spare_start>` is not a decimal number.
    SpareStartInvalid,
    /// `<spare_start>` does not fit in 64 bits.
    SpareStartOverflow,
    /// `<spare_len>` is not a decimal number.
    SpareLenInvalid,
    /// `<spare_len>` does not fit in 64 bits.
    SpareLenOverflow,
    /// `<spare_len>` is zero.
    SpareLenZero,
    /// `<spare_start> + <spare_len>` does not fit in 64 bits.
    SpareRegionOverflow,
    /// `<#feature_args>` is not a decimal number.
    FeatureCountInvalid,
    /// `<#feature_args>` does not match the number of words that follow it.
    FeatureCountMismatch,
    /// A feature argument this version does not know.
    UnknownFeature,
    /// A feature argument given twice.
    DuplicateFeature,
    /// `block_size` has no value or a value that is not a number.
    BlockSizeInvalid,
    /// `block_size` is not a power of two between 512 and 65536.
    BlockSizeRange,
    /// The spare region reaches past the end of the spare device.
    SpareBeyondDevice,
    /// Main and spare are the same device and the spare region overlaps the mapped region.
    SpareOverlapsMain,
    /// The target is longer than the main device.
    TargetBeyondMain,
    /// The target length is zero.
    TargetLenZero,
    /// `block_size` is smaller than the logical block size of the main or spare device.
    BlockSizeBelowLogical,
    /// The spare region cannot hold the metadata copies and one spare block.
    SpareTooSmall,
    /// `read_retries` has no value or one outside 0..=100.
    ReadRetriesInvalid,
    /// The target length is not a whole number of remap blocks.
    TargetLenUnaligned,
    /// `metadata_copies` has no value or one outside 2..=16.
    MetadataCopiesInvalid,
    /// `<spare_start>` is not aligned to the logical block size of the spare device.
    SpareStartMisaligned,
    /// The target does not start at a multiple of the block size in the dm device.
    TargetStartUnaligned,
    /// `block_size` is larger than the largest logical block size the kernel supports (the
    /// block size becomes the device's logical block size).
    BlockSizeAboveKernel,
    /// The spare device's logical block size is above 4096 bytes (the metadata I/O unit).
    SpareSectorTooLarge,
}

impl ArgError {
    /// The message for `ti->error`: one sentence, static, saying what to fix.
    pub fn message(self) -> &'static CStr {
        match self {
            Self::ArgCount => {
                c"Invalid argument count: expected <main_dev> <spare_dev> <spare_start> <spare_len> [<#feature_args> <feature_arg>...]"
            }
            Self::SpareStartInvalid => c"Invalid spare_start: not a decimal number of sectors",
            Self::SpareStartOverflow => c"Invalid spare_start: does not fit in 64 bits",
            Self::SpareLenInvalid => c"Invalid spare_len: not a decimal number of sectors",
            Self::SpareLenOverflow => c"Invalid spare_len: does not fit in 64 bits",
            Self::SpareLenZero => c"Invalid spare_len: must be greater than 0",
            Self::SpareRegionOverflow => c"Invalid spare region: spare_start + spare_len overflows",
            Self::FeatureCountInvalid => c"Invalid #feature_args: not a decimal number",
            Self::FeatureCountMismatch => {
                c"Invalid #feature_args: does not match the number of feature arguments that follow"
            }
            Self::UnknownFeature => {
                c"Unknown feature argument (known: block_size <bytes>, read_retries <n>, metadata_copies <n>, format, no_stats)"
            }
            Self::DuplicateFeature => c"Feature argument given more than once",
            Self::BlockSizeInvalid => c"Invalid block_size: expected block_size <bytes>",
            Self::BlockSizeRange => c"Invalid block_size: must be a power of two from 512 to 65536",
            Self::SpareBeyondDevice => c"Spare region extends past the end of the spare device",
            Self::SpareOverlapsMain => {
                c"Spare region overlaps the mapped region of the main device (same device)"
            }
            Self::TargetBeyondMain => c"Target length exceeds the size of the main device",
            Self::TargetLenZero => c"Target length must be greater than 0",
            Self::BlockSizeBelowLogical => {
                c"Invalid block_size: smaller than the logical block size of the main or spare device"
            }
            Self::SpareTooSmall => {
                c"Spare region is too small for the metadata copies and one spare block"
            }
            Self::ReadRetriesInvalid => c"Invalid read_retries: expected read_retries <0-100>",
            Self::MetadataCopiesInvalid => {
                c"Invalid metadata_copies: expected metadata_copies <2-16>"
            }
            Self::TargetLenUnaligned => {
                c"Target length is not a multiple of the block size (see block_size)"
            }
            Self::SpareStartMisaligned => {
                c"Invalid spare_start: not aligned to the spare device's logical block size"
            }
            Self::TargetStartUnaligned => {
                c"Target start is not a multiple of the block size (the block size is the device's logical block size)"
            }
            Self::BlockSizeAboveKernel => {
                c"Invalid block_size: larger than the largest logical block size this kernel supports (the page size without CONFIG_TRANSPARENT_HUGEPAGE)"
            }
            Self::SpareSectorTooLarge => {
                c"Spare device logical block size above 4096 bytes is not supported"
            }
        }
    }
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().to_str().unwrap_or("?"))
    }
}

/// Why a word is not an unsigned decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    /// Empty, or contains something other than the digits 0-9.
    Invalid,
    /// Too large for the target type.
    Overflow,
}

/// Parses an unsigned decimal number: digits only, no sign, no spaces, no radix prefix.
pub fn parse_u64(word: &[u8]) -> Result<u64, NumError> {
    if word.is_empty() {
        return Err(NumError::Invalid);
    }
    let mut value: u64 = 0;
    for &c in word {
        if !c.is_ascii_digit() {
            return Err(NumError::Invalid);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(NumError::Overflow)?;
    }
    Ok(value)
}

/// Optional settings given as feature arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// `block_size <bytes>`, if given.
    pub block_size: Option<u32>,
    /// `read_retries <n>`, if given.
    pub read_retries: Option<u32>,
    /// `metadata_copies <n>`, if given.
    pub metadata_copies: Option<u32>,
    /// `format`: overwrite whatever the spare region holds with empty metadata.
    pub format: bool,
    /// `no_stats`: start with I/O counting and timing switched off (the device's
    /// `stats/enabled` file switches it at run time).
    pub no_stats: bool,
}

impl Features {
    /// The remap block size in bytes (the given one or the default).
    pub fn block_size(&self) -> u32 {
        self.block_size.unwrap_or(DEFAULT_BLOCK_SIZE)
    }

    /// How often a failed read of the main device is retried.
    pub fn read_retries(&self) -> u32 {
        self.read_retries.unwrap_or(DEFAULT_READ_RETRIES)
    }

    /// Number of metadata copies.
    pub fn metadata_copies(&self) -> u32 {
        self.metadata_copies
            .unwrap_or(super::layout::DEFAULT_METADATA_COPIES)
    }

    /// Number of words these features take in a table line.
    fn word_count(&self) -> usize {
        2 * (usize::from(self.block_size.is_some())
            + usize::from(self.read_retries.is_some())
            + usize::from(self.metadata_copies.is_some()))
            + usize::from(self.format)
            + usize::from(self.no_stats)
    }

    /// Writes the feature arguments as they appear in a table line, with a leading space
    /// and the count first; writes nothing when no feature was given.
    pub fn write_table_args(&self, w: &mut impl fmt::Write) -> fmt::Result {
        let n = self.word_count();
        if n == 0 {
            return Ok(());
        }
        write!(w, " {n}")?;
        if let Some(bs) = self.block_size {
            write!(w, " block_size {bs}")?;
        }
        if let Some(n) = self.read_retries {
            write!(w, " read_retries {n}")?;
        }
        if let Some(n) = self.metadata_copies {
            write!(w, " metadata_copies {n}")?;
        }
        if self.format {
            w.write_str(" format")?;
        }
        if self.no_stats {
            w.write_str(" no_stats")?;
        }
        Ok(())
    }
}

/// A parsed and syntactically valid table line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableArgs<'a> {
    /// Path (or `major:minor`) of the main device.
    pub main_dev: &'a [u8],
    /// Path (or `major:minor`) of the spare device.
    pub spare_dev: &'a [u8],
    /// First sector of the spare region on the spare device.
    pub spare_start: u64,
    /// Length of the spare region in sectors.
    pub spare_len: u64,
    /// Feature arguments.
    pub features: Features,
}

/// Parses the constructor arguments (the table line after `<start> <len> remap`).
pub fn parse_table_args<'a>(args: &[&'a [u8]]) -> Result<TableArgs<'a>, ArgError> {
    if args.len() < 4 {
        return Err(ArgError::ArgCount);
    }
    let spare_start = parse_u64(args[2]).map_err(|e| match e {
        NumError::Invalid => ArgError::SpareStartInvalid,
        NumError::Overflow => ArgError::SpareStartOverflow,
    })?;
    let spare_len = parse_u64(args[3]).map_err(|e| match e {
        NumError::Invalid => ArgError::SpareLenInvalid,
        NumError::Overflow => ArgError::SpareLenOverflow,
    })?;
    if spare_len == 0 {
        return Err(ArgError::SpareLenZero);
    }
    if spare_start.checked_add(spare_len).is_none() {
        return Err(ArgError::SpareRegionOverflow);
    }
    let features = parse_features(&args[4..])?;
    Ok(TableArgs {
        main_dev: args[0],
        spare_dev: args[1],
        spare_start,
        spare_len,
        features,
    })
}

/// Parses `[<#feature_args> <feature_arg>...]`; an empty slice means no features.
fn parse_features(words: &[&[u8]]) -> Result<Features, ArgError> {
    let mut features = Features::default();
    let Some((count, rest)) = words.split_first() else {
        return Ok(features);
    };
    let count = parse_u64(count).map_err(|_| ArgError::FeatureCountInvalid)?;
    if count != rest.len() as u64 {
        return Err(ArgError::FeatureCountMismatch);
    }
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b"block_size" => {
                if features.block_size.is_some() {
                    return Err(ArgError::DuplicateFeature);
                }
                let value = rest.get(i + 1).ok_or(ArgError::BlockSizeInvalid)?;
                let bytes = parse_u64(value).map_err(|_| ArgError::BlockSizeInvalid)?;
                if !(u64::from(MIN_BLOCK_SIZE)..=u64::from(MAX_BLOCK_SIZE)).contains(&bytes)
                    || !bytes.is_power_of_two()
                {
                    return Err(ArgError::BlockSizeRange);
                }
                // The range check above guarantees the value fits.
                features.block_size = Some(bytes as u32);
                i += 2;
            }
            b"read_retries" => {
                if features.read_retries.is_some() {
                    return Err(ArgError::DuplicateFeature);
                }
                let value = rest.get(i + 1).ok_or(ArgError::ReadRetriesInvalid)?;
                let n = parse_u64(value).map_err(|_| ArgError::ReadRetriesInvalid)?;
                if n > u64::from(MAX_READ_RETRIES) {
                    return Err(ArgError::ReadRetriesInvalid);
                }
                features.read_retries = Some(n as u32);
                i += 2;
            }
            b"metadata_copies" => {
                if features.metadata_copies.is_some() {
                    return Err(ArgError::DuplicateFeature);
                }
                let value = rest.get(i + 1).ok_or(ArgError::MetadataCopiesInvalid)?;
                let n = parse_u64(value).map_err(|_| ArgError::MetadataCopiesInvalid)?;
                if !(u64::from(MIN_METADATA_COPIES)..=u64::from(MAX_METADATA_COPIES)).contains(&n) {
                    return Err(ArgError::MetadataCopiesInvalid);
                }
                features.metadata_copies = Some(n as u32);
                i += 2;
            }
            b"format" => {
                if features.format {
                    return Err(ArgError::DuplicateFeature);
                }
                features.format = true;
                i += 1;
            }
            b"no_stats" => {
                if features.no_stats {
                    return Err(ArgError::DuplicateFeature);
                }
                features.no_stats = true;
                i += 1;
            }
            _ => return Err(ArgError::UnknownFeature),
        }
    }
    Ok(features)
}

/// Sizes of the devices a table line refers to, as the constructor found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceGeometry {
    /// Length of the target in sectors (`<len>` of the table line).
    pub target_len: u64,
    /// Size of the main device in sectors.
    pub main_sectors: u64,
    /// Size of the spare device in sectors.
    pub spare_sectors: u64,
    /// Whether main and spare are the same block device.
    pub same_device: bool,
    /// Largest logical block size in bytes of the main and spare devices.
    pub logical_block_size: u32,
    /// Logical block size in bytes of the spare device.
    pub spare_logical_block_size: u32,
    /// First sector of the target in the dm device (`<start>` of the table line).
    pub target_begin: u64,
    /// Largest logical block size the kernel supports.
    pub max_block_size: u32,
}

/// Checks a parsed table line against the devices it names.
///
/// The target maps sectors `0..target_len` of the main device; the spare region is
/// `spare_start..spare_start + spare_len` of the spare device.
pub fn validate_geometry(args: &TableArgs<'_>, geo: &DeviceGeometry) -> Result<(), ArgError> {
    if geo.target_len == 0 {
        return Err(ArgError::TargetLenZero);
    }
    if geo.target_len > geo.main_sectors {
        return Err(ArgError::TargetBeyondMain);
    }
    // parse_table_args() has checked that this does not overflow.
    let spare_end = args.spare_start + args.spare_len;
    if spare_end > geo.spare_sectors {
        return Err(ArgError::SpareBeyondDevice);
    }
    if geo.same_device && args.spare_start < geo.target_len {
        return Err(ArgError::SpareOverlapsMain);
    }
    let block_size = args.features.block_size();
    if block_size < geo.logical_block_size {
        return Err(ArgError::BlockSizeBelowLogical);
    }
    if block_size > geo.max_block_size {
        return Err(ArgError::BlockSizeAboveKernel);
    }
    if geo.spare_logical_block_size > super::format::MAX_IO_UNIT {
        return Err(ArgError::SpareSectorTooLarge);
    }
    // Block sizes are powers of two.
    let block_mask = u64::from(block_size) / SECTOR_SIZE - 1;
    if geo.target_len & block_mask != 0 {
        return Err(ArgError::TargetLenUnaligned);
    }
    if geo.target_begin & block_mask != 0 {
        return Err(ArgError::TargetStartUnaligned);
    }
    let lbs_sectors = u64::from(geo.logical_block_size) / SECTOR_SIZE;
    // Logical block sizes are powers of two.
    if lbs_sectors > 1 && args.spare_start & (lbs_sectors - 1) != 0 {
        return Err(ArgError::SpareStartMisaligned);
    }
    super::layout::SpareLayout::new(
        args.spare_start,
        args.spare_len,
        block_size,
        args.features.metadata_copies(),
    )
    .map_err(|_| ArgError::SpareTooSmall)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn words(line: &str) -> Vec<&[u8]> {
        line.split_ascii_whitespace().map(str::as_bytes).collect()
    }

    fn parse(line: &str) -> Result<TableArgs<'_>, ArgError> {
        parse_table_args(&words(line))
    }

    const GEO: DeviceGeometry = DeviceGeometry {
        target_len: 1000,
        main_sectors: 1008,
        spare_sectors: 4096,
        same_device: false,
        logical_block_size: 512,
        spare_logical_block_size: 512,
        target_begin: 0,
        max_block_size: 65536,
    };

    #[test]
    fn minimal_line() {
        let a = parse("/dev/loop0 /dev/loop1 0 500").unwrap();
        assert_eq!(a.main_dev, b"/dev/loop0");
        assert_eq!(a.spare_dev, b"/dev/loop1");
        assert_eq!((a.spare_start, a.spare_len), (0, 500));
        assert_eq!(a.features, Features::default());
        assert_eq!(a.features.block_size(), DEFAULT_BLOCK_SIZE);
    }

    #[test]
    fn wrong_argument_counts() {
        for line in ["", "a", "a b", "a b 0"] {
            assert_eq!(parse(line), Err(ArgError::ArgCount), "{line:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"0"), Ok(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), Err(NumError::Overflow));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"0x10",
            b"1e3",
            b"12a",
            b" 1",
            b"1.0",
        ] {
            assert_eq!(parse_u64(bad), Err(NumError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn bad_numbers_name_the_field() {
        assert_eq!(parse("a b x 5"), Err(ArgError::SpareStartInvalid));
        assert_eq!(parse("a b -1 5"), Err(ArgError::SpareStartInvalid));
        assert_eq!(
            parse("a b 99999999999999999999 5"),
            Err(ArgError::SpareStartOverflow)
        );
        assert_eq!(parse("a b 0 five"), Err(ArgError::SpareLenInvalid));
        assert_eq!(
            parse("a b 0 99999999999999999999"),
            Err(ArgError::SpareLenOverflow)
        );
        assert_eq!(parse("a b 0 0"), Err(ArgError::SpareLenZero));
        assert_eq!(
            parse("a b 18446744073709551615 1"),
            Err(ArgError::SpareRegionOverflow)
        );
    }

    #[test]
    fn features() {
        let a = parse("a b 0 8 2 block_size 65536").unwrap();
        assert_eq!(a.features.block_size, Some(65536));
        assert_eq!(parse("a b 0 8 0").unwrap().features, Features::default());
        assert_eq!(parse("a b 0 8 x"), Err(ArgError::FeatureCountInvalid));
        assert_eq!(
            parse("a b 0 8 1 block_size 4096"),
            Err(ArgError::FeatureCountMismatch)
        );
        assert_eq!(
            parse("a b 0 8 3 block_size 4096"),
            Err(ArgError::FeatureCountMismatch)
        );
        assert_eq!(
            parse("a b 0 8 1 block_size"),
            Err(ArgError::BlockSizeInvalid)
        );
        assert_eq!(
            parse("a b 0 8 2 block_size big"),
            Err(ArgError::BlockSizeInvalid)
        );
        assert_eq!(parse("a b 0 8 1 turbo"), Err(ArgError::UnknownFeature));
        assert_eq!(
            parse("a b 0 8 2 read_retries 7")
                .unwrap()
                .features
                .read_retries(),
            7
        );
        assert_eq!(
            parse("a b 0 8").unwrap().features.read_retries(),
            DEFAULT_READ_RETRIES
        );
        assert_eq!(
            parse("a b 0 8 2 metadata_copies 1"),
            Err(ArgError::MetadataCopiesInvalid)
        );
        assert_eq!(
            parse("a b 0 8 2 metadata_copies 17"),
            Err(ArgError::MetadataCopiesInvalid)
        );
        assert_eq!(
            parse("a b 0 8 2 format format"),
            Err(ArgError::DuplicateFeature)
        );
        assert!(parse("a b 0 8 1 format").unwrap().features.format);
        assert!(parse("a b 0 8 1 no_stats").unwrap().features.no_stats);
        assert_eq!(
            parse("a b 0 8 2 no_stats no_stats"),
            Err(ArgError::DuplicateFeature)
        );
        assert_eq!(
            parse("a b 0 8 2 read_retries 101"),
            Err(ArgError::ReadRetriesInvalid)
        );
        assert_eq!(
            parse("a b 0 8 1 read_retries"),
            Err(ArgError::ReadRetriesInvalid)
        );
        assert_eq!(
            parse("a b 0 8 4 block_size 4096 block_size 4096"),
            Err(ArgError::DuplicateFeature)
        );
        for bad in ["0", "256", "3000", "131072", "4097"] {
            let line = std::format!("a b 0 8 2 block_size {bad}");
            assert_eq!(parse(&line), Err(ArgError::BlockSizeRange), "{bad}");
        }
    }

    #[test]
    fn table_args_round_trip() {
        for line in [
            "a b 0 8",
            "a b 0 8 2 block_size 512",
            "a b 0 8 2 read_retries 0",
            "a b 0 8 4 block_size 8192 read_retries 3",
            "a b 0 8 3 metadata_copies 2 format",
            "a b 0 8 1 format",
            "a b 0 8 2 format no_stats",
        ] {
            let a = parse(line).unwrap();
            let mut s = String::new();
            a.features.write_table_args(&mut s).unwrap();
            assert_eq!(std::format!("a b 0 8{s}"), line);
        }
    }

    #[test]
    fn geometry() {
        let a = parse("a b 0 4096").unwrap();
        assert_eq!(validate_geometry(&a, &GEO), Ok(()));
        let g = |f: fn(&mut DeviceGeometry)| {
            let mut g = GEO;
            f(&mut g);
            g
        };
        assert_eq!(
            validate_geometry(&a, &g(|g| g.target_len = 1016)),
            Err(ArgError::TargetBeyondMain)
        );
        assert_eq!(
            validate_geometry(&a, &g(|g| g.target_len = 0)),
            Err(ArgError::TargetLenZero)
        );
        assert_eq!(
            validate_geometry(&a, &g(|g| g.spare_sectors = 4095)),
            Err(ArgError::SpareBeyondDevice)
        );
        assert_eq!(
            validate_geometry(&a, &g(|g| g.logical_block_size = 8192)),
            Err(ArgError::BlockSizeBelowLogical)
        );
        let same = DeviceGeometry {
            same_device: true,
            main_sectors: 8000,
            spare_sectors: 8000,
            ..GEO
        };
        assert_eq!(
            validate_geometry(&parse("a a 999 4096").unwrap(), &same),
            Err(ArgError::SpareOverlapsMain)
        );
        assert_eq!(
            validate_geometry(&parse("a a 1000 4096").unwrap(), &same),
            Ok(())
        );
        assert_eq!(
            validate_geometry(&parse("a b 0 256").unwrap(), &GEO),
            Err(ArgError::SpareTooSmall)
        );
        assert_eq!(
            validate_geometry(&a, &g(|g| g.target_len = 996)),
            Err(ArgError::TargetLenUnaligned)
        );
        let lbs4k = g(|g| g.logical_block_size = 4096);
        assert_eq!(
            validate_geometry(&parse("a b 4 4000").unwrap(), &lbs4k),
            Err(ArgError::SpareStartMisaligned)
        );
        assert_eq!(
            validate_geometry(&a, &g(|g| g.target_begin = 4)),
            Err(ArgError::TargetStartUnaligned)
        );
        assert_eq!(validate_geometry(&a, &g(|g| g.target_begin = 8)), Ok(()));
        assert_eq!(
            validate_geometry(&a, &g(|g| g.max_block_size = 2048)),
            Err(ArgError::BlockSizeAboveKernel)
        );
        assert_eq!(
            validate_geometry(&a, &g(|g| g.spare_logical_block_size = 8192)),
            Err(ArgError::SpareSectorTooLarge)
        );
    }

    #[test]
    fn every_error_has_a_distinct_message() {
        use ArgError::*;
        let all = [
            ArgCount,
            SpareStartInvalid,
            SpareStartOverflow,
            SpareLenInvalid,
            SpareLenOverflow,
            SpareLenZero,
            SpareRegionOverflow,
            FeatureCountInvalid,
            FeatureCountMismatch,
            UnknownFeature,
            DuplicateFeature,
            BlockSizeInvalid,
            BlockSizeRange,
            SpareBeyondDevice,
            SpareOverlapsMain,
            TargetBeyondMain,
            TargetLenZero,
            BlockSizeBelowLogical,
            SpareTooSmall,
            SpareStartMisaligned,
            ReadRetriesInvalid,
            TargetLenUnaligned,
            MetadataCopiesInvalid,
            TargetStartUnaligned,
            BlockSizeAboveKernel,
            SpareSectorTooLarge,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.message(), b.message());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_u64_matches_std(s in "[0-9]{1,25}") {
            assert_eq!(parse_u64(s.as_bytes()).ok(), s.parse::<u64>().ok());
        }

        #[test]
        fn parser_never_panics(line in proptest::collection::vec("[ -~]{0,12}", 0..10)) {
            let w: Vec<&[u8]> = line.iter().map(|s| s.as_bytes()).collect();
            let _ = parse_table_args(&w);
        }
    }
}
