"""OpenAI-compatible backend: any ``/v1/chat/completions`` (or ``/v1/completions``) server, e.g. a
``vllm serve`` fleet, behind a load balancer or listed directly.

``base_url`` may name several endpoints (comma-separated): requests go round-robin over them, and a retry
goes to the next one. An endpoint that refuses connections is skipped for ``dead_for_s`` seconds (then
tried again), so one dead server costs one failed connection, not one per request. Requests run on a
bounded thread pool (``openai_concurrency``), each with a timeout; connection errors, timeouts, 429 and 5xx
are retried with exponential backoff (``openai_max_retries``). A row that still fails comes back with its
reason; the rest of the batch is kept.
"""

from __future__ import annotations

import itertools
import logging
import threading
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
        dead_for_s: float = 30.0,
    ) -> None:
        self.endpoints = [url.strip().rstrip("/") for url in base_url.split(",") if url.strip()]
        if not self.endpoints:
            raise ValueError("openai backend: no endpoint in base_url")
        self.base_url = self.endpoints[0]
        self.max_new_tokens = max_new_tokens
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.dead_for_s = dead_for_s
        self.chat = chat
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            headers={"Authorization": f"Bearer {api_key}"},
            limits=httpx.Limits(max_connections=concurrency * len(self.endpoints)),
        )
        self._turn = itertools.count()
        self._dead_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self.model = model or self._served_model()

    def _served_model(self) -> str:
        """The model the first reachable endpoint serves (GET /models)."""
        errors = []
        for url in self.endpoints:
            try:
                response = self.client.get(f"{url}/models")
                response.raise_for_status()
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {type(exc).__name__}")
                continue
            models = response.json().get("data") or []
            if models:
                return models[0]["id"]
            errors.append(f"{url}: lists no model")
        raise RuntimeError(f"no endpoint serves a model ({'; '.join(errors)})")

    def _endpoint(self) -> str:
        """The next endpoint in turn, skipping those marked dead (all dead: try the next anyway)."""
        now = time.monotonic()
        with self._lock:
            for _ in range(len(self.endpoints)):
                url = self.endpoints[next(self._turn) % len(self.endpoints)]
                if self._dead_until.get(url, 0.0) <= now:
                    return url
            return self.endpoints[next(self._turn) % len(self.endpoints)]

    def _mark_dead(self, url: str) -> None:
        with self._lock:
            self._dead_until[url] = time.monotonic() + self.dead_for_s

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
            url = self._endpoint()
            try:
                response = self.client.post(f"{url}{path}", json=body)
            except httpx.TimeoutException:
                reason = "timeout"
                continue
            except httpx.TransportError as exc:
                reason = f"connection error: {type(exc).__name__}"
                if isinstance(exc, httpx.ConnectError):
                    self._mark_dead(url)
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
