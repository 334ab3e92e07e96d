"""Receiver data the platforms mask or encrypt, noted as such when it is mapped."""

from __future__ import annotations

from typing import Any

from ordercore.domain.mapping import MappingContext, as_text

__all__ = ["private_text"]


def private_text(value: Any, context: MappingContext, target: str) -> str:
    """Receiver data as TOP gives it; masked (``*``) or encrypted (``~..~``) marks it."""
    text = as_text(value, context, target)
    section = target.split(".", 1)[0]
    if "*" in text:
        kind = "masked"
    elif len(text) > 2 and text.startswith("~") and "~" in text[1:]:
        kind = "encrypted"
    else:
        return text
    note = f"{section} data is {kind} by the platform"
    if note not in context.warnings:
        context.warnings.append(note)
    context.masked.add(section)
    return text
