"""Twilio's webhooks: inbound SMS (`POST /twilio/sms`) and delivery status callbacks
(`POST /twilio/status`). Both are signed by Twilio; a missing or wrong signature is a 403.

An inbound SMS is handled (stored, safety-checked, answered by the bot or routed to staff)
and its replies queued durably before Twilio gets its answer, an empty TwiML document; the
outbox worker then sends them through the REST API, the same path staff replies take. While
Redis is unreachable the SMS is kept in the local spool and answered in the TwiML itself
(indgang/spool.py).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.datastructures import FormData
from twilio.twiml.messaging_response import MessagingResponse

from indgang.redis_store import UNREACHABLE
from indgang.sms import delivery, twilio_api
from indgang.sms.channel import InboundSms, SmsChannel
from indgang.sms.sender import SmsSender
from webhook.deps import InboundDep, RedisDep, SettingsDep, SpoolDep
from webhook.errors import ApiError
from webhook.schemas import CONVERSATION_ID_PATTERN, error_responses

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])

FORM_TYPE = "application/x-www-form-urlencoded"
_CONVERSATION = re.compile(CONVERSATION_ID_PATTERN)
FormT = TypeVar("FormT", bound=BaseModel)
Sid = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[0-9a-fA-F]{32}$")]


class InboundForm(BaseModel):
    """The fields of Twilio's inbound-message webhook that Indgang reads (it sends many more)."""

    model_config = ConfigDict(extra="ignore")

    MessageSid: Sid
    From: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    Body: Annotated[str, StringConstraints(max_length=1600)] = ""
    NumMedia: Annotated[int, Field(ge=0, le=10)] = 0


class StatusForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    MessageSid: Sid
    MessageStatus: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,20}$")]
    ErrorCode: Annotated[str, StringConstraints(pattern=r"^\d{0,10}$")] = ""


def _twiml(text: str = "") -> Response:
    answer = MessagingResponse()
    if text:
        answer.message(text)
    return Response(str(answer), media_type="application/xml")


def _valid(model: type[FormT], form: FormData) -> FormT:
    try:
        return model.model_validate(dict(form))
    except ValidationError as error:
        # Never echo the input: it is a citizen's message or number.
        detail = error.errors(include_url=False, include_input=False, include_context=False)
        raise ApiError(422, "invalid_request", detail) from None


class TwilioSigned:
    """A dependency: the webhook's form, when Twilio's signature over the public URL and the
    fields is right; else 403."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def __call__(self, request: Request, settings: SettingsDep) -> FormData:
        signature = request.headers.get("X-Twilio-Signature")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        form = await request.form() if content_type == FORM_TYPE else None
        if form is None or not twilio_api.signature_valid(
            settings, self.path, request.url.query, form, signature
        ):
            log.warning(
                "twilio webhook rejected: missing or wrong signature",
                extra={
                    "path": self.path,
                    "signature_present": bool(signature),
                    "form_encoded": form is not None,
                },
            )
            raise ApiError(403, "forbidden", "invalid Twilio signature")
        return form


SignedInbound = Annotated[FormData, Depends(TwilioSigned(twilio_api.INBOUND_PATH))]
SignedStatus = Annotated[FormData, Depends(TwilioSigned(twilio_api.STATUS_PATH))]


@router.post("/sms", response_class=Response, responses={403: {"description": "bad signature"}})
async def inbound_sms(
    form: SignedInbound,
    redis: RedisDep,
    settings: SettingsDep,
    inbound: InboundDep,
    spool: SpoolDep,
) -> Response:
    fields = _valid(InboundForm, form)
    sms = InboundSms(fields.MessageSid, fields.From, fields.Body, fields.NumMedia)
    channel = SmsChannel(redis, settings, inbound, SmsSender(redis, settings))
    try:
        await channel.receive_once(sms)  # the replies are queued; the outbox worker sends them
    except UNREACHABLE:
        # Twilio does not retry an SMS webhook that failed: answer now, in the TwiML itself.
        return _twiml(await channel.receive_offline(sms, spool))
    return _twiml()


@router.post(
    "/status", status_code=204, responses={403: {"description": "bad signature"}, **error_responses(503)}
)
async def delivery_status(
    form: SignedStatus, request: Request, redis: RedisDep, settings: SettingsDep
) -> Response:
    fields = _valid(StatusForm, form)
    conversation_id = request.query_params.get("conversation", "")
    if not _CONVERSATION.match(conversation_id):
        raise ApiError(422, "invalid_request", "conversation")
    await delivery.advance(
        redis, conversation_id, fields.MessageSid, fields.MessageStatus, fields.ErrorCode,
        settings.conversation_ttl_seconds,
    )  # fmt: skip
    return Response(status_code=204)
