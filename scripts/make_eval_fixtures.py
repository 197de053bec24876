#!/usr/bin/env python3
"""Record sacreBLEU 2.6.0's BLEU, chrF, chrF++ and TER as a fixture for traduire's Rust port:

    /work/venv/bin/python scripts/make_eval_fixtures.py

Writes tests/fixtures/eval/sacrebleu.json (deterministic: re-running rewrites a byte-identical
file). It holds a list of cases; each has its inputs

    name, hyps (list of strings), refs (list of reference streams: refs[r][i] is reference r
    of segment i, sacreBLEU's layout), options (tokenize, lowercase, smooth_method,
    smooth_value, effective_order, max_ngram_order for BLEU; lowercase and
    chrf_eps_smoothing for chrF / chrF++; TER always runs with sacreBLEU's defaults)

and, under "bleu", "chrf", "chrf++" and "ter" (a case may leave out metrics its options do not
affect, e.g. the BLEU-only tokenizer and smoothing variants), sacreBLEU's outputs:

    score       the full-precision `.score` float
    score_repr  repr() of that float (JSON readers need not parse floats correctly rounded;
                Rust's `str::parse::<f64>` does, so the tests compare bit for bit)
    formatted   str(score), e.g. "BLEU = 23.45 60.0/30.0/20.0/10.0 (BP = ...)"
    signature   metric.get_signature().format()
    stats       the rows of `_extract_corpus_statistics` (one per segment)
    stats_repr  (TER only, whose second column is a float) the same rows as repr() strings

The cases: the tiny test model's greedy output against scripts/corpus/en.txt, the French
sources scored as if they were English (realistic partial matches), hand-written pairs that
exercise tokenizer corners (punctuation, numbers, quotes, HTML entities, Unicode, control
characters, case, empty sides), the same pairs one segment per case (sentence-level corners
that sums would hide), two and three references, each tokenizer with and without
lowercasing, each BLEU smoothing, and TER stress tests (block moves, long lines, extreme
length ratios, the 1000-candidate cap, random word soup from a fixed seed).

"format_checks" holds rows [repr(x), f"{x:.1f}", f"{x:.2f}", f"{x:.3f}"] for a few hundred
floats (exact ties included): the formatting every printed score goes through.
"""

import json
import random
import sys
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "eval" / "sacrebleu.json"
# The tiny random model's greedy output of scripts/corpus/fr.txt (nonsense English), made with
#   traduire translate --sentences -f moses -o tiny --model-dir <tiny-swish folder> \
#       --beams 1 --max-new-tokens 40 scripts/corpus/fr.txt
# (tests/eval.rs checks that `traduire eval` with these options reproduces it).
TINY = ROOT / "tests" / "fixtures" / "eval" / "tiny-swish.greedy.en"
CORPUS = ROOT / "scripts" / "corpus"

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
# Python 3.12 made sum() of floats compensated (Neumaier); BLEU's log-sum would then differ in
# the last bits from what this fixture (and the Rust port, plain left-to-right) computes.
assert sys.version_info[:2] < (3, 12), "record with Python < 3.12 (plain float sum())"


def read_lines(path: Path) -> list:
    """Lines split on '\\n' only (str.splitlines would also split on \\x1c, \\x85, U+2028...)."""
    text = path.read_text(encoding="utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


# (hypothesis, reference) pairs exercising tokenizer and metric corners.
PAIRS = [
    # punctuation
    ("Hello, world! How are you?", "Hello world, how are you ?"),
    ("Wait... what?! (Really) [yes] {no} <maybe>", "Wait ... what ? ! (really) [yes] {no} <maybe>"),
    ("a;b:c/d\\e|f~g^h_i`j@k#l$m%n&o*p+q=r", "a ; b : c / d \\ e | f ~ g ^ h _ i ` j @ k # l $ m % n & o * p + q = r"),
    # numbers
    ("The rate is 3,5 % and 1.000 people came at 10:30.", "The rate is 3.5% and 1,000 people came at 10:30 ."),
    ("Pages 2-3 and 10-20 were read in 2021.", "Pages 2–3 and 10 - 20 were read in 2021."),
    ("Year 2021. Price $3.50, 50% off; e-mail: a@b.com #tag", "In 2021, the price was $3.50 (50% off), e-mail a@b.com"),
    ("1+1=2 © ® ™ € £ ¥ ° ± × ÷ → ∞ x² + y³ ½ Ⅻ", "1 + 1 = 2 © ® ™ € £ ¥ ° ± × ÷ → ∞ x2 + y3 1/2 XII"),
    ("-5.5, +3,2 and .5 or 5. or ,5", "minus 5.5, plus 3.2 and 0.5"),
    # quotes and apostrophes
    ("He said « bonjour » and “hello” to l’homme's friend.", "He said \"bonjour\" and 'hello' to the man’s friend."),
    ("It's John's book, isn't it? ‘Yes’, he said.", "It is John’s book, is not it? 'Yes', he said."),
    # hyphenation and line breaks inside a segment
    ("A well-known state-of-the-art end-\nof-line test", "A well known state of the art end-of-line test"),
    ("first line\nsecond line\r\nthird", "first line second line third"),
    # HTML entities
    ("Tom &amp; Jerry &quot;cartoon&quot; &lt;b&gt; bold &amp;amp; &apos;x&apos; &#39;", "Tom & Jerry \"cartoon\" <b> bold &amp; 'x' '"),
    ("<skipped> words &amp;quot; & ;", "words &quot; & ;"),
    # Unicode: accents, NFC vs NFD, scripts
    ("Le café était très élégant, à côté de l'hôtel.", "The café was very elegant, next to the hôtel."),
    ("Cafe\u0301 re\u0301sume\u0301 na\u0131\u0308ve", "Café résumé naïve"),
    ("我们在北京见面。东京は日本の首都です。", "我们在上海见面。东京是日本的首都。"),
    ("안녕하세요 세계! नमस्ते दुनिया। สวัสดีชาวโลก", "안녕 세계! नमस्ते दुनिया। สวัสดี ชาวโลก"),
    ("مرحبا بالعالم ١٢٣، كيف حالك؟", "مرحبا بكم في العالم 123، كيف الحال؟"),
    ("I love 🍕 and 🎉🎉! 👨‍👩‍👧 🇫🇷 👍🏽", "I love pizza 🍕 and 🎉 ! 👨‍👩‍👧 🇫🇷"),
    ("𝐁𝐨𝐥𝐝 math 𝟏𝟐𝟑 and ①②③ ⁴⁵", "Bold math 123 and 1 2 3 45"),
    # zero-width, non-breaking and other spaces
    ("zero\u200bwidth space and\u200cjoiner\u200d here\ufeff", "zero width space and joiner here"),
    ("10\u00a0000 euros\u202fet\u2009plus\u3000fin\u2028next\u2029para", "10 000 euros et plus fin next para"),
    ("\ufeffBOM at start and co\u00adoperate soft hyphen", "BOM at start and cooperate soft hyphen"),
    # control characters
    ("tab\there\x0bvt\x0cff\x1cfs\x1dgs\x1ers\x1fus\x85nel end", "tab here vt ff fs gs rs us nel end"),
    ("nul\x00char bell\x07 esc\x1b[0m del\x7f", "nul char bell esc del"),
    # case
    ("THE UNITED STATES AND RUSSIA MUST INTERACT CONSTRUCTIVELY.", "The United States and Russia must interact constructively."),
    ("ΟΔΟΣ ΣΟΦΟΣ ΣΑΣ. STRASSE İSTANBUL ǅemal ﬁne", "οδος σοφος σας. Straße istanbul džemal fine"),
    # very short segments
    ("Yes", "Yes."),
    ("a", "b"),
    (".", "."),
    # long segment (about 150 words)
    (
        " ".join(["the quick brown fox jumps over the lazy dog , and then it runs away ."] * 10),
        " ".join(["a quick brown fox jumped over the lazy dog and then it ran far away !"] * 10),
    ),
    # empty and whitespace-only sides
    ("", "Something here."),
    ("Something here.", ""),
    ("", ""),
    ("   ", "x"),
    ("x", " \t "),
    # identical
    ("The cat sat on the mat.", "The cat sat on the mat."),
    # clipping, repeats, word order
    ("the the the the the the the", "the cat is on the mat"),
    ("mat the on sat cat the", "the cat sat on the mat"),
    ("trailing spaces   ", "   trailing spaces"),
]


def block_move(words, start, length, target):
    """Moves words[start:start+length] before position target (in the remaining list)."""
    block = words[start:start + length]
    rest = words[:start] + words[start + length:]
    return rest[:target] + block + rest[target:]


def ter_stress_pairs():
    """Pairs for TER's shift search: block moves, long lines, extreme length ratios, the cap."""
    ref = ("the european commission said on tuesday that it would propose new rules "
           "to limit the use of plastic bags across the union by the end of the year").split()
    pairs = [
        (" ".join(block_move(ref, 0, 3, 10)), " ".join(ref)),
        (" ".join(block_move(ref, 12, 5, 0)), " ".join(ref)),
        (" ".join(block_move(block_move(ref, 20, 4, 2), 5, 2, 18)), " ".join(ref)),
        (" ".join(ref[::-1]), " ".join(ref)),
        ("a b c d e f g h i j k l", "g h i j k l a b c d e f"),
        ("a a a b b b a a a", "b b b a a a a a a"),
        ("x y x y x y x y", "y x y x y x y x"),
        # extreme length ratios (the beam widens past 25 when ref/hyp > 50)
        ("the end", " ".join(ref * 5)),
        (" ".join(ref * 5), "the end"),
        ("word", " ".join(["word"] * 120)),
        # long lines with many repeats: the 1000 shift-candidate cap
        (" ".join(["a", "b", "c"] * 40), " ".join(["c", "b", "a", "a"] * 30)),
        (" ".join(ref * 4), " ".join(block_move(ref * 4, 30, 8, 90))),
    ]
    rng = random.Random(20240607)
    vocab = ["the", "a", "cat", "dog", "sat", "on", "mat", "."]
    for _ in range(30):
        n_ref = rng.randint(0, 40)
        r = [rng.choice(vocab) for _ in range(n_ref)]
        h = list(r)
        for _ in range(rng.randint(0, 4)):
            if len(h) > 2:
                s = rng.randrange(len(h))
                ln = rng.randint(1, min(5, len(h) - s))
                h = block_move(h, s, ln, rng.randint(0, len(h) - ln))
        for _ in range(rng.randint(0, 6)):
            op = rng.random()
            if op < 0.33 and h:
                del h[rng.randrange(len(h))]
            elif op < 0.66:
                h.insert(rng.randint(0, len(h)), rng.choice(vocab))
            elif h:
                h[rng.randrange(len(h))] = rng.choice(vocab)
        pairs.append((" ".join(h), " ".join(r)))
    return pairs


def stats_rows(metric, hyps, refs):
    """sacreBLEU's per-segment statistics as plain Python numbers."""
    rows = metric._extract_corpus_statistics(hyps, refs)
    return [[x if isinstance(x, int) else float(x) for x in row] for row in rows]


def result(metric, hyps, refs, float_stats=False):
    """Everything the Rust tests compare for one metric on one case."""
    score = metric.corpus_score(hyps, refs)
    stats = stats_rows(metric, hyps, refs)
    out = {
        "score": float(score.score),
        "score_repr": repr(float(score.score)),
        "formatted": str(score),
        "signature": metric.get_signature().format(),
        "stats": stats,
    }
    if float_stats:
        out["stats_repr"] = [[repr(x) for x in row] for row in stats]
    return out


DEFAULT_OPTIONS = {
    "tokenize": "13a",
    "lowercase": False,
    "smooth_method": "exp",
    "smooth_value": None,
    "effective_order": False,
    "max_ngram_order": 4,
    "chrf_eps_smoothing": False,
}


ALL_METRICS = ("bleu", "chrf", "chrf++", "ter")


def make_case(name, hyps, refs, metrics=ALL_METRICS, **options):
    """Runs the metrics (all four unless told) on one case with sacreBLEU's public API."""
    opts = dict(DEFAULT_OPTIONS)
    unknown = set(options) - set(opts)
    assert not unknown, unknown
    opts.update(options)
    for stream in refs:
        assert len(stream) == len(hyps), name
    bleu = BLEU(
        lowercase=opts["lowercase"],
        tokenize=opts["tokenize"],
        smooth_method=opts["smooth_method"],
        smooth_value=opts["smooth_value"],
        effective_order=opts["effective_order"],
        max_ngram_order=opts["max_ngram_order"],
    )
    chrf = CHRF(lowercase=opts["lowercase"], eps_smoothing=opts["chrf_eps_smoothing"])
    chrfpp = CHRF(word_order=2, lowercase=opts["lowercase"], eps_smoothing=opts["chrf_eps_smoothing"])
    ter = TER()
    case = {"name": name, "hyps": hyps, "refs": refs, "options": opts}
    for key, metric in [("bleu", bleu), ("chrf", chrf), ("chrf++", chrfpp), ("ter", ter)]:
        if key in metrics:
            case[key] = result(metric, hyps, refs, float_stats=key == "ter")
    return case


def second_reference(ref: str, i: int) -> str:
    """A paraphrase-ish second reference: drops, swaps or keeps words by position."""
    words = ref.split()
    if i % 3 == 0:
        words = words[: max(0, len(words) - 2)]
    elif i % 3 == 1 and len(words) > 3:
        words[1], words[2] = words[2], words[1]
    return " ".join(words)


def build_cases():
    tiny = read_lines(TINY)
    en = read_lines(CORPUS / "en.txt")
    fr = read_lines(CORPUS / "fr.txt")
    assert len(tiny) == len(en) == len(fr) == 124

    cases = []
    # (a) the tiny model's output, and the French source as a stand-in system
    cases.append(make_case("tiny-swish-greedy", tiny, [en]))
    cases.append(make_case("tiny-swish-greedy-first-40-intl-lc", tiny[:40], [en[:40]], tokenize="intl", lowercase=True))
    cases.append(make_case("fr-source-vs-en", fr, [en]))
    cases.append(make_case("en-identity-first-20", en[:20], [en[:20]]))

    # (b) hand-written pairs, as one corpus and one segment per case
    hyps = [h for h, _ in PAIRS]
    refs = [r for _, r in PAIRS]
    cases.append(make_case("handwritten", hyps, [refs]))
    for i, (h, r) in enumerate(PAIRS):
        cases.append(make_case(f"single-{i:02d}", [h], [[r]]))
    cases.append(make_case("single-00-effective-order", [PAIRS[0][0]], [[PAIRS[0][1]]], effective_order=True))

    # (c) two and three references
    refs2 = [second_reference(r, i) for i, r in enumerate(refs)]
    refs3 = [r.upper() if i % 2 else "" for i, r in enumerate(refs)]
    cases.append(make_case("handwritten-2refs", hyps, [refs, refs2]))
    cases.append(make_case("handwritten-3refs", hyps, [refs, refs2, refs3]))
    cases.append(make_case("handwritten-3refs-intl-lc", hyps, [refs3, refs, refs2], tokenize="intl", lowercase=True))
    cases.append(make_case(
        "tiny-swish-greedy-first-40-2refs", tiny[:40], [en[:40], [second_reference(r, i) for i, r in enumerate(en[:40])]],
    ))
    # ties: equally close reference lengths (shorter wins), identical references (first wins)
    cases.append(make_case(
        "ties-2refs",
        ["a b c d e", "one two three", "same same", "x"],
        [["a b c d", "one two three", "same same", "y"], ["a b c d e f", "one two three", "same same", "x"]],
    ))
    cases.append(make_case(
        "fr-source-vs-en-3refs", fr[:30], [en[:30], [second_reference(r, i) for i, r in enumerate(en[:30])], fr[:30]],
    ))

    # (d) each tokenizer, lowercase on and off; each smoothing
    # ("handwritten" above is 13a, mixed case; the tokenizer only matters to BLEU)
    for tok in ["13a", "intl", "char", "none"]:
        for lc in [False, True]:
            if tok == "13a" and not lc:
                continue
            metrics = ALL_METRICS if tok == "13a" else ("bleu",)
            cases.append(make_case(
                f"handwritten-{tok}-{'lc' if lc else 'mixed'}", hyps, [refs], metrics, tokenize=tok, lowercase=lc,
            ))
    sparse_hyps = ["the cat sat", "a dog", "x y z w", "hello", "", "one two three four five"]
    sparse_refs = ["the cat is sitting", "a dog barked", "x y z w", "goodbye", "nothing", "one two four three five"]
    smoothings = [("none", None), ("floor", None), ("floor", 0.25), ("add-k", None), ("add-k", 0.5), ("exp", None)]
    for method, value in smoothings:
        suffix = method + ("" if value is None else f"-{value}")
        # smoothing only matters to BLEU: the other metrics are recorded once ("exp")
        metrics = ALL_METRICS if method == "exp" else ("bleu",)
        smooth = {"smooth_method": method, "smooth_value": value}
        cases.append(make_case(f"sparse-smooth-{suffix}", sparse_hyps, [sparse_refs], metrics, **smooth))
        cases.append(make_case(
            f"sparse-smooth-{suffix}-eff", sparse_hyps, [sparse_refs], ("bleu",), effective_order=True, **smooth,
        ))
        for i in [0, 1, 4]:
            cases.append(make_case(
                f"sparse-{i}-smooth-{suffix}-eff", [sparse_hyps[i]], [[sparse_refs[i]]], metrics, effective_order=True,
                **smooth,
            ))
    cases.append(make_case("no-match-at-all", ["a b c", "d"], [["x y z", "w"]]))
    cases.append(make_case("handwritten-order-2", hyps, [refs], ("bleu",), max_ngram_order=2))
    cases.append(make_case("handwritten-chrf-eps", hyps, [refs], ("chrf", "chrf++"), chrf_eps_smoothing=True))
    cases.append(make_case("handwritten-chrf-eps-lc", hyps, [refs], ("chrf", "chrf++"), chrf_eps_smoothing=True, lowercase=True))
    cases.append(make_case("all-empty", ["", ""], [["", ""]]))
    cases.append(make_case("empty-hyps", ["", ""], [["a b", "c"]]))
    cases.append(make_case("empty-refs", ["a b", "c"], [["", ""]]))

    # TER stress tests (BLEU and chrF come along)
    ter_pairs = ter_stress_pairs()
    cases.append(make_case("ter-stress", [h for h, _ in ter_pairs], [[r for _, r in ter_pairs]]))
    for i, (h, r) in enumerate(ter_pairs[:12]):
        cases.append(make_case(f"ter-single-{i:02d}", [h], [[r]]))
    return cases


def format_checks():
    """Python's fixed-point formatting of floats (round half to even on the exact binary value),
    which sacreBLEU's printed scores use: values with exact ties, near-ties and random ones."""
    rng = random.Random(7)
    values = [k / 16 for k in range(0, 161)] + [k / 1000 for k in range(0, 1001, 5)]
    values += [2.675, 1.005, 99.995, 99.99499999999999, 0.0004999, 12.345, 1e-9, 123456.7890125]
    values += [rng.uniform(0, 100) for _ in range(100)]
    # rows: [repr(v), f"{v:.1f}", f"{v:.2f}", f"{v:.3f}"]
    return [[repr(v), f"{v:.1f}", f"{v:.2f}", f"{v:.3f}"] for v in values]


def dump(value, indent=0):
    """JSON with short lists of scalars (statistics rows) on one line, to keep diffs readable."""
    pad = " " * indent
    if isinstance(value, dict):
        items = [f'{pad} {json.dumps(k)}: {dump(v, indent + 1).lstrip()}' for k, v in value.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and (
        any(isinstance(v, (list, dict)) for v in value) or len(json.dumps(value, ensure_ascii=False)) > 100
    ):
        items = [dump(v, indent + 1) for v in value]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(value, ensure_ascii=False)


def main():
    cases = build_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    doc = {"sacrebleu_version": sacrebleu.__version__, "format_checks": format_checks(), "cases": cases}
    OUT.write_text(dump(doc) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
