"""A real local fake LLM provider for tests: `failover_client.testing`.

FakeProviderServer is an HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI Chat Completions
and Anthropic Messages wire protocols byte for byte, and plays a script of replies and faults per
named fake provider, so failover configurations can be tested against real sockets::

    from failover_client.testing import FakeProviderServer, Fault, Reply

    with FakeProviderServer() as server:
        server.script("primary", Fault.rate_limit(retry_after=1))
        server.set_default("backup", Reply(text="Hello there"))
        primary_url = server.base_url("primary", "openai")      # .../primary/v1
        backup_url = server.base_url("backup", "anthropic")     # .../backup
        ...
        assert [r.step for r in server.requests_for("primary")] == ["rate_limit"]

In pytest, the `fake_provider` fixture (failover_client.testing.pytest_plugin) yields a started
server. Stdlib only.
"""

from ._protocol import RecordedRequest
from ._server import FakeProviderServer
from ._steps import Fault, RandomFaults, Reply, ToolCall

__all__ = ["FakeProviderServer", "Fault", "RandomFaults", "RecordedRequest", "Reply", "ToolCall"]
