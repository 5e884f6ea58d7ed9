"""The Quora duplicate-questions reader: the original TSV's quoting, Kaggle's CSV, skips and rejects."""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from pipelines.sources.base import Skip, is_rejected
from pipelines.sources.quora import QuoraSource
from schemas.recipe import parse_source


def parse(path: Path, **options) -> list:
    spec = parse_source({"dataset": "quora", "kind": "quora", "paths": [str(path)], **options}, "test")
    return list(QuoraSource(spec, [str(path)]).parse(str(path), io.BytesIO(path.read_bytes())))


def records(items: list) -> list:
    return [i for i in items if isinstance(i, dict) and not is_rejected(i)]


def test_original_tsv_quotes_multiline_cells_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "quora_duplicate_questions.tsv"
    path.write_text(
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "0\t1\t2\tWhat is the step by step guide to invest in share market in india?\tWhat is the step by step guide to invest in share market?\t0\n"
        '5\t11\t12\t"In the play ""A Raisin in the Sun"", why do they argue?"\t"In ""A Raisin in the Sun"", why do Walter and Beneatha argue?"\t1\n'
        '6\t13\t14\t"How do I\nlearn Python?"\tHow can I learn Python?\t1\n'
        "7\t15\t16\tonly three cells\n"
        "8\t17\t18\tWhat?\t\t1\n"
        "9\t19\t20\ta\tb\tmaybe\n",
        encoding="utf-8",
    )
    items = parse(path)
    got = [(r["id"], r["query"], r["document"], r["meta"]["row"]) for r in records(items)]
    assert got == [
        ("quora/5", 'In the play "A Raisin in the Sun", why do they argue?', 'In "A Raisin in the Sun", why do Walter and Beneatha argue?', 3),
        ("quora/6", "How do I\nlearn Python?", "How can I learn Python?", 4),
    ]
    assert [(r["position"], r["reason"]) for r in items if is_rejected(r)] == [("6", "wrong_column_count"), ("8", "bad_is_duplicate")]
    assert Counter(i.reason for i in items if isinstance(i, Skip)) == {"not_duplicate": 1, "empty_question": 1}


def test_kaggle_train_csv(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        '"id","qid1","qid2","question1","question2","is_duplicate"\n'
        '"7","15","16","How can I be a good geologist?","What should I do to be a great geologist?","1"\n'
        '"8","17","18","When do you use シ instead of し?","When do you use ""&"" instead of ""and""?","0"\n',
        encoding="utf-8",
    )
    (record,) = records(parse(path))
    assert (record["id"], record["query"], record["document"]) == ("quora/7", "How can I be a good geologist?", "What should I do to be a great geologist?")


def test_file_without_the_label_column_is_rejected_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text('"test_id","question1","question2"\n"0","a?","b?"\n', encoding="utf-8")
    (item,) = parse(path)
    assert is_rejected(item) and item["reason"] == "missing_field:id"


@pytest.mark.realdata
def test_real_first_2000_rows(realdata: Path) -> None:
    items = parse(realdata / "quora" / "quora_duplicate_questions_first2000.tsv")
    pairs = records(items)
    # Verified with: awk -F'\t' 'NR>1 && $6=="1"' quora_duplicate_questions_first2000.tsv | wc -l
    assert len(pairs) == 742
    assert Counter(i.reason for i in items if isinstance(i, Skip)) == {"not_duplicate": 2000 - 742}
    assert not [i for i in items if is_rejected(i)]
    by_id = {r["id"]: r for r in pairs}
    assert (by_id["quora/7"]["query"], by_id["quora/7"]["document"]) == ("How can I be a good geologist?", "What should I do to be a great geologist?")
    assert by_id["quora/242"]["query"] == 'In the play "A Raisin in the Sun", why do Walter ad Beneatha argue?'
    assert by_id["quora/242"]["document"] == 'In "A Raisin in the Sun", why do Walter and Beneatha argue?'
    assert by_id["quora/242"]["meta"]["row"] == 244
