"""Reddit files of the demo corpus, in the Pushshift dumps' format: submissions and comments as JSON lines."""
from __future__ import annotations

import hashlib
import random
from typing import Any

from demo.formats.common import Written, epoch, jsonl
from demo.tables import ANSWER, QUESTION_BODY, REDDIT_TITLES, TOPICS, Topic
from demo.text import TextWriter, document_words, near_duplicate
from demo.truth import LANGUAGES, PLANT_RATES, View, plan


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, digit = divmod(number, 36)
        out = digits[digit] + out
    return out or "0"


def generate(rng: random.Random, n: int) -> Written:
    """Submissions (self posts, link posts, deleted and removed ones) and comment threads under them."""
    w = TextWriter(rng)
    topics = [topic for domain in TOPICS.values() for topic in domain]
    title_body = View("reddit/submissions.jsonl", "reddit", "title_body")
    post_comment = View("reddit/comments.jsonl", "reddit", "post_comment",
                        notes={"submissions_file": "reddit/submissions.jsonl"})
    start, span = epoch(2019), epoch(2022) - epoch(2019)
    submissions: list[dict[str, Any]] = []
    comments: list[dict[str, Any]] = []

    def author() -> str:
        adjective, animal = rng.choice(("quiet", "rusty", "salty", "tiny")), rng.choice(("otter", "heron", "badger"))
        return f"{adjective}_{animal}{rng.randint(1, 999)}"

    def submission(topic: Topic, t: float, title: str, selftext: str) -> dict[str, Any]:
        post = {"author": author(), "created_utc": int(t), "is_self": True, "over_18": False,
                "score": rng.choice((0, 1, 1, 2, 5, 12, 40, 310)), "selftext": selftext, "subreddit": topic.subreddit,
                "title": title, "_comments": 0}
        submissions.append(post)
        return post

    def comment(post: dict[str, Any], t: float, body: str, score: int, parent: dict[str, Any] | None = None,
                by: str | None = None) -> dict[str, Any]:
        made = {"author": by or author(), "body": body, "created_utc": int(t), "score": score,
                "subreddit": post["subreddit"], "_post": post, "_parent": parent or post}
        post["_comments"] += 1
        comments.append(made)
        return made

    def thread(post: dict[str, Any], topic: Topic, lang: str | None, mismatched_top: Topic | None) -> dict[str, Any]:
        """1-4 top-level comments with distinct scores, some replies and a deleted one; returns the top comment."""
        def text(about: Topic) -> str:
            if lang:
                return " ".join(w.foreign_statements(lang, rng.randint(2, 3)))
            return " ".join(w.sentences(ANSWER, about, rng.randint(2, 3), w.slots(about)))
        scores = rng.sample(range(-3, 300), rng.randint(1, 4))
        t = post["created_utc"]
        top_level = [comment(post, t + rng.uniform(60, 86400), text(topic), s) for s in scores]
        top = max(top_level, key=lambda c: c["score"])
        if mismatched_top:
            top["body"] = text(mismatched_top)
        for _ in range(rng.randint(0, 3)):
            parent = rng.choice(top_level)
            comment(post, parent["created_utc"] + rng.uniform(60, 86400), text(topic), rng.randint(-2, 30), parent)
        if rng.random() < 0.3:
            comment(post, t + rng.uniform(60, 86400), rng.choice(("[deleted]", "[removed]")), min(scores) - 1,
                    by="[deleted]")
        return top

    def self_post(topic: Topic, t: float, count: int) -> tuple[dict[str, Any], dict[str, str]]:
        slots = w.slots(topic)
        title = w.sentence(rng.choice(REDDIT_TITLES), slots) if rng.random() < 0.3 else w.title(topic, slots)[0]
        return submission(topic, t, title, "\n\n".join(w.paragraphs(w.sentences(QUESTION_BODY, topic, count, slots)))), slots

    copies = []
    langs = iter(LANGUAGES * n)
    for kind in plan(rng, n) + ["link", "[deleted]", "[removed]", "empty"] * max(1, n // 25):
        topic, t = rng.choice(topics), start + rng.uniform(0, span * 0.9)
        if kind == "non_english":
            lang = next(langs)
            post = submission(topic, t, w.foreign(lang, "question"),
                              "\n\n".join(w.paragraphs(w.foreign_statements(lang, rng.randint(2, 4)))))
            title_body.plant("non_english", post, lang)
            post_comment.plant("non_english", (post, thread(post, topic, lang, None)), lang)
        elif kind == "mismatched":
            other = rng.choice([x for x in topics if x is not topic])
            post, _ = self_post(topic, t, 1)
            post["selftext"] = "\n\n".join(w.paragraphs(w.sentences(QUESTION_BODY, other, rng.randint(2, 5), w.slots(other))))
            title_body.plant("mismatched", post, {"query_topic": topic.name, "document_topic": other.name})
        elif kind in ("link", "[deleted]", "[removed]", "empty"):
            post, _ = self_post(topic, t, 1)
            post["selftext"] = kind if kind.startswith("[") else ""
            if kind == "link":
                post["is_self"], post["url"] = False, f"https://example.com/{topic.subreddit.lower()}/{rng.randint(1000, 99999)}"
            if kind == "[deleted]":
                post["author"] = "[deleted]"
        else:
            post, _ = self_post(topic, t, rng.randint(9, 10) if kind == "near_source" else rng.randint(2, 6))
            if kind == "clean":
                stray = rng.choice([x for x in topics if x is not topic]) if rng.random() < PLANT_RATES["mismatched"] else None
                top = thread(post, topic, None, stray)
                if stray:
                    post_comment.plant("mismatched", (post, top), {"query_topic": topic.name, "document_topic": stray.name})
            else:
                copies.append((kind, post, topic))
    for kind, original, topic in copies:
        t = original["created_utc"] + rng.uniform(3600, 90 * 86400)
        if kind == "exact_source":
            copy = submission(topic, t, original["title"], original["selftext"])
            title_body.plant("exact_duplicates", copy, original)
        else:
            edited = near_duplicate(rng, original["selftext"].split("\n\n"))
            copy = submission(topic, t, original["title"], "\n\n".join(edited))
            title_body.near(copy, original, copy["selftext"], original["selftext"])
    next_id = 36 ** 5 * 17
    for post in sorted(submissions, key=lambda p: p["created_utc"]):
        next_id += rng.randint(1, 30)
        post["id"] = _base36(next_id)
    next_id = 36 ** 6 * 3
    for made in sorted(comments, key=lambda c: c["created_utc"]):
        next_id += rng.randint(1, 30)
        made["id"] = _base36(next_id)
    submission_rows = [_submission_row(post) for post in sorted(submissions, key=lambda p: (p["created_utc"], p["id"]))]
    comment_rows = [_comment_row(made) for made in sorted(comments, key=lambda c: (c["created_utc"], c["id"]))]
    title_body.pairs = sum(1 for post in submissions if post["selftext"] not in ("", "[deleted]", "[removed]"))
    post_comment.pairs = sum(1 for post in submissions if post["_comments"])
    title_body.notes = {"skipped": {reason: sum(1 for p in submissions if p["selftext"] == text)
                                    for reason, text in (("deleted", "[deleted]"), ("removed", "[removed]"), ("empty", ""))}}

    def key(item: Any) -> str:
        return f"{item[0]['id']}/{item[1]['id']}" if isinstance(item, tuple) else item["id"]
    files = {title_body.file: (jsonl(submission_rows), len(submission_rows)),
             post_comment.file: (jsonl(comment_rows), len(comment_rows))}
    return files, {f"{v.file}#{v.mode}": v.as_json(key) for v in (title_body, post_comment)}


def _subreddit_id(name: str) -> str:
    return "t5_" + _base36(int(hashlib.sha1(name.encode()).hexdigest()[:8], 16))


def _submission_row(post: dict[str, Any]) -> dict[str, Any]:
    slug = "_".join(document_words(post["title"])[:6])
    permalink = f"/r/{post['subreddit']}/comments/{post['id']}/{slug}/"
    return {"author": post["author"], "created_utc": post["created_utc"], "id": post["id"], "is_self": post["is_self"],
            "num_comments": post["_comments"], "over_18": post["over_18"], "permalink": permalink,
            "score": post["score"], "selftext": post["selftext"], "subreddit": post["subreddit"],
            "subreddit_id": _subreddit_id(post["subreddit"]), "title": post["title"],
            "url": post.get("url", "https://www.reddit.com" + permalink)}


def _comment_row(made: dict[str, Any]) -> dict[str, Any]:
    parent = made["_parent"]
    return {"author": made["author"], "body": made["body"], "created_utc": made["created_utc"], "id": made["id"],
            "link_id": "t3_" + made["_post"]["id"],
            "parent_id": ("t3_" if parent is made["_post"] else "t1_") + parent["id"],
            "score": made["score"], "subreddit": made["subreddit"], "subreddit_id": _subreddit_id(made["subreddit"])}
