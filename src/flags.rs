//! Signs that a translation went wrong, for people who filter corpora: a repetition loop, a
//! length out of proportion with the source, or a generation cut by the length limit. They
//! are computed from token ids, so they cost nothing next to decoding and do not depend on
//! the language of the text.

use serde::{Serialize, Serializer};

/// A block of this many tokens or fewer, repeated back to back, can be a loop.
pub const LOOP_MAX_PERIOD: usize = 8;

/// Back-to-back repeats that make a loop: one- and two-token blocks need this many...
pub const LOOP_MIN_REPEATS_SHORT: usize = 4;

/// ...and longer blocks this many.
pub const LOOP_MIN_REPEATS_LONG: usize = 3;

/// Longest accepted ratio between the target's and the source's token counts, either way.
pub const MAX_LENGTH_RATIO: f64 = 3.0;

/// Below this many tokens on the longer side, lengths vary too much to judge ("Oui." ->
/// "Yes, indeed.").
pub const MIN_TOKENS_FOR_RATIO: usize = 6;

/// The flags of one translation: a small set of [`Flag`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

/// One sign of a broken translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// The output repeats a block of tokens back to back ("price price price price").
    Repeat,
    /// The output is more than [`MAX_LENGTH_RATIO`] times longer or shorter than the source.
    LengthRatio,
    /// Generation stopped at the length limit instead of ending the sentence.
    LengthLimit,
}

impl Flag {
    /// Every flag, in output order.
    pub const ALL: [Flag; 3] = [Flag::Repeat, Flag::LengthRatio, Flag::LengthLimit];

    /// The name used in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Repeat => "repeat",
            Flag::LengthRatio => "length_ratio",
            Flag::LengthLimit => "length_limit",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Flag::Repeat => 1,
            Flag::LengthRatio => 2,
            Flag::LengthLimit => 4,
        }
    }
}

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// These flags plus `flag`.
    pub fn with(self, flag: Flag) -> Self {
        Flags(self.0 | flag.bit())
    }

    /// Both sets.
    pub fn union(self, other: Flags) -> Self {
        Flags(self.0 | other.0)
    }

    /// Whether `flag` is set.
    pub fn contains(self, flag: Flag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, in output order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |&f| self.contains(f))
    }

    /// The names, comma-separated (empty when no flag is set): the TSV column.
    pub fn text(self) -> String {
        self.iter().map(Flag::name).collect::<Vec<_>>().join(",")
    }

    /// The set as stored (a bit per flag).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set from stored bits; unknown bits are dropped.
    pub fn from_bits(bits: u8) -> Self {
        Flags(bits & 7)
    }
}

impl Serialize for Flags {
    /// A JSON list of names, e.g. `["repeat","length_limit"]`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Flag::name))
    }
}

/// Whether `ids` hold a loop: a block of up to [`LOOP_MAX_PERIOD`] tokens repeated back to back
/// ([`LOOP_MIN_REPEATS_SHORT`] times for blocks of 1 or 2 tokens, [`LOOP_MIN_REPEATS_LONG`]
/// for longer ones).
pub fn has_loop(ids: &[u32]) -> bool {
    for period in 1..=LOOP_MAX_PERIOD {
        let needed = if period <= 2 {
            LOOP_MIN_REPEATS_SHORT
        } else {
            LOOP_MIN_REPEATS_LONG
        };
        // Tokens equal to the one `period` earlier, in a row: a block repeated r times
        // gives (r - 1) * period of them.
        let mut run = 0;
        for i in period..ids.len() {
            if ids[i] == ids[i - period] {
                run += 1;
                if run >= (needed - 1) * period {
                    return true;
                }
            } else {
                run = 0;
            }
        }
    }
    false
}

/// Whether a translation of `target` tokens is out of proportion with its source of `source`
/// tokens (end-of-sentence tokens not counted).
pub fn length_ratio_out_of_range(source: usize, target: usize) -> bool {
    let (short, long) = (source.min(target), source.max(target));
    long >= MIN_TOKENS_FOR_RATIO && (long as f64) > MAX_LENGTH_RATIO * short as f64
}

/// The flags of a generated output: `ids` without the end token, and whether generation hit
/// the length limit.
pub fn output_flags(ids: &[u32], length_limited: bool) -> Flags {
    let mut flags = Flags::NONE;
    if has_loop(ids) {
        flags = flags.with(Flag::Repeat);
    }
    if length_limited {
        flags = flags.with(Flag::LengthLimit);
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_found_and_normal_repetition_is_not() {
        assert!(has_loop(&[5, 7, 7, 7, 7, 9]));
        assert!(!has_loop(&[5, 7, 7, 7, 9, 7]));
        assert!(has_loop(&[1, 2, 3, 2, 3, 2, 3, 2, 3]));
        assert!(!has_loop(&[1, 2, 3, 2, 3, 2, 3, 4]));
        assert!(has_loop(&[9, 1, 2, 3, 1, 2, 3, 1, 2, 3]));
        assert!(!has_loop(&[9, 1, 2, 3, 1, 2, 3, 4, 1, 2, 3]));
        let block: Vec<u32> = (10..18).collect();
        let thrice: Vec<u32> = block.iter().chain(&block).chain(&block).copied().collect();
        assert!(has_loop(&thrice));
        let nine: Vec<u32> = (10..19).collect();
        let thrice9: Vec<u32> = nine.iter().chain(&nine).chain(&nine).copied().collect();
        assert!(
            !has_loop(&thrice9),
            "blocks longer than the period limit are not loops"
        );
        assert!(!has_loop(&[]));
        assert!(!has_loop(&(0..500).collect::<Vec<u32>>()));
    }

    #[test]
    fn length_ratio_needs_long_enough_sides() {
        assert!(!length_ratio_out_of_range(2, 5));
        assert!(length_ratio_out_of_range(2, 7));
        assert!(length_ratio_out_of_range(20, 0));
        assert!(!length_ratio_out_of_range(20, 7));
        assert!(length_ratio_out_of_range(20, 6));
        assert!(!length_ratio_out_of_range(0, 0));
    }

    #[test]
    fn flags_print_and_round_trip() {
        let f = Flags::NONE.with(Flag::LengthLimit).with(Flag::Repeat);
        assert_eq!(f.text(), "repeat,length_limit");
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"["repeat","length_limit"]"#
        );
        assert_eq!(Flags::from_bits(f.bits()), f);
        assert_eq!(Flags::NONE.text(), "");
        assert_eq!(serde_json::to_string(&Flags::NONE).unwrap(), "[]");
        assert!(output_flags(&[3, 3, 3, 3], true).contains(Flag::Repeat));
        assert_eq!(output_flags(&[1, 2], false), Flags::NONE);
    }
}
