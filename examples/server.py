"""A small TTS server: voices warmed at start-up, served from the cache.

At start-up it warms every clip under a voices folder in the background (the
server answers meanwhile). ``POST /tts`` with ``{"text": ..., "voice": ...}``
(the voice is a clip's file name without extension) returns WAV bytes;
``GET /stats`` shows the cache's counters and the warm-up's progress.

Requests run in FastAPI's thread pool; a cached model takes them one at a time
on its lock, so the prepared voice of one request never leaks into another.

Run ``python examples/server.py --voices voices/`` and then
``curl -X POST localhost:8000/tts -H 'content-type: application/json'
-d '{"text": "Hello.", "voice": "alice"}' -o hello.wav``. Add
``--random-weights`` to try it offline (the audio is then noise).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import soundfile
from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel

import cached_tts
from cached_tts import CachedChatterboxTTS, ConditionalCache
from cached_tts.testing import random_model


class SpeechRequest(BaseModel):
    """What ``POST /tts`` takes."""

    text: str
    voice: str
    exaggeration: float = 0.5


def voices_in(folder: Path) -> dict[str, str]:
    """Each clip under ``folder`` by its name without extension."""
    suffixes = {".wav", ".flac", ".mp3", ".ogg", ".m4a"}  # what cached_tts.warm looks for
    return {p.stem: str(p) for p in sorted(folder.rglob("*")) if p.suffix.lower() in suffixes}


def create_app(model: Any, voices_dir: Path) -> FastAPI:
    """The application: ``model`` serves the clips in ``voices_dir``."""
    voices = voices_in(voices_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.warming = cached_tts.warm(model, list(voices.values()), background=True)
        yield

    app = FastAPI(title="cached-tts example server", lifespan=lifespan)

    @app.post("/tts", response_class=Response)
    def tts(request: SpeechRequest) -> Response:
        clip = voices.get(request.voice)
        if clip is None:
            raise HTTPException(404, f"unknown voice {request.voice!r}; have {sorted(voices)}")
        wav = model.generate(
            request.text, audio_prompt_path=clip, exaggeration=request.exaggeration
        )
        buffer = io.BytesIO()
        soundfile.write(buffer, wav.squeeze(0).numpy(), model.sr, format="WAV")
        return Response(buffer.getvalue(), media_type="audio/wav")

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        figures = model.cache.stats()
        warming = app.state.warming
        summary = warming.result() if warming.done() else None
        return {
            **asdict(figures),
            "hits": figures.hits,
            "hit_rate": figures.hit_rate,
            "voices": sorted(voices),
            "warm_up": "running"
            if summary is None
            else {"new": summary.new, "cached": summary.cached, "failed": summary.failed},
        }

    return app


def main() -> None:
    """Load the model and serve."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=Path, required=True, help="folder of reference clips")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--cache-dir", type=Path, help="cache folder (default: the user's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--random-weights", action="store_true", help="offline; audio is noise")
    args = parser.parse_args()

    cache = ConditionalCache(args.cache_dir) if args.cache_dir else None
    if args.random_weights:
        model = random_model(CachedChatterboxTTS, device=args.device, cache=cache)
    else:
        model = CachedChatterboxTTS.from_pretrained(args.device, cache=cache)
    uvicorn.run(create_app(model, args.voices), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
