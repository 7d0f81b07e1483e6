"""The social-needs screen inside an assessment: questions by instrument, scores computed live.

Built from ``app.assessment.QUESTIONS``; answering calls ``on_answer(question_id, value)``
(value None clears). ``scores_panel`` shows what the answers mean as they come in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flet as ft

from app import assessment as a
from app.labels import NEEDS as NEED_LABELS

FLAG_WORDS = {"yes": "positive", "no": "negative", "incomplete": "not finished"}


def _value_of(question: a.Question, raw: str | None) -> str | int | None:
    """The option value behind a radio's string value."""
    return next((o.value for o in question.options if str(o.value) == raw), None)


def question_control(
    question: a.Question,
    answer: Any,
    on_answer: Callable[[str, Any], None] | None,
) -> ft.Control:
    """One question: its text and one radio per answer (tap a chosen answer to clear it)."""
    group = ft.RadioGroup(
        key=f"q-{question.id}",
        value=None if answer is None else str(answer),
        content=ft.Column(
            [
                ft.Radio(
                    value=str(o.value), label=o.label, toggleable=True, disabled=on_answer is None
                )
                for o in question.options
            ],
            spacing=0,
        ),
    )

    def changed(e: Any = None) -> None:
        if on_answer is not None:
            on_answer(question.id, _value_of(question, group.value))

    group.on_change = changed
    return ft.Column(
        [ft.Text(question.text, theme_style=ft.TextThemeStyle.BODY_LARGE), group],
        spacing=4,
    )


def instrument_summary(instrument: str, result: a.ScreenResult) -> str:
    """One line per instrument for its tile: score and meaning so far."""
    if instrument == "phq2" and result.phq2 is not None:
        return f"Score {result.phq2} · {FLAG_WORDS[result.phq2_positive or 'incomplete']}"
    if instrument == "safety" and result.safety is not None:
        return f"Score {result.safety} · {FLAG_WORDS[result.safety_positive or 'incomplete']}"
    if instrument == "steadi" and result.steadi_at_risk is not None:
        flag = result.steadi_at_risk
        return {"yes": "At risk of falls", "no": "Not at risk"}.get(flag, "Not finished")
    if instrument == "ahc":
        social = [
            d for d in result.positive_domains if d in ("housing", "food", "transport", "utilities")
        ]
        return "Positive: " + ", ".join(NEED_LABELS[d] for d in social) if social else ""
    return ""


def section(
    answers: Mapping[str, Any],
    on_answer: Callable[[str, Any], None] | None,
) -> list[ft.Control]:
    """An expandable tile per instrument holding its questions; each tile's "n of m
    answered" line follows the answers as they are given."""
    current = dict(answers)
    subtitles: dict[str, ft.Text] = {}

    def show() -> None:
        result = a.score(current)
        for instrument, text in subtitles.items():
            text.value = subtitle(instrument, current, result)

    def answered(qid: str, value: Any) -> None:
        if value is None:
            current.pop(qid, None)
        else:
            current[qid] = value
        show()
        if on_answer is not None:
            on_answer(qid, value)

    tiles: list[ft.Control] = []
    for instrument, title in a.INSTRUMENTS.items():
        subtitles[instrument] = ft.Text(key=f"instrument-{instrument}-summary")
        tiles.append(
            ft.ExpansionTile(
                key=f"instrument-{instrument}",
                title=ft.Text(title),
                subtitle=subtitles[instrument],
                maintain_state=True,
                controls_padding=ft.Padding.only(left=8, right=8, bottom=8),
                expanded_cross_axis_alignment=ft.CrossAxisAlignment.START,
                controls=[
                    question_control(q, answers.get(q.id), answered if on_answer else None)
                    for q in a.QUESTIONS
                    if q.instrument == instrument
                ],
            )
        )
    show()
    return tiles


def subtitle(instrument: str, answers: Mapping[str, Any], result: a.ScreenResult) -> str:
    """ "1 of 2 answered · Score 3 · positive": an instrument's progress and meaning."""
    questions = [q for q in a.QUESTIONS if q.instrument == instrument]
    done = sum(q.id in answers for q in questions)
    summary = instrument_summary(instrument, result)
    return f"{done} of {len(questions)} answered" + (f" · {summary}" if summary else "")


def score_lines(answers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, text) lines of the live score panel."""
    result = a.score(answers)
    lines = []
    domains = ", ".join(NEED_LABELS[d] for d in result.positive_domains)
    lines.append(
        ("score-domains", f"Needs found: {domains}" if domains else "Needs found: none yet")
    )
    if result.urgent_domains:
        urgent = ", ".join(NEED_LABELS[d] for d in result.urgent_domains)
        lines.append(("score-urgent", f"Urgent: {urgent}"))
    if result.phq2 is not None:
        lines.append(
            (
                "score-phq2",
                f"PHQ-2: {result.phq2} "
                f"({FLAG_WORDS[result.phq2_positive or 'incomplete']}, positive at 3+)",
            )
        )
    if result.safety is not None:
        lines.append(
            (
                "score-safety",
                f"Safety: {result.safety} "
                f"({FLAG_WORDS[result.safety_positive or 'incomplete']}, "
                "positive above 10)",
            )
        )
    if result.steadi_at_risk is not None:
        lines.append(
            (
                "score-steadi",
                "Falls: "
                + {"yes": "at risk", "no": "not at risk"}.get(
                    result.steadi_at_risk, "not finished"
                ),
            )
        )
    return lines


def scores_panel(answers: Mapping[str, Any]) -> ft.Container:
    """The live result of the screen, in a tinted box."""
    lines = score_lines(answers)
    urgent = any(k == "score-urgent" for k, _ in lines)
    return ft.Container(
        key="scores",
        bgcolor=ft.Colors.ERROR_CONTAINER if urgent else ft.Colors.SECONDARY_CONTAINER,
        border_radius=ft.BorderRadius.all(12),
        padding=ft.Padding.all(12),
        content=ft.Column([ft.Text(text, key=key) for key, text in lines], spacing=4),
    )


def answered_lines(answers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(question, answer) pairs of a read-only visit, in question order."""
    out = []
    for q in a.QUESTIONS:
        if q.id in answers:
            label = next((o.label for o in q.options if o.value == answers[q.id]), "?")
            out.append((q.text, label))
    return out
