#!/usr/bin/env python3
"""Build the tokenizer fixtures used by traduire's Rust tests.

Run from anywhere (the paths are relative to this file):

    /work/venv/bin/python scripts/make_tokenizer_fixtures.py

What it does, deterministically (re-running rewrites byte-identical files):

1. Trains two small SentencePiece *unigram* models with the default ``nmt_nfkc``
   normalisation, as Opus-MT does: ``source.spm`` on ``scripts/corpus/fr.txt`` and
   ``target.spm`` on ``scripts/corpus/en.txt``.  ``character_coverage`` < 1 leaves rare
   characters out of the vocabulary so that ``<unk>`` gets exercised.
2. Builds ``vocab.json`` the way Opus-MT lays it out: ``</s>`` = 0, ``<unk>`` = 1, then the
   pieces of the source model, then the target pieces not seen yet, ``<pad>`` last.
   A few rare pieces are left out on purpose: Marian vocabularies are built from the
   encoded training data, so real checkpoints also have spm pieces with no model id, and
   MarianTokenizer maps those to ``<unk>``.
3. Writes ``tokenizer_config.json`` like opus-mt-fr-en's, then the marker file ``READY``
   (other fixture builders wait for it; the vocabulary size must not change afterwards).
4. Records transformers' ``MarianTokenizer`` outputs for a few hundred strings into
   ``cases.jsonl``: the reference the Rust parity tests compare against.
5. Writes a small ``separate_vocabs=True`` variant (``target_vocab.json``) in
   ``tests/fixtures/tokenizer_separate/`` with its own ``cases.jsonl``; it shares the
   SentencePiece models of ``tests/fixtures/tokenizer/`` (each fixture file is stored once).
"""

import io
import json
import random
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

import sentencepiece as spm
from transformers import MarianTokenizer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "scripts" / "corpus"
OUT = ROOT / "tests" / "fixtures" / "tokenizer"
OUT_SEPARATE = ROOT / "tests" / "fixtures" / "tokenizer_separate"
SEED = ROOT / "seeds" / "000_63993c6b9a9c911d.txt"
SEED_FALLBACK = Path("/work/shared/seeds/000_63993c6b9a9c911d.txt")

VOCAB_SIZE = 800
# Pieces per model deliberately left out of vocab.json (see point 2 above).
DROPPED_PER_MODEL = 4


def train_spm(corpus: Path) -> bytes:
    """Train a unigram model in memory; single-threaded so the result is reproducible."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_writer=model,
        vocab_size=VOCAB_SIZE,
        model_type="unigram",
        character_coverage=0.995,
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def normal_pieces(proto: bytes) -> list[tuple[str, float]]:
    """The model's ordinary pieces (spm's <unk>, <s>, </s> are control pieces, not vocabulary)."""
    sp = spm.SentencePieceProcessor(model_proto=proto)
    out = []
    for i in range(sp.get_piece_size()):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        out.append((sp.id_to_piece(i), sp.get_score(i)))
    return out


def kept_pieces(proto: bytes) -> list[str]:
    """Pieces in spm order minus the few rarest multi-character ones (never single characters)."""
    pieces = normal_pieces(proto)
    droppable = sorted(
        (p for p in pieces if len(p[0].lstrip("▁")) > 1), key=lambda p: (p[1], p[0])
    )[:DROPPED_PER_MODEL]
    dropped = {p for p, _ in droppable}
    return [p for p, _ in pieces if p not in dropped]


def build_vocab(*piece_lists: list[str]) -> dict[str, int]:
    vocab = {"</s>": 0, "<unk>": 1}
    for pieces in piece_lists:
        for piece in pieces:
            vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    return vocab


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def tokenizer_config(separate_vocabs: bool) -> dict:
    return {
        "source_lang": "fr",
        "target_lang": "en",
        "model_max_length": 512,
        "separate_vocabs": separate_vocabs,
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "sp_model_kwargs": {},
        "tokenizer_class": "MarianTokenizer",
    }


def seed_text() -> str:
    path = SEED if SEED.exists() else SEED_FALLBACK
    return path.read_text(encoding="utf-8")


def case_strings() -> list[str]:
    """The strings whose tokenisation is recorded; order is fixed, duplicates removed."""
    seed = seed_text()
    paragraphs = [p.strip() for p in seed.split("\n") if p.strip()]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?»])\s+", p) if s]
    fr = CORPUS.joinpath("fr.txt").read_text(encoding="utf-8").splitlines()
    en = CORPUS.joinpath("en.txt").read_text(encoding="utf-8").splitlines()

    typography = [
        "« Bonjour », a-t-il dit.",
        "Il a dit\u00a0: «\u00a0Non\u00a0!\u00a0»",
        "Prix\u202f: 12\u202f000\u202f€ ; taux\u00a0: 3,5\u00a0%",
        "L’État et l’œuvre d’art ; c’est l’été.",
        "L'apostrophe droite et l’apostrophe typographique",
        "Œdipe, cœur, sœur, bœuf, œil, Æsop, ægis",
        "ﬁnance, ﬂeur, ﬀ, ﬃ, ﬄ, ﬅ",
        "ＡＢＣ１２３ ｆｕｌｌ－ｗｉｄｔｈ！",
        "Le tiret – demi-cadratin — cadratin ‐ trait d’union",
        "Les points de suspension… et les guillemets “anglais” ‘simples’",
        "« Citation imbriquée “intérieure” fin »",
        "N° 5, 1er, 2e, XXIe siècle, M. Dupont, Mme Durand, Mlle",
        "²³ ½ ¼ ™ © ® ℃ ℉ Ⅻ ⅷ",
        "cinq cents mètres² et 3 m³",
    ]
    accents = [
        "été à côté de l’hôpital où naïf Noël",
        "ÉLÉPHANT À ÇA ÊTRE ÎLE ÔTER ÙÛÜŸ",
        "Ça, garçon, français, reçu",
    ]
    accents += [unicodedata.normalize("NFD", s) for s in accents + sentences[:3]]
    numbers_urls_emoji = [
        "Le 7 décembre 2021 à 23h30, 1 234 567,89 euros, +3,5 %, -12 °C.",
        "Tél. : 01 23 45 67 89, 3,14159, 1/2, 10^6, 0x1F, 2021-12-30T23:30:00Z",
        "Voir https://www.example.fr/actualites/2021/12/30/poutine-biden?id=42&lang=fr#top",
        "Écrivez à contact@presse-exemple.fr ou @journal sur les réseaux #actualité",
        "C’est génial 😀👍🏽 ❤️ 🇫🇷 👨‍👩‍👧",
        "Température : 25°C ☀️ ⚡ ★ ✓ ✗ → ← ↑ ↓",
    ]
    whitespace_control = [
        "",
        " ",
        "   ",
        "\t",
        "\n",
        " \t \n ",
        "\u00a0",
        "\u202f\u2009\u3000",
        "Deux  espaces   et    quatre",
        "tab\tseparated\tvalues",
        "ligne un\nligne deux\r\nligne trois",
        "  espaces en tête et en fin  ",
        "\x00nul\x01\x02\x07\x08\x1b[0m",
        "a\x1cb\x1dc\x1ed\x1ff",
        "zéro\u200blargeur\u200c\u200d\ufeff fin",
        "trait\u00addé\u2028ligne\u2029para\x85nel",
        "\u202edroite à gauche\u202c \u200e \u200f",
    ]
    long_words = [
        "anticonstitutionnellement",
        "anticonstitutionnellement" * 4,
        "a" * 300,
        "x" * 40 + " " + "é" * 40,
        "Pneumonoultramicroscopicsilicovolcanoconiosis",
        "intergouvernementalisation-désinstitutionnalisation-reconstitution",
    ]
    unknown_chars = [
        "北京 et 東京 sont des capitales.",
        "日本語のテキスト",
        "Москва и Вашингтон",
        "Αθήνα, Ελλάδα",
        "עברית ועربية",
        "Symboles rares : ⊕ ∮ ⌘ ⍼ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
        "Zeichen: ß ẞ ø å ł ŋ ð þ",
        "한국어 문장입니다",
        "⁇ ▁ ▁▁ ▁Bonjour le▁monde",
    ]
    special = [
        ">>fra<< Bonjour le monde",
        ">>eng<<Hello",
        ">>fra<<",
        ">> pas un code << suite",
        "texte >>fra<< au milieu",
        ">>fra",
        "<<fra>> inversé",
        "Le texte </s> contient un eos",
        "</s>",
        "<unk> inconnu <unk>",
        "<pad><pad>",
        "<s> début </s>",
        "a</s>b<unk>c<pad>d",
        ">>fra<< </s> >>deu<< x",
        "</s>>>fra<< suite",
        "<eop> <eod> <mask> [CLS] [SEP]",
    ]
    mixed = [
        "Hello world!",
        "The quick brown fox jumps over the lazy dog.",
        "UPPERCASE lowercase MiXeD CaSe",
        "Question ? Exclamation ! Point-virgule ; deux-points :",
        "(parenthèses) [crochets] {accolades} <chevrons>",
        "\"guillemets droits\" et 'apostrophes'",
        "C'est l'heure d'aujourd'hui, n'est-ce pas ?",
        "don't won't I'm you're we've it's",
        "ceci , est . mal ! ponctué ?",
        "Peskov",
        "OTAN",
        "l’humanité",
        "a",
        "é",
        ".",
        "«»",
        "123",
    ]
    # Random soups of the tricky characters above, from a fixed seed.
    rng = random.Random(1234)
    alphabet = (
        list("abcdeéèàçôœ ABCÉ,.;:!?'’«»-()0123456789")
        + ["  ", "\t", "\n", "\u00a0", "\u202f", "\u3000", "\u0301", "\u0308", "\x00", "\x1f", "\u200b"]
        + ["▁", ">>", "<<", ">>fra<<", "</s>", "<unk>", "<pad>", "<s>", "ﬁ", "Ａ", "１", "日", "😀", "½", "™"]
    )
    soups = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(150)]
    strings = (
        [seed.strip()] + paragraphs + sentences + fr + en + typography + accents
        + numbers_urls_emoji + whitespace_control + long_words + unknown_chars + special + mixed + soups
    )
    seen, unique = set(), []
    for s in strings:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def record_cases(folder: Path, strings: list[str]) -> int:
    # tokenizer_separate stores only its own files (each fixture file is stored once): load it
    # from a temporary folder that adds the shared SentencePiece models.
    with tempfile.TemporaryDirectory() as full:
        for f in folder.iterdir():
            shutil.copyfile(f, Path(full) / f.name)
        for f in ("source.spm", "target.spm"):
            if not (Path(full) / f).exists():
                shutil.copyfile(OUT / f, Path(full) / f)
        tok = MarianTokenizer.from_pretrained(full)
    with open(folder / "cases.jsonl", "w", encoding="utf-8") as f:
        for text in strings:
            source_ids = tok(text).input_ids
            target_ids = tok(text_target=text).input_ids
            case = {
                "text": text,
                "source_ids": source_ids,
                "target_ids": target_ids,
                "decoded": tok.decode(target_ids, skip_special_tokens=True),
                "decoded_source": tok.decode(source_ids, skip_special_tokens=True),
            }
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    return len(strings)


def main() -> None:
    source = train_spm(CORPUS / "fr.txt")
    target = train_spm(CORPUS / "en.txt")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "READY").unlink(missing_ok=True)
    (OUT / "source.spm").write_bytes(source)
    (OUT / "target.spm").write_bytes(target)
    write_json(OUT / "vocab.json", build_vocab(kept_pieces(source), kept_pieces(target)))
    write_json(OUT / "tokenizer_config.json", tokenizer_config(separate_vocabs=False))
    (OUT / "READY").write_text("tokenizer files written; vocab size is fixed\n")

    strings = case_strings()
    n = record_cases(OUT, strings)
    print(f"{OUT}: {n} cases")

    OUT_SEPARATE.mkdir(parents=True, exist_ok=True)
    # The SentencePiece models are tokenizer/'s: tests/common/mod.rs assembles the folder.
    write_json(OUT_SEPARATE / "vocab.json", build_vocab(kept_pieces(source)))
    write_json(OUT_SEPARATE / "target_vocab.json", build_vocab(kept_pieces(target)))
    write_json(OUT_SEPARATE / "tokenizer_config.json", tokenizer_config(separate_vocabs=True))
    n = record_cases(OUT_SEPARATE, strings[:20] + strings[-80:])
    print(f"{OUT_SEPARATE}: {n} cases")


if __name__ == "__main__":
    main()
