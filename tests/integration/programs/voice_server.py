"""A plain FastAPI app: each request prepares a voice with a plain ChatterboxTTS."""

from __future__ import annotations

import os

from fastapi import FastAPI
from plainvoice import CountedModel

app = FastAPI()
counted = CountedModel()


@app.get("/prepare")
def prepare(clip: str) -> dict[str, object]:
    counted.prepare(clip)
    return {"pid": os.getpid(), "preparations": counted.preparations}
