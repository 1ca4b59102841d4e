"""Importers for LiteLLM, OpenRouter and models.dev catalogues, the user cache they fill, and
``refresh`` (from a file, and over real HTTP from a local server).  Nothing here reaches the
internet: the samples below are trimmed copies written in each source's real format, and the
10,000+-model case uses generated files in those formats."""

import http.server
import json
import logging
import threading

import pytest

from failover_client import models
from failover_client.errors import InvalidArgumentError, ProviderError
from failover_client.models import refresh
from failover_client.models.importers import (
    CatalogueFormatError,
    cache_file,
    cached_models,
    load,
    parse_litellm,
    parse_models_dev,
    parse_openrouter,
)

# model_prices_and_context_window.json (LiteLLM): prices per token, one object per model.
LITELLM_SAMPLE = """{
    "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
                    "max_input_tokens": "max input tokens", "mode": "one of: chat, embedding, completion"},
    "gpt-4o": {
        "cache_read_input_token_cost": 1.25e-06, "input_cost_per_token": 2.5e-06,
        "input_cost_per_token_batches": 1.25e-06, "litellm_provider": "openai", "max_input_tokens": 128000,
        "max_output_tokens": 16384, "max_tokens": 16384, "mode": "chat", "output_cost_per_token": 1e-05,
        "output_cost_per_token_batches": 5e-06, "supports_function_calling": true,
        "supports_parallel_function_calling": true, "supports_prompt_caching": true,
        "supports_response_schema": true, "supports_system_messages": true, "supports_vision": true
    },
    "claude-sonnet-4-5-20250929": {
        "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 3e-07,
        "input_cost_per_token": 3e-06, "litellm_provider": "anthropic", "max_input_tokens": 200000,
        "max_output_tokens": 64000, "max_tokens": 64000, "mode": "chat", "output_cost_per_token": 1.5e-05,
        "supports_function_calling": true, "supports_reasoning": true, "supports_vision": true,
        "deprecation_date": "2026-11-30"
    },
    "gemini/gemini-2.5-pro": {
        "cache_read_input_token_cost": 1.25e-07, "input_cost_per_token": 1.25e-06,
        "litellm_provider": "gemini", "max_input_tokens": 1048576, "max_output_tokens": 65535,
        "mode": "chat", "output_cost_per_reasoning_token": 1e-05, "output_cost_per_token": 1e-05,
        "supports_audio_input": true, "supports_function_calling": true, "supports_vision": true
    },
    "vertex_ai/claude-opus-4-5@20251101": {
        "input_cost_per_token": 5e-06, "litellm_provider": "vertex_ai-anthropic_models",
        "max_input_tokens": 200000, "max_output_tokens": 64000, "mode": "chat", "output_cost_per_token": 2.5e-05
    },
    "groq/llama-3.3-70b-versatile": {
        "input_cost_per_token": 5.9e-07, "litellm_provider": "groq", "max_input_tokens": 128000,
        "max_output_tokens": 32768, "max_tokens": 32768, "mode": "chat", "output_cost_per_token": 7.9e-07,
        "supports_function_calling": true
    },
    "text-embedding-3-small": {
        "input_cost_per_token": 2e-08, "litellm_provider": "openai", "max_input_tokens": 8191,
        "mode": "embedding", "output_cost_per_token": 0.0, "output_vector_size": 1536
    },
    "1024-x-1024/dall-e-2": {
        "input_cost_per_pixel": 1.9e-08, "litellm_provider": "openai", "mode": "image_generation",
        "output_cost_per_pixel": 0.0
    }
}"""

# GET https://openrouter.ai/api/v1/models: {"data": [...]}, prices as decimal strings per token.
OPENROUTER_SAMPLE = """{"data": [
  {"id": "openai/gpt-4o", "canonical_slug": "openai/gpt-4o", "hugging_face_id": null, "name": "OpenAI: GPT-4o",
   "created": 1715367049, "description": "GPT-4o is OpenAI's flagship model.", "context_length": 128000,
   "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image", "file"],
                    "output_modalities": ["text"], "tokenizer": "GPT", "instruct_type": null},
   "pricing": {"prompt": "0.0000025", "completion": "0.00001", "request": "0", "image": "0.003613",
               "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.00000125"},
   "top_provider": {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": true},
   "per_request_limits": null,
   "supported_parameters": ["frequency_penalty", "max_tokens", "response_format", "seed", "stop",
                            "structured_outputs", "temperature", "tool_choice", "tools", "top_p"],
   "default_parameters": {}},
  {"id": "anthropic/claude-sonnet-4.5", "canonical_slug": "anthropic/claude-4.5-sonnet-20250929",
   "hugging_face_id": "", "name": "Anthropic: Claude Sonnet 4.5", "created": 1759161676, "description": "",
   "context_length": 1000000,
   "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image", "file"],
                    "output_modalities": ["text"], "tokenizer": "Claude", "instruct_type": null},
   "pricing": {"prompt": "0.000003", "completion": "0.000015", "request": "0", "image": "0.0048",
               "web_search": "0.01", "internal_reasoning": "0", "input_cache_read": "0.0000003",
               "input_cache_write": "0.00000375"},
   "top_provider": {"context_length": 1000000, "max_completion_tokens": 64000, "is_moderated": false},
   "per_request_limits": null,
   "supported_parameters": ["include_reasoning", "max_tokens", "reasoning", "response_format", "stop",
                            "structured_outputs", "temperature", "tool_choice", "tools", "top_k", "top_p"]},
  {"id": "meta-llama/llama-3.3-70b-instruct:free", "canonical_slug": "meta-llama/llama-3.3-70b-instruct",
   "name": "Meta: Llama 3.3 70B Instruct (free)", "created": 1733506137, "context_length": 131072,
   "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                    "tokenizer": "Llama3", "instruct_type": null},
   "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0", "web_search": "0",
               "internal_reasoning": "0"},
   "top_provider": {"context_length": 131072, "max_completion_tokens": null, "is_moderated": false},
   "per_request_limits": null, "supported_parameters": ["max_tokens", "temperature", "tools"]},
  {"id": "openrouter/auto", "canonical_slug": "openrouter/auto", "name": "Auto Router", "created": 1699401600,
   "context_length": 2000000,
   "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                    "output_modalities": ["text"], "tokenizer": "Router", "instruct_type": null},
   "pricing": {"prompt": "-1", "completion": "-1"},
   "top_provider": {"context_length": null, "max_completion_tokens": null, "is_moderated": false},
   "per_request_limits": null, "supported_parameters": []}
]}"""

# https://models.dev/api.json: providers, each with its models; prices per million tokens.
MODELS_DEV_SAMPLE = """{
  "anthropic": {"id": "anthropic", "env": ["ANTHROPIC_API_KEY"], "npm": "@ai-sdk/anthropic", "name": "Anthropic",
    "doc": "https://docs.anthropic.com/en/docs/about-claude/models",
    "models": {
      "claude-sonnet-4-5": {"id": "claude-sonnet-4-5", "name": "Claude Sonnet 4.5 (latest)", "family": "claude-sonnet",
        "attachment": true, "reasoning": true, "tool_call": true, "temperature": true, "knowledge": "2025-07-31",
        "release_date": "2025-09-29", "last_updated": "2025-09-29",
        "modalities": {"input": ["text", "image", "pdf"], "output": ["text"]}, "open_weights": false,
        "cost": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75,
                 "context_over_200k": {"input": 6, "output": 22.5, "cache_read": 0.6, "cache_write": 7.5}},
        "limit": {"context": 200000, "output": 64000}}}},
  "google": {"id": "google", "env": ["GOOGLE_GENERATIVE_AI_API_KEY", "GEMINI_API_KEY"], "npm": "@ai-sdk/google",
    "name": "Google", "doc": "https://ai.google.dev/gemini-api/docs/pricing",
    "models": {
      "gemini-2.5-flash": {"id": "gemini-2.5-flash", "name": "Gemini 2.5 Flash", "family": "gemini-flash",
        "attachment": true, "reasoning": true, "tool_call": true, "structured_output": true, "temperature": true,
        "knowledge": "2025-01", "release_date": "2025-03-20", "last_updated": "2025-06-05",
        "modalities": {"input": ["text", "image", "audio", "video", "pdf"], "output": ["text"]},
        "open_weights": false, "cost": {"input": 0.3, "output": 2.5, "cache_read": 0.075, "input_audio": 1},
        "limit": {"context": 1048576, "output": 65536}}}},
  "amazon-bedrock": {"id": "amazon-bedrock", "env": ["AWS_ACCESS_KEY_ID"], "npm": "@ai-sdk/amazon-bedrock",
    "name": "Amazon Bedrock", "doc": "https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html",
    "models": {
      "amazon.nova-micro-v1:0": {"id": "amazon.nova-micro-v1:0", "name": "Nova Micro", "attachment": false,
        "reasoning": false, "tool_call": true, "temperature": true, "release_date": "2024-12-03",
        "last_updated": "2024-12-03", "modalities": {"input": ["text"], "output": ["text"]},
        "open_weights": false, "cost": {"input": 0.035, "output": 0.14, "cache_read": 0.00875},
        "limit": {"context": 128000, "output": 8192}}}}
}"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache directory for the default registry; restored afterwards."""
    monkeypatch.setenv("FAILOVER_CLIENT_CACHE_DIR", str(tmp_path / "cache"))
    models.reload()
    yield tmp_path / "cache"
    monkeypatch.delenv("FAILOVER_CLIENT_CACHE_DIR")
    models.reload()


def by_name(rows):
    return {row.name: row for row in rows}


def test_litellm_real_format(tmp_path):
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(LITELLM_SAMPLE)
    rows = by_name(load("litellm", path))
    assert set(rows) == {"openai/gpt-4o", "anthropic/claude-sonnet-4-5-20250929", "gemini/gemini-2.5-pro",
                         "vertex/vertex_ai/claude-opus-4-5@20251101", "groq/llama-3.3-70b-versatile"}
    gpt = rows["openai/gpt-4o"]
    assert (gpt.input_price, gpt.output_price, gpt.cache_read_price) == (2.5, 10.0, 1.25)
    assert (gpt.context_window, gpt.max_output_tokens, gpt.batch_discount) == (128_000, 16_384, 0.5)
    assert gpt.supports("tools", "vision", "json_schema", "streaming") and not gpt.supports("thinking")
    sonnet = rows["anthropic/claude-sonnet-4-5-20250929"]
    assert (sonnet.cache_read_price, sonnet.cache_write_price) == (0.3, 3.75)
    assert sonnet.deprecation_date == "2026-11-30" and sonnet.supports("thinking")
    assert rows["gemini/gemini-2.5-pro"].reasoning_price == 10.0
    assert rows["groq/llama-3.3-70b-versatile"].input_price == 0.59


def test_openrouter_real_format(tmp_path):
    path = tmp_path / "models.json"
    path.write_text(OPENROUTER_SAMPLE)
    rows = by_name(load("openrouter", path))
    assert len(rows) == 4
    gpt = rows["openrouter/openai/gpt-4o"]
    assert (gpt.input_price, gpt.output_price, gpt.cache_read_price, gpt.cache_write_price) == (2.5, 10.0, 1.25, None)
    assert gpt.reasoning_price is None  # "0" means "billed as completion", not free
    assert gpt.supports("tools", "json_schema", "vision", "streaming")
    sonnet = rows["openrouter/anthropic/claude-sonnet-4.5"]
    assert sonnet.aliases == ("anthropic/claude-4.5-sonnet-20250929",)
    assert (sonnet.cache_write_price, sonnet.max_output_tokens) == (3.75, 64_000) and sonnet.supports("thinking")
    free = rows["openrouter/meta-llama/llama-3.3-70b-instruct:free"]
    assert (free.input_price, free.output_price, free.max_output_tokens) == (0.0, 0.0, None)
    auto = rows["openrouter/openrouter/auto"]
    assert (auto.input_price, auto.output_price) == (None, None)  # "-1": the price varies


def test_models_dev_real_format(tmp_path):
    path = tmp_path / "api.json"
    path.write_text(MODELS_DEV_SAMPLE)
    rows = by_name(load("models.dev", path))
    assert set(rows) == {"anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash", "bedrock/amazon.nova-micro-v1:0"}
    sonnet = rows["anthropic/claude-sonnet-4-5"]
    assert (sonnet.input_price, sonnet.cache_read_price, sonnet.cache_write_price) == (3, 0.3, 3.75)
    assert sonnet.long_context.threshold == 200_000 and sonnet.long_context.output_price == 22.5
    assert sonnet.knowledge_cutoff == "2025-07-31" and sonnet.checked == "2025-09-29"
    flash = rows["gemini/gemini-2.5-flash"]
    assert flash.supports("json_schema", "audio_in", "vision", "thinking") and flash.context_window == 1_048_576
    assert not rows["bedrock/amazon.nova-micro-v1:0"].supports("vision")


def test_written_samples_with_odd_entries_keep_the_good_ones():
    litellm = {"ok": {"litellm_provider": "mistral", "mode": "chat", "input_cost_per_token": 1e-06},
               "bad-tokens": {"litellm_provider": "mistral", "mode": "chat", "max_input_tokens": "lots",
                              "input_cost_per_token": "x"},
               "no-provider": {"mode": "chat"}, "not-an-object": 3}
    assert [r.name for r in parse_litellm(litellm)] == ["mistral/ok"]
    openrouter = {"data": [{"id": "a/b", "pricing": {"prompt": "0.000001", "completion": "oops"}},
                           {"id": "c/d", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}, {"name": "x"}]}
    assert [(r.model, r.output_price) for r in parse_openrouter(openrouter)] == [("c/d", 2.0)]
    models_dev = {"p": {"models": {"m": {"cost": {"input": 1, "output": "two"}, "limit": {"context": 10}},
                                   "n": "not a model"}}, "meta": "not a provider"}
    assert [(r.name, r.output_price, r.context_window) for r in parse_models_dev(models_dev)] == [("p/m", None, 10)]


@pytest.mark.parametrize("source, text, message", [
    ("litellm", OPENROUTER_SAMPLE, "not a LiteLLM"),
    ("openrouter", LITELLM_SAMPLE, "no 'data' list"),
    ("models.dev", OPENROUTER_SAMPLE, "not a models.dev"),
    ("openrouter", "[1, 2]", "JSON list, not an object"),
    ("litellm", "{not json", "not valid JSON"),
])
def test_a_file_in_the_wrong_format_is_a_clear_error(tmp_path, source, text, message):
    path = tmp_path / "catalogue.json"
    path.write_text(text)
    with pytest.raises(CatalogueFormatError, match=message):
        load(source, path)


def test_unknown_source_and_missing_file(tmp_path):
    with pytest.raises(InvalidArgumentError, match="unknown catalogue source 'huggingface'"):
        load("huggingface", tmp_path / "x.json")
    with pytest.raises(InvalidArgumentError, match="cannot read the litellm catalogue"):
        load("litellm", tmp_path / "missing.json")


def test_refresh_from_a_file_fills_the_cache_that_lookups_use(cache, tmp_path):
    assert models.find("openrouter/anthropic/claude-sonnet-4.5") is None
    sample = tmp_path / "download.json"
    sample.write_text(OPENROUTER_SAMPLE)
    path, count = refresh("openrouter", file=sample)
    assert (path, count) == (cache / "models-openrouter.json", 4)
    assert path.read_text() == OPENROUTER_SAMPLE
    assert models.lookup("openrouter/anthropic/claude-sonnet-4.5").input_price == 3.0
    assert models.lookup("meta-llama/llama-3.3-70b-instruct:free").provider == "openrouter"
    # the curated catalogue keeps its rows: a cached import never hides them
    refresh("litellm", file=_write(tmp_path / "litellm.json", LITELLM_SAMPLE))
    assert models.lookup("openai/gpt-4o").source.startswith("https://developers.openai.com")
    assert models.lookup("groq/llama-3.3-70b-versatile").source.startswith("https://groq.com/pricing")
    assert models.lookup("vertex/vertex_ai/claude-opus-4-5@20251101").source == "litellm"


def _write(path, text):
    path.write_text(text)
    return path


def test_a_bad_refresh_leaves_the_cache_alone(cache, tmp_path):
    refresh("models.dev", file=_write(tmp_path / "good.json", MODELS_DEV_SAMPLE))
    with pytest.raises(CatalogueFormatError):
        refresh("models.dev", file=_write(tmp_path / "bad.json", OPENROUTER_SAMPLE))
    with pytest.raises(CatalogueFormatError, match="no chat model"):
        refresh("openrouter", file=_write(tmp_path / "empty.json", '{"data": []}'))
    assert cache_file("models.dev").read_text() == MODELS_DEV_SAMPLE
    assert not cache_file("openrouter").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["models-models.dev.json"]  # no temporary files left


def test_a_corrupt_cache_file_is_ignored_with_a_warning(cache, caplog):
    cache.mkdir(parents=True)
    cache_file("litellm").write_text("{truncated")
    with caplog.at_level(logging.WARNING, logger="failover_client"):
        assert cached_models() == []
        registry = models.reload()
    assert "ignoring the cached litellm catalogue" in caplog.text
    assert len(registry) == len(models.builtin_models())


class _CatalogueServer(http.server.ThreadingHTTPServer):
    """Serves one document at /api/v1/models and 404 elsewhere, on 127.0.0.1."""

    def __init__(self, body: bytes) -> None:
        body_ = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                found = self.path == "/api/v1/models"
                payload = body_ if found else b'{"error": {"message": "no such page"}}'
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def catalogue_server():
    server = _CatalogueServer(OPENROUTER_SAMPLE.encode())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_refresh_downloads_over_http_only_when_asked(cache, catalogue_server):
    path, count = refresh("openrouter", url=catalogue_server.url + "/api/v1/models")
    assert count == 4 and json.loads(path.read_text())["data"][0]["id"] == "openai/gpt-4o"
    assert models.lookup("openrouter/openai/gpt-4o").cache_read_price == 1.25


def test_a_failed_download_is_a_typed_error_and_keeps_the_old_cache(cache, catalogue_server, tmp_path):
    refresh("openrouter", file=_write(tmp_path / "old.json", OPENROUTER_SAMPLE))
    with pytest.raises(ProviderError) as caught:
        refresh("openrouter", url=catalogue_server.url + "/missing")
    assert caught.value.status == 404
    assert cache_file("openrouter").read_text() == OPENROUTER_SAMPLE


def generated_catalogues(n):
    """``n`` models in each source's real format (LiteLLM, OpenRouter, models.dev)."""
    litellm = {f"together_ai/org{i}/model-{i}": {
        "litellm_provider": "together_ai", "mode": "chat", "input_cost_per_token": (i % 50 + 1) * 1e-07,
        "output_cost_per_token": (i % 50 + 1) * 2e-07, "max_input_tokens": 32768 + i, "max_tokens": 4096,
        "supports_function_calling": i % 2 == 0} for i in range(n)}
    openrouter = {"data": [{
        "id": f"vendor{i % 97}/router-model-{i}", "canonical_slug": f"vendor{i % 97}/router-model-{i}",
        "name": f"Router model {i}", "created": 1700000000 + i, "context_length": 8192 * (1 + i % 16),
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                         "tokenizer": "Other", "instruct_type": None},
        "pricing": {"prompt": f"{(i % 30 + 1) / 1e7:.10f}", "completion": f"{(i % 30 + 1) / 5e6:.10f}",
                    "request": "0", "image": "0", "web_search": "0", "internal_reasoning": "0"},
        "top_provider": {"context_length": 8192 * (1 + i % 16), "max_completion_tokens": 4096, "is_moderated": False},
        "per_request_limits": None, "supported_parameters": ["tools", "max_tokens"]} for i in range(n)]}
    models_dev = {f"host{p}": {"id": f"host{p}", "env": [f"HOST{p}_API_KEY"], "npm": "@ai-sdk/openai-compatible",
                               "name": f"Host {p}", "doc": "https://example.com", "models": {
        f"md-model-{p}-{i}": {"id": f"md-model-{p}-{i}", "name": f"Model {i}", "attachment": False,
                              "reasoning": False, "tool_call": True, "temperature": True, "release_date": "2026-01-01",
                              "last_updated": "2026-06-01", "modalities": {"input": ["text"], "output": ["text"]},
                              "open_weights": True, "cost": {"input": 0.2, "output": 0.6},
                              "limit": {"context": 131072, "output": 8192}} for i in range(n // 40)}}
                  for p in range(40)}
    return {"litellm": litellm, "openrouter": openrouter, "models.dev": models_dev}


def test_the_importers_scale_to_more_than_ten_thousand_models(cache):
    cache.mkdir(parents=True)
    for source, document in generated_catalogues(4_000).items():
        cache_file(source).write_text(json.dumps(document))
    registry = models.reload()
    assert len(registry) >= 12_000 + len(models.builtin_models())
    assert models.lookup("together/org3999/model-3999").context_window == 32768 + 3999
    assert models.lookup("vendor5/router-model-3885").input_price == pytest.approx((3885 % 30 + 1) / 10)
    assert models.lookup("host39/md-model-39-99").output_price == 0.6
    assert models.lookup("claude-opus-5-5").provider == "anthropic"
    assert "vendor5/router-model-3885" in models.suggest("vendor5/router-model-388")
