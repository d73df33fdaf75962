"""A small, real OpenAI-compatible HTTP server over the transformers backend, for the openai backend tests.

Run as ``python tests/llm_server.py --model DIR --port N``. It serves ``GET /v1/models``,
``POST /v1/chat/completions`` and ``POST /v1/completions`` with greedy decoding, plus a control endpoint
for failure injection: ``POST /_inject {"fail_next": n, "hang_marker": "..."}`` makes the next n
completion requests answer 500 and any request whose text contains the marker hang for a minute.
``GET /_stats`` reports the counts. One model, one lock: requests are served one at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.llm.base import Prompt
from models.llm.hf_backend import HFBackend

STATE = {"fail_next": 0, "hang_marker": None, "served": 0, "errors_injected": 0, "hung": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    backend: HFBackend

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.backend.model, "object": "model"}]})
        elif self.path == "/_stats":
            self._send(200, STATE)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/_inject":
            STATE.update({k: body[k] for k in ("fail_next", "hang_marker") if k in body})
            return self._send(200, STATE)
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            return self._send(404, {"error": "not found"})
        chat = self.path.endswith("chat/completions")
        text = json.dumps(body.get("messages")) if chat else str(body.get("prompt"))
        if STATE["fail_next"] > 0:
            STATE["fail_next"] -= 1
            STATE["errors_injected"] += 1
            return self._send(500, {"error": "injected failure"})
        if STATE["hang_marker"] and STATE["hang_marker"] in text:
            STATE["hung"] += 1
            time.sleep(60)
            return self._send(500, {"error": "hung"})
        self._complete(body, chat)

    def _complete(self, body: dict, chat: bool) -> None:
        prompt = Prompt(
            entity_id="0",
            messages=tuple(body.get("messages") or ()),
            completion=str(body.get("prompt") or ""),
            max_new_tokens=int(body.get("max_tokens", 16)),
        )
        with LOCK:
            gen = self.backend.generate([prompt])[0]
            STATE["served"] += 1
        if gen.failure:
            return self._send(400, {"error": {"message": gen.failure}})
        choice = {"index": 0, "finish_reason": gen.finish_reason}
        choice |= {"message": {"role": "assistant", "content": gen.text}} if chat else {"text": gen.text}
        self._send(
            200,
            {
                "object": "chat.completion" if chat else "text_completion",
                "choices": [choice],
                "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.generated_tokens},
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-model-len", type=int, default=512)
    args = parser.parse_args()
    Handler.backend = HFBackend(
        model_path=Path(args.model),
        max_new_tokens=16,
        batch_size=1,
        max_model_len=args.max_model_len,
        device="cpu",
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
