"""Notebook use: answers and failures rendered as escaped HTML/Markdown with an attempts table,
and a real Ctrl-C (SIGINT to a child process) during a stream or a back-off leaving the client
usable."""

import json
import os
import signal
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from failover_client import AllProvidersFailedError, FailoverClient
from failover_client.testing import Fault, Reply

from chains import chain
from support import ask

SCRIPT_TEXT = '<script>alert("hi")</script> & more'


class Cells(HTMLParser):
    """The cells of each table row, and every tag seen."""

    def __init__(self, markup):
        super().__init__()
        self.rows, self.tags = [], []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append("")

    def handle_data(self, data):
        if self.tags[-1:] == ["td"]:
            self.rows[-1][-1] += data


def test_a_response_shows_its_answer_escaped_and_its_attempts_as_a_table(fake_provider):
    fake_provider.script("primary", Fault.status(500))
    fake_provider.script("backup", Reply(text=SCRIPT_TEXT))
    response = FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())
    markup = response._repr_html_()
    assert "<script>" not in markup and "&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; more" in markup
    parsed = Cells(markup)
    assert "script" not in parsed.tags
    rows = [row for row in parsed.rows if row]
    assert [(row[0], row[2], row[4], row[5]) for row in rows] == [
        ("primary", "error", "ServerError", "500"), ("backup", "ok", "", "")]
    assert "backup · gpt-4o · end_turn · 10 in /" in markup


def test_a_response_as_markdown_has_a_table_and_no_live_html(fake_provider):
    fake_provider.script("primary", Fault.status(500, message="bad | worse"))
    fake_provider.script("backup", Reply(text=SCRIPT_TEXT))
    text = FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())._repr_markdown_()
    assert "<script>" not in text and "&lt;script&gt;" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| provider | model | outcome | elapsed_ms | error_type | status | error |"
    assert table[2].startswith("| primary | gpt-4o | error | ") and "bad \\| worse" in table[2]
    assert table[3].startswith("| backup | gpt-4o | ok | ")


def test_all_providers_failed_shows_why_and_every_attempt(fake_provider):
    fake_provider.script("primary", Fault.status(500, message="<b>down</b>"))
    fake_provider.script("backup", Fault.rate_limit(retry_after=3))
    with pytest.raises(AllProvidersFailedError) as info:
        FailoverClient(chain(fake_provider, "primary", "backup")).complete(ask())
    markup = info.value._repr_html_()
    assert "<b>down</b>" not in markup and "&lt;b&gt;down&lt;/b&gt;" in markup
    assert markup.startswith("<p><b>AllProvidersFailedError</b>: all providers failed</p>")
    rows = [row for row in Cells(markup).rows if row]
    assert [(row[0], row[4], row[5]) for row in rows] == [("primary", "ServerError", "500"),
                                                         ("backup", "RateLimitError", "429")]
    text = info.value._repr_markdown_()
    assert text.startswith("**AllProvidersFailedError**: all providers failed")
    assert "| backup | gpt-4o | error | " in text and "&lt;b&gt;down" in text


CHILD_SETUP = """
import json
from failover_client import CompletionRequest, FailoverClient, FailoverConfig, FallbackProvider, Message, RetryPolicy
from failover_client.health import MemoryHealthStore
from failover_client.providers import OpenAIProvider
from failover_client.testing import FakeProviderServer, Fault, Reply

server = FakeProviderServer().start()
def link(name):
    return OpenAIProvider(base_url=server.base_url(name, "openai"), name=name, api_key="sk-test-key-0123456789")
def ask():
    return CompletionRequest("gpt-4o", [Message.user("hi")])
def say(**fields):
    print(json.dumps(fields), flush=True)
class Clock:
    now = 100.0
    def __call__(self):
        return self.now
clock = Clock()
config = FailoverConfig("primary", link("primary")).with_health_store(MemoryHealthStore(clock))
config.add_fallback(FallbackProvider("backup", link("backup")))
client = FailoverClient(config)
"""

# The stream is the half-open circuit's probe: if the interrupt kept its probe slot, the
# next call would skip the primary ("its probe is out") and be answered by the backup.
DURING_A_STREAM = CHILD_SETUP + """
config.with_circuit_breaker(failure_threshold=1, cooldown=10)
server.script("primary", Fault.status(500), Fault.trickle(0.02, reply=Reply(chunks=["x"] * 2000)))
client.complete(ask())
clock.now += 11
shown = False
try:
    for chunk in client.complete_stream(ask()):
        if chunk.text and not shown:
            shown = True
            say(step="streaming")
except KeyboardInterrupt:
    say(step="interrupted")
answer = client.complete(ask())
say(step="after", provider=answer.provider, text=answer.text, state=config.health.state("primary"))
"""

DURING_A_BACK_OFF = CHILD_SETUP + """
config.retry_primary(1).with_retry_policy(RetryPolicy(max_retry_after=600))
config.on("retry", lambda **payload: say(step="sleeping", wait=payload["wait"]))
server.script("primary", Fault.rate_limit(retry_after=300))
try:
    client.complete(ask())
except KeyboardInterrupt:
    say(step="interrupted")
answer = client.complete(ask())
say(step="after", provider=answer.provider, text=answer.text, state=config.health.state("primary"))
"""


def interrupt_when(script, step):
    """Run ``script`` in a child, send it SIGINT when it reports ``step``; its reports after."""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(__file__))
    try:
        reports = []
        for line in child.stdout:
            reports.append(json.loads(line))
            if reports[-1]["step"] == step:
                os.kill(child.pid, signal.SIGINT)
        assert child.wait(timeout=30) == 0
        return [r for r in reports if r["step"] != step]
    finally:
        child.kill()
        child.stdout.close()


def test_ctrl_c_during_a_stream_leaves_the_client_usable():
    reports = interrupt_when(DURING_A_STREAM, "streaming")
    assert reports == [{"step": "interrupted"},
                       {"step": "after", "provider": "primary", "text": "Hello!", "state": "closed"}]


def test_ctrl_c_during_a_back_off_leaves_the_client_usable():
    reports = interrupt_when(DURING_A_BACK_OFF, "sleeping")
    assert reports == [{"step": "interrupted"},
                       {"step": "after", "provider": "primary", "text": "Hello!", "state": "closed"}]
