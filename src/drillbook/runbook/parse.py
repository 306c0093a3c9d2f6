"""A Markdown runbook as data: its sections, numbered steps, shell blocks and severity.

Two shapes are common in teams' runbook repositories, and both are read:

- incident: Summary / Symptoms / Investigation / Resolution / Prevention / Escalation
- procedure: Overview / Prerequisites / Step-by-Step Procedure / Verification / Rollback /
  Troubleshooting

A section's steps are its third-level sub-headings when it has them, else the items of its first
numbered list (a bulleted list when there is none). A fenced shell block is run by a drill only
where the runbook says it is safe to, visibly, in one of two ways: the word ``drill-safe`` in the
block's info string (```` ```sh drill-safe ````), or an HTML comment ``<!-- drill: run -->`` on
the line before the block. Everything that is not used is listed with its line number, so an
unusual runbook imports what it can and says what it left out.

The Markdown is parsed by markdown-it-py (CommonMark); the line numbers are its source maps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it.token import Token

__all__ = [
    "SAFE_COMMENT",
    "SAFE_WORD",
    "Block",
    "Runbook",
    "Section",
    "Step",
    "parse_duration_words",
    "parse_runbook",
]

SAFE_WORD = "drill-safe"
SAFE_COMMENT = re.compile(r"^\s*<!--\s*drill\s*:\s*run\s*-->\s*$", re.IGNORECASE)
_SHELLS = {"sh", "bash", "shell", "console", "zsh", "shell-session", ""}

#: heading words -> the section's role (first match wins; compared in lower case)
_ROLES: tuple[tuple[str, str], ...] = (
    ("step-by-step", "procedure"),
    ("procedure", "procedure"),
    ("steps", "procedure"),
    ("resolution", "resolution"),
    ("remediation", "resolution"),
    ("mitigation", "resolution"),
    ("recovery", "resolution"),
    ("verification", "verification"),
    ("verify", "verification"),
    ("validation", "verification"),
    ("rollback", "rollback"),
    ("roll back", "rollback"),
    ("summary", "summary"),
    ("symptom", "symptoms"),
    ("investigation", "investigation"),
    ("diagnos", "investigation"),
    ("triage", "investigation"),
    ("prevention", "prevention"),
    ("escalation", "escalation"),
    ("overview", "overview"),
    ("prerequisite", "prerequisites"),
    ("before you start", "prerequisites"),
    ("troubleshooting", "troubleshooting"),
)
_INCIDENT = {"summary", "symptoms", "investigation", "resolution", "prevention", "escalation"}
_PROCEDURE = {"overview", "prerequisites", "procedure", "verification", "rollback"}


@dataclass(frozen=True)
class Block:
    """A fenced code block inside a step."""

    code: str
    info: str
    line: int  # 1-based line of the opening fence
    safe: bool  # marked safe for a drill to run

    @property
    def is_shell(self) -> bool:
        return (self.info.split() or [""])[0].lower() in _SHELLS


@dataclass(frozen=True)
class Step:
    """One numbered item or sub-heading: what a person does, with its shell blocks."""

    number: int
    title: str
    text: str  # the step's Markdown, marker and indentation removed
    line: int
    end_line: int
    blocks: tuple[Block, ...] = ()

    def prose(self, *, without: tuple[Block, ...] = ()) -> str:
        """The step's text with the given blocks (their fences included) cut out."""
        if not without:
            return self.text
        lines = self.text.split("\n")
        keep: list[str] = []
        cut = {b.line for b in without}
        i = 0
        while i < len(lines):
            if self.line + i in cut:
                fence = lines[i].lstrip()[:3]
                i += 1
                while i < len(lines) and not lines[i].lstrip().startswith(fence):
                    i += 1
                if keep and SAFE_COMMENT.match(keep[-1]):
                    keep.pop()
            else:
                keep.append(lines[i])
            i += 1
        return "\n".join(keep).strip()


@dataclass(frozen=True)
class Section:
    name: str
    role: str | None
    line: int
    end_line: int
    steps: tuple[Step, ...] = ()


@dataclass
class Runbook:
    title: str
    shape: str  # incident | procedure | unknown
    sections: list[Section]
    severity: str | None = None
    rto_s: float | None = None
    rpo_s: float | None = None
    response_target_s: float | None = None
    #: (line, what was left out and why), in line order
    skipped: list[tuple[int, str]] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)

    def section(self, *roles: str) -> Section | None:
        for role in roles:
            for s in self.sections:
                if s.role == role:
                    return s
        return None


def _role(name: str) -> str | None:
    low = name.lower()
    for word, role in _ROLES:
        if word in low:
            return role
    return None


_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)


def parse_duration_words(text: str) -> float | None:
    """``15 minutes``, ``15m``, ``1 hour 30 min``, ``90 s``: seconds; None when not a duration."""
    total, seen = 0.0, False
    for amount, unit in _AMOUNT.findall(text):
        factor = _UNITS.get(unit.lower())
        if factor is None:
            break
        total += float(amount) * factor
        seen = True
    return total if seen and total > 0 else None


_FIELD = re.compile(
    r"^[\s>*_|-]*(?P<key>severity|sev|priority|rto|rpo|response target)[\s*_]*[:|][\s*_]*"
    r"(?P<value>[^|\n]+)",
    re.IGNORECASE,
)
_SEV_WORDS = {"critical": "P0", "high": "P1", "major": "P1", "medium": "P2", "moderate": "P2"}
_SEV_WORDS.update({"minor": "P3", "low": "P3"})


def _severity(value: str) -> str | None:
    text = value.strip().strip("*_` ").lower()
    m = re.match(r"(?:p|sev)[\s-]*(\d)", text)
    if m:
        return f"P{min(int(m.group(1)), 3)}"
    for word, sev in _SEV_WORDS.items():
        if text.startswith(word):
            return sev
    return None


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def _plain(text: str, *, sentence: bool = True) -> str:
    """A title from Markdown inline text: no emphasis or code marks, one line, its first
    sentence (a heading is kept whole), at most about 80 characters."""
    text = " ".join(line.strip() for line in text.split("\n"))
    text = re.sub(r"\*\*|__|[*`]", "", text).strip()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    if sentence:
        text = re.split(r"(?<=[.!?:])\s", text, maxsplit=1)[0]
    if len(text) > 80:
        return text[:80].rsplit(" ", 1)[0].rstrip(" ,;:.(") + "..."
    return text.rstrip(" :.") or "step"


def _dedent_item(lines: list[str], first: int, last: int) -> str:
    """A list item's source, its marker removed and its continuation lines dedented."""
    chunk = lines[first:last]
    if not chunk:
        return ""
    m = re.match(r"^(\s*(?:\d+[.)]|[-*+])\s+)", chunk[0])
    width = len(m.group(1)) if m else 0
    out = [chunk[0][width:]]
    for line in chunk[1:]:
        lead = len(line) - len(line.lstrip(" "))
        out.append(line[min(lead, width) :])
    return "\n".join(out).strip("\n")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.tokens: list[Token] = _markdown().parse(text)
        self.skipped: list[tuple[int, str]] = []
        self.notes: list[tuple[int, str]] = []

    def blocks(self, first: int, last: int) -> tuple[Block, ...]:
        """Fenced blocks whose opening fence lies on 0-based lines [first, last)."""
        found: list[Block] = []
        for tok in self.tokens:
            if tok.type != "fence" or tok.map is None or not first <= tok.map[0] < last:
                continue
            before = [ln for ln in self.lines[first : tok.map[0]] if ln.strip()]
            marked = bool(before) and bool(SAFE_COMMENT.match(before[-1]))
            safe = SAFE_WORD in tok.info.split() or marked
            found.append(Block(tok.content.rstrip("\n"), tok.info.strip(), tok.map[0] + 1, safe))
        return tuple(found)

    def title_at(self, first: int, last: int) -> str:
        for tok in self.tokens:
            if tok.type == "inline" and tok.map is not None and first <= tok.map[0] < last:
                return _plain(tok.content)
        return _plain(self.lines[first] if first < len(self.lines) else "")

    def sections(self) -> tuple[str, list[Section]]:
        title = ""
        heads: list[tuple[int, int, str]] = []  # (level, 0-based line, text)
        toks = self.tokens
        for i, tok in enumerate(toks):
            if tok.type == "heading_open" and tok.level == 0 and tok.map is not None:
                level = int(tok.tag[1])
                text = _plain(toks[i + 1].content, sentence=False)
                if level == 1 and not title:
                    title = text
                    continue
                heads.append((level, tok.map[0], text))
        top = min((lv for lv, _, _ in heads), default=2)
        spans = [(ln, text) for lv, ln, text in heads if lv == top]
        sections: list[Section] = []
        if spans and spans[0][0] > 0:
            self.lint_loose(0, spans[0][0], "before the first section")
        for n, (ln, name) in enumerate(spans):
            end = spans[n + 1][0] if n + 1 < len(spans) else len(self.lines)
            subs = [(sln, text) for lv, sln, text in heads if lv > top and ln < sln < end]
            sections.append(self.section(name, ln, end, subs))
        return title, sections

    def lint_loose(self, first: int, last: int, where: str) -> None:
        for tok in self.tokens:
            if tok.type == "fence" and tok.map is not None and first <= tok.map[0] < last:
                self.skipped.append((tok.map[0] + 1, f"code block {where}: not a step, skipped"))

    def section(self, name: str, line: int, end: int, subs: list[tuple[int, str]]) -> Section:
        role = _role(name)
        steps: list[Step] = []
        if subs:
            for n, (sln, text) in enumerate(subs):
                send = subs[n + 1][0] if n + 1 < len(subs) else end
                title = re.sub(r"^(step\s*)?\d+[.):]?\s*", "", text, flags=re.I) or text
                # line i of the text is line sln + 1 + i of the file (Step.prose relies on it)
                body = "\n".join(self.lines[sln + 1 : send]).rstrip()
                steps.append(
                    Step(
                        n + 1,
                        title,
                        f"{title}.\n{body}" if body.strip() else title,
                        sln + 1,
                        send,
                        self.blocks(sln, send),
                    )
                )
            return Section(name, role, line + 1, end, tuple(steps))
        items = self.list_items(line, end)
        for n, (first, last) in enumerate(items):
            steps.append(
                Step(
                    n + 1,
                    self.title_at(first, last),
                    _dedent_item(self.lines, first, last),
                    first + 1,
                    last,
                    self.blocks(first, last),
                )
            )
        if items:
            covered: set[int] = set()
            for first, last in items:
                covered.update(range(first, last))
            for tok in self.tokens:
                if (
                    tok.level == 0
                    and tok.map is not None
                    and tok.type in ("fence", "paragraph_open", "code_block", "html_block")
                    and line < tok.map[0] < end
                    and tok.map[0] not in covered
                    and tok.map[0] > items[0][0]
                ):
                    what = "code block" if tok.type in ("fence", "code_block") else "text"
                    self.skipped.append(
                        (tok.map[0] + 1, f"{what} after the steps of {name!r}: not a step")
                    )
        return Section(name, role, line + 1, end, tuple(steps))

    def list_items(self, line: int, end: int) -> list[tuple[int, int]]:
        """0-based [first, last) line spans of the first numbered list's items in the section
        (the first bulleted list's when it has no numbered one)."""
        for kind in ("ordered_list_open", "bullet_list_open"):
            depth = None
            items: list[tuple[int, int]] = []
            for tok in self.tokens:
                if tok.map is None and depth is None:
                    continue
                if depth is None:
                    if tok.type == kind and tok.level == 0 and line < tok.map[0] < end:  # type: ignore[index]
                        depth = tok.level
                    continue
                if tok.type == "list_item_open" and tok.level == depth + 1 and tok.map:
                    items.append((tok.map[0], tok.map[1]))
                if tok.type == kind.replace("_open", "_close") and tok.level == depth:
                    break
            if items:
                return items
        return []


def parse_runbook(text: str) -> Runbook:
    """Read a Markdown runbook; never raises for an unusual shape (see ``skipped``)."""
    p = _Parser(text)
    title, sections = p.sections()
    roles = {s.role for s in sections}
    if roles & {"procedure"} or ("verification" in roles and "resolution" not in roles):
        shape = "procedure" if roles & _PROCEDURE else "unknown"
    elif "resolution" in roles and roles & _INCIDENT - {"resolution"}:
        shape = "incident"
    else:
        shape = "unknown"
    book = Runbook(title or "runbook", shape, sections, skipped=p.skipped, notes=p.notes)
    for n, line in enumerate(p.lines, start=1):
        m = _FIELD.match(line)
        if not m:
            continue
        key, value = m.group("key").lower(), m.group("value")
        if key in ("severity", "sev", "priority") and book.severity is None:
            book.severity = _severity(value)
            if book.severity is None:
                book.skipped.append(
                    (
                        n,
                        f"severity {value.strip()!r} not understood (P0-P3, "
                        "SEV1-SEV4 or critical/high/medium/low)",
                    )
                )
        elif key == "rto" and book.rto_s is None:
            book.rto_s = parse_duration_words(value)
        elif key == "rpo" and book.rpo_s is None:
            book.rpo_s = parse_duration_words(value)
        elif key == "response target" and book.response_target_s is None:
            book.response_target_s = parse_duration_words(value)
    book.skipped.sort()
    return book
