"""`cascade serve`: an OpenAI-compatible server for a local checkpoint."""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from cascade.errors import CascadeError

DESCRIPTION = """\
Serve a local checkpoint as an OpenAI-compatible chat-completions API
(POST /v1/chat/completions, streaming and not; GET /v1/models; GET /health).

Thinking is on by default; turn it off per request with
{"chat_template_kwargs": {"enable_thinking": false}}. The reasoning comes back as
message.reasoning_content, the answer as message.content (null when the budget ran out
inside the reasoning). Temperature 0 is greedy decoding. "logprobs": true (with "top_logprobs": 0-20)
returns each generated token's log-probability as the OpenAI API defines it (the model's
raw distribution, so a served checkpoint can be a reward judge). Requests in flight at the same
time are decoded as one batch (--max-batch, --batch-window-ms). Bad requests get a 4xx JSON error
naming the field: malformed JSON, values out of range (a seed outside 0..2^63-1), text that is
not Unicode (a lone surrogate), bodies nested more than 64 levels or over 4 MiB, and prompts too
long for the model's context, the longest of them refused from their size before any
tokenising. A client that hangs up stops its request: dropped if it is still queued, its row
of the decode batch stopped within a few tokens if it is being generated (streaming or not).
Binds to 127.0.0.1 unless --host says otherwise; there is no authentication, so think twice
before --host 0.0.0.0.

The first line printed is 'serving NAME on http://HOST:PORT/v1' (scripts can read the
port from it when --port 0 picks a free one).
"""

EPILOG = """\
examples:
  cascade serve --model runs/tiny/final --port 8000
  curl -s http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"messages": [{"role": "user", "content": "What is the apple?"}], "max_tokens": 64,
           "chat_template_kwargs": {"enable_thinking": false}}'
  cascade eval --backend openai --base-url http://127.0.0.1:8000/v1 --model runs/tiny/final \\
      --benchmarks toy_math --data-dir data
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="OpenAI-compatible chat server for a local checkpoint",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint directory (Hugging Face format)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--name", help="model name clients use (default: the --model value)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--max-tokens", type=int, default=512,
                   help="completion budget when a request sets none (default 512)")
    p.add_argument("--max-batch", type=int, default=64,
                   help="most requests decoded together (default 64); 1 turns batching off")
    p.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long the first waiting request waits for others to join its batch (default 5)")
    p.set_defaults(func=run)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the server the way Ctrl-C does: sockets closed


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CascadeError(f"{args.port} is not a port number (0-65535)", field="--port")
    for flag, value in (("--max-tokens", args.max_tokens), ("--max-batch", args.max_batch)):
        if value < 1:
            raise CascadeError(f"must be at least 1, got {value}", field=flag)
    if not 0 <= args.batch_window_ms < float("inf"):  # also nan
        raise CascadeError(f"must be >= 0, got {args.batch_window_ms}", field="--batch-window-ms")
    from cascade.engine.local import LocalEngine
    from cascade.serve.server import ChatService, make_server

    engine = LocalEngine(args.model, device=args.device, dtype=args.dtype)
    service = ChatService(engine, args.name or args.model, default_max_tokens=args.max_tokens,
                          max_batch=args.max_batch, batch_window_s=args.batch_window_ms / 1000)
    try:
        server = make_server(service, args.host, args.port)
    except OSError as exc:
        raise CascadeError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", field="--port") from None
    host, port = server.server_address[:2]
    signal.signal(signal.SIGTERM, _stop)
    # The first line is machine-readable so scripts (and tests) can find the port.
    print(f"serving {service.model_name} on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.close()
    return 0
