"""Stack Exchange dump files of the demo corpus: Posts.xml and PostLinks.xml of one site (BOM included).

``generate`` writes a site's threads with planted faults, tag wikis and duplicate links; ``write_posts_xml``
streams a Posts.xml of any size for the reader's memory benchmark.
"""
from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.formats.common import Written, epoch, utc
from demo.tables import ANSWER, QUESTION_BODY, TOPICS, Topic
from demo.text import TextWriter, near_duplicate
from demo.truth import LANGUAGES, PLANT_RATES, View, plan

SITES = {"cooking": "cooking", "bicycles": "cycling"}  # site folder -> topic domain
MIN_ANSWER_SCORE = 1  # an unaccepted question's answers score >= 3 or <= 0, so any minimum in 1..3 counts the same


@dataclass(eq=False)
class _Post:
    t: float
    type_id: int
    paragraphs: list[str]
    body: str
    score: int
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    parent: _Post | None = None
    answers: list[_Post] = field(default_factory=list)
    accepted: _Post | None = None
    id: int = 0


_XML_ESCAPES = [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("\n", "&#xA;"), ("\r", "&#xD;")]
_XML_HEAD = '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<{root}>\n'


def _xml_attribute(value: Any) -> str:
    """An attribute value escaped the way the dumps do (newlines as &#xA;)."""
    text = str(value)
    for plain, escaped in _XML_ESCAPES:
        text = text.replace(plain, escaped)
    return text


def _xml_row(attributes: dict[str, Any]) -> str:
    pairs = (f'{name}="{_xml_attribute(value)}"' for name, value in attributes.items() if value is not None)
    return "  <row " + " ".join(pairs) + " />\n"


def _body_html(w: TextWriter, topic: Topic, paragraphs: list[str], code: bool = False) -> str:
    """The Body HTML: paragraphs with some inline markup, a link, and optionally a <pre><code> block."""
    parts = []
    for text in paragraphs:
        text = html.escape(text, quote=False)
        marked = [phrase for phrase in topic.things + topic.facts if html.escape(phrase, quote=False) in text]
        if marked and w.rng.random() < 0.35:
            phrase = html.escape(w.rng.choice(marked), quote=False)
            tag = w.rng.choice(("strong", "em", "code", "a"))
            opening = f'<a href="https://example.org/wiki/{phrase.replace(" ", "_")}" rel="nofollow">' if tag == "a" \
                else f"<{tag}>"
            text = text.replace(phrase, f"{opening}{phrase}</{tag}>", 1)
        parts.append(f"<p>{text}</p>\n")
    if code and len(parts) > 1:
        # A topic has five or six things and two facts are drawn: the first two things get one each.
        lines = "\n".join(f"{thing}: {fact}" for thing, fact in zip(topic.things, w.rng.sample(topic.facts, 2), strict=False))
        parts.insert(1, f"<pre><code>{html.escape(lines, quote=False)}\n</code></pre>\n")
    return "\n".join(parts)


def _post(w: TextWriter, topic: Topic, t: float, paragraphs: list[str], score: int, code: bool = False, **kw: Any) -> _Post:
    return _Post(t=t, type_id=kw.pop("type_id", 2), paragraphs=paragraphs, body=_body_html(w, topic, paragraphs, code),
                 score=score, **kw)


def _question(w: TextWriter, topic: Topic, t: float, *, long: bool = False,
              slots: dict[str, str] | None = None, group: int | None = None) -> tuple[_Post, dict[str, str], int]:
    slots = slots or w.slots(topic)
    title, group = w.title(topic, slots, group)
    body = w.paragraphs(w.sentences(QUESTION_BODY, topic, w.rng.randint(9, 10) if long else
                                    w.rng.randint(2, 5), slots))
    tags = w.rng.sample(topic.tags, w.rng.randint(1, len(topic.tags)))
    question = _post(w, topic, t, body, w.rng.randint(-1, 40), type_id=1, title=title, tags=tags)
    return question, slots, group


def _answer(w: TextWriter, topic: Topic, question: _Post, slots: dict[str, str], score: int,
            long: bool = False) -> _Post:
    sentences = w.sentences(ANSWER, topic, w.rng.randint(10, 12) if long else
                            w.rng.randint(2, 6), slots)
    answer = _post(w, topic, question.t + w.rng.uniform(60, 30 * 86400), w.paragraphs(sentences), score,
                   code=not long and w.rng.random() < 0.15, parent=question)
    question.answers.append(answer)
    return answer


def _answers(w: TextWriter, topic: Topic, question: _Post, slots: dict[str, str], accepted: bool) -> None:
    """1-4 answers with one accepted; or, unaccepted, answers scoring >= 3 or all <= 0 (or none)."""
    if accepted or w.rng.random() < 0.75:
        for _ in range(w.rng.randint(1, 4)):
            _answer(w, topic, question, slots, w.rng.randint(3, 30) if not accepted else w.rng.randint(-1, 30))
        if accepted:
            question.accepted = w.rng.choice(question.answers)
    else:
        for _ in range(w.rng.randint(0, 2)):
            _answer(w, topic, question, slots, w.rng.randint(-2, 0))


def _clean_thread(w: TextWriter, topic: Topic, t: float) -> tuple[_Post, dict[str, str], int]:
    question, slots, group = _question(w, topic, t)
    _answers(w, topic, question, slots, accepted=w.rng.random() < 0.7)
    return question, slots, group


def _number_posts(rng: random.Random, questions: list[_Post], others: list[_Post], first_id: int) -> list[_Post]:
    """Questions, their answers and other posts in time order, with ascending ids (and the gaps deleted posts leave)."""
    posts = sorted(questions + [a for q in questions for a in q.answers] + others, key=lambda p: p.t)
    next_id = first_id
    for post in posts:
        post.id = next_id
        next_id += 1 if rng.random() < 0.9 else rng.randint(2, 4)
    return posts


def _content_license(t: float) -> str:
    return "CC BY-SA 2.5" if t < epoch(2011, 4) else "CC BY-SA 3.0" if t < epoch(2018, 5) else "CC BY-SA 4.0"


def _stamp(t: float) -> str:
    return utc(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _post_row(rng: random.Random, post: _Post) -> str:
    last = max([post.t] + [a.t for a in post.answers])
    owner = {"OwnerUserId": rng.randint(2, 40000)} if rng.random() < 0.95 else {"OwnerDisplayName": "user" + str(rng.randint(100, 9999))}
    attributes: dict[str, Any] = {"Id": post.id, "PostTypeId": post.type_id,
                                  "AcceptedAnswerId": post.accepted.id if post.accepted else None,
                                  "ParentId": post.parent.id if post.parent else None,
                                  "CreationDate": _stamp(post.t), "Score": post.score}
    if post.type_id == 1:
        attributes["ViewCount"] = rng.randint(20, 90000)
    attributes.update({"Body": post.body, **owner, "LastActivityDate": _stamp(last)})
    if post.type_id == 1:
        attributes.update({"Title": post.title, "Tags": "".join(f"<{tag}>" for tag in post.tags),
                           "AnswerCount": len(post.answers)})
    attributes.update({"CommentCount": rng.randint(0, 6), "ContentLicense": _content_license(post.t)})
    return _xml_row(attributes)


def _tag_wiki(w: TextWriter, topic: Topic, t: float) -> list[_Post]:
    """A tag's excerpt (PostTypeId 4, plain text) and wiki (PostTypeId 5, HTML)."""
    slots = w.slots(topic)
    excerpt = f"Questions about {topic.tags[0]}: how to {slots['action']}, {slots['problem']} and choosing a {slots['thing']}."
    wiki = [excerpt, w.sentence(ANSWER[2], slots)]
    return [_Post(t=t, type_id=4, paragraphs=[excerpt], body=excerpt, score=0),
            _post(w, topic, t, wiki, 0, type_id=5)]


def generate(rng: random.Random, site: str, n: int) -> Written:
    """Posts.xml and PostLinks.xml of one site of SITES with ``n`` base questions, and its three views' ground truth."""
    topics = TOPICS[SITES[site]]
    w = TextWriter(rng)
    folder = f"stackexchange/{site}"
    title_body = View(f"{folder}/Posts.xml", "stackexchange", "title_body")
    question_answer = View(f"{folder}/Posts.xml", "stackexchange", "question_answer",
                           notes={"min_answer_score": MIN_ANSWER_SCORE})
    duplicates = View(f"{folder}/PostLinks.xml", "stackexchange", "duplicate_questions")
    questions: list[_Post] = []
    clean: list[tuple[_Post, Topic, dict[str, str], int]] = []
    copies: list[tuple[str, _Post, Topic]] = []
    start, span = epoch(2010, 8), epoch(2023, 1) - epoch(2010, 8)
    lang_cycle = iter(LANGUAGES * n)
    for kind in plan(rng, n):
        topic, t = rng.choice(topics), epoch(2010, 8) + rng.uniform(0, span * 0.9)
        if kind == "non_english":
            lang = next(lang_cycle)
            question = _post(w, topic, t, w.paragraphs(w.foreign_statements(lang, rng.randint(2, 3))), rng.randint(0, 9),
                             type_id=1, title=w.foreign(lang, "question"), tags=topic.tags[:1])
            for _ in range(rng.randint(1, 2)):
                answer = _post(w, topic, t + rng.uniform(600, 86400), w.paragraphs(w.foreign_statements(lang, 3)),
                               rng.randint(0, 9), parent=question)
                question.answers.append(answer)
            question.accepted = question.answers[0]
            title_body.plant("non_english", question, lang)
            question_answer.plant("non_english", question, lang)
        elif kind == "mismatched":
            other = rng.choice([x for x in topics if x is not topic])
            question, slots, _ = _question(w, topic, t)
            mismatch = {"query_topic": topic.name, "document_topic": other.name}
            if rng.random() < 0.5:
                question.accepted = _answer(w, other, question, w.slots(other), rng.randint(0, 15))
                question_answer.plant("mismatched", question, mismatch)
            else:
                stray, _, _ = _question(w, other, t)
                question.paragraphs, question.body = stray.paragraphs, stray.body
                title_body.plant("mismatched", question, mismatch)
        else:
            question, slots, group = _question(w, topic, t, long=kind == "near_source")
            _answers(w, topic, question, slots, accepted=kind != "clean" or rng.random() < 0.7)
            if kind != "clean":
                question.accepted = _answer(w, topic, question, slots, rng.randint(1, 30), long=True) \
                    if kind == "near_source" else question.accepted
                copies.append((kind, question, topic))
            else:
                clean.append((question, topic, slots, group))
        questions.append(question)
    for kind, original, topic in copies:
        t = original.t + rng.uniform(86400, 200 * 86400)
        accepted = original.accepted
        assert accepted is not None  # a copied question always has an accepted answer
        paragraphs, answer_paragraphs = original.paragraphs, accepted.paragraphs
        if kind == "near_source":
            paragraphs, answer_paragraphs = near_duplicate(rng, paragraphs), near_duplicate(rng, answer_paragraphs)
        copy = _post(w, topic, t, paragraphs, rng.randint(0, 5), type_id=1, title=original.title, tags=original.tags)
        answer = _post(w, topic, t + rng.uniform(600, 86400), answer_paragraphs, rng.randint(0, 5), parent=copy)
        if kind == "exact_source":
            copy.body, answer.body = original.body, accepted.body
            title_body.plant("exact_duplicates", copy, original)
            question_answer.plant("exact_duplicates", copy, original)
        else:
            title_body.near(copy, original, copy.body, original.body)
            question_answer.near(copy, original, answer.body, accepted.body)
        copy.answers, copy.accepted = [answer], answer
        questions.append(copy)
    # Questions closed as duplicates: a paraphrase of an earlier question, linked with LinkTypeId 3.
    links: list[tuple[_Post, _Post, int]] = []
    for original, topic, slots, group in rng.sample(clean, len(clean) // 8):
        paraphrase, _, _ = _question(w, topic, original.t + rng.uniform(86400, 400 * 86400), slots=slots, group=group)
        questions.append(paraphrase)
        links.append((paraphrase, original, 3))
    for _ in range(max(1, round(len(links) * PLANT_RATES["mismatched"]))):
        a, topic_a, _, _ = rng.choice(clean)
        b, topic_b, _, _ = rng.choice([item for item in clean if item[1] is not topic_a])
        links.append((a, b, 3))
        duplicates.plant("mismatched", (a, b), {"query_topic": topic_a.name, "document_topic": topic_b.name})
    for _ in range(len(links)):
        links.append((rng.choice(clean)[0], rng.choice(clean)[0], 1))
    wikis = [post for topic in topics[:6] for post in _tag_wiki(w, topic, start + rng.uniform(0, span * 0.1))]
    posts = _number_posts(rng, questions, wikis, first_id=1)
    dangling = [(q, _Post(t=q.t, type_id=1, paragraphs=[], body="", score=0, id=posts[-1].id + 1 + i), 3)
                for i, q in enumerate(rng.sample(questions, 2))]
    links += dangling
    answered = [q for q in questions if q.accepted or any(a.score >= MIN_ANSWER_SCORE for a in q.answers)]
    title_body.pairs, question_answer.pairs = len(questions), len(answered)
    duplicates.pairs = sum(1 for _, _, kind in links if kind == 3) - len(dangling)
    skipped = {"skipped_post_types": {"4": len(wikis) // 2, "5": len(wikis) // 2}}
    title_body.notes, question_answer.notes = skipped, {"min_answer_score": MIN_ANSWER_SCORE, **skipped}
    duplicates.notes = {"linked_rows": len(links) - duplicates.pairs - len(dangling),
                        "dangling": sorted(f"{site}/{a.id}-{b.id}" for a, b, _ in dangling)}
    timed_links = sorted(((max(a.t, b.t) + rng.uniform(60, 30 * 86400), a, b, link_type) for a, b, link_type in links),
                         key=lambda link: link[0])
    link_rows, link_id = [], 0
    for t, a, b, link_type in timed_links:
        link_id += rng.randint(1, 40)
        link_rows.append(_xml_row({"Id": link_id, "CreationDate": _stamp(t), "PostId": a.id, "RelatedPostId": b.id,
                                   "LinkTypeId": link_type}))
    posts_xml = _XML_HEAD.format(root="posts") + "".join(_post_row(rng, p) for p in posts) + "</posts>"
    links_xml = _XML_HEAD.format(root="postlinks") + "".join(link_rows) + "</postlinks>"

    def key(item: Any) -> str:
        return f"{site}/{item[0].id}-{item[1].id}" if isinstance(item, tuple) else f"{site}/{item.id}"
    files = {f"{folder}/Posts.xml": (posts_xml.encode(), posts_xml.count("<row ")),
             f"{folder}/PostLinks.xml": (links_xml.encode(), links_xml.count("<row "))}
    return files, {f"{view.file}#{view.mode}": view.as_json(key) for view in (title_body, question_answer, duplicates)}


def write_posts_xml(path: str | Path, target_bytes: int, seed: int = 0, site: str = "cooking") -> dict[str, int]:
    """Stream a Posts.xml of at least ``target_bytes`` without holding it in memory.

    Questions and answers come from a pool of generated threads, redrawn with new ids and dates chunk by chunk.
    """
    rng = random.Random(f"{seed}:big-posts:{site}")
    w = TextWriter(rng, distinct=False)
    topics = TOPICS[SITES[site]]
    pool = [_clean_thread(w, rng.choice(topics), 0.0)[0] for _ in range(1000)]
    head, tail = _XML_HEAD.format(root="posts").encode(), b"</posts>"
    written, rows, next_id, t = len(head), 0, 1, epoch(2010, 8)
    with open(path, "wb") as out:
        out.write(head)
        while written + len(tail) < target_bytes:
            questions = rng.sample(pool, 200)
            for question in questions:
                t += rng.uniform(60, 3600)
                for post in [*question.answers, question]:
                    post.t += t - question.t
            posts = _number_posts(rng, questions, [], next_id)
            next_id = posts[-1].id + 1
            chunk = "".join(_post_row(rng, p) for p in posts).encode()
            out.write(chunk)
            written, rows = written + len(chunk), rows + len(posts)
        out.write(tail)
    return {"bytes": written + len(tail), "rows": rows}

