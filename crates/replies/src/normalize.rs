//! Turns a raw SMS into something rules can match: lower case, accents folded, apostrophes
//! dropped (`can't` → `cant`), letter runs squeezed (`yesss` → `yes`, `siii` → `si`), split into
//! sentences (so "Stop. I already confirmed" keeps its own "stop"), with the emoji that carry
//! meaning kept as tokens and whether each sentence asks something.
//!
//! Everything is total: any input, however odd, yields some (possibly empty) token list.

/// Emoji that carry a reply's meaning; each becomes a token of its own.
/// Skin-tone modifiers and variation selectors are dropped as separators.
const SIGNAL_EMOJI: &[char] = &[
    '👍', '👌', '✅', '✔', '☑', '🆗', '🙆', '😊', '🙂', '😀', '😃', '😄', '😁', '☺', '❤', '🙏',
    '👎', '❌', '✖', '🙅', '🚫', '⛔',
];

/// One sentence of a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sentence {
    /// Normalised tokens: lower-case, unaccented, squeezed words, digits, or signal emoji.
    pub tokens: Vec<String>,
    /// The sentence ended with `?` (or `❓`) or opened with `¿`.
    pub question_mark: bool,
}

/// A normalised reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Normalized {
    /// Non-empty sentences, in order.
    pub sentences: Vec<Sentence>,
    /// How many characters only Spanish among our languages uses (`ñ`, `¿`, `¡`, accented
    /// vowels): a language hint when the words alone do not settle it.
    pub spanish_marks: usize,
}

impl Normalized {
    /// All tokens of all sentences.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.sentences
            .iter()
            .flat_map(|s| s.tokens.iter().map(String::as_str))
    }
}

/// Normalises a reply.
pub(crate) fn normalize(text: &str) -> Normalized {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Normalized::default();
    let mut sentence = Sentence::default();
    let mut token = String::new();

    for (index, &raw) in chars.iter().enumerate() {
        if matches!(
            raw,
            'ñ' | 'Ñ' | '¿' | '¡' | 'á' | 'é' | 'í' | 'ó' | 'ú' | 'Á' | 'É' | 'Í' | 'Ó' | 'Ú'
        ) {
            out.spanish_marks += 1;
        }
        if is_apostrophe(raw) || is_combining_mark(raw) {
            // `can't` → `cant`; a decomposed accent disappears like a composed one folds.
            continue;
        }
        if raw.is_alphanumeric() {
            for lower in raw.to_lowercase() {
                token.push(fold_char(lower));
            }
            continue;
        }
        flush_token(&mut token, &mut sentence);
        if SIGNAL_EMOJI.contains(&raw) {
            sentence.tokens.push(raw.to_string());
            continue;
        }
        match raw {
            '?' | '？' | '❓' | '❔' => {
                sentence.question_mark = true;
                end_sentence(&mut sentence, &mut out);
            }
            '¿' => {
                end_sentence(&mut sentence, &mut out);
                sentence.question_mark = true;
            }
            '.' => {
                // "10.30" is a time, not two sentences.
                let between_digits = index > 0
                    && chars[index - 1].is_ascii_digit()
                    && chars.get(index + 1).is_some_and(char::is_ascii_digit);
                if !between_digits {
                    end_sentence(&mut sentence, &mut out);
                }
            }
            '!' | ';' | '\n' | '\r' | '¡' | '。' | '！' | '…' => {
                end_sentence(&mut sentence, &mut out)
            }
            _ => {}
        }
    }
    flush_token(&mut token, &mut sentence);
    end_sentence(&mut sentence, &mut out);
    out
}

fn flush_token(token: &mut String, sentence: &mut Sentence) {
    if !token.is_empty() {
        sentence.tokens.push(squeeze(token));
        token.clear();
    }
}

fn end_sentence(sentence: &mut Sentence, out: &mut Normalized) {
    let finished = std::mem::take(sentence);
    if !finished.tokens.is_empty() {
        out.sentences.push(finished);
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | '`' | '´' | 'ʼ')
}

fn is_combining_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Folds a lower-case letter to its unaccented base letter; other characters pass unchanged.
pub(crate) fn fold_char(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ł' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ř' => 'r',
        'ś' | 'š' | 'ş' => 's',
        'ť' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

/// Lower-cases and folds a word without squeezing it (reply codes compare this way).
pub(crate) fn fold_word(word: &str) -> String {
    word.chars()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(fold_char)
        .collect()
}

/// Collapses runs of one repeated letter: `yesss` → `yes`, `pleeease` → `please`.
/// Rule words are squeezed the same way, so `good` and `goood` both become `god` and still
/// match each other; digits are left alone (`100` stays `100`).
pub(crate) fn squeeze(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut previous: Option<char> = None;
    for c in word.chars() {
        if c.is_alphabetic() && previous == Some(c) {
            continue;
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), the usual
/// model of a typing slip: `confrim` is one edit from `confirm`.
pub(crate) fn typo_distance(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut rows = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Vec<String>> {
        normalize(text)
            .sentences
            .into_iter()
            .map(|s| s.tokens)
            .collect()
    }

    #[test]
    fn folds_case_accents_apostrophes_and_repeats() {
        assert_eq!(
            tokens("Sííí, ahí estaré"),
            vec![vec!["si", "ahi", "estare"]]
        );
        assert_eq!(tokens("Can't   make it"), vec![vec!["cant", "make", "it"]]);
        assert_eq!(tokens("YESSSS"), vec![vec!["yes"]]);
        // A decomposed accent (e + U+0301) folds like the composed one.
        assert_eq!(tokens("este\u{301}"), vec![vec!["este"]]);
    }

    #[test]
    fn splits_sentences_and_marks_questions() {
        let normalized = normalize("Stop. Should I stop my meds?");
        assert_eq!(normalized.sentences.len(), 2);
        assert!(!normalized.sentences[0].question_mark);
        assert!(normalized.sentences[1].question_mark);
        let spanish = normalize("Hola ¿puedo cambiar la cita");
        assert_eq!(spanish.sentences.len(), 2);
        assert!(spanish.sentences[1].question_mark);
        assert!(spanish.spanish_marks >= 1);
    }

    #[test]
    fn keeps_times_and_meaningful_emoji() {
        assert_eq!(tokens("10.30 ok 👍🏽"), vec![vec!["10", "30", "ok", "👍"]]);
        assert_eq!(tokens("🎉🎉"), Vec::<Vec<String>>::new());
    }

    #[test]
    fn typo_distance_counts_transpositions_as_one() {
        let d = |a: &str, b: &str| {
            typo_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("confrim", "confirm"), 1);
        assert_eq!(d("cancle", "cancel"), 1);
        assert_eq!(d("resched", "resched"), 0);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("candle", "cancel"), 2);
    }
}
