"""What each kind of Chatterbox class prepares, and how a voice is put back: its family.

The TTS classes prepare with ``prepare_conditionals`` into ``self.conds``; the
voice-conversion class with ``set_target_voice`` into ``self.ref_dict``.

>>> family_of(type("Model", (), {"set_target_voice": lambda self: None})).state
'ref_dict'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cached_tts._entries.entry import (
    Entry,
    conditionals_class_for,
    conditionals_from_entry,
    entry_from_conditionals,
    entry_from_ref_dict,
    ref_dict_from_entry,
)

__all__ = ["TTS", "VC", "Family", "family_of"]


@dataclass(frozen=True)
class Family:
    """How one kind of Chatterbox class prepares a voice and keeps it."""

    #: The method that prepares a voice.
    method: str
    #: The attribute it sets.
    state: str
    #: ``generate``'s argument naming the clip it prepares first.
    prompt: str
    #: An entry from what ``method`` set, the seconds it took, what it returned
    #: and the exaggeration it was given.
    capture: Callable[[Any, float, Any, Any], Entry]
    restore: Callable[[Any, Entry, Any, Callable[..., Any]], None]


def _restore_conditionals(model: Any, entry: Entry, exaggeration: Any, prepare: Any) -> None:
    model.conds = conditionals_from_entry(
        entry, exaggeration, model.device, conditionals_class_for(prepare)
    )


def _restore_ref_dict(model: Any, entry: Entry, _exaggeration: Any, _prepare: Any) -> None:
    model.ref_dict = ref_dict_from_entry(entry, model.device)


TTS = Family(
    "prepare_conditionals",
    "conds",
    "audio_prompt_path",
    entry_from_conditionals,
    _restore_conditionals,
)
VC = Family(
    "set_target_voice", "ref_dict", "target_voice_path", entry_from_ref_dict, _restore_ref_dict
)


def family_of(cls: type) -> Family:
    """The family of a Chatterbox class; ``TypeError`` for anything else."""
    for family in (TTS, VC):
        if callable(getattr(cls, family.method, None)):
            return family
    raise TypeError(
        f"{cls.__qualname__} is not a Chatterbox model class: it has neither "
        "prepare_conditionals nor set_target_voice"
    )
