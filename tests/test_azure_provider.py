"""The Provider contract for Azure OpenAI against the fake server: Azure's two URL styles, its
credentials (api-key header, Entra ID token, a token provider asked before every request), its
additions to the OpenAI answer (content-filter results, an opening chunk without choices) and
its errors.  The Chat Completions mapping itself is OpenAI's, tested in test_provider_contract;
every fault kind runs in tests/test_faults.py."""

import pytest
import requests

from failover_client import StopReason, ToolDefinition, collect
from failover_client.errors import (
    AuthenticationError,
    ContentFilteredError,
    InvalidArgumentError,
    MissingCredentialsError,
    ModelNotFoundError,
    RateLimitError,
)
from failover_client.providers.azure import AzureOpenAIProvider
from failover_client.providers.openai import OpenAIProvider
from failover_client.testing import Fault, Reply, ToolCall

from support import ask, sent

KEY = "azure-key-0123456789abcdef"
ENVIRONMENT = ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for variable in ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)


def azure(server, name="p", **options):
    options.setdefault("api_version", "2024-10-21")
    if not {"api_key", "azure_ad_token", "azure_ad_token_provider"} & set(options):
        options["api_key"] = KEY
    return AzureOpenAIProvider(azure_endpoint=server.base_url(name, "azure"), name=name, **options)


def test_classic_url_with_api_version_and_api_key_header(fake_provider, call):
    fake_provider.script("p", Reply(text="Hello there"))
    response = call(azure(fake_provider), ask(model="gpt-4o-mini"))
    assert response.text == "Hello there" and response.stop_reason is StopReason.END_TURN
    request = sent(fake_provider)
    assert request.path == "/p/azure/openai/deployments/gpt-4o-mini/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers


def test_a_fixed_deployment_names_the_url_whatever_the_model(fake_provider):
    azure(fake_provider, deployment="prod gpt/4o").complete(ask(model="gpt-4o"))
    request = sent(fake_provider)
    assert request.path == "/p/azure/openai/deployments/prod%20gpt%2F4o/chat/completions"
    assert request.body["model"] == "gpt-4o"


def test_v1_api_without_a_version(fake_provider, call):
    fake_provider.script("p", Reply(text="v1 answer"))
    assert call(azure(fake_provider, api_version=None), ask(model="my-deployment")).text == "v1 answer"
    request = sent(fake_provider)
    assert request.path == "/p/azure/openai/v1/chat/completions" and request.query == {}
    assert request.body["model"] == "my-deployment"


def test_v1_api_from_the_endpoint_or_by_name_with_a_fixed_deployment(fake_provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")  # the endpoint decides over the environment
    v1_endpoint = fake_provider.base_url("p", "azure") + "/openai/v1/"
    AzureOpenAIProvider(KEY, azure_endpoint=v1_endpoint, deployment="dep-1").complete(ask(model="gpt-4o"))
    assert sent(fake_provider).path == "/p/azure/openai/v1/chat/completions"
    assert sent(fake_provider).body["model"] == "dep-1"
    azure(fake_provider, api_version="v1").complete(ask())
    assert sent(fake_provider).path == "/p/azure/openai/v1/chat/completions"
    with pytest.raises(InvalidArgumentError, match="takes no api-version"):
        AzureOpenAIProvider(KEY, azure_endpoint=v1_endpoint, api_version="2024-10-21")


def test_everything_from_the_environment(fake_provider, monkeypatch):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake_provider.base_url("p", "azure"))
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    AzureOpenAIProvider().complete(ask())
    request = sent(fake_provider)
    assert request.query == {"api-version": "2025-04-01-preview"} and request.headers["api-key"] == KEY
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "entra-token-from-env")  # preferred over the key, as in the SDK
    AzureOpenAIProvider().complete(ask())
    assert sent(fake_provider).headers["authorization"] == "Bearer entra-token-from-env"
    assert "api-key" not in sent(fake_provider).headers
    AzureOpenAIProvider(api_key=KEY).complete(ask())  # an explicit key beats the environment's token
    assert sent(fake_provider).headers["api-key"] == KEY


def test_a_static_entra_token_is_a_bearer_token(fake_provider):
    azure(fake_provider, azure_ad_token="entra-token-1").complete(ask())
    assert sent(fake_provider).headers["authorization"] == "Bearer entra-token-1"
    assert "api-key" not in sent(fake_provider).headers


def test_a_token_provider_is_asked_before_every_request(fake_provider):
    tokens = iter(["entra-token-1", "entra-token-2", "entra-token-3"])
    provider = azure(fake_provider, azure_ad_token_provider=lambda: next(tokens))
    provider.complete(ask())
    collect(provider.complete_stream(ask()))
    provider.complete(ask())
    assert [r.headers["authorization"] for r in fake_provider.requests] == [
        "Bearer entra-token-1", "Bearer entra-token-2", "Bearer entra-token-3"]
    assert fake_provider.requests[1].headers["accept"] == "text/event-stream"


def test_a_failing_or_empty_token_provider_is_an_authentication_error(fake_provider):
    def broken():
        raise OSError("login.microsoftonline.com unreachable")

    with pytest.raises(AuthenticationError, match="unreachable"):
        azure(fake_provider, azure_ad_token_provider=broken).complete(ask())
    with pytest.raises(MissingCredentialsError, match="returned no token"):
        azure(fake_provider, azure_ad_token_provider=lambda: "").complete(ask())
    assert fake_provider.requests == []


def test_bad_configuration_fails_before_sending(fake_provider):
    with pytest.raises(InvalidArgumentError, match="mutually exclusive"):
        azure(fake_provider, api_key=KEY, azure_ad_token="t")
    with pytest.raises(InvalidArgumentError, match="AZURE_OPENAI_ENDPOINT"):
        AzureOpenAIProvider(KEY, api_version="2024-10-21")
    with pytest.raises(MissingCredentialsError, match="AZURE_OPENAI_API_KEY or AZURE_OPENAI_AD_TOKEN"):
        AzureOpenAIProvider(azure_endpoint=fake_provider.base_url("p", "azure"), api_version="2024-10-21").complete(
            ask())
    assert fake_provider.requests == []


def test_the_opening_chunk_without_choices_is_skipped(fake_provider):
    fake_provider.script("p", Reply(chunks=["Hel", "lo"], model="gpt-4o-mini-2024-07-18"))
    chunks = list(azure(fake_provider).complete_stream(ask()))
    assert [c.text for c in chunks if c.text] == ["Hel", "lo"]
    response = collect(chunks)
    assert response.id.startswith("chatcmpl-") and response.model == "gpt-4o-mini-2024-07-18"


def test_output_stopped_by_the_content_filter(fake_provider, call):
    fake_provider.script("p", Reply(text="partial", stop_reason="content_filter"))
    response = call(azure(fake_provider), ask())
    assert response.stop_reason is StopReason.CONTENT_FILTER and response.raw_stop_reason == "content_filter"


def test_tool_calls_use_the_openai_mapping(fake_provider, call):
    fake_provider.script("p", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
    response = call(azure(fake_provider), ask(tools=[ToolDefinition("get_weather")]))
    assert [(c.name, c.input) for c in response.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert sent(fake_provider).body["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("fault, error, status, code", [
    (Fault.content_filter(), ContentFilteredError, 400, "content_filter ResponsibleAIPolicyViolation"),
    (Fault.rate_limit(retry_after=6, retry_after_ms=6000), RateLimitError, 429, "429"),
    (Fault.status(404), ModelNotFoundError, 404, "DeploymentNotFound"),
    (Fault.status(401), AuthenticationError, 401, "401"),
])
def test_azure_errors(fake_provider, call, fault, error, status, code):
    fake_provider.script("p", fault)
    with pytest.raises(error) as info:
        call(azure(fake_provider), ask())
    assert type(info.value) is error and (info.value.status, info.value.code) == (status, code)
    if status == 429:
        assert info.value.retry_after == 6.0 and "Please retry after 6 seconds" in info.value.message


def test_wrong_key_never_shows_the_key(fake_provider):
    fake_provider.require_key("p", KEY)
    with pytest.raises(AuthenticationError) as info:
        azure(fake_provider, api_key="azure-wrong-key-999999").complete(ask())
    assert "azure-wrong-key-999999" not in str(info.value) + repr(info.value) + (info.value.body or "")


def test_the_fake_server_needs_api_version_on_the_classic_route(fake_provider):
    url = fake_provider.base_url("p", "azure") + "/openai/deployments/gpt-4o/chat/completions"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    missing = requests.post(url, json=body, headers={"api-key": KEY}, timeout=5)
    assert missing.status_code == 404 and missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    unauthenticated = requests.post(url, params={"api-version": "2024-10-21"}, json=body, timeout=5)
    assert unauthenticated.status_code == 401
    answered = requests.post(url, params={"api-version": "2024-10-21"}, json=body, headers={"api-key": KEY}, timeout=5)
    assert answered.status_code == 200 and answered.json()["model"] == "gpt-4o"
    assert answered.json()["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False


def test_a_fake_provider_named_openai_is_not_taken_for_azure(fake_provider):
    fake_provider.script("openai", Reply(text="from openai"))
    provider = OpenAIProvider("sk-test-key-0123456789", base_url=fake_provider.base_url("openai", "openai"))
    assert provider.complete(ask()).text == "from openai"
    assert (sent(fake_provider).name, sent(fake_provider).protocol) == ("openai", "openai")
