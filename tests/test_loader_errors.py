"""What a cached class's ``from_pretrained`` raises when loading fails.

Only the Hub failing to hand over the weights becomes a
:class:`~cached_tts.WeightsUnavailableError`; any other failure while a model
loads propagates as it is, so its message names its real cause.
"""

from __future__ import annotations

import urllib.error

import huggingface_hub
import pytest
from chatterbox.tts import ChatterboxTTS

from cached_tts import WeightsUnavailableError, cached_conditionals


def test_weights_the_hub_cannot_hand_over_say_how_to_get_them(tmp_path):
    @cached_conditionals
    class OfflineTTS(ChatterboxTTS):
        @classmethod
        def from_pretrained(cls, _device):
            # As upstream fetches its weights: offline, nothing in this cache.
            huggingface_hub.hf_hub_download(
                "ResembleAI/chatterbox",
                "ve.safetensors",
                cache_dir=tmp_path,
                local_files_only=True,
            )
            raise AssertionError("unreachable")

    with pytest.raises(WeightsUnavailableError, match="Hugging Face Hub") as raised:
        OfflineTTS.from_pretrained("cpu")
    assert isinstance(raised.value.__cause__, huggingface_hub.errors.LocalEntryNotFoundError)


@pytest.mark.parametrize(
    "error",
    [
        # What spacy_pkuseg's segmenter download from github.com raises offline.
        urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        ConnectionError("github.com refused the connection"),
        PermissionError(13, "Permission denied", "/home/user/.pkuseg"),
    ],
    ids=type,
)
def test_a_failure_that_is_not_about_the_weights_propagates_as_it_is(error):
    def load_segmenter():
        raise error

    @cached_conditionals
    class SegmentingTTS(ChatterboxTTS):
        @classmethod
        def from_pretrained(cls, _device):
            # The weights are there; the tokenizer's own download fails.
            load_segmenter()

    with pytest.raises(type(error)) as raised:
        SegmentingTTS.from_pretrained("cpu")
    assert raised.value is error
    assert not isinstance(raised.value, WeightsUnavailableError)
