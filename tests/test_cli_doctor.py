"""``failover-client doctor`` as a person runs it, against ``failover-client fake-server`` in
its own process: the providers whose keys are set are found, keys are shown redacted, base URLs
are the ones requests will use, ``--probe`` sends one one-token request each and reports its
latency or its error class, retired models are flagged, and the exit status says whether
anything failed."""


from failover_client.models import all_models

from cli_support import KEYS, clean_env, cli, fake_server_fixture  # noqa: F401  (the fixture)


def urls(server, openai="primary", anthropic="backup"):
    return ["--base-url", f"openai={server.base_url(openai, 'openai')}",
            "--base-url", f"anthropic={server.base_url(anthropic, 'anthropic')}"]


def report(output):
    """{provider: {label: text}} from the report's indented lines."""
    providers, current = {}, None
    for line in output.splitlines():
        if line.endswith(" protocol)"):
            current = providers.setdefault(line.split()[0], {})
        elif line.startswith("  ") and current is not None:
            label, _, text = line.strip().partition("  ")
            current[label] = text.strip()
    return providers


def probe(lines):
    """The text of a provider's probe line (labelled with the model it used)."""
    return next(text for label, text in lines.items() if label.startswith("probe "))


def test_the_configured_providers_are_found_and_probed(fake_server, tmp_path):
    server = fake_server()
    process = cli(tmp_path, "doctor", "--probe", *urls(server))
    assert process.returncode == 0, process.stdout + process.stderr
    found = report(process.stdout)
    assert list(found) == ["openai", "anthropic"]  # the catalog's providers whose keys are set, no other
    assert found["openai"]["OPENAI_API_KEY"] == "set (sk-…789, 25 characters)"
    assert found["anthropic"]["ANTHROPIC_API_KEY"] == "set (sk-…789, 22 characters)"
    assert all(key not in process.stdout + process.stderr for key in KEYS.values())
    assert found["openai"]["base URL"] == server.base_url("primary", "openai")
    assert found["anthropic"]["base URL"] == server.base_url("backup", "anthropic")
    assert all(probe(lines).startswith("answered in ") and probe(lines).endswith(" ms") for lines in found.values())
    sent = server.requests(2)
    assert sorted(r["name"] for r in sent) == ["backup", "primary"]
    assert all(r["body"].get("max_tokens", r["body"].get("max_completion_tokens")) == 1 for r in sent)
    assert process.stdout.rstrip().endswith("2 provider(s) checked, 0 problem(s)")


def test_without_probe_nothing_is_sent(fake_server, tmp_path):
    server = fake_server()
    process = cli(tmp_path, "doctor", *urls(server))
    assert process.returncode == 0 and "probe" not in process.stdout
    server.stop()
    assert server.requests(0) == []


def test_a_refused_probe_is_a_failure_with_its_error_class(fake_server, tmp_path):
    server = fake_server({"primary": [{"fault": "rate_limit", "retry_after": 3}],
                          "backup": {"key": "sk-ant-another-key-0123456789"}})
    process = cli(tmp_path, "doctor", "--probe", "openai/gpt-4o", *urls(server))
    assert process.returncode == 1
    found = report(process.stdout)
    assert found["openai"]["probe gpt-4o"].startswith("RateLimitError 429 after ")
    assert probe(found["anthropic"]).startswith("AuthenticationError 401 after ")
    assert "2 problem(s)" in process.stdout
    assert [r["body"]["model"] for r in server.requests(2) if r["name"] == "primary"] == ["gpt-4o"]


def test_a_named_provider_without_its_variables_and_a_retired_model_fail(fake_server, tmp_path):
    server = fake_server()
    retired = next(row for row in all_models() if row.provider == "openai" and row.retired())
    process = cli(tmp_path, "doctor", "azure", "--model", f"openai/{retired.model}", *urls(server)[:2],
                  env=clean_env(tmp_path, OPENAI_API_KEY=KEYS["OPENAI_API_KEY"]))
    assert process.returncode == 1
    found = report(process.stdout)
    assert list(found) == ["azure", "openai"]
    assert found["azure"]["AZURE_OPENAI_API_KEY"] == "not set   FAILED"
    assert found["azure"]["AZURE_OPENAI_ENDPOINT"] == "not set   FAILED"
    flagged = found["openai"][f"model {retired.model}"]
    assert f"was retired on {retired.deprecation_date[:10]}" in flagged and flagged.endswith("FAILED")


def test_nothing_configured_is_a_failure_and_a_wrong_name_a_wrong_command(tmp_path):
    nothing = cli(tmp_path, "doctor", env=clean_env(tmp_path))
    assert nothing.returncode == 1 and nothing.stdout.startswith("no provider is configured")
    wrong = cli(tmp_path, "doctor", "opneai")
    assert wrong.returncode == 2 and "unknown provider 'opneai': did you mean 'openai'" in wrong.stderr


def test_a_service_without_chat_is_probed_with_one_embedding(fake_server, tmp_path):
    # voyage's catalog row says chat=False: the probe embeds with the registry's cheapest embedding model
    server = fake_server()
    process = cli(tmp_path, "doctor", "--probe", "--base-url", f"voyage={server.base_url('emb', 'openai')}",
                  env=clean_env(tmp_path, VOYAGE_API_KEY="pa-test-voyage-0123456789"))
    assert process.returncode == 0, process.stdout + process.stderr
    found = report(process.stdout)
    assert list(found) == ["voyage"]
    assert found["voyage"]["probe voyage-4-lite"].startswith("answered in ")
    [sent] = server.requests(1)
    assert sent["path"].endswith("/v1/embeddings"), sent["path"]
    assert (sent["body"]["model"], sent["body"]["input"]) == ("voyage-4-lite", ["Reply with OK."])
