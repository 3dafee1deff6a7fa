"""The safety check for danger to life or health, and the emergency reply.

    assessment = assess(text)            # every inbound message, before anything else
    if assessment.crisis:
        reply = crisis_reply(assessment)  # 112 first, then the crisis lines that fit
    elif assessment.child_concern:
        ...                               # guidance on reporting: t("safety.child_concern", lang)

Rules, idioms and word lists are data in `rules/*.yaml`; the crisis lines are data in the file
that the setting `crisis_lines_file` names (default `crisis_lines.yaml` here).
"""

from indgang.safety.detector import SafetyAssessment, assess
from indgang.safety.lines import CrisisLine, crisis_lines, crisis_reply, lines_for

__all__ = ["CrisisLine", "SafetyAssessment", "assess", "crisis_lines", "crisis_reply", "lines_for"]
