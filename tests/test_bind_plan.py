"""A call binds through its function's plan exactly as ``Signature.bind`` binds it."""

from __future__ import annotations

import pytest

from cached_tts._wrapping.binding import _bind_by_signature, bind_call


def prepare_conditionals(self, wav_fpath, exaggeration=0.5, norm_loudness=True):
    """Shaped like Turbo's preparation."""


def with_var_keywords(self, wav_fpath, exaggeration=0.5, **extra):
    """Not plannable: binds through Signature.bind."""


CALLS = [
    (("a.wav",), {}),
    (("a.wav", 0.7), {}),
    (("a.wav",), {"exaggeration": 0.7}),
    ((), {"wav_fpath": "a.wav", "norm_loudness": False}),
    (("a.wav",), {"norm_loudness": 1, "exaggeration": 0}),
    (("a.wav", 0.1, False), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_plan_binds_as_the_signature_does(args, kwargs):
    call = bind_call(prepare_conditionals, args, kwargs)
    expected = _bind_by_signature(prepare_conditionals, args, kwargs)

    assert call is not None
    assert call.clip == expected.pop("wav_fpath")
    assert call.exaggeration == expected.pop("exaggeration")
    assert list(call.extra.items()) == list(expected.items())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a.wav", 0.5, True, "extra"), {}),  # too many
        (("a.wav",), {"wav_fpath": "b.wav"}),  # given twice
        ((), {}),  # the clip is missing
        (("a.wav",), {"speed": 2}),  # unknown keyword
    ],
)
def test_a_call_the_plan_cannot_bind_raises_upstreams_type_error(args, kwargs):
    with pytest.raises(TypeError):
        bind_call(prepare_conditionals, args, kwargs)


def test_a_function_with_var_keywords_binds_through_its_signature():
    call = bind_call(with_var_keywords, ("a.wav",), {"speed": 2})

    assert call is not None
    assert call.extra == {"speed": 2}
