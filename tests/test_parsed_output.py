"""CompletionResponse.parsed: the JSON of a structured-output answer, checked against the
request's schema by our own small validator (and by jsonschema where installed), the same from
complete() and from collect() of a stream; and FailoverTrigger.INVALID_OUTPUT, which moves on when
a provider's answer is not JSON of the schema."""

import pickle

import pytest

from failover_client import (
    CompletionRequest,
    CompletionResponse,
    FailoverClient,
    FailoverConfig,
    FailoverTrigger,
    FallbackProvider,
    InvalidOutputError,
    Message,
    ResponseDecodeError,
    ResponseFormat,
    StopReason,
    TextBlock,
    collect,
)
from failover_client.failover import DEFAULT_TRIGGERS
from failover_client.output.schema import check, validate
from failover_client.testing import Reply

from support import make_provider

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "mayor": {"anyOf": [{"$ref": "#/$defs/Person"}, {"type": "null"}]},
    },
    "required": ["city", "population"],
    "additionalProperties": False,
    "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
}
GOOD = '{"city": "Oslo", "population": 709037, "tags": ["capital"], "mayor": {"name": "Anne"}}'
FORMAT = ResponseFormat.json_schema(SCHEMA, name="City")


def answer(text, fmt=FORMAT, **fields):
    return CompletionResponse("id", "m", [TextBlock(text)], response_format=fmt, provider="p", **fields)


# --- the validator ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value, problem", [
    ({"city": "Oslo", "population": 1}, None),
    ({"city": "Oslo", "population": 1.0}, None),  # 1.0 is an integer in JSON Schema
    ({"city": "Oslo", "population": 1, "mayor": None}, None),
    ({"city": "Oslo"}, "$: missing required key 'population'"),
    ({"city": 7, "population": 1}, "$.city: expected string, got integer 7"),
    ({"city": "Oslo", "population": True}, "$.population: expected integer, got boolean true"),
    ({"city": "Oslo", "population": 1.5}, "$.population: expected integer, got number 1.5"),
    ({"city": "Oslo", "population": 1, "tags": ["a", 2]}, "$.tags[1]: expected string, got integer 2"),
    ({"city": "Oslo", "population": 1, "extra": 1}, "$: unexpected key 'extra'"),
    ({"city": "Oslo", "population": 1, "mayor": {"nom": "x"}}, "$.mayor: matches none of the anyOf"),
    (["Oslo"], "$: expected object, got array"),
])
def test_our_validator_names_what_is_wrong(value, problem):
    found = check(value, SCHEMA)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_our_validator_knows_enum_const_and_unresolvable_refs():
    assert check("b", {"enum": ["a", "b"]}) is None
    assert "is not one of" in check("c", {"enum": ["a", "b"]})
    assert check(True, {"const": 1}) is not None  # JSON's true is not 1
    assert "cannot be resolved" in check({}, {"$ref": "#/$defs/Missing"})


def test_jsonschema_agrees_where_installed():
    pytest.importorskip("jsonschema")
    assert validate({"city": "Oslo", "population": 1}, SCHEMA) is None
    problem = validate({"city": "Oslo", "population": "many"}, SCHEMA)
    assert problem.startswith("$.population:") and "integer" in problem


# --- .parsed --------------------------------------------------------------------------------------


def test_parsed_returns_the_value():
    assert answer(GOOD).parsed["mayor"] == {"name": "Anne"}
    assert answer("```json\n" + GOOD + "\n```").parsed["city"] == "Oslo"  # a Markdown fence is taken off
    assert answer('{"any": [1]}', ResponseFormat.json()).parsed == {"any": [1]}  # json_object: no schema
    assert answer(GOOD, None).parsed is None  # not a structured-output answer


@pytest.mark.parametrize("text, fields, says", [
    ('{"city": "Oslo", "popul', {"stop_reason": StopReason.MAX_TOKENS},
     "not JSON (the answer was cut off at max_tokens)"),
    ("Sure! Here it is", {}, "not JSON: Expecting value at character 0; it begins 'Sure! Here it is'"),
    ("", {}, "empty, not JSON"),
    ('{"city": "Oslo"}', {}, "does not match the schema: $: "),
    ("", {"refusal": "I cannot help with that"}, "refused instead of answering with JSON"),
])
def test_parsed_raises_a_decode_error_saying_why(text, fields, says):
    response = answer(text, **fields)
    with pytest.raises(ResponseDecodeError) as caught:
        _ = response.parsed
    assert isinstance(caught.value, InvalidOutputError)
    assert says in str(caught.value)
    assert caught.value.provider == "p" and caught.value.model == "m"
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


def test_the_format_survives_a_json_round_trip():
    again = CompletionResponse.from_json(answer(GOOD).to_json())
    assert again.response_format == FORMAT and again.parsed["population"] == 709037


def test_complete_and_collect_give_the_same_parsed(fake_provider):
    fake_provider.set_default("o", Reply(chunks=['{"city": "Oslo", ', '"population": 709037}']))
    provider = make_provider(fake_provider, "o", "openai")
    request = CompletionRequest("gpt-4o", [Message.user("Oslo?")], response_format=FORMAT)
    plain = provider.complete(request).parsed
    streamed = collect(provider.complete_stream(request)).parsed
    assert plain == streamed == {"city": "Oslo", "population": 709037}
    client = FailoverClient(FailoverConfig("o", provider))
    assert collect(client.complete_stream(request)).parsed == plain == client.complete(request).parsed


def test_a_stream_answer_that_misses_the_schema_raises_at_parsed(fake_provider):
    fake_provider.set_default("o", Reply(chunks=['{"city": ', '"Oslo"}']))
    client = FailoverClient(FailoverConfig("o", make_provider(fake_provider, "o", "openai"))
                            .trigger_on(FailoverTrigger.INVALID_OUTPUT))
    request = CompletionRequest("gpt-4o", [Message.user("Oslo?")], response_format=FORMAT)
    response = collect(client.complete_stream(request))  # a stream is committed at its first output
    with pytest.raises(InvalidOutputError, match="missing required key 'population'|'population' is a required"):
        _ = response.parsed


# --- FailoverTrigger.INVALID_OUTPUT ----------------------------------------------------------------


def _chain(server, *triggers):
    config = FailoverConfig("bad", make_provider(server, "bad", "anthropic"))
    config.add_fallback(FallbackProvider("good", make_provider(server, "good", "gemini")))
    return FailoverClient(config.trigger_on(*triggers) if triggers else config)


def test_invalid_output_is_opt_in():
    assert FailoverTrigger.INVALID_OUTPUT not in DEFAULT_TRIGGERS


@pytest.mark.parametrize("bad_text", ['{"city": "Oslo"', '{"city": "Oslo"}', "I think it is Oslo."])
def test_invalid_output_moves_on_to_the_next_provider(fake_provider, bad_text):
    fake_provider.set_default("bad", Reply(bad_text))
    fake_provider.set_default("good", Reply(GOOD))
    request = CompletionRequest("m", [Message.user("Oslo?")], response_format=FORMAT)
    response = _chain(fake_provider, FailoverTrigger.INVALID_OUTPUT).complete(request)
    assert response.provider == "good" and response.parsed["city"] == "Oslo"
    assert [(a.provider, a.outcome, a.error_type) for a in response.attempts] == [
        ("bad", "error", "InvalidOutputError"), ("good", "ok", None)]


def test_without_the_trigger_the_first_answer_stands(fake_provider):
    fake_provider.set_default("bad", Reply('{"city": "Oslo"}'))
    request = CompletionRequest("m", [Message.user("Oslo?")], response_format=FORMAT)
    response = _chain(fake_provider).complete(request)
    assert response.provider == "bad"
    with pytest.raises(InvalidOutputError):
        _ = response.parsed


def test_plain_requests_are_not_checked(fake_provider):
    fake_provider.set_default("bad", Reply("not JSON at all"))
    response = _chain(fake_provider, FailoverTrigger.INVALID_OUTPUT).complete(
        CompletionRequest("m", [Message.user("hi")]))
    assert response.provider == "bad" and response.text == "not JSON at all"
