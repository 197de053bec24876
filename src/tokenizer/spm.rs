//! One SentencePiece model rebuilt for encoding: SentencePiece's own normalizer (see
//! [`super::normalizer`]) feeding a `tokenizers` Unigram lattice over the model's pieces and
//! scores, plus what decoding needs (piece types, SentencePiece's `decode_pieces` rules).

use std::collections::HashMap;
use std::path::Path;

use sentencepiece_model::{SentencePieceModel, Type as PieceType};
use tokenizers::models::unigram::Unigram;

use super::normalizer::SpmNormalizer;
use super::{TokenizerError, SPIECE_UNDERLINE};

/// One SentencePiece model: normalizer + unigram lattice, plus what decoding needs.
pub(crate) struct SpmEncoder {
    pub(crate) normalizer: SpmNormalizer,
    pub(crate) unigram: Unigram,
    /// Piece string -> piece type, for SentencePiece's `decode_pieces` rules.
    piece_types: HashMap<String, PieceType>,
    /// Index = spm id; used when an id is not in the Marian vocabulary.
    pub(crate) pieces: Vec<String>,
    unk_piece: String,
    unk_surface: String,
    add_dummy_prefix: bool,
}

impl SpmEncoder {
    /// Parses a SentencePiece model file and rebuilds its unigram pipeline.
    pub(crate) fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|problem| TokenizerError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let model = SentencePieceModel::from_slice(bytes)
            .map_err(|e| format!("not a SentencePiece model: {e}"))?;
        if model.pieces().is_empty() {
            return Err("not a SentencePiece model: no pieces".into());
        }
        let spec = model.normalizer().cloned().unwrap_or_default();
        let trainer = model.trainer().cloned().unwrap_or_default();
        if trainer.model_type() != sentencepiece_model::ModelType::Unigram {
            return Err(format!(
                "unsupported SentencePiece model type {:?}",
                trainer.model_type()
            ));
        }
        if trainer.byte_fallback() {
            // Opus-MT models never use it, and the id mapping would need byte pieces.
            return Err("SentencePiece byte_fallback is not supported".into());
        }

        let piece_type = |p: &sentencepiece_model::SentencePiece| {
            PieceType::try_from(p.r#type.unwrap_or(PieceType::Normal as i32))
                .unwrap_or(PieceType::Normal)
        };
        let unk_id = model
            .pieces()
            .iter()
            .position(|p| piece_type(p) == PieceType::Unknown)
            .ok_or("no <unk> piece")?;
        // spm gives user-defined pieces a bonus so that they always win the lattice.
        let max_score = model
            .pieces()
            .iter()
            .filter(|p| piece_type(p) == PieceType::Normal)
            .map(|p| p.score() as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        let vocab: Vec<(String, f64)> = model
            .pieces()
            .iter()
            .map(|p| {
                let piece = p.piece().to_string();
                match piece_type(p) {
                    PieceType::Normal => (piece, p.score() as f64),
                    PieceType::UserDefined => {
                        let score = piece.chars().count() as f64 * max_score - 0.1;
                        (piece, score)
                    }
                    // spm never matches control, unknown or unused pieces against text;
                    // `tokenizers` would. A leading space keeps them out of reach (escaped
                    // text has no spaces left), and a 0 score leaves the unknown-piece
                    // penalty (min score - 10) alone.
                    _ => (format!(" {piece}"), 0.0),
                }
            })
            .collect();
        let unigram = Unigram::from(vocab, Some(unk_id), false)
            .map_err(|e| format!("building the unigram model: {e}"))?;

        let normalizer = SpmNormalizer::new(
            spec.precompiled_charsmap(),
            spec.add_dummy_prefix(),
            spec.remove_extra_whitespaces(),
            spec.escape_whitespaces(),
        )?;
        Ok(Self {
            normalizer,
            unigram,
            piece_types: model
                .pieces()
                .iter()
                .map(|p| (p.piece().to_string(), piece_type(p)))
                .collect(),
            pieces: model
                .pieces()
                .iter()
                .map(|p| p.piece().to_string())
                .collect(),
            unk_piece: model.pieces()[unk_id].piece().to_string(),
            unk_surface: trainer.unk_surface().to_string(),
            add_dummy_prefix: spec.add_dummy_prefix(),
        })
    }

    /// SentencePiece's `decode_pieces`: control pieces vanish, pieces the model does not
    /// know are kept verbatim, ▁ becomes a space and the first one is dropped.
    pub(crate) fn decode_pieces(&self, pieces: &[&str]) -> String {
        let mut out = String::new();
        let mut at_start = true;
        for &piece in pieces {
            let surface = match self.piece_types.get(piece) {
                Some(PieceType::Control) => String::new(),
                Some(PieceType::Unknown) if piece == self.unk_piece => self.unk_surface.clone(),
                None | Some(PieceType::Unknown) => piece.to_string(),
                Some(_) => {
                    let body = match piece.strip_prefix(SPIECE_UNDERLINE) {
                        Some(rest) if at_start && self.add_dummy_prefix => rest,
                        _ => piece,
                    };
                    body.replace(SPIECE_UNDERLINE, " ")
                }
            };
            if !surface.is_empty() {
                at_start = false;
            }
            out.push_str(&surface);
        }
        out
    }
}
