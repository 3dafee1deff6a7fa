"""FastAPI dependencies: routes ask for what they need, the app's lifespan provides it."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from indgang.inbound import Inbound
from indgang.settings import Settings
from indgang.staff.console import StaffConsole
from webhook.state import GatewayState


def gateway_state(request: Request) -> GatewayState:
    return request.app.state.gateway


StateDep = Annotated[GatewayState, Depends(gateway_state)]


def settings(state: StateDep) -> Settings:
    return state.settings


def redis(state: StateDep) -> aioredis.Redis:
    return state.redis


def inbound(state: StateDep) -> Inbound:
    return state.inbound


SettingsDep = Annotated[Settings, Depends(settings)]
RedisDep = Annotated[aioredis.Redis, Depends(redis)]
InboundDep = Annotated[Inbound, Depends(inbound)]


def staff_console(state: StateDep) -> StaffConsole:
    return StaffConsole(state.redis, state.settings, state.inbound.engine)


ConsoleDep = Annotated[StaffConsole, Depends(staff_console)]
