"""Golden values of the one stable hash: shards, consistency chunks, mining partitions and the held-out split
move if any of these change (then bump schemas.manifest.FORMAT_VERSION, and expect moved figures)."""
from __future__ import annotations

from text.hashing import bucket, in_fraction, stable_hash, text_key


def test_stable_hash_golden_values() -> None:
    assert stable_hash("") == 16476032584258269876
    assert stable_hash("ds/0") == 4858675535924523912
    assert stable_hash("quora/1") == 11408483456085697084
    assert stable_hash("héllo") == 1395503932212621259
    assert stable_hash("pairmill") == 8402431065240666333


def test_bucket_golden_values() -> None:
    assert [bucket(f"ds/{i}", 4) for i in range(12)] == [0, 0, 3, 0, 3, 1, 3, 0, 1, 1, 3, 0]
    assert [bucket(key, 1000) for key in ("", "ds/0", "quora/1", "héllo", "qa/espresso-3")] == [876, 912, 84, 259, 373]
    assert bucket("anything", 1) == 0


def test_in_fraction_golden_values_and_bounds() -> None:
    ids = [f"quora/{i}" for i in range(100)]
    assert [i for i in ids if in_fraction(i, 0.1)] == [
        "quora/5", "quora/26", "quora/30", "quora/36", "quora/46", "quora/54", "quora/56", "quora/77", "quora/80", "quora/84",
    ]
    assert [in_fraction(f"quora/{i}", 0.5) for i in range(6)] == [True, False, False, True, False, True]
    assert not any(in_fraction(i, 0.0) for i in ids) and all(in_fraction(i, 1.0) for i in ids)
    assert {i for i in ids if in_fraction(i, 0.1)} <= {i for i in ids if in_fraction(i, 0.3)}


def test_text_key_golden_values_and_matching_form() -> None:
    assert text_key("How do volcanoes erupt?") == 5176751789752814146
    assert text_key("Ça coûte 3€") == 3997283222781542460
    assert text_key("") == 7252660547403494068
    assert text_key("How do volcanoes erupt?") == text_key("how do  volcanoes, erupt") != text_key("How do volcanoes erupt again?")
    assert 0 <= text_key("a" * 1000) < 2**63
