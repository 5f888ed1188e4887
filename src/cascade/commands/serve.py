"""`cascade serve`: an OpenAI-compatible server for a local checkpoint."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Serve a local checkpoint as an OpenAI-compatible chat-completions API
(POST /v1/chat/completions, streaming and not; GET /v1/models).

Thinking is on by default; turn it off per request with
{"chat_template_kwargs": {"enable_thinking": false}}. The reasoning comes back as
message.reasoning_content, the answer as message.content. Binds to 127.0.0.1 unless
--host says otherwise.
"""

EPILOG = """\
examples:
  cascade serve --model runs/tiny/final --port 8000
  curl -s http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"messages": [{"role": "user", "content": "What is the apple?"}], "max_tokens": 64}'
  cascade eval --backend openai --base-url http://127.0.0.1:8000/v1 --model runs/tiny/final ...
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="OpenAI-compatible chat server for a local checkpoint",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint directory (Hugging Face format)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--name", help="model name clients use (default: the --model value)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--max-tokens", type=int, default=512, help="default completion budget (default 512)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cascade.engine.local import LocalEngine
    from cascade.serve.server import ChatService, make_server

    engine = LocalEngine(args.model, device=args.device)
    service = ChatService(engine, args.name or args.model, default_max_tokens=args.max_tokens)
    server = make_server(service, args.host, args.port)
    host, port = server.server_address[:2]
    # The first line is machine-readable so scripts (and tests) can find the port.
    print(f"serving {service.model_name} on http://{host}:{port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
