"""The named providers, as data: one row per real service, and the wire protocol it speaks.

Each row says what a user would otherwise look up in the provider's documentation: the base URL
its official SDK or OpenAI-compatibility guide gives (for OpenAI-compatible hosts, the URL the
client appends ``/chat/completions`` to), the environment variable its docs and SDK read the key
from, and deviations worth knowing (optional headers are notes, not defaults; no row found needs
a fixed header).  Local servers have no key variable.

A base URL may contain ``{placeholders}`` for values only the user knows (an account id, a
workspace host); ``params`` names the environment variable each one is read from, and
:mod:`failover_client.providers.registry` fills them (or raises an error naming what is missing).
For Vertex and Bedrock the placeholders show how the class builds its URL from the same values
(see BUILDS_OWN_URL).

Nothing here does I/O or imports a protocol module: this module is only the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from ..errors import InvalidArgumentError

# protocol -> (module under failover_client.providers, class name); one line per protocol
PROTOCOLS: Mapping[str, tuple[str, str]] = {
    "openai": ("openai", "OpenAIProvider"),
    "anthropic": ("anthropic", "AnthropicProvider"),
    "gemini": ("gemini", "GeminiProvider"),
    "vertex": ("vertex", "VertexProvider"),
    "bedrock": ("bedrock", "BedrockProvider"),
    "cohere": ("cohere", "CohereProvider"),
    "ollama": ("ollama", "OllamaProvider"),
    "azure": ("azure", "AzureOpenAIProvider"),
}
# OpenAI's Responses API (POST {base}/responses), which the services of these rows serve besides
# their row's protocol: create(name, api="responses") builds its class (module, class) for them.
RESPONSES_API, RESPONSES_ROWS = ("openai_responses", "OpenAIResponsesProvider"), frozenset({"openai", "azure", "xai"})

# Protocols whose class builds its own URL (Vertex's "global" location has no host prefix,
# Bedrock signs for its region): a row's params that are known (an argument, a set variable)
# are given to the class as arguments, and the class applies its own defaults to the rest.
BUILDS_OWN_URL = frozenset({"vertex", "bedrock"})
LOCAL_HOSTS = ("localhost", "127.0.0.1")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# A URL parameter is one host label or path segment: nothing that could change the URL's shape.
_PARAM_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ProviderSpec:
    """One named provider."""

    name: str  # lowercase; may contain dashes and dots, never a slash
    title: str  # the provider's own name for itself
    protocol: str  # a key of PROTOCOLS
    base_url: str  # may contain {placeholders}, each listed in params
    api_key_env: str | None  # None: a local server, or a class with credentials of its own (Vertex, Bedrock)
    notes: str = ""
    params: Mapping[str, str] = field(default_factory=dict)  # placeholder -> environment variable
    # False for a service that answers only other endpoints (Voyage and Jina serve /embeddings):
    # nothing that walks the catalog (doctor's probe, tests) should send it a chat request.
    chat: bool = True

    @property
    def local(self) -> bool:
        """A server on this machine (plain http, no key)."""
        return urlsplit(self.base_url).hostname in LOCAL_HOSTS

    def placeholders(self) -> list[str]:
        """The URL parameters, each once, in order."""
        return list(dict.fromkeys(_PLACEHOLDER.findall(self.base_url)))

    def param_value(self, param: str, raw: str) -> str:
        """A URL parameter as it goes into the URL.  It may be given as a URL
        (``https://adb-1.azuredatabricks.net/``, as ``DATABRICKS_HOST`` often is): the scheme
        and slashes are dropped; anything else that is not a plain host name or identifier is
        refused, so a parameter can never send the request (and the key) somewhere else."""
        text = raw.strip()
        value = (text.split("://", 1)[1] if text.startswith(("https://", "http://")) else text).strip("/")
        if not _PARAM_VALUE.match(value):
            raise InvalidArgumentError(f"{self.name}: {param} must be a host name or identifier, got {raw!r}")
        return value

    def url(self, values: Mapping[str, str]) -> str:
        """The base URL with each placeholder filled from ``values`` (see :meth:`param_value`)."""
        return _PLACEHOLDER.sub(lambda m: self.param_value(m.group(1), values[m.group(1)]), self.base_url)


def _row(name: str, title: str, protocol: str, base_url: str, api_key_env: str | None, notes: str = "", *,
         chat: bool = True, **params: str) -> ProviderSpec:
    return ProviderSpec(name, title, protocol, base_url, api_key_env, notes, params, chat)


_CONVENTION = "key variable by convention (the docs name none)"

CATALOG: tuple[ProviderSpec, ...] = (
    # --- native protocols ----------------------------------------------------------------------
    _row("openai", "OpenAI", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    _row("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    _row("gemini", "Google Gemini API", "gemini", "https://generativelanguage.googleapis.com/v1beta",
         "GEMINI_API_KEY", "also reads GOOGLE_API_KEY; the key goes in x-goog-api-key"),
    _row("vertex", "Google Vertex AI", "vertex",
         "https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}", None,
         "Gemini and Claude models; an OAuth token: pass access_token= or token_provider=; "
         "location defaults to global (https://aiplatform.googleapis.com/v1)",
         project="GOOGLE_CLOUD_PROJECT", location="GOOGLE_CLOUD_LOCATION"),
    _row("bedrock", "Amazon Bedrock", "bedrock", "https://bedrock-runtime.{region}.amazonaws.com", None,
         "SigV4 from the standard AWS variables, or a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK; "
         "the region may also come from AWS_DEFAULT_REGION", region="AWS_REGION"),
    _row("cohere", "Cohere", "cohere", "https://api.cohere.com", "CO_API_KEY", "v2 chat"),
    _row("ollama", "Ollama", "ollama", "http://localhost:11434", None, "native /api/chat"),
    _row("ollama-cloud", "Ollama Cloud", "ollama", "https://ollama.com", "OLLAMA_API_KEY", "native /api/chat"),
    _row("azure", "Azure OpenAI", "azure", "https://{endpoint}/openai/v1", "AZURE_OPENAI_API_KEY",
         "model = deployment name; api-key header or Entra token", endpoint="AZURE_OPENAI_ENDPOINT"),
    # --- hosted, OpenAI-compatible ---------------------------------------------------------------
    _row("groq", "Groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY",
         "reasoning in 'reasoning'; stream usage also under x_groq"),
    _row("together", "Together AI", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    _row("fireworks", "Fireworks AI", "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY",
         "model ids like accounts/fireworks/models/..."),
    _row("deepseek", "DeepSeek", "openai", "https://api.deepseek.com", "DEEPSEEK_API_KEY",
         "reasoning in 'reasoning_content'; cache hits in prompt_cache_hit_tokens"),
    _row("mistral", "Mistral AI", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    _row("xai", "xAI", "openai", "https://api.x.ai/v1", "XAI_API_KEY"),
    _row("perplexity", "Perplexity", "openai", "https://api.perplexity.ai", "PERPLEXITY_API_KEY",
         "no /v1; answers add citations and search_results"),
    _row("openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
         "optional HTTP-Referer and X-Title headers; reasoning in 'reasoning'; errors may arrive mid-stream"),
    _row("cerebras", "Cerebras", "openai", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    _row("sambanova", "SambaNova Cloud", "openai", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY"),
    _row("deepinfra", "DeepInfra", "openai", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
    _row("novita", "Novita AI", "openai", "https://api.novita.ai/openai", "NOVITA_API_KEY",
         "legacy base https://api.novita.ai/v3/openai"),
    _row("hyperbolic", "Hyperbolic", "openai", "https://api.hyperbolic.xyz/v1", "HYPERBOLIC_API_KEY"),
    _row("nebius", "Nebius Token Factory", "openai", "https://api.tokenfactory.nebius.com/v1", "NEBIUS_API_KEY",
         "formerly Nebius AI Studio (api.studio.nebius.com)"),
    _row("moonshot", "Moonshot AI (Kimi)", "openai", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"),
    _row("moonshot-cn", "Moonshot AI (Kimi), China", "openai", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY",
         "separate accounts from api.moonshot.ai"),
    _row("zhipu", "Zhipu AI BigModel (GLM)", "openai", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY",
         "/v4, not /v1"),
    _row("zai", "Z.ai (GLM)", "openai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY", "/v4, not /v1"),
    _row("dashscope", "Alibaba Cloud Model Studio (Qwen)", "openai",
         "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY",
         "international region; reasoning in 'reasoning_content'"),
    _row("dashscope-cn", "Alibaba Cloud Bailian (Qwen), China", "openai",
         "https://dashscope.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY", "Beijing region"),
    _row("baichuan", "Baichuan", "openai", "https://api.baichuan-ai.com/v1", "BAICHUAN_API_KEY"),
    _row("friendli", "FriendliAI", "openai", "https://api.friendli.ai/serverless/v1", "FRIENDLI_TOKEN",
         "dedicated endpoints: https://api.friendli.ai/dedicated/v1"),
    _row("nvidia", "NVIDIA NIM (API catalog)", "openai", "https://integrate.api.nvidia.com/v1", "NVIDIA_API_KEY",
         "self-hosted NIM containers serve the same API on http://localhost:8000/v1"),
    _row("cloudflare", "Cloudflare Workers AI", "openai",
         "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1", "CLOUDFLARE_API_TOKEN",
         "models like @cf/meta/llama-3.1-8b-instruct", account_id="CLOUDFLARE_ACCOUNT_ID"),
    _row("cloudflare-ai-gateway", "Cloudflare AI Gateway", "openai",
         "https://gateway.ai.cloudflare.com/v1/{account_id}/{gateway_id}/compat", "CLOUDFLARE_API_TOKEN",
         "model 'provider/model'; the token works with stored keys or unified billing, "
         "else pass the upstream provider's key as api_key",
         account_id="CLOUDFLARE_ACCOUNT_ID", gateway_id="CLOUDFLARE_GATEWAY_ID"),
    _row("databricks", "Databricks Model Serving", "openai", "https://{host}/serving-endpoints", "DATABRICKS_TOKEN",
         "model = serving endpoint name", host="DATABRICKS_HOST"),
    _row("huggingface", "Hugging Face Inference Providers", "openai", "https://router.huggingface.co/v1", "HF_TOKEN",
         "model ids org/model[:provider]"),
    _row("vercel", "Vercel AI Gateway", "openai", "https://ai-gateway.vercel.sh/v1", "AI_GATEWAY_API_KEY",
         "model ids provider/model"),
    _row("siliconflow", "SiliconFlow", "openai", "https://api.siliconflow.com/v1", "SILICONFLOW_API_KEY",
         "international site"),
    _row("siliconflow-cn", "SiliconFlow, China", "openai", "https://api.siliconflow.cn/v1", "SILICONFLOW_API_KEY",
         "separate accounts from api.siliconflow.com"),
    _row("volcengine", "Volcengine Ark (Doubao)", "openai", "https://ark.cn-beijing.volces.com/api/v3", "ARK_API_KEY",
         "/api/v3, not /v1"),
    _row("minimax", "MiniMax", "openai", "https://api.minimax.io/v1", "MINIMAX_API_KEY"),
    _row("minimax-cn", "MiniMax, China", "openai", "https://api.minimaxi.com/v1", "MINIMAX_API_KEY",
         "separate accounts from api.minimax.io"),
    _row("stepfun", "StepFun", "openai", "https://api.stepfun.com/v1", "STEPFUN_API_KEY"),
    _row("ai21", "AI21 Labs", "openai", "https://api.ai21.com/studio/v1", "AI21_API_KEY", "Jamba models"),
    _row("upstage", "Upstage (Solar)", "openai", "https://api.upstage.ai/v1", "UPSTAGE_API_KEY"),
    _row("baseten", "Baseten Model APIs", "openai", "https://inference.baseten.co/v1", "BASETEN_API_KEY"),
    _row("featherless", "Featherless AI", "openai", "https://api.featherless.ai/v1", "FEATHERLESS_API_KEY"),
    _row("nscale", "Nscale", "openai", "https://inference.api.nscale.com/v1", "NSCALE_API_KEY"),
    _row("scaleway", "Scaleway Generative APIs", "openai", "https://api.scaleway.ai/v1", "SCW_SECRET_KEY"),
    _row("ovhcloud", "OVHcloud AI Endpoints", "openai", "https://oai.endpoints.kepler.ai.cloud.ovh.net/v1",
         "OVH_AI_ENDPOINTS_ACCESS_TOKEN", "a free tier answers without a key, rate-limited"),
    _row("chutes", "Chutes", "openai", "https://llm.chutes.ai/v1", "CHUTES_API_KEY"),
    _row("llama", "Meta Llama API", "openai", "https://api.llama.com/compat/v1", "LLAMA_API_KEY"),
    _row("crusoe", "Crusoe Managed Inference", "openai", "https://api.inference.crusoecloud.com/v1", "CRUSOE_API_KEY"),
    _row("wandb", "W&B Inference (CoreWeave)", "openai", "https://api.inference.wandb.ai/v1", "WANDB_API_KEY",
         "optional OpenAI-Project: team/project header attributes usage"),
    _row("inception", "Inception Labs (Mercury)", "openai", "https://api.inceptionlabs.ai/v1", "INCEPTION_API_KEY"),
    _row("heroku", "Heroku Managed Inference", "openai", "https://us.inference.heroku.com/v1", "INFERENCE_KEY",
         "the add-on also sets INFERENCE_URL"),
    _row("snowflake", "Snowflake Cortex", "openai", "https://{account}.snowflakecomputing.com/api/v2/cortex/v1",
         "SNOWFLAKE_TOKEN", "programmatic access token", account="SNOWFLAKE_ACCOUNT"),
    _row("portkey", "Portkey AI Gateway", "openai", "https://api.portkey.ai/v1", "PORTKEY_API_KEY",
         "model '@provider/model' from the Portkey model catalog"),
    _row("requesty", "Requesty", "openai", "https://router.requesty.ai/v1", "REQUESTY_API_KEY"),
    _row("helicone", "Helicone AI Gateway", "openai", "https://ai-gateway.helicone.ai/v1", "HELICONE_API_KEY"),
    _row("venice", "Venice AI", "openai", "https://api.venice.ai/api/v1", "VENICE_API_KEY"),
    _row("reka", "Reka", "openai", "https://api.reka.ai/v1", "REKA_API_KEY"),
    _row("qianfan", "Baidu Qianfan", "openai", "https://qianfan.baidubce.com/v2", "QIANFAN_API_KEY",
         "/v2, not /v1; optional appid header; " + _CONVENTION),
    _row("poe", "Poe", "openai", "https://api.poe.com/v1", "POE_API_KEY", "model = bot name"),
    _row("xiaomi", "Xiaomi MiMo", "openai", "https://api.xiaomimimo.com/v1", "XIAOMI_API_KEY", _CONVENTION),
    _row("gmi", "GMI Cloud", "openai", "https://api.gmi-serving.com/v1", "GMI_API_KEY"),
    _row("publicai", "Public AI", "openai", "https://api.publicai.co/v1", "PUBLICAI_API_KEY"),
    _row("nano-gpt", "NanoGPT", "openai", "https://nano-gpt.com/api/v1", "NANOGPT_API_KEY"),
    _row("aihubmix", "AIHubMix", "openai", "https://aihubmix.com/v1", "AIHUBMIX_API_KEY"),
    _row("digitalocean", "DigitalOcean Gradient AI Serverless Inference", "openai", "https://inference.do-ai.run/v1",
         "GRADIENT_MODEL_ACCESS_KEY", "a model access key"),
    _row("vultr", "Vultr Serverless Inference", "openai", "https://api.vultrinference.com/v1",
         "VULTR_INFERENCE_API_KEY", "the inference key, not the Vultr cloud API key; " + _CONVENTION),
    _row("io-net", "io.net Intelligence", "openai", "https://api.intelligence.io.solutions/api/v1",
         "IOINTELLIGENCE_API_KEY"),
    _row("cortecs", "Cortecs", "openai", "https://api.cortecs.ai/v1", "CORTECS_API_KEY", "EU routing"),
    _row("berget", "Berget AI", "openai", "https://api.berget.ai/v1", "BERGET_API_KEY"),
    _row("regolo", "Regolo.ai", "openai", "https://api.regolo.ai/v1", "REGOLO_API_KEY"),
    _row("stackit", "STACKIT AI Model Serving", "openai",
         "https://api.openai-compat.model-serving.eu01.onstackit.cloud/v1", "STACKIT_API_KEY",
         "an auth token of the model serving product; " + _CONVENTION),
    _row("zenmux", "ZenMux", "openai", "https://zenmux.ai/api/v1", "ZENMUX_API_KEY"),
    _row("morph", "Morph", "openai", "https://api.morphllm.com/v1", "MORPH_API_KEY"),
    _row("nova", "Amazon Nova (developer API)", "openai", "https://api.nova.amazon.com/v1", "NOVA_API_KEY"),
    _row("hunyuan", "Tencent Hunyuan", "openai", "https://api.hunyuan.cloud.tencent.com/v1", "HUNYUAN_API_KEY"),
    _row("clarifai", "Clarifai", "openai", "https://api.clarifai.com/v2/ext/openai/v1", "CLARIFAI_PAT",
         "a personal access token; model ids like openai/chat-completion/models/gpt-4o"),
    _row("infomaniak", "Infomaniak AI Tools", "openai", "https://api.infomaniak.com/2/ai/{product_id}/openai/v1",
         "INFOMANIAK_API_KEY", _CONVENTION, product_id="INFOMANIAK_PRODUCT_ID"),
    _row("oci", "Oracle OCI Generative AI", "openai",
         "https://inference.generativeai.{region}.oci.oraclecloud.com/openai/v1", "OCI_GENAI_API_KEY",
         "an OCI Generative AI API key (IAM request signing is not supported here)", region="OCI_REGION"),
    _row("longcat", "Meituan LongCat", "openai", "https://api.longcat.chat/openai/v1", "LONGCAT_API_KEY",
         _CONVENTION),
    _row("aimlapi", "AI/ML API", "openai", "https://api.aimlapi.com/v1", "AIML_API_KEY", _CONVENTION),
    _row("tinfoil", "Tinfoil", "openai", "https://inference.tinfoil.sh/v1", "TINFOIL_API_KEY",
         "plain HTTPS: the enclave attestation the tinfoil SDK performs is not done here"),
    _row("nearai", "NEAR AI Cloud", "openai", "https://cloud-api.near.ai/v1", "NEARAI_API_KEY", _CONVENTION),
    # --- hosted, embeddings only (OpenAI's /embeddings, with their own parameters) ---------------
    _row("voyage", "Voyage AI", "openai", "https://api.voyageai.com/v1", "VOYAGE_API_KEY",
         "embeddings only (no chat); an al- key (MongoDB Atlas) needs base URL https://ai.mongodb.com/v1",
         chat=False),
    _row("jina", "Jina AI", "openai", "https://api.jina.ai/v1", "JINA_API_KEY", "embeddings only (no chat)",
         chat=False),
    # --- gateways and servers you run ------------------------------------------------------------
    _row("litellm", "LiteLLM Proxy", "openai", "http://localhost:4000", "LITELLM_API_KEY",
         "a virtual or master key of your proxy"),
    _row("lmstudio", "LM Studio", "openai", "http://localhost:1234/v1", None),
    _row("vllm", "vLLM", "openai", "http://localhost:8000/v1", None,
         "a server started with --api-key needs api_key=; reasoning in 'reasoning_content'"),
    _row("llamacpp", "llama.cpp server", "openai", "http://localhost:8080/v1", None,
         "a server started with --api-key needs api_key="),
    _row("sglang", "SGLang", "openai", "http://localhost:30000/v1", None),
    _row("tgi", "Hugging Face Text Generation Inference", "openai", "http://localhost:8080/v1", None,
         "the model field is ignored"),
    _row("localai", "LocalAI", "openai", "http://localhost:8080/v1", None),
    _row("jan", "Jan", "openai", "http://localhost:1337/v1", None),
    _row("llamafile", "llamafile", "openai", "http://localhost:8080/v1", None),
    _row("xinference", "Xorbits Inference", "openai", "http://127.0.0.1:9997/v1", None),
    _row("docker-model-runner", "Docker Model Runner", "openai", "http://localhost:12434/engines/v1", None,
         "from containers: http://model-runner.docker.internal/engines/v1"),
    _row("koboldcpp", "KoboldCpp", "openai", "http://localhost:5001/v1", None),
    _row("gpt4all", "GPT4All", "openai", "http://localhost:4891/v1", None),
    _row("text-generation-webui", "text-generation-webui", "openai", "http://127.0.0.1:5000/v1", None),
    _row("lmdeploy", "LMDeploy", "openai", "http://localhost:23333/v1", None),
    _row("tabbyapi", "TabbyAPI", "openai", "http://127.0.0.1:5000/v1", None),
    _row("aphrodite", "Aphrodite Engine", "openai", "http://localhost:2242/v1", None),
    _row("mlc-llm", "MLC LLM", "openai", "http://127.0.0.1:8000/v1", None),
    _row("mistral.rs", "mistral.rs", "openai", "http://localhost:1234/v1", None),
)

# The OpenAI-protocol hosts that serve ``POST {base}/embeddings``, and the dialect of its body
# (providers/embeddings.py): OpenAI's own, or the parameters Mistral, Voyage and Jina use instead
# of ``dimensions``.  Hosts listed from their own documentation or server source
# (protocols-embeddings.md §1.6); local servers serve it when started with an embedding model.
# Voyage and Jina serve only embeddings (their rows say ``chat=False``).
EMBEDDINGS: Mapping[str, str] = {
    "openai": "openai",
    "mistral": "mistral",
    "voyage": "voyage",
    "jina": "jina",
    "nebius": "openai",
    "openrouter": "openai",
    "litellm": "openai",
    "vllm": "openai",
    "llamacpp": "openai",
    "sglang": "openai",
    "lmstudio": "openai",
    "localai": "openai",
}
_CATALOG_NAMES = frozenset(spec.name for spec in CATALOG)


def serves_embeddings(name: str) -> bool:
    """Whether the OpenAI-protocol provider ``name`` serves ``/embeddings``: the catalog's hosts
    marked above, and any provider under a name of its own (a proxy, a test server)."""
    return name in EMBEDDINGS or name not in _CATALOG_NAMES
