"""``failover-client chat`` driven through a terminal (pexpect) as a person would, against
``failover-client fake-server`` in its own process: answers stream, the conversation is sent
with each question, Ctrl-C stops an answer and the session goes on, /model, /fallback,
/attempts and /cost do what they say, and Ctrl-D leaves with status 0."""

import json

import pexpect

from cli_support import KEYS, chain_args, clean_env, fake_server_fixture  # noqa: F401  (the fixture)
from support import console_script

PROMPT = "you> "


def start_chat(tmp_path, *args):
    child = pexpect.spawn(console_script(), ["chat", *args], env=clean_env(tmp_path, TERM="dumb", **KEYS),
                          encoding="utf-8", timeout=20, dimensions=(40, 200))
    child.expect_exact(PROMPT)
    return child


def say(child, line):
    """Send a line; what the session printed in answer, up to its next prompt."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    return child.before.replace("\r\n", "\n").split("\n", 1)[1]  # less the echoed line


def leave(child):
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def texts(messages):
    """A sent conversation as (role, text) pairs, whatever the protocol's content shape."""
    def text(content):
        return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
    return [(message["role"], text(message["content"])) for message in messages]


def test_a_conversation_where_ctrl_c_stops_an_answer_and_the_session_goes_on(fake_server, tmp_path):
    slowly = {"fault": "trickle", "interval": 0.3, "reply": "one two three four five six seven"}
    server = fake_server({"primary": ["The first answer.", slowly], "backup": ["from the backup"]})
    chat = start_chat(tmp_path, *chain_args(server))
    assert say(chat, "hello") == "The first answer.\n"
    chat.sendline("tell me slowly")
    chat.expect_exact(" two")
    chat.sendintr()  # Ctrl-C mid-answer
    chat.expect_exact("[stopped]")
    chat.expect_exact(PROMPT)
    assert chat.isalive()
    assert say(chat, "still there?") == "Hello!\n"
    sent = server.requests(3)
    assert texts(sent[2]["body"]["messages"])[:3] == [
        ("user", "hello"), ("assistant", "The first answer."), ("user", "tell me slowly")]
    stopped_at = texts(sent[2]["body"]["messages"])[3]
    assert stopped_at[0] == "assistant" and stopped_at[1].startswith("one two") and not stopped_at[1].endswith("seven")
    assert texts(sent[2]["body"]["messages"])[4] == ("user", "still there?")
    attempts = say(chat, "/attempts").split()
    assert attempts[:3] == ["openai", "gpt-4o", "ok"]
    assert say(chat, "/cost").startswith("2 answers, 20 tokens in, ")
    assert leave(chat) == 0


def test_model_and_fallback_change_the_chain_mid_conversation(fake_server, tmp_path):
    server = fake_server({"primary": [{"fault": "overloaded"}] * 2, "backup": ["first from backup"]})
    chat = start_chat(tmp_path, *chain_args(server))
    assert say(chat, "one") == "first from backup\n"
    tried = [line.split() for line in say(chat, "/attempts").splitlines()]
    assert [line[:3] for line in tried] == [["openai", "gpt-4o", "error"], ["anthropic", "claude-haiku-4-5", "ok"]]
    assert tried[0][3:5] == ["OverloadedError", "503"]
    assert say(chat, "/fallback") == "[now openai/gpt-4o (fallbacks: none)]\n"
    assert say(chat, "two").startswith("[no answer: AllProvidersFailedError: all providers failed: "
                                       "openai/gpt-4o: OverloadedError")
    assert say(chat, "/model anthropic/claude-haiku-4-5") == "[now anthropic/claude-haiku-4-5 (fallbacks: none)]\n"
    assert say(chat, "three") == "Hello!\n"
    last = server.requests(4)[-1]
    assert (last["name"], last["body"]["model"]) == ("backup", "claude-haiku-4-5")
    assert [m for m, _ in texts(last["body"]["messages"])] == ["user", "assistant", "user"]  # "two" got no answer
    assert say(chat, "/model nowhere/x").startswith("[kept anthropic/claude-haiku-4-5 (fallbacks: none): ")
    assert say(chat, "/bogus") == "unknown command /bogus; /help lists them\n"
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0


def test_ctrl_c_at_the_prompt_does_not_leave(fake_server, tmp_path):
    server = fake_server()
    chat = start_chat(tmp_path, *chain_args(server, fallback=None))
    chat.sendintr()
    chat.expect_exact(PROMPT)
    assert say(chat, "hi") == "Hello!\n"
    assert leave(chat) == 0
    assert json.dumps(server.requests(1)).count('"hi"') == 1
