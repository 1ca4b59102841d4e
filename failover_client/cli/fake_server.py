"""``failover-client fake-server``: the package's fake provider (FakeProviderServer) as a process
of its own, for apps that cannot start it inside their tests (gunicorn workers, Celery fleets,
a person trying the CLI).  It prints its base URLs, serves until SIGTERM or Ctrl-C, and binds
127.0.0.1 unless ``--host`` says otherwise.

Every path prefix is a fake provider: ``http://HOST:PORT/NAME/v1`` speaks OpenAI (Chat
Completions and Responses), ``http://HOST:PORT/NAME`` Anthropic (and Gemini, Cohere, Ollama,
Azure, Bedrock, Vertex on their own paths).  A name with no script answers every protocol with
the default reply ("Hello!"), so ``failover-client fake-server`` works with no script at all.

``--script FILE.json`` maps provider names to what they answer::

    {
      "primary": ["first answer", {"fault": "rate_limit", "retry_after": 1},
                  {"reply": {"text": "third", "usage": {"input": 12, "output": 3}}}],
      "backup":  {"default": {"fault": "trickle", "interval": 0.05, "reply": "slow but fine"}},
      "flaky":   {"default": {"random_faults": {"rate": 0.3, "seed": 7,
                                                "faults": [{"fault": "overloaded"},
                                                           {"fault": "reset_mid_body", "after_events": 2}]}}},
      "locked":  {"key": "sk-the-only-key", "script": ["for the right key only"]}
    }

A name's value is a list of steps (its script: each answers one request, in order) or an
object with ``script`` (that list), ``default`` (the step for every request once the script
is spent) and ``key`` (answer any other API key with the protocol's 401).  A step is

* a string: a reply with that text;
* ``{"reply": TEXT}`` or ``{"reply": {...}}`` with the fields of
  :class:`~failover_client.testing.Reply` (``text``, ``chunks``, ``thinking``, ``refusal``,
  ``stop_reason``, ``usage``, ``model``, ``headers``, ``delay``, ``tool_calls`` as
  ``[{"name": ..., "arguments": {...}}]``);
* ``{"fault": KIND, ...}`` with the arguments of ``Fault.KIND`` (:class:`~failover_client.testing.Fault`):
  ``status`` (``code``, ``message``, ``body``, ``headers``), ``rate_limit`` (``retry_after``,
  ``retry_after_ms``), ``overloaded``, ``context_length``, ``content_filter``, ``html_error``
  (``status``), ``reset_before_headers``, ``reset_mid_body`` (``after_events``),
  ``stall_before_headers`` (``seconds``), ``stall_mid_stream`` (``after_events``, ``seconds``),
  ``trickle`` (``interval``: a slow healthy stream), ``truncated_stream``, ``malformed_json``,
  ``stream_error_event`` (``after_events``, ``error_type``, ``message``), ``empty_200``; where a
  fault answers partly first, ``reply`` is that reply;
* as a ``default`` only, ``{"random_faults": {"rate": 0.3, "faults": [...], "seed": 0,
  "reply": ...}}``: each request draws one of ``faults`` with probability ``rate``, else the
  reply (:class:`~failover_client.testing.RandomFaults`).

A mistake in the file is reported with where it is (``primary[1]: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..testing import FakeProviderServer, RandomFaults, Reply
    from ..testing._steps import Step

# The protocols whose base URLs are printed for each scripted name (the catalog's protocols).
SHOWN_PROTOCOLS = ("openai", "responses", "anthropic", "gemini", "cohere", "ollama", "azure", "bedrock", "vertex")
NAME_FIELDS = frozenset({"script", "default", "key"})
EXAMPLE_NAME = "NAME"
LOG_INTERVAL = 0.1  # seconds between looks for new requests (and for a stop signal)


def add_fake_server_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("fake-server", help="run the fake provider server (scripted replies and faults)",
                                 description="Serve the package's fake LLM provider until SIGTERM or Ctrl-C.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--script", help="JSON file of per-provider scripts (see the module doc)")
    parser.add_argument("--log", metavar="FILE", help="append one JSON line per request received (name, protocol, "
                                                      "path, step, stream, body; never its headers, so no keys)")
    parser.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    from ..errors import InvalidArgumentError
    from ..testing import FakeProviderServer

    try:
        scripts = load_script(args.script) if args.script else {}
    except InvalidArgumentError as exc:
        sys.stderr.write(f"failover-client fake-server: {exc}\n")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server = FakeProviderServer(args.host, args.port).start()
    except OSError as exc:
        sys.stderr.write(f"failover-client fake-server: cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
        return 1
    try:
        apply_script(server, scripts)
        print_urls(server, list(scripts) or [EXAMPLE_NAME])
        with RequestLog(server, args.log) as log:
            while not stop.wait(LOG_INTERVAL):
                log.write_new()
    finally:
        server.stop()
    return 0


class RequestLog:
    """The server's requests as JSON lines in a file, written every LOG_INTERVAL seconds and at
    the end; without a file, nothing."""

    def __init__(self, server: FakeProviderServer, path: str | None) -> None:
        self.server = server
        self.file = open(path, "a", encoding="utf-8") if path else None  # closed by __exit__
        self.written = 0

    def write_new(self) -> None:
        if self.file is None:
            return
        for request in self.server.requests[self.written:]:
            self.file.write(json.dumps({"name": request.name, "protocol": request.protocol, "path": request.path,
                                        "step": request.step, "stream": request.stream, "body": request.body}) + "\n")
            self.written += 1
        self.file.flush()

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.write_new()
        if self.file is not None:
            self.file.close()


def print_urls(server: FakeProviderServer, names: list[str]) -> None:
    out = sys.stdout
    out.write(f"fake provider server listening on {server.url} (SIGTERM or Ctrl-C stops it)\n")
    out.write("any name is a provider; unscripted names answer with the default reply\n")
    for name in names:
        for protocol in SHOWN_PROTOCOLS:
            out.write(f"  {name:<12} {protocol:<10} {server.base_url(name, protocol)}\n")
    out.flush()


def apply_script(server: FakeProviderServer, scripts: dict[str, dict[str, Any]]) -> None:
    for name, parts in scripts.items():
        if parts["script"]:
            server.script(name, *parts["script"])
        if parts["default"] is not None:
            server.set_default(name, parts["default"])
        if parts["key"] is not None:
            server.require_key(name, parts["key"])


# --- the script file -----------------------------------------------------------------------


def load_script(path: str) -> dict[str, dict[str, Any]]:
    """``{name: {"script": [steps], "default": step | RandomFaults | None, "key": str | None}}``
    from the JSON file at ``path``; any mistake is an InvalidArgumentError saying where."""
    from ..errors import InvalidArgumentError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{path}: the script is an object mapping provider names to their steps")
    return {_name(name): _provider_script(name, value) for name, value in data.items()}


def _name(name: str) -> str:
    from ..errors import InvalidArgumentError

    if not name or "/" in name:
        raise InvalidArgumentError(f"{name!r} cannot be a provider name (non-empty, no '/')")
    return name


def _provider_script(name: str, value: Any) -> dict[str, Any]:
    from ..errors import InvalidArgumentError

    if isinstance(value, list):
        value = {"script": value}
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{name}: a list of steps, or an object with script, default and key")
    unknown = sorted(set(value) - NAME_FIELDS)
    if unknown:
        raise InvalidArgumentError(f"{name}: unknown field {unknown[0]!r} (known: {', '.join(sorted(NAME_FIELDS))})")
    steps = value.get("script", [])
    if not isinstance(steps, list):
        raise InvalidArgumentError(f"{name}.script: a list of steps")
    key = value.get("key")
    if key is not None and not isinstance(key, str):
        raise InvalidArgumentError(f"{name}.key: a string")
    default = value.get("default")
    return {
        "script": [step_from_json(step, f"{name}[{i}]") for i, step in enumerate(steps)],
        "default": None if default is None else step_from_json(default, f"{name}.default", random_ok=True),
        "key": key,
    }


def step_from_json(value: Any, where: str, *, random_ok: bool = False) -> Step | RandomFaults:
    """One step of the file (see the module doc) as a Reply, a Fault or (``random_ok``) a RandomFaults."""
    from ..errors import InvalidArgumentError
    from ..testing import Fault, RandomFaults
    from ..testing._steps import ERROR_KINDS, PARTIAL_KINDS

    fault_kinds = ERROR_KINDS | PARTIAL_KINDS  # each is also the name of the Fault method building it
    if isinstance(value, str):
        return _reply(value, where)
    if not isinstance(value, dict) or not {"reply", "fault", "random_faults"} & set(value):
        raise InvalidArgumentError(f"{where}: a step is a string, {{\"reply\": ...}}, {{\"fault\": KIND, ...}}"
                                   + (" or {\"random_faults\": {...}}" if random_ok else ""))
    if "fault" not in value and len(value) > 1:
        raise InvalidArgumentError(f"{where}: a reply or random_faults step has that one field only")
    if "reply" in value and "fault" not in value:
        return _reply(value["reply"], f"{where}.reply")
    if "random_faults" in value:
        if not random_ok:
            raise InvalidArgumentError(f"{where}: random_faults can only be a name's default")
        options = value["random_faults"]
        if not isinstance(options, dict) or not isinstance(options.get("faults"), list):
            raise InvalidArgumentError(f"{where}.random_faults: an object with a list of faults")
        faults = [step_from_json(fault, f"{where}.random_faults.faults[{i}]")
                  for i, fault in enumerate(options["faults"])]
        if not all(isinstance(fault, Fault) for fault in faults):
            raise InvalidArgumentError(f"{where}.random_faults.faults: every entry is a {{\"fault\": ...}}")
        reply = _reply(options["reply"], f"{where}.random_faults.reply") if "reply" in options else None
        extra = {k: v for k, v in options.items() if k not in ("faults", "reply")}
        return _build(RandomFaults, where + ".random_faults", faults=faults, reply=reply, **extra)
    kind, arguments = value["fault"], {k: v for k, v in value.items() if k != "fault"}
    if not isinstance(kind, str) or kind not in fault_kinds:
        raise InvalidArgumentError(f"{where}: unknown fault {kind!r} (known: {', '.join(sorted(fault_kinds))})")
    if "reply" in arguments:
        arguments["reply"] = _reply(arguments["reply"], f"{where}.reply")
    return _build(getattr(Fault, kind), where, **arguments)


def _reply(value: Any, where: str) -> Reply:
    from ..errors import InvalidArgumentError
    from ..testing import Reply, ToolCall

    if isinstance(value, str):
        return Reply(text=value)
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where}: a reply is a text or an object of Reply fields")
    fields = dict(value)
    calls = fields.pop("tool_calls", [])
    if not isinstance(calls, list) or not all(isinstance(call, dict) for call in calls):
        raise InvalidArgumentError(f"{where}.tool_calls: a list of {{\"name\": ..., \"arguments\": {{...}}}}")
    fields["tool_calls"] = [_build(ToolCall, f"{where}.tool_calls[{i}]", **call) for i, call in enumerate(calls)]
    return _build(Reply, where, **fields)


def _build(make: Any, where: str, **arguments: Any) -> Any:
    """``make(**arguments)``, its complaints (a wrong field, a bad value) said as ours."""
    from ..errors import InvalidArgumentError

    try:
        return make(**arguments)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{where}: {exc}") from None
