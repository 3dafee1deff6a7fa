"""The safety check for danger to life or health, and the emergency reply.

    assessment = assess(text, context)   # every inbound message, before anything else
    if assessment.crisis:                 # risk "acute" or "concern"
        reply = crisis_reply(assessment)  # 112 first, then the crisis lines that fit
    elif after_an_acute_alarm and danger_continues(text):
        ...                               # still the emergency: 112 again, staff told
    elif assessment.child_concern:
        ...                               # guidance on reporting: t("safety.child_concern", lang)

The layers are described in check.py. Rules, idioms, concepts and word lists are data in
`rules/*.yaml`, the learned layer's examples in `training/*.yaml`; the crisis lines are data in the file
that the setting `crisis_lines_file` names (default `crisis_lines.yaml` here).
"""

from indgang.safety.check import assess, danger_continues
from indgang.safety.detector import SafetyAssessment
from indgang.safety.lines import CrisisLine, crisis_lines, crisis_reply, lines_for
from indgang.safety.model import WINDOW_TURNS

__all__ = [
    "WINDOW_TURNS",
    "CrisisLine",
    "SafetyAssessment",
    "assess",
    "crisis_lines",
    "crisis_reply",
    "danger_continues",
    "lines_for",
]
