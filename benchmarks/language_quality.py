"""Language filter quality: precision and recall of "English kept" (languages [en], threshold 0.65) on
the mixed French/English Stack Exchange meta dump and on a labelled generated set; plus the speed of the
batched predict against the usual one-call-per-text loop on the same texts.

Labels for the real posts come from a signal independent of fastText: counts of frequent English and
French function words. A post is English when its English count is at least 3 and three times its
French count, French the other way round, and "mixed or unknown" otherwise (bilingual posts with an
English text and a French summary, code, very short posts); mixed posts are reported apart, not scored.
``--show N`` prints N labelled posts at random so the labels can be checked by eye.

Usage: .venv/bin/python benchmarks/language_quality.py [--show 0]
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from filters.html_text import html_to_text  # noqa: E402
from filters.language import LanguageIdentifier, fold_lines, load_model  # noqa: E402

POSTS = ROOT.parent / "shared" / "realdata" / "stackexchange" / "french_meta" / "Posts.xml"
THRESHOLD = 0.65
ENGLISH_WORDS = set([
    "the", "is", "are", "was", "and", "to", "of", "in", "that", "it", "for", "with", "this", "not", "you", "be", "have", "on", "what", "would", "but", "can",
])
FRENCH_WORDS = set([
    "le", "la", "les", "des", "est", "sont", "et", "de", "du", "un", "une", "que", "qui", "pour", "dans", "pas", "avec", "sur", "ce", "il", "je", "nous",
    "vous", "mais",
])
WORD = re.compile(r"[^\W\d_]+")

GENERATED = {
    "en": (
        ["the new teacher", "my older brother", "our small village", "the city council", "a young doctor", "this old bakery"],
        ["wants to build", "has forgotten", "will explain", "is looking for", "cannot find", "decided to sell"],
        ["a quiet house near the river", "the answer to the last question", "a cheaper way to travel", "the keys of the car", "an honest review of the book"],
    ),
    "fr": (
        ["le nouveau professeur", "mon frère aîné", "notre petit village", "le conseil municipal", "une jeune médecin", "cette vieille boulangerie"],
        ["veut construire", "a oublié", "va expliquer", "cherche encore", "ne trouve pas", "a décidé de vendre"],
        [
            "une maison calme près de la rivière", "la réponse à la dernière question", "un moyen moins cher de voyager", "les clés de la voiture",
            "un avis honnête sur le livre",
        ],
    ),
    "de": (
        ["der neue Lehrer", "mein älterer Bruder", "unser kleines Dorf", "der Stadtrat", "eine junge Ärztin", "diese alte Bäckerei"],
        ["möchte bauen", "hat vergessen", "wird erklären", "sucht noch", "findet nicht", "hat beschlossen zu verkaufen"],
        [
            "ein ruhiges Haus am Fluss", "die Antwort auf die letzte Frage", "einen billigeren Weg zu reisen", "die Schlüssel des Autos",
            "eine ehrliche Kritik des Buches",
        ],
    ),
    "es": (
        ["el nuevo profesor", "mi hermano mayor", "nuestro pequeño pueblo", "el ayuntamiento", "una joven médica", "esta vieja panadería"],
        ["quiere construir", "ha olvidado", "va a explicar", "sigue buscando", "no encuentra", "decidió vender"],
        [
            "una casa tranquila cerca del río", "la respuesta a la última pregunta", "una forma más barata de viajar", "las llaves del coche",
            "una reseña honesta del libro",
        ],
    ),
}


def stackexchange_posts(path: Path) -> list[str]:
    """Title and body text of every question and answer."""
    texts = []
    for _, row in ET.iterparse(path):
        if row.tag == "row" and row.get("PostTypeId") in ("1", "2"):
            texts.append(f"{row.get('Title', '')}\n{html_to_text(row.get('Body', ''))}".strip())
        row.clear()
    return texts


def function_word_label(text: str) -> str:
    words = [w.lower() for w in WORD.findall(text)]
    english = sum(w in ENGLISH_WORDS for w in words)
    french = sum(w in FRENCH_WORDS for w in words)
    if english >= 3 and english >= 3 * french:
        return "en"
    if french >= 3 and french >= 3 * english:
        return "fr"
    return "mixed"


def generated_set(per_language: int, seed: int = 0) -> list[tuple[str, str]]:
    """(language, text) pairs: one to three sentences from each language's small grammar."""
    rng = random.Random(seed)
    items = []
    for language, (subjects, verbs, objects) in GENERATED.items():
        for _ in range(per_language):
            sentences = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}." for _ in range(rng.randint(1, 3))]
            items.append((language, " ".join(s[0].upper() + s[1:] for s in sentences)))
    return items


def english_kept_scores(labels: list[str], kept: list[bool]) -> tuple[float, float, int, int]:
    true_kept = sum(k and label == "en" for label, k in zip(labels, kept, strict=True))
    english = sum(label == "en" for label in labels)
    return true_kept / max(1, sum(kept)), true_kept / max(1, english), sum(kept), english


def report(name: str, identifier: LanguageIdentifier, labels: list[str], texts: list[str]) -> None:
    verdicts = identifier.identify(texts)
    kept = [reason is None for _, _, reason in verdicts]
    scored = [(label, k) for label, k in zip(labels, kept, strict=True) if label != "mixed"]
    precision, recall, kept_count, english = english_kept_scores([s[0] for s in scored], [s[1] for s in scored])
    print(f"{name:<34} {len(scored):>6} {english:>8} {kept_count:>6} {precision:>10.4f} {recall:>8.4f}")
    by_label: dict[str, list[bool]] = {}
    for label, k in zip(labels, kept, strict=True):
        by_label.setdefault(label, []).append(k)
    print(f"{'':<34} kept rate by label: " + ", ".join(f"{label} {sum(v)}/{len(v)}" for label, v in sorted(by_label.items())))


def speed(identifier: LanguageIdentifier, texts: list[str]) -> None:
    started = time.perf_counter()
    identifier.identify(texts)
    batched = time.perf_counter() - started
    started = time.perf_counter()
    for text in texts:
        identifier.model.predict(fold_lines(text), k=identifier.k)
    looped = time.perf_counter() - started
    print(
        f"\nspeed on {len(texts)} texts: batched {len(texts) / batched:,.0f} texts/s, "
        f"one predict per text {len(texts) / looped:,.0f} texts/s ({looped / batched:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=0, help="print this many labelled posts at random")
    parser.add_argument("--per-language", type=int, default=300)
    args = parser.parse_args()
    identifier = LanguageIdentifier(load_model(None), ["en"], THRESHOLD)
    print(f"{'set':<34} {'scored':>6} {'english':>8} {'kept':>6} {'precision':>10} {'recall':>8}")
    generated = generated_set(args.per_language)
    report("generated en/fr/de/es sentences", identifier, [g[0] for g in generated], [g[1] for g in generated])
    texts: list[str] = []
    if POSTS.is_file():
        texts = stackexchange_posts(POSTS)
        labels = [function_word_label(t) for t in texts]
        report("french_meta posts (title + body)", identifier, labels, texts)
        for label, text in random.Random(1).sample(list(zip(labels, texts, strict=True)), min(args.show, len(texts))):
            verdict = identifier.identify([text])[0]
            print(f"\n[{label}] fastText {verdict[0]} {verdict[1]:.2f} {'kept' if verdict[2] is None else verdict[2]}: {fold_lines(text)[:300]}")
    speed(identifier, texts + [g[1] for g in generated])


if __name__ == "__main__":
    main()
