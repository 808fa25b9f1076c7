"""Thin routers: parse (pydantic does), delegate to the runtime, turn its result into a response.

A handler returns an error response, a full response or an SSE stream — nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST

from assistant.serving.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
)

router = APIRouter()


def _runtime(request: Request):
    return request.app.state.runtime


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse,
             responses={400: {"model": ErrorResponse}, 401: {"model": ErrorResponse}, 429: {"model": ErrorResponse},
                        503: {"model": ErrorResponse}})
async def create_chat_completion(body: ChatCompletionRequest, request: Request) -> Response:
    result = await _runtime(request).chat_completion(body, request)
    if isinstance(result, JSONResponse):  # an error, already in the OpenAI shape
        return result
    if body.stream:
        return StreamingResponse(result, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return JSONResponse(result.model_dump(mode="json", exclude_none=True))


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> Response:
    return JSONResponse(_runtime(request).service.models().model_dump(mode="json"))


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, responses={404: {"model": ErrorResponse}})
async def retrieve_model(model_id: str, request: Request) -> Response:
    return JSONResponse(_runtime(request).service.model_card(model_id).model_dump(mode="json"))


@router.get("/health")
async def health(request: Request) -> Response:
    status, body = _runtime(request).health()
    return JSONResponse(body, status_code=status)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(_runtime(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
