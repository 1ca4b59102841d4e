"""DocumentBlock: what each protocol sends for a document, checked against what the official
SDK builds for the same document and sends to the same local fake server (anthropic, openai,
google-genai; botocore's own serializer for Bedrock); NotSupportedError before anything is
sent where a protocol cannot carry it; the failover passing over such providers; and the fake
server refusing what the real APIs refuse."""

import base64
import json

import pytest
import requests

from failover_client import (
    AllProvidersFailedError,
    CompletionRequest,
    DocumentBlock,
    FailoverClient,
    FailoverConfig,
    FallbackProvider,
    InvalidArgumentError,
    Message,
    NotSupportedError,
    TextBlock,
    collect,
)
from failover_client.providers import OpenAIProvider
from failover_client.testing import Fault

from support import make_provider

KEY = "sk-test-key-0123456789"
# Bytes chosen so that their base64 holds '+' and '/': Google's SDK writes the URL-safe alphabet.
PDF = b"%PDF-1.4\n%\xfb\xef\xbf\xfe\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PDF_B64 = base64.b64encode(PDF).decode()
QUESTION = "Summarise the document."


def ask(*blocks, model="test-model", **fields):
    return CompletionRequest(model=model, messages=[Message.user([*blocks, TextBlock(QUESTION)])], max_tokens=100,
                             **fields)


def body_of(server):
    return server.requests[-1].body


# --- the block itself ---------------------------------------------------------------------------


def test_block_round_trips_inside_a_request():
    request = ask(DocumentBlock.from_bytes(PDF, title="Q3 report", citations=True),
                  DocumentBlock.from_text("plain words"), DocumentBlock.from_url("https://example.com/a.pdf"),
                  DocumentBlock.from_file_id("file-abc", "text/plain"))
    again = CompletionRequest.from_json(request.to_json())
    assert again == request
    assert [type(b).__name__ for b in again.messages[0].content][:4] == ["DocumentBlock"] * 4


@pytest.mark.parametrize("fields, named", [
    ({"media_type": "application/msword", "data": PDF_B64}, "media_type"),
    ({}, "exactly one of data, text, url, file_id"),
    ({"data": PDF_B64, "url": "https://example.com/a.pdf"}, "exactly one of"),
    ({"data": "not base64!"}, "DocumentBlock.data is not valid base64"),
    ({"data": "data:application/pdf;base64," + PDF_B64}, "without a 'data:"),
    ({"text": "words"}, "DocumentBlock.text"),
    ({"url": "ftp://example.com/a.pdf"}, "DocumentBlock.url"),
    ({"file_id": ""}, "DocumentBlock.file_id"),
    ({"data": PDF_B64, "title": 7}, "DocumentBlock.title"),
    ({"data": PDF_B64, "citations": "yes"}, "DocumentBlock.citations"),
])
def test_malformed_blocks_are_refused_naming_the_field(fields, named):
    with pytest.raises(InvalidArgumentError, match=named.replace("(", r"\(")):
        DocumentBlock(**fields)


def test_decoding_a_malformed_block_is_refused_too():
    with pytest.raises(InvalidArgumentError, match="DocumentBlock.url"):
        Message.from_dict({"role": "user", "content": [{"type": "document", "url": "nowhere"}]})


# --- request bodies against the official SDKs ---------------------------------------------------


@pytest.mark.parametrize("block, sdk_block, sdk_betas", [
    (DocumentBlock.from_bytes(PDF, title="Q3 report", citations=True),
     {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
      "title": "Q3 report", "citations": {"enabled": True}}, None),
    (DocumentBlock.from_url("https://example.com/a.pdf"),
     {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}, None),
    (DocumentBlock.from_text("Dummy TXT file\n", title="notes"),
     {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Dummy TXT file\n"},
      "title": "notes"}, None),
    (DocumentBlock.from_file_id("file_011CNha8iCJcU1wXNR6q4V8w"),
     {"type": "document", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
     ["files-api-2025-04-14"]),
    (DocumentBlock(data=PDF_B64, cache=True),
     {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
      "cache_control": {"type": "ephemeral"}}, None),
])
def test_anthropic_body_equals_the_sdks(fake_provider, block, sdk_block, sdk_betas):
    import anthropic
    ours = make_provider(fake_provider, "a", "anthropic", betas=sdk_betas or ())
    ours.complete(ask(block))
    our_body = body_of(fake_provider)
    sdk = anthropic.Anthropic(api_key=KEY, base_url=fake_provider.base_url("a", "anthropic"), max_retries=0)
    messages = [{"role": "user", "content": [sdk_block, {"type": "text", "text": QUESTION}]}]
    if sdk_betas:
        sdk.beta.messages.create(model="test-model", max_tokens=100, messages=messages, betas=sdk_betas)
    else:
        sdk.messages.create(model="test-model", max_tokens=100, messages=messages)
    assert our_body == body_of(fake_provider)


@pytest.mark.parametrize("block, sdk_part", [
    (DocumentBlock.from_bytes(PDF, title="Q3 report"),
     {"type": "file", "file": {"filename": "Q3 report.pdf", "file_data": "data:application/pdf;base64," + PDF_B64}}),
    (DocumentBlock.from_file_id("file-6F2ksmvXxt4VdoqmHRw6kL"),
     {"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}}),
    (DocumentBlock.from_text("Dummy TXT file\n"), {"type": "text", "text": "Dummy TXT file\n"}),
])
def test_openai_chat_body_equals_the_sdks(fake_provider, block, sdk_part):
    import openai
    make_provider(fake_provider, "openai", "openai").complete(ask(block))
    our_body = body_of(fake_provider)
    sdk = openai.OpenAI(api_key=KEY, base_url=fake_provider.base_url("openai", "openai"), max_retries=0)
    sdk.chat.completions.create(model="test-model", max_tokens=100, messages=[
        {"role": "user", "content": [sdk_part, {"type": "text", "text": QUESTION}]}])
    assert our_body == body_of(fake_provider)


@pytest.mark.parametrize("block, sdk_part", [
    (DocumentBlock.from_bytes(PDF),
     {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64," + PDF_B64}),
    (DocumentBlock.from_text("Dummy TXT file\n", title="notes.txt"),
     {"type": "input_file", "filename": "notes.txt",
      "file_data": "data:text/plain;base64," + base64.b64encode(b"Dummy TXT file\n").decode()}),
    (DocumentBlock.from_url("https://example.com/letter.pdf"),
     {"type": "input_file", "file_url": "https://example.com/letter.pdf"}),
    (DocumentBlock.from_file_id("file-6F2ksmvXxt4VdoqmHRw6kL"),
     {"type": "input_file", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}),
])
def test_responses_body_equals_the_sdks(fake_provider, block, sdk_part):
    import openai
    make_provider(fake_provider, "r", "responses").complete(ask(block))
    our_body = body_of(fake_provider)
    sdk = openai.OpenAI(api_key=KEY, base_url=fake_provider.base_url("r", "responses"), max_retries=0)
    sdk.responses.create(model="test-model", max_output_tokens=100, store=False, input=[
        {"role": "user", "content": [sdk_part, {"type": "input_text", "text": QUESTION}]}])
    assert our_body == body_of(fake_provider)


def _same_spelling(contents):
    """What the API reads the same way, written one way: the SDK writes inline bytes in the
    URL-safe base64 alphabet (we write the standard one) and a blob's fields in snake_case
    inside camelCase parts (``{"inlineData": {"mime_type": ...}}``); the API takes either
    alphabet and either spelling, even mixed (protocols-documents-errors.md A.4)."""
    for content in contents:
        for part in content["parts"]:
            for blob in (part.get("inlineData"), part.get("fileData")):
                if blob is None:
                    continue
                for snake, camel in (("mime_type", "mimeType"), ("file_uri", "fileUri")):
                    if snake in blob:
                        blob[camel] = blob.pop(snake)
                if "data" in blob:
                    blob["data"] = base64.b64encode(base64.urlsafe_b64decode(blob["data"])).decode()
    return contents


@pytest.mark.parametrize("block, sdk_part", [
    (DocumentBlock.from_bytes(PDF, title="ignored here"), lambda t: t.Part.from_bytes(data=PDF,
                                                                                      mime_type="application/pdf")),
    (DocumentBlock.from_text("Dummy TXT file\n"), lambda t: t.Part.from_bytes(data=b"Dummy TXT file\n",
                                                                            mime_type="text/plain")),
    (DocumentBlock.from_file_id("https://generativelanguage.googleapis.com/v1beta/files/k8plo4aq1e1w"),
     lambda t: t.Part.from_uri(file_uri="https://generativelanguage.googleapis.com/v1beta/files/k8plo4aq1e1w",
                               mime_type="application/pdf")),
])
def test_gemini_contents_equal_the_sdks(fake_provider, block, sdk_part):
    genai = pytest.importorskip("google.genai")
    types = genai.types
    make_provider(fake_provider, "g", "gemini").complete(ask(block))
    ours = body_of(fake_provider)["contents"]
    sdk = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake_provider.base_url("g", "gemini").removesuffix("v1beta"), api_version="v1beta"))
    sdk.models.generate_content(model="test-model", contents=[types.Content(role="user", parts=[
        sdk_part(types), types.Part.from_text(text=QUESTION)])])
    assert _same_spelling(ours) == _same_spelling(body_of(fake_provider)["contents"])


def _botocore_messages(messages):
    from botocore import serialize, session

    operation = session.get_session().get_service_model("bedrock-runtime").operation_model("Converse")
    request = serialize.create_serializer("rest-json").serialize_to_request(
        {"modelId": "test-model", "messages": messages}, operation)
    return json.loads(request["body"])["messages"]


@pytest.mark.parametrize("block, sdk_document", [
    (DocumentBlock.from_bytes(PDF, title="Q3 report (final).pdf", citations=True),
     {"format": "pdf", "name": "Q3 report (final)-pdf", "source": {"bytes": PDF}, "citations": {"enabled": True}}),
    (DocumentBlock.from_text("Dummy TXT file\n", title="notes"),
     {"format": "txt", "name": "notes", "source": {"bytes": b"Dummy TXT file\n"}}),
    (DocumentBlock.from_url("s3://bucket/a.pdf", title="a"),
     {"format": "pdf", "name": "a", "source": {"s3Location": {"uri": "s3://bucket/a.pdf"}}}),
])
def test_bedrock_messages_equal_botocores(fake_provider, block, sdk_document):
    pytest.importorskip("botocore")
    make_provider(fake_provider, "b", "bedrock").complete(ask(block))
    expected = _botocore_messages([{"role": "user", "content": [{"document": sdk_document}, {"text": QUESTION}]}])
    assert body_of(fake_provider)["messages"] == expected


def test_bedrock_names_untitled_documents_apart(fake_provider):
    make_provider(fake_provider, "b", "bedrock").complete(ask(DocumentBlock.from_bytes(PDF),
                                                             DocumentBlock.from_bytes(PDF + b" ")))
    names = [part["document"]["name"] for part in body_of(fake_provider)["messages"][0]["content"][:2]]
    assert len(set(names)) == 2 and all(name.startswith("document-") for name in names)


def test_vertex_sends_gemini_parts(fake_provider):
    make_provider(fake_provider, "v", "vertex").complete(ask(DocumentBlock.from_url("gs://bucket/a.pdf"),
                                                            model="gemini-2.5-flash"))
    assert body_of(fake_provider)["contents"][0]["parts"][0] == {
        "fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/a.pdf"}}


# --- refused before sending -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol, block, says", [
    ("cohere", DocumentBlock.from_bytes(PDF), "document block cannot be sent"),
    ("ollama", DocumentBlock.from_text("words"), "Ollama takes no documents"),
    ("openai", DocumentBlock.from_url("https://example.com/a.pdf"), "takes no document URLs"),
    ("anthropic", DocumentBlock.from_url("https://example.com/a.txt", "text/plain"), "only PDFs by URL"),
    ("bedrock", DocumentBlock.from_url("https://example.com/a.pdf"), "s3:// locations only"),
    ("bedrock", DocumentBlock.from_file_id("file-1"), "not by file id"),
    ("gemini", DocumentBlock.from_url("s3://bucket/a.pdf"), "not from s3://"),
    ("responses", DocumentBlock.from_url("gs://bucket/a.pdf"), "http\\(s\\) URL only"),
])
def test_what_a_protocol_cannot_carry_is_refused_before_sending(fake_provider, protocol, block, says):
    provider = make_provider(fake_provider, protocol, protocol)  # "openai" itself takes file parts
    for call in (provider.complete, lambda r: collect(provider.complete_stream(r))):
        with pytest.raises(NotSupportedError, match=says):
            call(ask(block))
    assert provider.can_carry(ask(block)) is not None
    assert fake_provider.requests == []


def test_compatible_hosts_take_pdfs_only_when_known_to(fake_provider):
    groq = make_provider(fake_provider, "groq", "openai")
    with pytest.raises(NotSupportedError, match="file_parts=True"):
        groq.complete(ask(DocumentBlock.from_bytes(PDF)))
    assert fake_provider.requests == []
    groq.complete(ask(DocumentBlock.from_text("words")))  # text goes as a text part anywhere
    assert body_of(fake_provider)["messages"][0]["content"][0] == {"type": "text", "text": "words"}
    make_provider(fake_provider, "groq", "openai", file_parts=True).complete(ask(DocumentBlock.from_bytes(PDF)))
    assert body_of(fake_provider)["messages"][0]["content"][0]["type"] == "file"
    assert OpenAIProvider(name="openrouter").can_carry(ask(DocumentBlock.from_bytes(PDF))) is None


# --- failover ---------------------------------------------------------------------------------------


def _chain(server, *links):
    (first, protocol), *rest = links
    config = FailoverConfig(first, make_provider(server, first, protocol))
    for name, protocol in rest:
        config.add_fallback(FallbackProvider(name, make_provider(server, name, protocol)))
    return FailoverClient(config)


def test_failover_skips_fallbacks_that_cannot_carry_a_document(fake_provider):
    fake_provider.script("main", Fault.status(500))
    client = _chain(fake_provider, ("main", "responses"), ("co", "cohere"), ("ol", "ollama"), ("claude", "anthropic"))
    response = client.complete(ask(DocumentBlock.from_bytes(PDF)))
    assert response.provider == "claude"
    outcomes = [(a.provider, a.outcome, a.error_type) for a in response.attempts]
    assert outcomes == [("main", "error", "ServerError"), ("co", "skipped", "NotSupported"),
                        ("ol", "skipped", "NotSupported"), ("claude", "ok", None)]
    assert "document block cannot be sent" in response.attempts[1].error
    assert {r.path.split("/")[1] for r in fake_provider.requests} == {"main", "claude"}


def test_failover_skips_them_for_streams_too(fake_provider):
    client = _chain(fake_provider, ("ol", "ollama"), ("gem", "gemini"))
    chunks = list(client.complete_stream(ask(DocumentBlock.from_text("words"))))
    assert collect(chunks).provider == "gem"
    assert [(a.provider, a.outcome) for a in chunks[-1].attempts] == [("ol", "skipped"), ("gem", "ok")]


def test_a_chain_that_cannot_carry_it_at_all_says_why(fake_provider):
    client = _chain(fake_provider, ("co", "cohere"), ("ol", "ollama"))
    with pytest.raises(AllProvidersFailedError, match="cannot carry") as caught:
        client.complete(ask(DocumentBlock.from_bytes(PDF)))
    assert [a.error_type for a in caught.value.attempts] == ["NotSupported", "NotSupported"]
    assert "Ollama takes no documents" in str(caught.value)
    assert fake_provider.requests == []
    assert client.can_carry(ask(DocumentBlock.from_bytes(PDF))).startswith("co: ")


# --- the fake server refuses what the real APIs refuse ------------------------------------------------


def _post(server, name, protocol, path, body, headers):
    return requests.post(server.base_url(name, protocol) + path, json=body, headers=headers, timeout=10)


OPENAI_HEADERS = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.parametrize("protocol, path, headers, body, says", [
    ("openai", "/chat/completions", OPENAI_HEADERS,
     {"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {
         "filename": "a.md", "file_data": "data:text/markdown;base64," + PDF_B64}}]}]},
     "unsupported MIME type 'text/markdown'"),
    ("openai", "/chat/completions", OPENAI_HEADERS,
     {"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {
         "file_data": "data:application/pdf;base64," + PDF_B64}}]}]},
     "Missing required parameter: 'messages[0].content[0].file.file_id'"),
    ("openai", "/chat/completions", OPENAI_HEADERS,
     {"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {
         "file_url": "https://example.com/a.pdf"}}]}]}, "Unknown parameter"),
    ("responses", "/responses", OPENAI_HEADERS,
     {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_data": PDF_B64}]}]},
     "invalid base64-encoded value"),
    ("anthropic", "/v1/messages", {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
     {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {
         "type": "base64", "media_type": "text/plain", "data": PDF_B64}}]}]},
     "Input should be 'application/pdf'"),
    ("gemini", "/models/m:generateContent", {"x-goog-api-key": KEY},
     {"contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "application/msword", "data": PDF_B64}}]}]},
     "Unsupported MIME type: application/msword"),
])
def test_fake_server_refuses_documents_the_real_api_refuses(fake_provider, protocol, path, headers, body, says):
    answer = _post(fake_provider, "x", protocol, path, body, headers)
    assert answer.status_code == 400
    assert says in answer.text


def test_fake_bedrock_refuses_a_bad_document_name(fake_provider):
    from failover_client.providers.bedrock import _document

    block = _document(DocumentBlock.from_bytes(PDF))
    block["document"]["name"] = "report.pdf"  # a dot is not allowed
    provider = make_provider(fake_provider, "b", "bedrock")
    request = ask(extra={"messages": [{"role": "user", "content": [block]}]})
    with pytest.raises(Exception, match="document.name is invalid"):
        provider.complete(request)
