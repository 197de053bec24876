//! Language identification for `source=auto`, `/detect` and DeepL requests without
//! `source_lang`, by whatlang (trigram profiles of 70 languages, pure Rust, no model files,
//! microseconds per text).
//!
//! The server translates French only. Text identified *with confidence* as another language
//! is refused; text too short or too mixed to tell is taken as French, as a client that
//! picked this server for French expects.

use whatlang::Lang;

/// What a text was identified as.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// ISO 639-1 code (`fr`, `en`), as LibreTranslate's clients expect.
    pub code: &'static str,
    /// The language's English name.
    pub name: &'static str,
    /// Confidence from 0 to 100, as LibreTranslate reports it.
    pub confidence: f64,
    /// Whether the identification is confident (whatlang's `is_reliable`).
    pub reliable: bool,
}

impl Detection {
    /// Whether the text may be translated from French: identified as French, or not
    /// identified with confidence as anything else.
    pub fn is_french_enough(&self) -> bool {
        self.code == "fr" || !self.reliable
    }
}

/// Identifies the language of `text`. Text with no letters at all is French with
/// confidence 0 (nothing contradicts it).
pub fn detect(text: &str) -> Detection {
    match whatlang::detect(text) {
        Some(info) => Detection {
            code: iso_639_1(info.lang()),
            name: info.lang().eng_name(),
            confidence: (info.confidence() * 100.0).clamp(0.0, 100.0),
            reliable: info.is_reliable(),
        },
        None => Detection {
            code: "fr",
            name: "French",
            confidence: 0.0,
            reliable: false,
        },
    }
}

/// The two-letter (ISO 639-1) code of each of whatlang's languages.
fn iso_639_1(lang: Lang) -> &'static str {
    use Lang::*;
    match lang {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
        Cym => "cy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_english_and_too_short() {
        let fr = detect("Le gouvernement a annoncé mardi une réforme des retraites qui sera présentée au conseil des ministres.");
        assert_eq!(fr.code, "fr");
        assert!(fr.is_french_enough());
        let en = detect("The government announced on Tuesday a pension reform that will be presented to the cabinet in January.");
        assert_eq!((en.code, en.name), ("en", "English"));
        assert!(en.reliable && !en.is_french_enough());
        assert!(detect("OK").is_french_enough());
        assert_eq!(detect("1234 !!").code, "fr");
    }
}
