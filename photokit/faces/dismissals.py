"""Suggestions the user said no to: "these two are different people", "this face is not that person".

A dismissal is stored (``DismissedSuggestion``) so `people suggest`, its pending count and the gallery
leave that suggestion out from then on. Suggestion ids are the ones ``suggest.py`` gives: ``m3-7``
(people 3 and 7 as one person; ``3-7`` works too) and ``f131-7`` (face 131 to person 7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from photokit.db.models import DismissedSuggestion, Face, Person
from photokit.errors import PhotokitError, Remedy
from photokit.faces.suggest import merge_id, move_id
from photokit.faces.vocab import SuggestionKind

_SUGGESTION_ID = re.compile(r"(?:m?(?P<a>\d{1,18})-(?P<b>\d{1,18})|f(?P<face>\d{1,18})-(?P<to>\d{1,18}))")


@dataclass(frozen=True)
class SuggestionRef:
    """One suggestion, by what it is about. Merges: ``first`` < ``second`` (people); moves: face, person."""

    kind: SuggestionKind
    first: int
    second: int

    @property
    def id(self) -> str:
        return (
            merge_id(self.first, self.second) if self.kind == SuggestionKind.MERGE else move_id(self.first, self.second)
        )

    def describe(self) -> str:
        if self.kind == SuggestionKind.MERGE:
            return f"people {self.first} and {self.second} as one person"
        return f"face {self.first} for person {self.second}"


def parse_suggestion_id(text: str) -> SuggestionRef:
    match = _SUGGESTION_ID.fullmatch(str(text).strip().lower())
    if match is None:
        raise PhotokitError(
            f"'{text}' is not a suggestion id: m<person>-<person> for a merge, f<face>-<person> for a move"
        )
    if match["face"] is not None:
        return SuggestionRef(SuggestionKind.MOVE, int(match["face"]), int(match["to"]))
    a, b = int(match["a"]), int(match["b"])
    if a == b:
        raise PhotokitError(f"'{text}' names person {a} twice")
    return SuggestionRef(SuggestionKind.MERGE, min(a, b), max(a, b))


def _row_query(ref: SuggestionRef):
    if ref.kind == SuggestionKind.MERGE:
        where = (DismissedSuggestion.person_id == ref.first) & (DismissedSuggestion.other_person_id == ref.second)
    else:
        where = (DismissedSuggestion.face_id == ref.first) & (DismissedSuggestion.person_id == ref.second)
    return select(DismissedSuggestion).where(DismissedSuggestion.kind == ref.kind, where)


def dismiss(session: Session, text: str) -> SuggestionRef:
    """Record that the user rejected this suggestion (doing it twice is harmless)."""
    ref = parse_suggestion_id(text)
    people = [ref.first, ref.second] if ref.kind == SuggestionKind.MERGE else [ref.second]
    for person_id in people:
        if session.get(Person, person_id) is None:
            raise PhotokitError(f"unknown person '{person_id}'", Remedy.LIST_PEOPLE)
    if ref.kind == SuggestionKind.MOVE and session.get(Face, ref.first) is None:
        raise PhotokitError(f"unknown face '{ref.first}'")
    if session.scalar(_row_query(ref)) is None:
        if ref.kind == SuggestionKind.MERGE:
            row = DismissedSuggestion(kind=ref.kind, person_id=ref.first, other_person_id=ref.second)
        else:
            row = DismissedSuggestion(kind=ref.kind, person_id=ref.second, face_id=ref.first)
        session.add(row)
        session.flush()
    return ref


def undismiss(session: Session, text: str) -> bool:
    """Let a dismissed suggestion be made again; False when it was not dismissed."""
    ref = parse_suggestion_id(text)
    ids = [row.id for row in session.scalars(_row_query(ref))]
    if ids:
        session.execute(delete(DismissedSuggestion).where(DismissedSuggestion.id.in_(ids)))
        session.flush()
    return bool(ids)


def dismissed(session: Session) -> list[SuggestionRef]:
    """Every dismissed suggestion, oldest first."""
    rows = session.scalars(select(DismissedSuggestion).order_by(DismissedSuggestion.id))
    return [
        SuggestionRef(SuggestionKind.MERGE, r.person_id, r.other_person_id)
        if r.kind == SuggestionKind.MERGE and r.other_person_id is not None
        else SuggestionRef(SuggestionKind.MOVE, r.face_id or 0, r.person_id)
        for r in rows
    ]
