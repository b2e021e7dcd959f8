"""Synthetic stand-ins for the project's data, written in exactly the layout `repro.data` reads:

    glue/<TASK>/{train,dev}.tsv   CoLA, SST-2, MRPC, RTE, STS-B, WNLI; QNLI dev only (as in shared/data)
    squad/dev-v1.1.json           SQuAD v1.1 nesting: 48 articles, answers that occur at answer_start
    corpus/gutenberg_en_{train,valid}.txt

Every sentence is made from the word lists below with a fixed seed: no row of the real data is
copied. The test suite runs on this (tests/conftest.py points $REPRO_DATA_DIR at it), so a fresh
clone with nothing beside it passes offline. The files keep the real ones' quirks (CoLA without
a header, MRPC's byte-order mark and quotes, RTE's string labels, STS-B's ten columns and
scores 0..5) and the floors the tests and the report hold baselines to (MRPC dev: 279 of 408 paraphrases,
so the majority label's F1 is 81.2; RTE dev: 146 of 277 entailments, majority accuracy 52.7;
SST-2 dev: 112 of 220 positive, 50.9; the packaged MiniLM's zero-shot STS-B Pearson 87.0; 48
SQuAD articles), and their labels follow their words, so that a small model can learn them:

    CoLA   acceptable: a well-formed sentence; unacceptable: the same words out of order or doubled
    SST-2  the label is the polarity of the sentence's opinion words
    MRPC   a paraphrase swaps words for synonyms; a non-paraphrase changes who or what
    RTE    the hypothesis restates a clause of the premise, or negates it / changes its subject
    STS-B  sentence 2 is sentence 1 with 5 - score of its details changed (score 0: unrelated)
    SQuAD  template facts (who built what, when, where); questions ask for one of them

    python tests/fixture_data.py DIR   writes the data into DIR (e.g. to try a notebook offline)
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 1234

# rows per split; MRPC, RTE and WNLI dev have the real files' sizes (the floors depend on them)
COUNTS = {"CoLA": (400, 200), "SST-2": (400, 220), "MRPC": (400, 408), "RTE": (300, 277),
          "STS-B": (400, 300), "WNLI": (120, 71), "QNLI": (None, 200)}
# the scores' noise (a rater's disagreement, in points): at this level the packaged MiniLM's
# zero-shot Pearson on the dev set is 87.0, as on the real STS-B dev set
STSB_NOISE = 0.913
SQUAD_ARTICLES = 48
TRAIN_CORPUS_CHARS = 650_000  # smoke's PLD comparison reads 300k; the data tests want > 500 blocks
VALID_CORPUS_CHARS = 320_000

NAMES = ["anna", "peter", "maria", "john", "clara", "thomas", "helen", "george", "alice", "henry", "emma",
         "james", "laura", "robert", "sarah", "william", "lucy", "edward", "mary", "charles", "jane", "arthur",
         "rose", "walter", "grace", "frank", "ruth", "samuel", "julia", "oliver", "martha", "david"]
NOUNS = ["house", "garden", "river", "bridge", "church", "school", "market", "tower", "ship", "horse", "road",
         "village", "castle", "forest", "window", "letter", "table", "mountain", "field", "harbor", "station",
         "library", "museum", "farm", "mill", "lake", "island", "wall", "gate", "door", "boat", "hall",
         "factory", "hospital", "hotel", "palace", "temple", "theater", "garage", "kitchen"]
ADJS = ["old", "new", "large", "small", "red", "white", "green", "dark", "long", "quiet", "busy", "tall",
        "narrow", "wide", "stone", "wooden", "empty", "famous", "ancient", "modern"]
PLACES = ["london", "paris", "boston", "berlin", "madrid", "vienna", "dublin", "chicago", "rome", "oslo",
          "lisbon", "prague", "denver", "sydney", "toronto", "geneva", "warsaw", "athens", "cairo", "tokyo"]
VERBS = [("built", "build"), ("painted", "paint"), ("bought", "buy"), ("sold", "sell"), ("visited", "visit"),
         ("opened", "open"), ("closed", "close"), ("found", "find"), ("repaired", "repair"), ("designed", "design")]
ING = ["walking", "running", "sitting", "reading", "singing", "playing", "cooking", "writing", "sleeping", "dancing"]
POSITIVE = ["good", "great", "wonderful", "charming", "beautiful", "brilliant", "funny", "moving", "excellent",
            "delightful", "warm", "clever", "fresh", "lovely", "strong"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "weak", "stupid", "ugly", "poor", "tedious",
            "painful", "silly", "flat", "cold", "empty"]
FILMS = ["film", "movie", "story", "script", "cast", "plot", "ending", "performance", "picture", "show"]
INTENS = ["very", "quite", "really", "truly", "rather", "simply", "often", "always"]
SYNONYMS = {"bought": "purchased", "said": "stated", "large": "big", "small": "little", "built": "constructed",
            "quickly": "rapidly", "began": "started", "help": "assist", "shut": "closed", "home": "house",
            "big": "large", "little": "small", "started": "began", "repaired": "fixed", "famous": "well known"}
CONNECT = ["and", "but", "while", "because", "so", "although"]
FILLER = ["the", "a", "of", "in", "on", "with", "at", "by", "to", "from", "for", "near", "after", "before"]


def _sent(r: random.Random) -> str:
    """A simple fact: 'the old tower in rome was built by anna in 1843 .'"""
    past, _ = r.choice(VERBS)
    return (f"the {r.choice(ADJS)} {r.choice(NOUNS)} in {r.choice(PLACES)} was {past} by "
            f"{r.choice(NAMES)} in {r.randint(1700, 2020)} .")


def _write_tsv(path: Path, header: list[str] | None, rows: list[list], bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (["\t".join(header)] if header else []) + ["\t".join(str(x) for x in row) for row in rows]
    text = "\n".join(lines) + "\n"
    for row in rows:  # nothing a TSV reader with QUOTE_NONE would split wrongly
        assert all("\t" not in str(x) and "\n" not in str(x) for x in row)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")


def _labels(r: random.Random, n: int, n_first: int) -> list[int]:
    """n labels, n_first of them 1, in a random order."""
    labels = [1] * n_first + [0] * (n - n_first)
    r.shuffle(labels)
    return labels


# ---- GLUE ---------------------------------------------------------------------------------------

def _cola(r, n, frac_ok=0.7):
    rows = []
    for i, ok in enumerate(_labels(r, n, round(n * frac_ok))):
        words = [r.choice(["the", "a"]), r.choice(ADJS), r.choice(NOUNS), r.choice(["was", "is"]),
                 r.choice(VERBS)[0], "by", r.choice(NAMES)]
        if r.random() < 0.5:
            words += ["in", r.choice(PLACES)]
        if not ok:  # out of order, or a word doubled, or the verb's form broken
            how = r.randrange(3)
            if how == 0:
                r.shuffle(words)
            elif how == 1:
                j = r.randrange(len(words))
                words.insert(j, words[j])
            else:
                words[4] = dict(VERBS)[words[4]]
        sentence = " ".join(words).capitalize() + "."
        rows.append([r.choice(["gj04", "bc01", "ad03"]), int(ok), "*" if not ok and i % 2 else "", sentence])
    return rows


def _sst2(r, n, n_pos):
    rows = []
    for pos in _labels(r, n, n_pos):
        words = POSITIVE if pos else NEGATIVE
        parts = [r.choice(["the", "this", "a", "its"]), r.choice(FILMS), r.choice(["is", "feels", "looks", "seems"]),
                 r.choice(INTENS), r.choice(words)]
        if r.random() < 0.6:
            parts += [r.choice(["and", ","]), r.choice(words)]
        if r.random() < 0.4:
            parts += [r.choice(CONNECT), r.choice(FILMS), "is", r.choice(words)]
        rows.append([" ".join(parts) + " ", int(pos)])
    return rows


def _paraphrase(r, s: str) -> str:
    words = s.split()
    out = [SYNONYMS.get(w, w) if r.random() < 0.7 else w for w in words]
    if out == words:  # always some change
        out = ["it", "is", "said", "that"] + out
    return " ".join(out)


def _mrpc_pair(r, para: bool, quote: bool):
    name, other = r.sample(NAMES, 2)
    noun, place = r.choice(NOUNS), r.choice(PLACES)
    money = r.randint(2, 900)
    s1 = f"{name.capitalize()} said the company bought the {r.choice(ADJS)} {noun} in {place.capitalize()} for $ {money} million ."
    if quote:
        s1 = f'" We began to help the {noun} quickly , " {name.capitalize()} said .'
    s2 = _paraphrase(r, s1)
    if not para:  # who, what, where or how much changes
        how = r.randrange(3)
        if how == 0:
            s2 = s2.replace(name.capitalize(), other.capitalize())
        elif how == 1:
            s2 = s2.replace(noun, r.choice([x for x in NOUNS if x != noun]))
        else:
            s2 = (s2.replace(f"$ {money}", f"$ {money + r.randint(5, 90)}") if "$" in s2 else
                  s2 + f" in {r.choice(PLACES).capitalize()}")
        s2 = s2 + r.choice(["", " after all", " , officials said"])
    return s1, s2


def _mrpc(r, n, n_pos):
    rows = []
    for i, para in enumerate(_labels(r, n, n_pos)):
        s1, s2 = _mrpc_pair(r, bool(para), quote=i == 0 or r.random() < 0.15)
        rows.append([int(para), 1000000 + r.randrange(10 ** 6), 1000000 + r.randrange(10 ** 6), s1, s2])
    return rows


def _rte(r, n, n_ent):
    rows = []
    for i, ent in enumerate(_labels(r, n, n_ent)):
        name, other = r.sample(NAMES, 2)
        past, _ = r.choice(VERBS)
        noun, place = r.choice(NOUNS), r.choice(PLACES)
        year = r.randint(1800, 2020)
        premise = (f"{name.capitalize()}, who lived in {place.capitalize()} for many years, {past} the "
                   f"{r.choice(ADJS)} {noun} in {year}, according to local records.")
        if ent:
            hyp = r.choice([f"{name.capitalize()} {past} the {noun}.", f"{name.capitalize()} lived in {place.capitalize()}.",
                            f"The {noun} was {past} in {year}."])
        else:
            hyp = r.choice([f"{name.capitalize()} never {past} the {noun}.", f"{other.capitalize()} {past} the {noun}.",
                            f"{name.capitalize()} did not live in {place.capitalize()}."])
        rows.append([i, premise, hyp, "entailment" if ent else "not_entailment"])
    return rows


def _stsb_pair(r, changes: int):
    """sentence 2 = sentence 1 with `changes` of its 5 details changed; 5 changes: an unrelated sentence."""
    adj, noun, ing, place, who = r.choice(ADJS), r.choice(NOUNS), r.choice(ING), r.choice(PLACES), r.choice(NAMES)
    s1 = f"A {adj} man named {who.capitalize()} is {ing} near the {noun} in {place.capitalize()}."
    if changes >= 5:
        a = [r.choice(POSITIVE), r.choice(FILMS), r.choice(INTENS), r.choice(NEGATIVE)]
        return s1, f"The {a[1]} was {a[2]} {a[3]} and not at all {a[0]}."
    slots = r.sample(range(5), changes)
    new = [adj, who, ing, noun, place]
    pools = [ADJS, NAMES, ING, NOUNS, PLACES]
    for j in slots:
        new[j] = r.choice([x for x in pools[j] if x != new[j]])
    return s1, f"A {new[0]} man named {new[1].capitalize()} is {new[2]} near the {new[3]} in {new[4].capitalize()}."


def _stsb(r, n, noise: random.Random):
    rows = []
    for i in range(n):
        changes = i % 6 if i < 12 else r.randrange(6)  # every level occurs, 0 and 5 included
        s1, s2 = _stsb_pair(r, changes)
        score = 5.0 - changes
        if i >= 12:  # raters disagree: noise, so that no model's similarity matches the scores exactly
            score = min(5.0, max(0.0, round(score + noise.gauss(0.0, STSB_NOISE), 1)))
        rows.append([i, "main-captions", "SYNTH", "2024", f"{i:04d}", "none", "none", s1, s2, f"{score:.3f}"])
    return rows


def _wnli(r, n):
    rows = []
    for i, ent in enumerate(_labels(r, n, n // 2)):
        a, b = r.sample(NAMES, 2)
        noun = r.choice(NOUNS)
        s1 = f"{a.capitalize()} could not find the {noun} because {b.capitalize()} had hidden it."
        s2 = f"{b.capitalize()} had hidden the {noun}." if ent else f"{a.capitalize()} had hidden the {noun}."
        rows.append([i, s1, s2, int(ent)])
    return rows


def _qnli(r, n):
    rows = []
    for i, ent in enumerate(_labels(r, n, n // 2)):
        name, noun, place = r.choice(NAMES), r.choice(NOUNS), r.choice(PLACES)
        past, _ = r.choice(VERBS)
        q = f"Who {past} the {noun} in {place.capitalize()}?"
        s = (f"The {noun} in {place.capitalize()} was {past} by {name.capitalize()}." if ent
             else f"{place.capitalize()} is known for its {r.choice(ADJS)} {r.choice(NOUNS)}.")
        rows.append([i, q, s, "entailment" if ent else "not_entailment"])
    return rows


def write_glue(root: Path, r: random.Random) -> None:
    g = root / "glue"
    noise = random.Random(SEED + 7)  # its own stream: the noise level changes no sentence
    for split, k in (("train", 0), ("dev", 1)):
        n = {t: c[k] for t, c in COUNTS.items()}
        _write_tsv(g / "CoLA" / f"{split}.tsv", None, _cola(r, n["CoLA"]))
        _write_tsv(g / "SST-2" / f"{split}.tsv", ["sentence", "label"],
                   _sst2(r, n["SST-2"], 112 if split == "dev" else round(0.56 * n["SST-2"])))  # dev: 50.9%
        # MRPC: paraphrases are the majority; dev 279 of 408, as in the real file
        _write_tsv(g / "MRPC" / f"{split}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                   _mrpc(r, n["MRPC"], 279 if split == "dev" else round(0.674 * n["MRPC"])), bom=True)
        # RTE: entailment (0) a slight majority of train; dev 146 of 277
        _write_tsv(g / "RTE" / f"{split}.tsv", ["index", "sentence1", "sentence2", "label"],
                   _rte(r, n["RTE"], 146 if split == "dev" else n["RTE"] // 2 + 1))
        _write_tsv(g / "STS-B" / f"{split}.tsv", ["index", "genre", "filename", "year", "old_index", "source1",
                                                 "source2", "sentence1", "sentence2", "score"], _stsb(r, n["STS-B"], noise))
        _write_tsv(g / "WNLI" / f"{split}.tsv", ["index", "sentence1", "sentence2", "label"], _wnli(r, n["WNLI"]))
        if n["QNLI"]:
            _write_tsv(g / "QNLI" / f"{split}.tsv", ["index", "question", "sentence", "label"], _qnli(r, n["QNLI"]))


# ---- SQuAD v1.1 ---------------------------------------------------------------------------------

def _paragraph(r: random.Random, art: int, par: int):
    """A context of template facts and 4 questions whose answers occur at answer_start."""
    context, qas = "", []
    names = r.sample(NAMES, 8)
    facts = []
    for k in range(r.randint(7, 12)):  # 100-200 words: some contexts need several 128-token windows
        name, noun, adj = names[k % len(names)], r.choice(NOUNS), r.choice(ADJS)
        place, year = r.choice(PLACES).capitalize(), str(r.randint(1700, 2020))
        past, base = r.choice(VERBS)
        sent = f"In {year}, {name.capitalize()} {past} the {adj} {noun} of {place}."
        extra = f" The {noun} was later {r.choice(VERBS)[0]} by the people of {place} and became {r.choice(ADJS)}."
        start = len(context) + (1 if context else 0)
        context = (context + " " if context else "") + sent + (extra if r.random() < 0.6 else "")
        facts.append((start, sent, name, noun, adj, place, year, past, base))
    for q, (start, sent, name, noun, adj, place, year, past, base) in enumerate(r.sample(facts, 4)):
        kind = q % 3
        if kind == 0:
            question, answer = f"Who {past} the {adj} {noun} of {place}?", name.capitalize()
        elif kind == 1:
            question, answer = f"When did {name.capitalize()} {base} the {adj} {noun}?", year
        else:
            question, answer = f"Which city's {adj} {noun} did {name.capitalize()} {base} in {year}?", place
        at = start + sent.index(answer)
        assert context[at: at + len(answer)] == answer
        qas.append({"answers": [{"answer_start": at, "text": answer}] * 3, "question": question,
                    "id": f"synth{art:02d}{par}{q}{r.randrange(16 ** 8):08x}"})
    return {"context": context, "qas": qas}


def write_squad(root: Path, r: random.Random) -> None:
    data = [{"title": f"Synthetic_{i:02d}_{r.choice(NOUNS).capitalize()}",
             "paragraphs": [_paragraph(r, i, p) for p in range(r.randint(1, 2))]} for i in range(SQUAD_ARTICLES)]
    (root / "squad").mkdir(parents=True, exist_ok=True)
    (root / "squad" / "dev-v1.1.json").write_text(json.dumps({"data": data, "version": "1.1"}), encoding="utf-8")


# ---- corpus -------------------------------------------------------------------------------------

def _corpus_sentence(r: random.Random) -> str:
    kind = r.randrange(4)
    if kind == 0:
        return _sent(r).capitalize().replace(" .", ".")
    if kind == 1:
        return (f"{r.choice(NAMES).capitalize()} walked {r.choice(FILLER[5:])} the {r.choice(ADJS)} "
                f"{r.choice(NOUNS)} {r.choice(CONNECT)} {r.choice(NAMES).capitalize()} was {r.choice(ING)}.")
    if kind == 2:
        return (f"The {r.choice(FILMS)} of the {r.choice(NOUNS)} was {r.choice(INTENS)} "
                f"{r.choice(POSITIVE + NEGATIVE)}, said {r.choice(NAMES).capitalize()}.")
    return (f"\"Where is the {r.choice(ADJS)} {r.choice(NOUNS)}?\" asked {r.choice(NAMES).capitalize()}, "
            f"and {r.choice(NAMES).capitalize()} answered that it stood {r.choice(FILLER[5:])} the {r.choice(NOUNS)}.")


def _corpus(r: random.Random, chars: int) -> str:
    out = [f"THE {r.choice(ADJS).upper()} {r.choice(NOUNS).upper()}\n\n\nBy {r.choice(NAMES).upper()} "
           f"{r.choice(NOUNS).upper()}\n"]  # a title page, as a book starts
    n, chapter = len(out[0]), 0
    while n < chars:
        if chapter == 0 or r.random() < 0.03:
            chapter += 1
            out.append(f"\n\nCHAPTER {chapter}\n\n")
        lines, width = [], 0
        para = " ".join(_corpus_sentence(r) for _ in range(r.randint(2, 6)))
        for word in para.split():  # wrapped at ~70 columns, as the Gutenberg texts are
            if width + len(word) > 70:
                lines.append("\n")
                width = 0
            elif width:
                lines.append(" ")
                width += 1
            lines.append(word)
            width += len(word)
        out.append("".join(lines) + "\n\n")
        n += len(out[-1])
    return "".join(out).lstrip("\n")


def write_corpus(root: Path, r: random.Random) -> None:
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    for split, chars in (("train", TRAIN_CORPUS_CHARS), ("valid", VALID_CORPUS_CHARS)):
        (root / "corpus" / f"gutenberg_en_{split}.txt").write_text(_corpus(r, chars), encoding="utf-8")


def make_fixture_data(root: Path) -> Path:
    """Write the synthetic data folder into `root` (created if needed); returns `root`.
    Deterministic: the same files every time."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_glue(root, random.Random(SEED))
    write_squad(root, random.Random(SEED + 1))
    write_corpus(root, random.Random(SEED + 2))
    (root / "README.md").write_text("Synthetic test data made by tests/fixture_data.py: not real data.\n")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/fixture_data.py DIR")
    print(make_fixture_data(Path(sys.argv[1])))
