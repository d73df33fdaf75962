"""OpenAI-compatible backend: any ``/v1/chat/completions`` (or ``/v1/completions``) server, e.g. a
``vllm serve`` fleet behind a load balancer.

Requests run on a bounded thread pool (``openai_concurrency``), each with a timeout; connection errors,
timeouts, 429 and 5xx are retried with exponential backoff (``openai_max_retries``). A row that still
fails comes back with its reason; the rest of the batch is kept.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from models.llm.base import COMPLETION_STOP, Generation, Prompt, approx_tokens, as_profile_text, failed

log = logging.getLogger(__name__)
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        max_new_tokens: int,
        concurrency: int,
        timeout_s: float,
        max_retries: int,
        chat: bool = True,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_new_tokens = max_new_tokens
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.chat = chat
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=concurrency),
        )
        self.model = model or self._served_model()

    def _served_model(self) -> str:
        response = self.client.get("/models")
        response.raise_for_status()
        models = response.json().get("data") or []
        if not models:
            raise RuntimeError(f"{self.base_url}/models lists no model")
        return models[0]["id"]

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def generate(self, prompts: list[Prompt]) -> list[Generation]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai") as pool:
            return list(pool.map(self._one, prompts))

    def _body(self, prompt: Prompt) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": 0.0,
            "max_tokens": prompt.max_new_tokens or self.max_new_tokens,
        }
        if self.chat:
            return "/chat/completions", body | {"messages": list(prompt.messages)}
        return "/completions", body | {"prompt": prompt.completion, "stop": [COMPLETION_STOP]}

    def _one(self, prompt: Prompt) -> Generation:
        path, body = self._body(prompt)
        reason = "not attempted"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(path, json=body)
            except httpx.TimeoutException:
                reason = "timeout"
                continue
            except httpx.TransportError as exc:
                reason = f"connection error: {type(exc).__name__}"
                continue
            if response.status_code in RETRYABLE_STATUS:
                reason = f"http {response.status_code}"
                continue
            if response.status_code != 200:
                return failed(f"http {response.status_code}: {response.text[:200]}")
            return self._parse(prompt, response.json())
        log.warning(
            "request for %s failed after %d attempts: %s", prompt.entity_id, self.max_retries + 1, reason
        )
        return failed(reason)

    def _parse(self, prompt: Prompt, payload: dict[str, Any]) -> Generation:
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"] if self.chat else choice["text"]
        except (KeyError, IndexError, TypeError):
            return failed(f"malformed response: {str(payload)[:200]}")
        usage = payload.get("usage") or {}
        return Generation(
            text=as_profile_text(prompt, text or "", chat=self.chat),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            generated_tokens=usage.get("completion_tokens"),
        )

    def close(self) -> None:
        self.client.close()
