"""The catalog of named providers, the registry that builds them, "provider/model" routing and
FailoverClient.from_models, against the real local fake server."""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from failover_client import (
    FailoverClient,
    InvalidArgumentError,
    MissingCredentialsError,
    collect,
)
from failover_client.models import all_models
from failover_client.providers import create, from_env, names, resolve
from failover_client.providers.catalog import BUILDS_OWN_URL, CATALOG, PROTOCOLS, serves_embeddings
from failover_client.testing import Fault, Reply

from support import ask

REPO = Path(__file__).resolve().parents[1]
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
PROTOCOL_CLASSES = {"openai": "OpenAIProvider", "anthropic": "AnthropicProvider", "gemini": "GeminiProvider",
                    "vertex": "VertexProvider", "bedrock": "BedrockProvider", "cohere": "CohereProvider",
                    "ollama": "OllamaProvider", "azure": "AzureOpenAIProvider"}
SAMPLE_PARAM = "sample-1"
# Every variable any row reads: cleared for each test, so the developer's own keys never leak in.
CATALOG_VARIABLES = sorted({r.api_key_env for r in CATALOG if r.api_key_env} |
                           {v for r in CATALOG for v in r.params.values()} |
                           {"GOOGLE_API_KEY", "COHERE_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION",
                            "AWS_DEFAULT_REGION"})


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for variable in CATALOG_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def filled(row):
    return re.sub(r"\{[a-z_]+\}", SAMPLE_PARAM, row.base_url)


# --- the table's shape ---------------------------------------------------------------------------


def test_catalog_has_at_least_100_uniquely_named_rows():
    rows = [r.name for r in CATALOG]
    assert len(rows) >= 100
    assert len(set(rows)) == len(rows)
    assert names() == sorted(rows)


@pytest.mark.parametrize("row", CATALOG, ids=[r.name for r in CATALOG])
def test_row_shape(row):
    assert NAME.match(row.name) and "/" not in row.name, row.name
    assert row.title.strip() and row.protocol in PROTOCOLS
    url = urlsplit(filled(row))
    assert url.scheme == ("http" if row.local else "https"), "plain http is for servers on this machine only"
    assert url.hostname and not url.query and not url.fragment and not url.username
    assert not row.base_url.endswith("/"), "the client appends the path"
    assert row.api_key_env is None or ENV_NAME.match(row.api_key_env)
    assert row.api_key_env is not None or row.local or row.protocol in BUILDS_OWN_URL
    assert set(row.placeholders()) == set(row.params), "every {placeholder} has its variable, and only those"
    assert all(ENV_NAME.match(variable) for variable in row.params.values())


def test_only_local_servers_share_a_base_url():
    # Local servers share default ports (llama.cpp, llamafile, LocalAI and TGI all use 8080);
    # two hosted rows with one URL would be the same service twice.
    by_url = {}
    for row in CATALOG:
        by_url.setdefault(filled(row), []).append(row)
    shared = {url: [r.name for r in rows] for url, rows in by_url.items() if len(rows) > 1}
    assert shared, "the local servers' shared ports are expected here"
    assert all(row.local for url in shared for row in by_url[url]), shared


def test_every_protocol_has_its_native_row_and_the_issue_lists_hosts_are_there():
    assert {r.name for r in CATALOG if r.protocol == r.name} == set(PROTOCOLS)
    required = {"groq", "together", "fireworks", "deepseek", "mistral", "xai", "perplexity", "openrouter",
                "cerebras", "sambanova", "deepinfra", "nebius", "moonshot", "zhipu", "dashscope", "nvidia",
                "cloudflare", "databricks", "lmstudio", "vllm", "llamacpp", "localai", "jan"}
    assert required <= set(names())


def test_rows_without_chat_serve_embeddings_and_list_only_embedding_models():
    # Code that walks the catalog asks ``row.chat`` before sending a chat request (doctor's probe).
    without_chat = {r.name for r in CATALOG if not r.chat}
    assert without_chat >= {"voyage", "jina"}
    assert all(serves_embeddings(name) for name in without_chat)
    assert all(create(name, api_key="dummy-key-0123456789").supports_embeddings for name in without_chat)
    assert not [m.name for m in all_models() if m.provider in without_chat and m.embedding_dimensions is None]


@pytest.mark.parametrize("row", CATALOG, ids=[r.name for r in CATALOG])
def test_every_row_builds_its_protocol_class(row):
    options = {param: SAMPLE_PARAM for param in row.placeholders()}
    options["access_token" if row.protocol == "vertex" else "api_key"] = "dummy-key-0123456789"
    provider = create(row.name, **options)
    assert type(provider).__name__ == PROTOCOL_CLASSES[row.protocol]
    assert provider.name == row.name
    if row.protocol not in BUILDS_OWN_URL | {"azure"}:
        assert provider.base_url == filled(row)
    assert row.name in repr(provider) and "dummy-key" not in repr(provider)


# --- create() and from_env() ---------------------------------------------------------------------


def test_create_uses_the_rows_variable_never_another_providers(fake_provider, monkeypatch):
    fake_provider.require_key("groq", "groq-key-0123456789")
    fake_provider.script("groq", Reply(text="hello from groq"))
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key-0123456789")
    monkeypatch.setenv("GROQ_API_KEY", "groq-key-0123456789")
    with create("groq", base_url=fake_provider.base_url("groq", "openai")) as groq:
        assert groq.complete(ask()).text == "hello from groq"
    monkeypatch.delenv("GROQ_API_KEY")
    with create("groq", base_url=fake_provider.base_url("groq", "openai")) as groq:
        with pytest.raises(MissingCredentialsError, match="GROQ_API_KEY") as info:
            groq.complete(ask())
    assert "OPENAI_API_KEY" not in str(info.value)
    assert [r.step for r in fake_provider.requests_for("groq")] == ["reply"]


def test_overrides_win_over_the_row(fake_provider):
    fake_provider.require_key("mine", "explicit-key-0123456789")
    fake_provider.script("mine", Reply(text="overridden"))
    provider = create("mistral", api_key="explicit-key-0123456789", name="mine",
                      base_url=fake_provider.base_url("mine", "openai"), headers={"X-Trace": "t1"})
    with provider:
        assert provider.complete(ask()).text == "overridden"
    assert provider.name == "mine"
    assert fake_provider.requests_for("mine")[0].headers["x-trace"] == "t1"


def test_a_local_server_needs_no_key(fake_provider):
    fake_provider.script("lmstudio", Reply(text="local answer"))
    with from_env("lmstudio", base_url=fake_provider.base_url("lmstudio", "openai")) as local:
        assert local.complete(ask()).text == "local answer"


def test_unknown_name_suggests_close_ones():
    with pytest.raises(InvalidArgumentError, match=r"unknown provider 'opneai': did you mean 'openai'"):
        create("opneai")
    with pytest.raises(InvalidArgumentError, match="names\\(\\) lists them"):
        create("no-such-thing-at-all")
    with pytest.raises(InvalidArgumentError, match="a provider name is a string"):
        from_env(None)


def test_url_parameter_comes_from_its_variable_or_an_override(monkeypatch):
    with pytest.raises(InvalidArgumentError, match="cloudflare needs account_id: pass account_id=... or set "
                                                   "CLOUDFLARE_ACCOUNT_ID"):
        create("cloudflare", api_key="k" * 12)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acc123")
    assert create("cloudflare", api_key="k" * 12).base_url == \
        "https://api.cloudflare.com/client/v4/accounts/acc123/ai/v1"
    assert create("cloudflare", api_key="k" * 12, account_id="other9").base_url == \
        "https://api.cloudflare.com/client/v4/accounts/other9/ai/v1"


def test_a_host_parameter_may_be_given_as_a_url_but_cannot_redirect(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1234.5.azuredatabricks.net/")
    assert create("databricks", api_key="k" * 12).base_url == "https://adb-1234.5.azuredatabricks.net/serving-endpoints"
    for hostile in ("evil.example/x?", "user@evil.example", "a b", "", "https://evil.example/path"):
        with pytest.raises(InvalidArgumentError, match="databricks: host must be a host name"):
            create("databricks", api_key="k" * 12, host=hostile)


def test_every_missing_url_parameter_is_named():
    with pytest.raises(InvalidArgumentError, match="cloudflare-ai-gateway needs account_id: pass account_id=... or "
                       "set CLOUDFLARE_ACCOUNT_ID; gateway_id: pass gateway_id=... or set CLOUDFLARE_GATEWAY_ID"):
        create("cloudflare-ai-gateway", api_key="k" * 12)


def test_bedrock_takes_its_region_as_an_argument(monkeypatch):
    assert create("bedrock", region="eu-west-1").base_url == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert create("bedrock").base_url == "https://bedrock-runtime.ap-south-1.amazonaws.com"
    assert from_env("bedrock").region == "ap-south-1"  # the credentials are the class's to find, at first use


def test_vertex_takes_its_parameters_as_arguments(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj-1")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    vertex = create("vertex", access_token="token-0123456789")
    assert (vertex.project, vertex.location) == ("proj-1", "europe-west4")
    assert vertex.base_url == "https://europe-west4-aiplatform.googleapis.com/v1"
    assert create("vertex", access_token="t" * 12, location="global").base_url == "https://aiplatform.googleapis.com/v1"
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION")
    assert from_env("vertex").base_url == "https://aiplatform.googleapis.com/v1"  # the class's default


def test_from_env_names_every_missing_variable(monkeypatch):
    with pytest.raises(MissingCredentialsError, match="groq needs the environment variable\\(s\\) GROQ_API_KEY"):
        from_env("groq")
    with pytest.raises(MissingCredentialsError) as info:
        from_env("cloudflare-ai-gateway")
    assert all(v in str(info.value) for v in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_GATEWAY_ID"))
    monkeypatch.setenv("GROQ_API_KEY", "")
    with pytest.raises(MissingCredentialsError, match="GROQ_API_KEY"):
        from_env("groq")  # an empty variable is a missing one
    with pytest.raises(InvalidArgumentError, match="pass api_key to create"):
        from_env("groq", api_key="k" * 12)


def test_from_env_reads_the_key_now(monkeypatch, fake_provider):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "deepseek-key-0123456789")
    fake_provider.require_key("deepseek", "deepseek-key-0123456789")
    provider = from_env("deepseek", base_url=fake_provider.base_url("deepseek", "openai"))
    monkeypatch.delenv("DEEPSEEK_API_KEY")  # read at from_env() time, not at first use
    with provider:
        assert provider.complete(ask()).stop_reason.value == "end_turn"


# --- resolve() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("openai/gpt-4o", ("openai", "gpt-4o")),
    ("openrouter/meta-llama/llama-3.3-70b-instruct", ("openrouter", "meta-llama/llama-3.3-70b-instruct")),
    ("moonshot-cn/kimi-k2-0905-preview", ("moonshot-cn", "kimi-k2-0905-preview")),
    ("mistral.rs/ai/smollm2", ("mistral.rs", "ai/smollm2")),
    ("huggingface/deepseek-ai/DeepSeek-R1:novita", ("huggingface", "deepseek-ai/DeepSeek-R1:novita")),
    ("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
     ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")),
    ("cloudflare/@cf/meta/llama-3.1-8b-instruct", ("cloudflare", "@cf/meta/llama-3.1-8b-instruct")),
])
def test_resolve_splits_at_the_first_slash(text, expected):
    assert resolve(text) == expected


@pytest.mark.parametrize("text", ["gpt-4o", "/gpt-4o", "openai/", "openai//gpt-4o", "openai/gpt-4o/",
                                  "openai/gpt 4o", " openai/gpt-4o", ""])
def test_resolve_rejects_malformed_strings_naming_them(text):
    with pytest.raises(InvalidArgumentError, match=re.escape(repr(text)) + " is not of the form 'provider/model'"):
        resolve(text)


def test_resolve_rejects_unknown_providers_and_non_strings():
    with pytest.raises(InvalidArgumentError, match=r"'groc/llama': unknown provider 'groc': did you mean 'groq'"):
        resolve("groc/llama")
    with pytest.raises(InvalidArgumentError, match="expected a 'provider/model' string, got 42"):
        resolve(42)


# --- FailoverClient.from_models ------------------------------------------------------------------

KEYS = {"OPENAI_API_KEY": "openai-env-key-0123", "ANTHROPIC_API_KEY": "anthropic-env-key-0123",
        "GROQ_API_KEY": "groq-env-key-0123"}
MODELS = ("openai/gpt-4o", "anthropic/claude-sonnet-4-5", "groq/llama-3.3-70b-versatile")


# Fake-server routes per provider.  Not named "openai": "/openai/v1/chat/completions" is the
# fake server's unprefixed Azure route.
ROUTES = {"openai": ("oai", "openai"), "anthropic": ("claude", "anthropic"), "groq": ("groq", "openai")}


def fake_routes(server, providers=ROUTES):
    return {provider: {"base_url": server.base_url(*ROUTES[provider])} for provider in providers}


def test_from_models_fails_over_to_the_mapped_model_with_environment_keys(fake_provider, monkeypatch):
    for variable, key in KEYS.items():
        monkeypatch.setenv(variable, key)
    for route, variable in (("oai", "OPENAI_API_KEY"), ("claude", "ANTHROPIC_API_KEY"), ("groq", "GROQ_API_KEY")):
        fake_provider.require_key(route, KEYS[variable])
    fake_provider.script("oai", Fault.rate_limit(retry_after=1))
    fake_provider.script("claude", Reply(text="from claude"))
    client = FailoverClient.from_models(*MODELS, overrides=fake_routes(fake_provider))
    assert client.config.names() == ["openai", "anthropic", "groq"]
    with client:
        response = client.complete(ask(model="gpt-4o"))
    assert (response.text, response.provider) == ("from claude", "anthropic")
    assert [(a.provider, a.model, a.outcome) for a in response.attempts] == [
        ("openai", "gpt-4o", "error"), ("anthropic", "claude-sonnet-4-5", "ok")]
    assert [r.body["model"] for r in fake_provider.requests] == ["gpt-4o", "claude-sonnet-4-5"]


def test_from_models_streams_through_the_chain_too(fake_provider, monkeypatch):
    for variable, key in KEYS.items():
        monkeypatch.setenv(variable, key)
    fake_provider.script("oai", Fault.status(503))
    fake_provider.script("claude", Fault.overloaded())
    fake_provider.script("groq", Reply(text="groq streams"))
    with FailoverClient.from_models(*MODELS, overrides=fake_routes(fake_provider)) as client:
        response = collect(client.complete_stream(ask(model="gpt-4o", stream=True)))
    assert (response.text, response.provider) == ("groq streams", "groq")
    assert fake_provider.requests_for("groq")[0].body["model"] == "llama-3.3-70b-versatile"


def test_from_models_names_every_missing_variable_in_one_error(monkeypatch):
    with pytest.raises(MissingCredentialsError) as info:
        FailoverClient.from_models(*MODELS, "cloudflare/@cf/meta/llama-3.1-8b-instruct")
    message = str(info.value)
    for variable in (*KEYS, "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        assert variable in message
    assert "GROQ_API_KEY (groq)" in message
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["OPENAI_API_KEY"])
    with pytest.raises(MissingCredentialsError) as info:
        FailoverClient.from_models(*MODELS)
    assert "OPENAI_API_KEY" not in str(info.value) and "ANTHROPIC_API_KEY" in str(info.value)


def test_from_models_numbers_a_provider_that_appears_twice(fake_provider, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["OPENAI_API_KEY"])
    fake_provider.script("oai", Fault.rate_limit(retry_after=1), Fault.status(500))
    client = FailoverClient.from_models("openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1-nano",
                                        overrides=fake_routes(fake_provider, ["openai"]))
    assert client.config.names() == ["openai", "openai-2", "openai-3"]
    with client:
        response = client.complete(ask(model="gpt-4o"))
    assert [a.model for a in response.attempts] == ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano"]
    assert response.provider == "openai-3"


def test_from_models_rejects_bad_arguments_before_reading_the_environment():
    with pytest.raises(InvalidArgumentError, match="at least one"):
        FailoverClient.from_models()
    with pytest.raises(InvalidArgumentError, match="'gpt-4o' is not of the form"):
        FailoverClient.from_models("openai/gpt-4o", "gpt-4o")
    with pytest.raises(InvalidArgumentError, match="overrides name 'groq', which is not among the models"):
        FailoverClient.from_models("openai/gpt-4o", overrides={"groq": {}})


# --- import cost and the README table ------------------------------------------------------------


def test_names_and_resolve_import_no_protocol_module():
    code = ("import sys, failover_client.providers as p; p.names(); p.resolve('groq/llama'); "
            "print(sorted(m for m in sys.modules if m.startswith('failover_client.providers.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['failover_client.providers.catalog', 'failover_client.providers.registry']"


def test_the_readme_table_is_generated_from_every_row():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "providers_table.py")], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout
    assert out.startswith(".. list-table::\n   :header-rows: 1\n")
    rows = re.findall(r"^   \* - ``([^`]+)``\n     - (\w+)\n     - ``([^`]+)``\n     - (.+)\n     -(.*)$", out, re.M)
    assert [(name, protocol, url) for name, protocol, url, _key, _notes in rows] == [
        (r.name, r.protocol, r.base_url) for r in CATALOG]
    for (_name, _protocol, _url, key, _notes), row in zip(rows, CATALOG, strict=True):
        assert (f"``{row.api_key_env}``" in key) if row.api_key_env else key.startswith(("none", "see notes"))
        assert all(f"``{variable}``" in key for variable in row.params.values())
    readme = (REPO / "README.rst").read_text()
    start = readme.index(".. providers-table-start\n\n") + len(".. providers-table-start\n\n")
    assert readme[start:readme.index("\n\n.. providers-table-end")] + "\n" == out, (
        "README.rst's provider table is stale: paste the output of scripts/providers_table.py")
