//! A tiny phrase-pattern language, so the rule table reads like the replies it recognises
//! instead of like code.
//!
//! A pattern is whitespace-separated elements, matched against consecutive tokens of one
//! sentence:
//! - `word` matches that word (after the same normalisation as replies: lower case, accents
//!   folded, letter runs squeezed), or a one-slip typo of it when it is long enough;
//! - `word*` matches any token starting with `word` (`cancel*` → cancelled, cancelar);
//! - `a|b*|c` matches any of the alternatives;
//! - `~N` skips zero to N tokens (`stop ~2 text*` → "stop sending me texts").
//!
//! Parsing is total: any string is a pattern (an unparsable `~x` is a literal word).

use crate::normalize::{fold_word, squeeze, typo_distance};

/// Real words one slip away from a rule word, which must not be read as that word.
const NEAR_MISSES: &[&str] = &["cancer", "cancers", "cancerous"];

/// Stems (`cancel*`) at least this long tolerate one slip in the typed word's beginning.
/// Shorter ones collide with real words (`stop`/`step`).
const FUZZY_STEM_MIN_LEN: usize = 6;
/// Whole words must be longer before they tolerate a slip: Spanish inflections are one letter
/// apart (`asistir` is not `asistiré`), and so are `resubscribe` and `unsubscribe` at two.
const FUZZY_WORD_MIN_LEN: usize = 9;
/// Whole words at least this long tolerate two slips.
const FUZZY_TWO_SLIPS_LEN: usize = 12;

#[derive(Debug, Clone)]
struct Alternative {
    chars: Vec<char>,
    text: String,
    prefix: bool,
}

#[derive(Debug, Clone)]
enum Element {
    Word(Vec<Alternative>),
    Gap(usize),
}

/// A compiled phrase pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    elements: Vec<Element>,
}

impl Pattern {
    /// Compiles a pattern; never fails.
    pub(crate) fn parse(source: &str) -> Pattern {
        let elements = source
            .split_whitespace()
            .map(|piece| {
                if let Some(gap) = piece.strip_prefix('~').and_then(|n| n.parse().ok()) {
                    return Element::Gap(gap);
                }
                let alternatives = piece
                    .split('|')
                    .filter(|alt| !alt.is_empty())
                    .map(|alt| {
                        let (word, prefix) = match alt.strip_suffix('*') {
                            Some(stem) => (stem, true),
                            None => (alt, false),
                        };
                        let text = squeeze(&fold_word(word));
                        Alternative {
                            chars: text.chars().collect(),
                            text,
                            prefix,
                        }
                    })
                    .collect();
                Element::Word(alternatives)
            })
            .collect();
        Pattern { elements }
    }

    /// Finds the leftmost match among tokens not yet `consumed`; returns the indices of the
    /// tokens the words (not the gaps) matched.
    pub(crate) fn find(&self, tokens: &[String], consumed: &[bool]) -> Option<Vec<usize>> {
        (0..tokens.len()).find_map(|start| self.match_at(tokens, consumed, start))
    }

    /// Matches starting exactly at `start`; returns the word indices, the last of which (or
    /// the end of the trailing gap) tells where the match ended.
    pub(crate) fn match_at(
        &self,
        tokens: &[String],
        consumed: &[bool],
        start: usize,
    ) -> Option<Vec<usize>> {
        let mut hits = Vec::new();
        self.walk(tokens, consumed, 0, start, &mut hits)
            .map(|_| hits)
    }

    /// Whether the pattern, repeated, covers exactly all of `tokens` ("stop stop stop").
    pub(crate) fn covers(&self, tokens: &[String]) -> bool {
        if tokens.is_empty() {
            return false;
        }
        let consumed = vec![false; tokens.len()];
        let mut position = 0;
        while position < tokens.len() {
            let mut hits = Vec::new();
            match self.walk(tokens, &consumed, 0, position, &mut hits) {
                Some(end) if end > position => position = end,
                _ => return false,
            }
        }
        true
    }

    /// Backtracking matcher; returns the position after the match.
    fn walk(
        &self,
        tokens: &[String],
        consumed: &[bool],
        element: usize,
        position: usize,
        hits: &mut Vec<usize>,
    ) -> Option<usize> {
        let Some(current) = self.elements.get(element) else {
            return Some(position);
        };
        match current {
            Element::Word(alternatives) => {
                let token = tokens.get(position)?;
                if consumed.get(position).copied().unwrap_or(true)
                    || !alternatives.iter().any(|alt| alt.matches(token))
                {
                    return None;
                }
                hits.push(position);
                let end = self.walk(tokens, consumed, element + 1, position + 1, hits);
                if end.is_none() {
                    hits.pop();
                }
                end
            }
            Element::Gap(max) => (0..=*max)
                .take_while(|skip| position + skip <= tokens.len())
                .find_map(|skip| self.walk(tokens, consumed, element + 1, position + skip, hits)),
        }
    }
}

impl Alternative {
    fn matches(&self, token: &str) -> bool {
        let exact = if self.prefix {
            token.starts_with(self.text.as_str())
        } else {
            token == self.text
        };
        exact || self.matches_with_typo(token)
    }

    fn matches_with_typo(&self, token: &str) -> bool {
        let len = self.chars.len();
        let min_len = if self.prefix {
            FUZZY_STEM_MIN_LEN
        } else {
            FUZZY_WORD_MIN_LEN
        };
        if len < min_len
            || !token.chars().all(char::is_alphabetic)
            || NEAR_MISSES.iter().any(|near| token.starts_with(near))
        {
            return false;
        }
        let token: Vec<char> = token.chars().collect();
        if self.prefix {
            // Compare the typed word's beginning, allowing it to be one letter shorter or longer
            // than the stem (a dropped or doubled letter inside the stem).
            (len - 1..=len + 1)
                .filter(|k| *k <= token.len())
                .any(|k| typo_distance(&token[..k], &self.chars) <= 1)
        } else {
            let allowed = if len >= FUZZY_TWO_SLIPS_LEN { 2 } else { 1 };
            token.len().abs_diff(len) <= allowed && typo_distance(&token, &self.chars) <= allowed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    fn finds(pattern: &str, text: &str) -> bool {
        let tokens = toks(text);
        Pattern::parse(pattern)
            .find(&tokens, &vec![false; tokens.len()])
            .is_some()
    }

    #[test]
    fn words_prefixes_alternatives_and_gaps() {
        assert!(finds("stop ~2 text*", "please stop sending me texts"));
        assert!(finds("stop ~2 text*", "stop texting"));
        assert!(!finds("stop ~2 text*", "stop my medication"));
        assert!(finds("cancel*", "cancelled"));
        assert!(finds("no|nope", "nope"));
        assert!(!finds("no", "not"));
    }

    #[test]
    fn long_words_tolerate_a_slip_but_not_near_misses() {
        assert!(finds("cancel*", "cancle"));
        assert!(finds("confirm*", "confrim"));
        assert!(finds("resched*", "rescedule"));
        assert!(!finds("cancel*", "cancer"));
        assert!(!finds("stop", "step"));
    }

    #[test]
    fn consumed_tokens_are_skipped() {
        let tokens = toks("no problem");
        let pattern = Pattern::parse("no");
        assert!(pattern.find(&tokens, &[true, false]).is_none());
        assert_eq!(pattern.find(&tokens, &[false, false]), Some(vec![0]));
    }

    #[test]
    fn covers_needs_the_whole_token_list() {
        assert!(Pattern::parse("stop").covers(&toks("stop stop")));
        assert!(!Pattern::parse("stop").covers(&toks("stop eating")));
        assert!(!Pattern::parse("stop").covers(&[]));
        assert!(!Pattern::parse("~2").covers(&toks("anything")));
    }

    #[test]
    fn pattern_text_is_normalised_like_replies() {
        // "Appointment" squeezes to "apointment", as a reply's token would.
        assert!(finds("Appointment", "apointment"));
        assert!(finds("más", "mas"));
    }
}
