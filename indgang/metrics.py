"""Operational metrics (Prometheus). Labels never carry conversation ids, numbers or text."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter("indgang_messages_total", "Inbound citizen messages", ["channel"])
CRISES = Counter("indgang_crisis_total", "Messages answered with the emergency reply", ["channel"])
SAFETY_LAYERS = Counter(
    "indgang_safety_layer_alarms_total",
    "Alarms by the safety check's layer that raised them",
    ["layer", "risk"],
)
ENGINE_FAILURES = Counter("indgang_engine_failures_total", "Turns the dialogue engine could not answer")
TURN_SECONDS = Histogram(
    "indgang_turn_seconds",
    "Time to answer one inbound message",
    ["route"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30),
)
