"""Mid-stream recovery: ``on_stream_interrupt("resume")`` continues a broken stream on the next
provider from the partial text (as an assistant prefix) and yields only the continuation."""

import pytest

from failover_client import InvalidArgumentError, StreamInterruptedError, collect
from failover_client.failover import FailoverClient
from failover_client.testing import Fault, Reply, ToolCall

from chains import chain, outcomes, served
from support import ask

FOUR_WORDS = Reply(chunks=["one", " two", " three", " four"])
# how many events each protocol sends before the third word is complete (openai: a role chunk
# first; anthropic: message_start, content_block_start and a ping)
AFTER_THREE_WORDS = {"openai": 4, "anthropic": 6}
PREFILL_REFUSED = ("This model does not support assistant message prefill. "
                   "The conversation must end with a user message.")


@pytest.fixture(params=sorted(AFTER_THREE_WORDS))
def chat_protocol(request):
    return request.param


def resuming(server, *names, protocol="openai"):
    return FailoverClient(chain(server, *names, protocol=protocol).on_stream_interrupt("resume"))


def broken_after_three_words(protocol, reply=FOUR_WORDS):
    return Fault.truncated_stream(after_events=AFTER_THREE_WORDS[protocol], reply=reply)


def prefix_sent(recorded):
    """The text of the trailing assistant message of a recorded OpenAI or Anthropic request."""
    last = recorded.body["messages"][-1]
    assert last["role"] == "assistant"
    content = last["content"]
    return content if isinstance(content, str) else "".join(block["text"] for block in content)


def texts_by_provider(chunks):
    by_provider = {}
    for chunk in chunks:
        if chunk.text:
            by_provider[chunk.provider] = by_provider.get(chunk.provider, "") + chunk.text
    return by_provider


def test_the_next_provider_continues_from_the_partial_text(fake_provider, chat_protocol):
    fake_provider.script("primary", broken_after_three_words(chat_protocol))
    fake_provider.script("backup", Reply(chunks=[" four", " five"]))
    chunks = list(resuming(fake_provider, "primary", "backup", protocol=chat_protocol)
                  .complete_stream(ask(stream=True)))
    assert texts_by_provider(chunks) == {"primary": "one two three", "backup": " four five"}
    response = collect(chunks)
    assert response.text == "one two three four five"
    assert prefix_sent(fake_provider.requests_for("backup")[0]) == "one two three"
    assert outcomes(response.attempts) == [("primary", "error", "NetworkError"), ("backup", "ok", None)]


def test_a_provider_that_starts_over_is_not_repeated(fake_provider):
    fake_provider.script("primary", broken_after_three_words("openai"))
    fake_provider.script("backup", Reply(chunks=["one", " two", " three", " four", " five"]))
    chunks = list(resuming(fake_provider, "primary", "backup").complete_stream(ask(stream=True)))
    assert collect(chunks).text == "one two three four five"
    assert texts_by_provider(chunks)["backup"] == " four five"


def test_the_prefix_goes_without_trailing_whitespace_and_spacing_stays_single(fake_provider, chat_protocol):
    fake_provider.script("primary", broken_after_three_words(chat_protocol, Reply(chunks=["one ", "two ", "three ",
                                                                                           "four"])))
    fake_provider.script("backup", Reply(chunks=[" four", " five"]))
    chunks = list(resuming(fake_provider, "primary", "backup", protocol=chat_protocol)
                  .complete_stream(ask(stream=True)))
    assert prefix_sent(fake_provider.requests_for("backup")[0]) == "one two three"
    assert collect(chunks).text == "one two three four five"


def test_a_provider_refusing_the_prefix_passes_the_call_on(fake_provider):
    fake_provider.script("primary", broken_after_three_words("openai"))
    fake_provider.script("backup", Fault.status(400, message=PREFILL_REFUSED))
    fake_provider.script("third", Reply(chunks=[" four"]))
    response = collect(resuming(fake_provider, "primary", "backup", "third").complete_stream(ask(stream=True)))
    assert response.text == "one two three four"
    assert outcomes(response.attempts) == [("primary", "error", "NetworkError"),
                                           ("backup", "error", "InvalidRequestError"), ("third", "ok", None)]


def test_when_nobody_can_continue_the_partial_output_is_raised(fake_provider):
    fake_provider.script("primary", broken_after_three_words("openai"))
    fake_provider.script("backup", Fault.status(400, message=PREFILL_REFUSED))
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        for chunk in resuming(fake_provider, "primary", "backup").complete_stream(ask(stream=True)):
            received.append(chunk.text or "")
    assert info.value.partial_text == "".join(received) == "one two three"
    assert [a.provider for a in info.value.partial.attempts] == ["primary", "backup"]


def test_a_continuation_that_breaks_is_resumed_again(fake_provider):
    fake_provider.script("primary", broken_after_three_words("openai"))
    fake_provider.script("backup", Fault.reset_mid_body(after_events=3, reply=Reply(chunks=[" four", " five",
                                                                                            " six"])))
    fake_provider.script("third", Reply(chunks=[" six"]))
    chunks = list(resuming(fake_provider, "primary", "backup", "third").complete_stream(ask(stream=True)))
    assert collect(chunks).text == "one two three four five six"
    assert prefix_sent(fake_provider.requests_for("third")[0]) == "one two three four five"


def test_tool_calls_are_never_resumed(fake_provider):
    reply = Reply(text="Let me look.", tool_calls=[ToolCall("lookup", {"q": "weather in Paris"})])
    fake_provider.script("primary", Fault.reset_mid_body(after_events=5, reply=reply))
    with pytest.raises(StreamInterruptedError):
        list(resuming(fake_provider, "primary", "backup").complete_stream(ask(stream=True)))
    assert served(fake_provider) == ["primary"]


def test_resume_is_chosen_explicitly(fake_provider):
    config = chain(fake_provider, "a", "b")
    assert config.stream_interrupt == "raise"
    with pytest.raises(InvalidArgumentError, match="'raise' or 'resume'"):
        config.on_stream_interrupt("retry")
