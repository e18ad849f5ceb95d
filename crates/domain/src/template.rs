//! Message templates. Every text ARO sends is one of these, rendered with a closed set of
//! placeholders. A template is checked when the pack loads: an unknown placeholder is an error,
//! and with each placeholder at its declared maximum length the text must fit one SMS segment
//! (160 GSM-7 or 70 UCS-2 characters). Rendering checks again with the real values and falls back
//! to the template's `_short` variant when the real text does not fit.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The placeholders a template may use. Nothing else about a patient can reach a text: no
/// service, no diagnosis, no price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Placeholder {
    FirstName,
    Date,
    Time,
    ClinicName,
    ClinicPhone,
    Link,
}

impl Placeholder {
    pub const ALL: [Placeholder; 6] = [
        Self::FirstName,
        Self::Date,
        Self::Time,
        Self::ClinicName,
        Self::ClinicPhone,
        Self::Link,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::FirstName => "firstName",
            Self::Date => "date",
            Self::Time => "time",
            Self::ClinicName => "clinicName",
            Self::ClinicPhone => "clinicPhone",
            Self::Link => "link",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == raw)
    }

    /// Declared maximum lengths, in characters. Values longer than this are shortened at render
    /// (names, clinic names) or make the render fall back (links and phone numbers are never cut).
    pub fn default_max_len(self) -> usize {
        match self {
            Self::FirstName => 20,
            Self::Date => 16,
            Self::Time => 8,
            Self::ClinicName => 30,
            Self::ClinicPhone => 16,
            Self::Link => 64,
        }
    }

    fn may_be_shortened(self) -> bool {
        matches!(self, Self::FirstName | Self::ClinicName)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-placeholder maximum lengths; a pack may declare its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlaceholderLimits(pub BTreeMap<Placeholder, usize>);

impl Default for PlaceholderLimits {
    fn default() -> Self {
        Self(
            Placeholder::ALL
                .into_iter()
                .map(|p| (p, p.default_max_len()))
                .collect(),
        )
    }
}

impl PlaceholderLimits {
    pub fn max_len(&self, p: Placeholder) -> usize {
        self.0.get(&p).copied().unwrap_or(p.default_max_len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {{{{{name}}}}}; allowed: firstName, date, time, clinicName, clinicPhone, link"
    )]
    UnknownPlaceholder { name: String },
    #[error("unclosed placeholder (a `{{{{` without `}}}}`)")]
    Unclosed,
    #[error("the template is empty")]
    Empty,
    #[error(
        "does not fit one SMS segment: up to {worst_case} {encoding} characters with placeholders at their maximum length (limit {limit})"
    )]
    TooLong {
        worst_case: usize,
        limit: usize,
        encoding: Encoding,
    },
    #[error("no template {name:?} for language {language:?} or the default language")]
    Missing { name: String, language: String },
    #[error(
        "the text does not fit one SMS segment even in its short form ({chars} {encoding} characters)"
    )]
    RenderedTooLong { chars: usize, encoding: Encoding },
    #[error("no value for {{{{{placeholder}}}}}")]
    MissingValue { placeholder: Placeholder },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Placeholder),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed)?;
            let name = after[..close].trim();
            let slot =
                Placeholder::parse(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                    name: name.to_owned(),
                })?;
            pieces.push(Piece::Slot(slot));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            pieces,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Slot(s) => Some(*s),
            Piece::Text(_) => None,
        })
    }

    /// The longest this template can render, assuming placeholder values in GSM-7 (values are
    /// folded to GSM-7 at render when the template itself is GSM-7).
    pub fn check_fits_one_segment(&self, limits: &PlaceholderLimits) -> Result<(), TemplateError> {
        let mut text = String::new();
        let mut slots = 0usize;
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Slot(p) => slots += limits.max_len(*p),
            }
        }
        let encoding = Encoding::of(&text);
        let worst_case = encoding.units(&text) + slots;
        let limit = encoding.single_segment_limit();
        if worst_case > limit {
            return Err(TemplateError::TooLong {
                worst_case,
                limit,
                encoding,
            });
        }
        Ok(())
    }

    /// Renders with the given values, shortening names to their limit and folding accented
    /// letters to GSM-7 when the template is GSM-7, so a name never pushes a text into UCS-2.
    pub fn render(
        &self,
        values: &TemplateValues,
        limits: &PlaceholderLimits,
    ) -> Result<Rendered, TemplateError> {
        let template_gsm = self.pieces.iter().all(|p| match p {
            Piece::Text(t) => Encoding::of(t) == Encoding::Gsm7,
            Piece::Slot(_) => true,
        });
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Slot(p) => {
                    let raw = values
                        .get(*p)
                        .ok_or(TemplateError::MissingValue { placeholder: *p })?;
                    let mut value = if template_gsm {
                        fold_to_gsm7(raw)
                    } else {
                        raw.to_owned()
                    };
                    let max = limits.max_len(*p);
                    if p.may_be_shortened() && value.chars().count() > max {
                        value = value
                            .chars()
                            .take(max)
                            .collect::<String>()
                            .trim_end()
                            .to_owned();
                    }
                    out.push_str(&value);
                }
            }
        }
        let encoding = Encoding::of(&out);
        let units = encoding.units(&out);
        if units > encoding.single_segment_limit() {
            return Err(TemplateError::RenderedTooLong {
                chars: units,
                encoding,
            });
        }
        Ok(Rendered {
            body: out,
            encoding,
            units,
        })
    }
}

/// Values for the placeholders of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateValues(BTreeMap<Placeholder, String>);

impl TemplateValues {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, p: Placeholder, value: impl Into<String>) -> Self {
        self.0.insert(p, value.into());
        self
    }

    pub fn set(&mut self, p: Placeholder, value: impl Into<String>) {
        self.0.insert(p, value.into());
    }

    pub fn get(&self, p: Placeholder) -> Option<&str> {
        self.0.get(&p).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: String,
    pub encoding: Encoding,
    /// Length in the encoding's units (GSM-7 septets or UTF-16 code units).
    pub units: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2",
        })
    }
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

impl Encoding {
    pub fn of(text: &str) -> Self {
        if text
            .chars()
            .all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENSION.contains(c))
        {
            Self::Gsm7
        } else {
            Self::Ucs2
        }
    }

    /// Characters as the network counts them: extension characters take two septets in
    /// GSM-7; UCS-2 counts UTF-16 code units (an emoji is two).
    pub fn units(self, text: &str) -> usize {
        match self {
            Self::Gsm7 => text
                .chars()
                .map(|c| if GSM7_EXTENSION.contains(c) { 2 } else { 1 })
                .sum(),
            Self::Ucs2 => text.encode_utf16().count(),
        }
    }

    pub fn single_segment_limit(self) -> usize {
        match self {
            Self::Gsm7 => 160,
            Self::Ucs2 => 70,
        }
    }
}

/// Replaces letters outside GSM-7 with their nearest GSM-7 letter (á → a, ç → Ç is kept as ç → c),
/// drops what has no equivalent. Used for values only, never for a pack's own words.
pub fn fold_to_gsm7(value: &str) -> String {
    value
        .chars()
        .filter_map(|c| {
            if GSM7_BASIC.contains(c) || GSM7_EXTENSION.contains(c) {
                return Some(c);
            }
            let folded = match c {
                'á' | 'â' | 'ã' | 'ā' | 'ą' => 'a',
                'Á' | 'À' | 'Â' | 'Ã' | 'Ā' | 'Ą' => 'A',
                'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
                'È' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => 'E',
                'í' | 'î' | 'ï' | 'ī' => 'i',
                'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' => 'I',
                'ó' | 'ô' | 'õ' | 'ō' | 'ő' => 'o',
                'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ō' | 'Ő' => 'O',
                'ú' | 'û' | 'ū' | 'ű' | 'ů' => 'u',
                'Ú' | 'Ù' | 'Û' | 'Ū' | 'Ű' | 'Ů' => 'U',
                'ç' | 'ć' | 'č' => 'c',
                'Ć' | 'Č' => 'C',
                'ý' | 'ÿ' => 'y',
                'Ý' => 'Y',
                'ś' | 'š' => 's',
                'Ś' | 'Š' => 'S',
                'ź' | 'ż' | 'ž' => 'z',
                'Ź' | 'Ż' | 'Ž' => 'Z',
                'ł' => 'l',
                'Ł' => 'L',
                'ń' | 'ň' => 'n',
                'Ń' | 'Ň' => 'N',
                'ř' => 'r',
                'Ř' => 'R',
                '’' | '‘' | '´' | '`' => '\'',
                '“' | '”' => '"',
                '–' | '—' => '-',
                _ => return None,
            };
            Some(folded)
        })
        .collect()
}

/// Templates of one tenant: language → template name → template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet {
    by_language: BTreeMap<String, BTreeMap<String, Template>>,
    limits: PlaceholderLimits,
}

/// Where a template failed to load, for an error that names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("templates.{language}.{name}: {error}")]
pub struct TemplateLoadError {
    pub language: String,
    pub name: String,
    pub error: TemplateError,
}

impl TemplateSet {
    pub fn load(
        raw: &BTreeMap<String, BTreeMap<String, String>>,
        limits: PlaceholderLimits,
    ) -> Result<Self, TemplateLoadError> {
        let mut by_language = BTreeMap::new();
        for (language, templates) in raw {
            let mut parsed = BTreeMap::new();
            for (name, source) in templates {
                let fail = |error| TemplateLoadError {
                    language: language.clone(),
                    name: name.clone(),
                    error,
                };
                let template = Template::parse(source).map_err(fail)?;
                template.check_fits_one_segment(&limits).map_err(fail)?;
                parsed.insert(name.clone(), template);
            }
            by_language.insert(language.clone(), parsed);
        }
        Ok(Self {
            by_language,
            limits,
        })
    }

    pub fn limits(&self) -> &PlaceholderLimits {
        &self.limits
    }

    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.by_language.keys().map(String::as_str)
    }

    pub fn get(&self, language: &str, name: &str) -> Option<&Template> {
        self.by_language.get(language).and_then(|t| t.get(name))
    }

    /// Renders `name` in the patient's language, else the tenant's default language; falls back
    /// to `<name>_short` when the real values make the text longer than one segment.
    pub fn render(
        &self,
        name: &str,
        language: &str,
        default_language: &str,
        values: &TemplateValues,
    ) -> Result<Rendered, TemplateError> {
        let lang = if self.get(language, name).is_some() {
            language
        } else {
            default_language
        };
        let template = self.get(lang, name).ok_or_else(|| TemplateError::Missing {
            name: name.to_owned(),
            language: language.to_owned(),
        })?;
        match template.render(values, &self.limits) {
            Err(TemplateError::RenderedTooLong { .. }) => {
                let short = self.get(lang, &format!("{name}_short"));
                match short {
                    Some(short) => short.render(values, &self.limits),
                    None => template.render(values, &self.limits),
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> TemplateValues {
        TemplateValues::new()
            .with(Placeholder::FirstName, "Ada")
            .with(Placeholder::Date, "Fri, Mar 15")
            .with(Placeholder::Time, "10:00 AM")
            .with(Placeholder::ClinicName, "Demo Clinic")
            .with(Placeholder::ClinicPhone, "+14155550100")
            .with(Placeholder::Link, "https://example.org/r/abc")
    }

    #[test]
    fn renders_known_placeholders() {
        let t = Template::parse("Hi {{firstName}}, see you {{date}} at {{ time }}.").unwrap();
        let r = t.render(&values(), &PlaceholderLimits::default()).unwrap();
        assert_eq!(r.body, "Hi Ada, see you Fri, Mar 15 at 10:00 AM.");
        assert_eq!(r.encoding, Encoding::Gsm7);
    }

    #[test]
    fn unknown_placeholders_are_load_errors() {
        assert_eq!(
            Template::parse("Hi {{lastName}}"),
            Err(TemplateError::UnknownPlaceholder {
                name: "lastName".into()
            })
        );
        assert_eq!(
            Template::parse("Hi {{firstName"),
            Err(TemplateError::Unclosed)
        );
        assert_eq!(Template::parse("  "), Err(TemplateError::Empty));
    }

    #[test]
    fn a_template_that_could_overflow_one_segment_is_refused_at_load() {
        let long = format!("{} {{{{link}}}} {{{{link}}}}", "x".repeat(40));
        let t = Template::parse(&long).unwrap();
        assert!(matches!(
            t.check_fits_one_segment(&PlaceholderLimits::default()),
            Err(TemplateError::TooLong { .. })
        ));
        // UCS-2 text has a 70-character budget.
        let t = Template::parse(
            "Hola {{firstName}}, ¿confirmas tu cita? Responde S o N. Cancelación: llama al clínica",
        )
        .unwrap();
        assert!(matches!(
            t.check_fits_one_segment(&PlaceholderLimits::default()),
            Err(TemplateError::TooLong {
                encoding: Encoding::Ucs2,
                ..
            })
        ));
    }

    #[test]
    fn names_are_folded_to_gsm7_and_shortened() {
        let t = Template::parse("Hi {{firstName}}").unwrap();
        let v = TemplateValues::new().with(Placeholder::FirstName, "Jesús");
        let r = t.render(&v, &PlaceholderLimits::default()).unwrap();
        assert_eq!(r.encoding, Encoding::Gsm7);
        assert_eq!(r.body, "Hi Jesus");
        // é is GSM-7 and stays; the name is cut at its declared 20 characters.
        let v = TemplateValues::new().with(Placeholder::FirstName, "Renée-Maximilianaaaaaaaaa");
        let r = t.render(&v, &PlaceholderLimits::default()).unwrap();
        assert_eq!(r.body, "Hi Renée-Maximilianaaaa");
    }

    #[test]
    fn extension_characters_count_twice_and_emoji_force_ucs2() {
        assert_eq!(Encoding::Gsm7.units("€"), 2);
        assert_eq!(Encoding::of("ok 👍"), Encoding::Ucs2);
        assert_eq!(Encoding::Ucs2.units("👍"), 2);
    }

    #[test]
    fn the_short_variant_is_used_when_the_real_text_does_not_fit() {
        let mut raw = BTreeMap::new();
        let mut en = BTreeMap::new();
        en.insert(
            "cancel_ack".to_owned(),
            format!("{} {{{{link}}}}", "y".repeat(90)),
        );
        en.insert(
            "cancel_ack_short".to_owned(),
            "Cancel here: {{link}}".to_owned(),
        );
        raw.insert("en".to_owned(), en);
        let mut limits = PlaceholderLimits::default();
        limits.0.insert(Placeholder::Link, 64);
        let set = TemplateSet::load(&raw, limits).unwrap();
        let long_link = format!("https://example.org/{}", "z".repeat(80));
        let v = values().with(Placeholder::Link, long_link.clone());
        let r = set.render("cancel_ack", "en", "en", &v).unwrap();
        assert_eq!(r.body, format!("Cancel here: {long_link}"));
    }

    #[test]
    fn missing_language_falls_back_to_the_default() {
        let mut raw = BTreeMap::new();
        raw.insert(
            "en".to_owned(),
            BTreeMap::from([("help".to_owned(), "Call {{clinicPhone}}".to_owned())]),
        );
        let set = TemplateSet::load(&raw, PlaceholderLimits::default()).unwrap();
        let r = set.render("help", "fr", "en", &values()).unwrap();
        assert_eq!(r.body, "Call +14155550100");
        assert!(matches!(
            set.render("nope", "en", "en", &values()),
            Err(TemplateError::Missing { .. })
        ));
    }
}
