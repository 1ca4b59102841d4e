"""Roles and content given the way histories rebuilt from JSON give them: plain strings.

Issue 13 part 1: a string role used to reach the OpenAI-style wires as ``user`` (silently) and
the Anthropic-style ones as a bare AttributeError.  Now roles are normalised when the message is
built, and each protocol's wire shows the roles the history meant.
"""

import pytest

from failover_client import (
    CompletionRequest,
    InvalidArgumentError,
    Message,
    Role,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

from support import PROTOCOLS, WEATHER, make_provider, sent


def browser_history():
    """A chat as a web app rebuilds it from its JSON: roles and most contents are strings."""
    return [
        Message(role="user", content="What is the weather in Paris?"),
        Message(role="assistant", content=[TextBlock("Let me check."),
                                           ToolUseBlock("call_1", "get_weather", {"city": "Paris"})]),
        Message(role="user", content=[ToolResultBlock("call_1", "18C and sunny")]),
        Message(role="assistant", content="It is 18C and sunny."),
        Message("user", "Thanks!"),
    ]


def wire_roles(protocol, body):
    """The roles of the turns in a request body, as each protocol names and places them."""
    if protocol in ("gemini", "vertex"):
        return [turn["role"] for turn in body["contents"]]
    if protocol == "responses":  # input items: messages have a role, tool calls and results a type
        return [item.get("role", item.get("type")) for item in body["input"]]
    return [turn["role"] for turn in body["messages"]]


# What the history above must look like on each wire: OpenAI-style protocols carry a tool result
# as its own "tool" turn, Gemini calls the assistant "model".
EXPECTED = {
    "openai": ["user", "assistant", "tool", "assistant", "user"],
    "azure": ["user", "assistant", "tool", "assistant", "user"],
    "cohere": ["user", "assistant", "tool", "assistant", "user"],
    "ollama": ["user", "assistant", "tool", "assistant", "user"],
    "anthropic": ["user", "assistant", "user", "assistant", "user"],
    "bedrock": ["user", "assistant", "user", "assistant", "user"],
    "gemini": ["user", "model", "user", "model", "user"],
    "vertex": ["user", "model", "user", "model", "user"],
    # the assistant's tool call is an item of its own, after the text of its turn
    "responses": ["user", "assistant", "function_call", "function_call_output", "assistant", "user"],
}


def test_every_protocol_is_covered():
    assert set(EXPECTED) == set(PROTOCOLS)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_string_roles_reach_every_wire_as_the_roles_they_name(fake_provider, protocol):
    request = CompletionRequest(model="test-model", messages=browser_history(), tools=[WEATHER])
    with make_provider(fake_provider, "p", protocol) as provider:
        provider.complete(request)
    assert wire_roles(protocol, sent(fake_provider).body) == EXPECTED[protocol]


def test_string_roles_and_contents_are_normalised_when_the_message_is_built():
    message = Message(role="assistant", content="hi")
    assert message.role is Role.ASSISTANT
    assert message.content == [TextBlock("hi")]
    assert Message("user", ["look: ", TextBlock("here")]).content == [TextBlock("look: "), TextBlock("here")]
    assert Message.user(iter([TextBlock("a")])).content == [TextBlock("a")]
    assert Message.from_dict({"role": "assistant", "content": "plain"}) == Message.assistant("plain")


@pytest.mark.parametrize("role, named", [
    ("system", "CompletionRequest.system"),
    ("tool", "Message.tool_results"),
    ("Assistant", "'Assistant'"),
    (None, "None"),
    (1, "1"),
])
def test_a_role_that_is_not_user_or_assistant_is_refused_by_name(role, named):
    with pytest.raises(InvalidArgumentError, match="Message.role") as info:
        Message(role=role, content="x")
    assert named in str(info.value)


@pytest.mark.parametrize("content", [None, 3, {"type": "text", "text": "x"}, b"bytes"])
def test_content_that_is_not_text_or_blocks_is_refused_by_name(content):
    with pytest.raises(InvalidArgumentError, match="Message.content must be"):
        Message("user", content)


def test_a_list_holding_something_else_is_refused_at_validation_naming_its_index():
    request = CompletionRequest(model="m", messages=[Message("user", [TextBlock("a"), 42])])
    with pytest.raises(InvalidArgumentError, match=r"messages\[0\] holds int"):
        request.validate()
