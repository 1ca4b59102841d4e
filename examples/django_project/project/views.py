"""POST /ask {"question": "..."} answers with JSON; POST /stream streams the answer as
Server-Sent Events.  Failing providers before the answer begins give a JSON 502/503."""

import json

from django.http import JsonResponse
from django.views.decorators.http import require_POST

from failover_client import AllProvidersFailedError, CompletionRequest, Message, ProviderError
from failover_client.contrib.django import get_client, streaming_response
from failover_client.web import error_body


def _question(request):
    return CompletionRequest("gpt-5.5", [Message.user(json.loads(request.body)["question"])], max_tokens=500)


@require_POST
def ask(request):
    try:
        answer = get_client().complete(_question(request))
    except (AllProvidersFailedError, ProviderError) as exc:
        status, body = error_body(exc)
        return JsonResponse(body, status=status)
    return JsonResponse({"text": answer.text, "provider": answer.provider})


@require_POST
def stream(request):
    return streaming_response(_question(request))
