"""A FastAPI app behind Mangum, with the ASGI middleware, in an instrumented Lambda handler:
one record per Lambda invocation, carrying the ASGI route."""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum

import inferobs as obs

app = FastAPI()
app.add_middleware(obs.InferobsMiddleware, model="ranker")


@app.get("/items/{item}")
async def item(item: str) -> dict[str, str]:
    with obs.stage("lookup"):
        found = item.upper()
    return {"item": found}


@app.get("/broken")
async def broken() -> dict[str, str]:
    raise RuntimeError("the app's bug")


handler = obs.instrument(Mangum(app, lifespan="off"), model="ranker")
