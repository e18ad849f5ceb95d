//! `num_segments` as Twilio computes it: one segment holds 160 GSM-7 septets or 70 UCS-2 code
//! units; a longer text is split into parts of 153 or 67 (the rest carries the concatenation
//! header).

use aro_domain::template::Encoding;

/// How many SMS segments `body` takes (at least one).
pub(crate) fn count(body: &str) -> u32 {
    let encoding = Encoding::of(body);
    let units = encoding.units(body);
    let single = encoding.single_segment_limit();
    let part = match encoding {
        Encoding::Gsm7 => 153,
        Encoding::Ucs2 => 67,
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    u32::try_from(segments).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_encoding_limits() {
        assert_eq!(count(""), 1);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
        // Extension characters take two septets.
        assert_eq!(count(&"€".repeat(80)), 1);
        assert_eq!(count(&"€".repeat(81)), 2);
        // Anything outside GSM-7 makes the whole text UCS-2.
        assert_eq!(count(&format!("{}✓", "a".repeat(69))), 1);
        assert_eq!(count(&format!("{}✓", "a".repeat(70))), 2);
        assert_eq!(count(&"😀".repeat(35)), 1);
        assert_eq!(count(&"😀".repeat(36)), 2);
    }
}
