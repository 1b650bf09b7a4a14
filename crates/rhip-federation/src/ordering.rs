//! Which of two concurrent updates of the same record wins, so that every node that
//! receives both, in whatever order, ends with the same record.
//!
//! The home county is authoritative for a person's demographics (DESIGN §4), so its
//! change wins over changes made elsewhere. Between changes of equal standing the later
//! hybrid-logical-clock time wins, compared as decoded timestamps rather than as text;
//! exact ties go to the larger origin region code, an arbitrary but shared rule.

use rhip_core::HlcTimestamp;

/// One contender: its HLC text, its origin region, and whether that origin is the home
/// county of the person concerned.
pub type Contender<'a> = (&'a str, &'a str, bool);

/// Whether change `a` wins over change `b`: the home county's change first, then the
/// higher HLC, then the larger origin region code. Deterministic and antisymmetric: for
/// two different contenders exactly one of `wins(a, b)` and `wins(b, a)` holds; a
/// contender does not win over itself. An HLC that cannot be decoded counts as earlier
/// than any valid time, so a malformed change never overrides a well-formed one (two
/// malformed ones are ordered by their text, to stay total).
pub fn wins(a: Contender<'_>, b: Contender<'_>) -> bool {
    rank(a) > rank(b)
}

/// The sort key of a contender. The HLC encoding is canonical, so after equal decoded
/// times the texts are equal too, and the text only orders malformed times among
/// themselves.
fn rank<'a>((hlc, origin, home): Contender<'a>) -> (bool, Option<HlcTimestamp>, &'a str, &'a str) {
    (home, HlcTimestamp::decode(hlc).ok(), hlc, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLY: &str = "001700000000000.000005";
    const LATE: &str = "001700000000001.000000";

    #[test]
    fn the_home_county_wins_even_when_earlier() {
        assert!(wins((EARLY, "330106", true), (LATE, "440106", false)));
        assert!(!wins((LATE, "440106", false), (EARLY, "330106", true)));
    }

    #[test]
    fn otherwise_the_later_change_wins() {
        assert!(wins((LATE, "330108", false), (EARLY, "440106", false)));
        assert!(!wins((EARLY, "440106", false), (LATE, "330108", false)));
        // Decoded, not text: the logical counter orders changes within one millisecond.
        assert!(wins(("001700000000000.000010", "330108", true), ("001700000000000.000009", "330108", true)));
    }

    #[test]
    fn ties_go_to_the_larger_origin() {
        assert!(wins((EARLY, "440106", false), (EARLY, "330108", false)));
        assert!(!wins((EARLY, "330108", false), (EARLY, "440106", false)));
        assert!(!wins((EARLY, "330108", false), (EARLY, "330108", false)));
    }

    #[test]
    fn undecodable_times_lose() {
        assert!(wins((EARLY, "110101", false), ("garbage", "990000", false)));
        assert!(!wins(("garbage", "990000", false), (EARLY, "110101", false)));
        // Still a total order among malformed ones.
        assert!(wins(("other", "330106", false), ("garbage", "440106", false)));
    }

    #[test]
    fn exactly_one_of_two_different_contenders_wins() {
        let contenders = [
            (EARLY, "330106", true),
            (LATE, "330106", true),
            (EARLY, "440106", false),
            (LATE, "440106", false),
            (LATE, "330108", false),
            ("bad", "330108", false),
            ("worse", "330108", false),
        ];
        for a in contenders {
            for b in contenders {
                if a != b {
                    assert_ne!(wins(a, b), wins(b, a), "{a:?} vs {b:?}");
                }
            }
        }
    }
}
