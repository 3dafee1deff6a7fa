"""The layered safety check: text normalisation against Unicode tricks, the learned layer, the
risk concepts, two tiers, the conversation so far, and a failing layer that makes it careful."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from indgang import conversation, handoff, safety, transcript
from indgang.dialogue import Reply
from indgang.inbound import Inbound
from indgang.records.db import Database
from indgang.safety import check
from indgang.safety.model import concepts_in, default_model, search_dialogues
from indgang.safety.normalise import clean
from indgang.safety.text import split

# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "text",
    [
        "jeg vil begå selv\u200bmord",  # zero-width space inside the word
        "jeg vil begå selv\u00admord",  # soft hyphen
        "jeg vil begå selv\u2060mord",  # word joiner
        "ｊｅｇ ｖｉｌ ｂｅｇå ｓｅｌｖｍｏｒｄ",  # full-width letters
        "jeg vil begå sеlvmord",  # Cyrillic "е"
        "I want to kill mys\u200celf tonight",  # zero-width non-joiner
    ],
)
def test_hidden_characters_and_look_alikes_do_not_hide_danger(text: str) -> None:
    assert safety.assess(text).crisis


@pytest.mark.parametrize(
    "text",
    [
        "jeg er ፩ år og min far slår mig",  # Ethiopic digit: isdigit() but not int()
        "han tog ٣٠ piller",  # Arabic-Indic digits are decimal
        "\ud800 jeg vil dø \udfff",  # lone surrogates
        "²³ piller",  # superscript digits
        "\x00\x1b[31m\u202e",  # control and bidi characters
        "a" * 5000,
    ],
)
def test_odd_unicode_never_crashes_the_check(text: str) -> None:
    assessment = safety.assess(text)
    assert assessment.risk in {"none", "concern", "acute"}
    assert "error" not in assessment.layers


def test_cleaning_keeps_the_words_and_drops_what_hides_them() -> None:
    assert clean("selv\u00admord") == "selvmord"
    assert clean("ｈｅｊ\u200b") == "hej"
    assert "\ufffd" in clean("a\ud800b")
    assert clean("to\u00a0ord") == "to ord"


# ---------------------------------------------------------------- layers and tiers


def test_the_model_loads_from_the_project_and_scores_quickly() -> None:
    model = default_model()
    assert 0.05 < model.threshold < 0.95
    danger, acute = model.score("jeg har 60 panodil og en flaske vodka klar til i aften")
    assert danger >= model.threshold and 0.0 <= acute <= 1.0
    calm, _ = model.score("hvor mange panodil må man tage om dagen mod hovedpine")
    assert calm < model.threshold


def test_concepts_combine_into_danger_that_no_phrase_names() -> None:
    found = concepts_in("har 40 kodimagnyl og sprut klar, skrev farvel til min søster")
    assert {"means", "finality", "alcohol"} <= found
    assessment = safety.assess("har 40 kodimagnyl og sprut klar, skrev farvel til min søster")
    assert assessment.risk == "acute" and "concepts" in assessment.layers


def test_a_past_resolved_story_with_means_is_calm() -> None:
    text = "for 12 år siden tog jeg en masse piller, i dag har jeg det godt og arbejder som pædagog"
    assert not safety.assess(text).crisis


def test_a_possible_danger_gets_a_caring_check_in_with_112() -> None:
    assessment = safety.assess("jeg kan ikke se nogen mening med noget mere og vil bare sove for evigt")
    assert assessment.crisis
    if assessment.risk == "concern":  # the tier comes from the model; both answers give 112
        reply = safety.crisis_reply(assessment, "da")
        assert "Er du i fare lige nu?" in reply and "112" in reply and "70 201 201" in reply


def test_the_concern_reply_fits_two_sms_in_both_languages() -> None:
    base = check.default_assessment("x")
    from dataclasses import replace

    from indgang.sms.compose import measure

    for lang in ("da", "en"):
        for who in ({"suicide"}, {"child_at_risk"}, {"violence"}):
            assessment = replace(base, crisis=True, risk="concern", categories=frozenset(who))
            text = safety.crisis_reply(assessment, lang)
            assert "112" in text
            assert measure(text).segments <= 2, text


def test_a_failing_layer_counts_as_a_concern_and_logs_no_text(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(text: str) -> str:
        raise RuntimeError(f"boom on {text}")

    monkeypatch.setattr(check, "_model_risk", broken)
    with caplog.at_level(logging.ERROR):
        assessment = safety.assess("hej, hvornår har værestedet åbent")
    assert assessment.crisis and assessment.risk == "concern" and assessment.layers == ("error",)
    assert "værestedet" not in caplog.text and "boom" not in caplog.text
    assert any(getattr(r, "layer", None) == "model" for r in caplog.records)


@pytest.mark.parametrize(
    ("danger", "in_danger", "risk"),
    [(0.8, False, "concern"), (0.95, False, "acute"), (0.8, True, "acute")],
)
def test_the_model_alone_is_acute_only_when_it_is_sure_or_the_emergency_goes_on(
    monkeypatch: pytest.MonkeyPatch, danger: float, in_danger: bool, risk: str
) -> None:
    # "sover i bilen. hvor kan jeg sove inde i nat" read at P 0.84 must not hold the next turns.
    monkeypatch.setattr(check, "_model_risk", lambda text, by_sentence=False: ("acute", danger, 0.9))
    assessment = safety.assess("sover i bilen. hvor kan jeg sove inde i nat", in_danger=in_danger)
    assert assessment.risk == risk and assessment.layers == ("model",)


DENIALS = ["nej, jeg er ikke i fare", "jeg tænker ikke på selvmord", "I'm not suicidal"]


@pytest.mark.parametrize("text", DENIALS)
def test_a_short_plain_denial_is_not_read_by_the_classifier(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    # the answer a check-in hopes for; its words are the danger's (the classifier read 0.87)
    monkeypatch.setattr(check, "_model_risk", lambda text, by_sentence=False: ("acute", 0.99, 0.9))
    assert not safety.assess(text).crisis


def test_rules_alone_still_alarm_when_the_model_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "_model_risk", lambda text: (_ for _ in ()).throw(OSError("gone")))
    assessment = safety.assess("jeg vil slå mig selv ihjel")
    assert assessment.risk == "acute" and {"rules", "error"} <= set(assessment.layers)


@pytest.mark.parametrize(
    "text",
    [
        "I undervisningen skal vi øve selvmordsrisikovurdering i rollespil. Har I materiale om det?",
        "Year 9 are reading Macbeth, lots of murder and a suicide in it. Do you have resources?",
        "I hold a premises licence and want my staff trained in what to do if someone overdoses",
        "jeg er den eneste min bror har og jeg kan ikke mere. hvordan får han en fast kontaktperson",
    ],
)
def test_a_dangers_bare_name_as_a_topic_is_calm(text: str) -> None:
    """A weak rule (the name alone) fired here; the model gives the topic no support."""
    assessment = safety.assess(text)
    assert not assessment.crisis, assessment


@pytest.mark.parametrize(
    "text",
    [
        "selvmordstanker igen",
        "selvmord",
        "overdose",
        "jeg har selvmordstanker igen i aften",
        "jeg kan ikke mere",
        "jeg kan ikke mere. vil bare sove og aldrig vågne igen",
    ],
)
def test_a_dangers_bare_name_from_a_person_still_alarms(text: str) -> None:
    assert safety.assess(text).risk == "acute"


def test_a_weak_rule_alarms_alone_when_the_model_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """No support can be had from a layer that failed: the name alone counts again."""
    monkeypatch.setattr(check, "_model_risk", lambda text: (_ for _ in ()).throw(OSError("gone")))
    text = "I undervisningen skal vi øve selvmordsrisikovurdering i rollespil. Har I materiale om det?"
    assessment = safety.assess(text)
    assert assessment.risk == "acute" and "rules" in assessment.layers


def test_an_abbreviation_does_not_end_the_sentence() -> None:
    words = split("hun indtog ca. 40 tabletter kl. 14")
    assert len(set(words.sentence)) == 1
    text = "Borger oplyser, at hun for ca. 2 timer siden indtog ca. 40 tabletter paracetamol 500 mg."
    assert safety.assess(text).risk == "acute"


@pytest.mark.parametrize(
    ("text", "crisis"),
    [
        ("To børn i lejlighed 4, ca 5 og 8 år. Har været alene i tre dage. De beder om mad.", True),
        ("Ved besøg var hendes 4-årige søn alene hjemme uden voksne og med tomt køleskab.", True),
        ("min mor på 80 har været alene i 2 dage, hun har ingen børn", False),
        ("jeg var lige ved at slå mig ihjel på det glatte fortov, kan jeg få ispigge?", False),
        ("Jeg slår altid mit barnebarn i backgammon haha, er der en klub?", False),
        (
            "Hvad skal vi chauffører gøre hvis en passager fortæller os at han har selvmordstanker? "
            "Spørger for arbejdsmiljøudvalget, ingen konkret sag.",
            False,
        ),
        ("min søn siger han vil dø", True),
        ("kommer ned paa kontoret i morgen med en hammer og smadrer hende", True),
    ],
)
def test_seen_children_near_misses_games_and_what_ifs(text: str, crisis: bool) -> None:
    assert safety.assess(text).crisis is crisis


# ---------------------------------------------------------------- the conversation so far


def test_the_turns_before_complete_the_picture() -> None:
    first = "min bror skrev i nat at han var ked af at være til besvær for alle"
    second = "nu tager han ikke telefonen og hans dør er låst"
    alone = safety.assess(second)
    together = safety.assess(second, [first])
    assert together.crisis
    assert "window" in together.layers or alone.crisis


def test_the_search_batches_dialogues_teach_calm_conversations(tmp_path) -> None:
    (tmp_path / "blind_z.yaml").write_text(
        "dialogues:\n"
        "- name: a\n  turns:\n"
        "  - {user: min søn drikker hver dag, crisis: false}\n"
        "  - {user: hvad koster det}\n"
        "  - {user: nu har han taget alle pillerne, crisis: true}\n",
        encoding="utf-8",
    )
    team = "dialogues:\n- name: b\n  turns:\n  - {user: hej}\n"
    (tmp_path / "team.yaml").write_text(team, encoding="utf-8")
    examples = search_dialogues(tmp_path)
    texts = [e.text for e in examples]
    # every turn alone and the running window up to it, labelled as that turn
    first, second = "min søn drikker hver dag", "hvad koster det"
    assert texts[:3] == [first, second, f"{first}\n{second}"]
    labels = [e.crisis for e in examples if e.source == "blind_z_dialogues"]
    assert labels == [False, False, False, True, True]
    # outsiders' dialogues help set the threshold; the team's own do not
    calibrating = {e.source: e.calibrates for e in examples}
    assert calibrating == {"blind_z_dialogues": True, "team_dialogues": False}


def test_a_window_starts_after_the_turn_that_raised_the_alarm(tmp_path) -> None:
    # The gateway reads the turns after an alarm without it; learning "hun er hos mig nu" read
    # together with the pills as calm taught the model that the pills were calm.
    (tmp_path / "blind_z.yaml").write_text(
        "dialogues:\n"
        "- name: a\n  turns:\n"
        "  - {user: min mor drikker, crisis: false}\n"
        "  - {user: hun har taget alle sine piller, crisis: true}\n"
        "  - {user: ambulancen er her nu, crisis: false}\n"
        "  - {user: tak for hjælpen, crisis: false}\n",
        encoding="utf-8",
    )
    examples = [(e.text, e.crisis) for e in search_dialogues(tmp_path)]
    assert ("min mor drikker\nhun har taget alle sine piller", True) in examples
    calm_with_pills = [text for text, crisis in examples if not crisis and "piller" in text]
    assert calm_with_pills == []
    assert ("ambulancen er her nu\ntak for hjælpen", False) in examples


class ScriptedModel:
    """The learned layer with set scores, so the window's own logic is what is tested."""

    threshold = 0.7

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, text: str) -> tuple[float, float]:
        return self.scores.get(text, 0.0), 0.9


@pytest.mark.parametrize(
    ("before", "together", "alarms"),
    [
        (0.65, 0.73, False),  # a neutral question after a worried message tips nothing
        (0.30, 0.95, True),  # the second message completes the picture
        (0.75, 0.76, True),  # the turns before were danger already, missed one by one
    ],
)
def test_the_window_alarms_when_the_turn_adds_to_the_danger(
    monkeypatch: pytest.MonkeyPatch, before: float, together: float, alarms: bool
) -> None:
    worry, question = "min bror drikker og har fået gulsot", "hvor ligger det henne, jeg kører ikke bil"
    model = ScriptedModel({worry: before, f"{worry}\n{question}": together})
    monkeypatch.setattr(check, "default_model", lambda: model)
    assessment = check.assess(question, [worry])
    assert ("window" in assessment.layers) is alarms


class RecordingEngine:
    """Stands in for Rasa in this domain test: the gateway's own logic is under test here; the
    real engine is tested end to end with the stack."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]:
        self.seen.append(text)
        return [Reply(text="Her er nogle muligheder.")]

    async def record_staff_turn(self, conversation_id: str, text: str, staff: str) -> None:
        return None


@pytest.mark.anyio
async def test_once_flagged_a_conversation_stays_flagged_and_first_for_staff(
    records: Database, redis, base_settings
) -> None:
    engine = RecordingEngine()
    inbound = Inbound(redis, records, engine, base_settings)
    calm = await inbound.handle("conv-risk-1", "hej, jeg har et spørgsmål om bostøtte")
    assert not any(r.crisis for r in calm.replies) and engine.seen
    acute = await inbound.handle("conv-risk-1", "jeg har 50 sovepiller her og tager dem alle i aften")
    assert acute.replies[0].crisis and acute.replies[0].risk == "acute"
    assert (await conversation.get(redis, "conv-risk-1")).risk == "acute"
    state = await handoff.get(redis, "conv-risk-1")
    assert state.priority == handoff.Priority.URGENT and state.reason == "crisis"
    seen = len(engine.seen)
    # what a person adds in that moment is still the emergency: 112 again, staff already told
    hurry = await inbound.handle("conv-risk-1", "skynd jer, jeg er alene hjemme på Rosenvej 4")
    assert hurry.replies[0].crisis and hurry.replies[0].risk == "acute" and "112" in hurry.replies[0].text
    # help has come: the turn is calm, the next one too, and the flag stays for staff
    safe = await inbound.handle("conv-risk-1", "ambulancen er kommet nu")
    assert not any(r.crisis for r in safe.replies)
    later = await inbound.handle("conv-risk-1", "ok tak")
    assert not any(r.crisis for r in later.replies)
    assert len(engine.seen) == seen  # the person, not the bot, answers while staff are called
    assert (await conversation.get(redis, "conv-risk-1")).risk == "acute"  # a calm turn never un-flags
    assert (await handoff.get(redis, "conv-risk-1")).priority == handoff.Priority.URGENT


@pytest.mark.parametrize(
    ("text", "continues"),
    [
        ("skynd jer plz", True),
        ("hun er 5", True),
        ("det var ca 20 panodil og nogle andre", True),
        ("Her name is Sofie, 34, grey Toyota Yaris.", True),
        ("ok tak", True),  # thanks for the numbers: nothing says help has come
        ("Hun taler meget utydeligt. Sekretæren ringer 112 nu.", True),  # calling is not come
        ("Hun svarer ikke mere. Jeg bryder døren op, ambulancen er ringet efter", True),
        ("ok I'm calling 112 now, they're asking for her address", True),
        ("my mom came home and got me down, shes with me now", False),
        ("Politiet har fat i ham, ingen er kommet til skade", False),
        ("Paramedics just got here and opened the door, they're taking care of him", False),
        ("min kontaktperson er her nu og har ringet til politiet. jeg er inde hos hende", False),
        ("har slukket motoren og min bror er her nu, han tager mig med hjem", False),
        ("Vi fik ham op, politiet har ham nu og han er ok.", False),
        ("Politiet har fået hende ned, hun er uskadt", False),
        ("ambulancen er her nu", False),
        ("politiet har været her. hvor kan hun bo bagefter", False),
        ("Police found her, she's safe and in hospital now", False),
        ("ok police are on their way. I'm shaken, is there anyone I can talk to?", False),
    ],
)
def test_after_an_acute_alarm_the_danger_goes_on_until_help_has_come(text: str, continues: bool) -> None:
    assert safety.danger_continues(text) is continues


@pytest.mark.anyio
async def test_an_alarm_is_not_raised_again_from_the_same_old_turns(
    records: Database, redis, base_settings
) -> None:
    inbound = Inbound(redis, records, RecordingEngine(), base_settings)
    await inbound.handle("conv-risk-2", "jeg vil slå mig selv ihjel")
    assert await inbound._unalarmed_turns("conv-risk-2") == []
    await inbound.handle("conv-risk-2", "hvad med bolig")
    turns = await inbound._unalarmed_turns("conv-risk-2")
    assert turns == [] or "ihjel" not in " ".join(turns)
    messages, _ = await transcript.read(redis, "conv-risk-2")
    assert [m.sender for m in messages][:2] == ["user", "bot"]


@pytest.mark.anyio
async def test_the_turn_that_says_help_has_come_starts_no_window(
    records: Database, redis, base_settings
) -> None:
    # Its words are the emergency's: read with the next turn, they made "Thanks for staying with
    # me" an alarm (blind batch ai).
    inbound = Inbound(redis, records, RecordingEngine(), base_settings)
    conv = "conv-risk-settled"
    await inbound.handle(conv, "he took all his lithium pills with a bottle of wine and he's slurring")
    help_came = "Paramedics just got here and opened the door, they're taking care of him"
    settled = await inbound.handle(conv, help_came)
    assert not any(reply.crisis for reply in settled.replies)
    assert await inbound._unalarmed_turns(conv) == []
    thanks = await inbound.handle(conv, "Thanks for staying with me")
    assert not any(reply.crisis for reply in thanks.replies)
    assert await inbound._unalarmed_turns(conv) == ["Thanks for staying with me"]


@pytest.mark.anyio
async def test_a_concern_goes_high_in_the_queue_below_acute(redis) -> None:
    await handoff.request(redis, "normal", 60, reason="request_human")
    await handoff.request(redis, "concern", 60, reason="concern", priority=handoff.Priority.HIGH)
    await handoff.request(redis, "acute", 60, reason="crisis", priority=handoff.Priority.URGENT)
    positions = [await handoff.queue_position(redis, c) for c in ("acute", "concern", "normal")]
    assert positions == [1, 2, 3]
    # a later concern never lowers an acute conversation
    await handoff.request(redis, "acute", 60, reason="concern", priority=handoff.Priority.HIGH)
    assert (await handoff.get(redis, "acute")).priority == handoff.Priority.URGENT


@pytest.mark.anyio
async def test_risk_is_raised_only_upward(redis) -> None:
    assert await conversation.raise_risk(redis, "r", "concern", 60) == "concern"
    assert await conversation.raise_risk(redis, "r", "acute", 60) == "acute"
    assert await conversation.raise_risk(redis, "r", "concern", 60) == "acute"
    assert await redis.ttl("indgang:conv:r") > 0


@pytest.mark.anyio
async def test_a_lone_surrogate_is_stored_and_answered_not_a_crash(
    records: Database, redis, base_settings
) -> None:
    inbound = Inbound(redis, records, RecordingEngine(), base_settings)
    turn = await inbound.handle("conv-surrogate-1", "hej \ud800 jeg vil gerne have hjælp til bolig")
    assert turn.replies
    messages, _ = await transcript.read(redis, "conv-surrogate-1")
    assert messages[0].text == "hej \ufffd jeg vil gerne have hjælp til bolig"


def test_requests_that_arrive_while_the_model_is_trained_wait_for_it_and_train_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After a change of the training data, the first concurrent requests each trained their own
    model (minutes each, on two cores); one trains, the others read it from the cache."""
    import indgang.learned
    import indgang.safety.model as model_module

    trained = default_model()
    fits: list[int] = []

    def slow_fit(examples: Any) -> Any:
        fits.append(1)
        time.sleep(0.5)
        return trained

    monkeypatch.setattr(indgang.learned, "CACHE_ROOT", tmp_path)  # an empty cache: train
    monkeypatch.setattr(model_module, "fit", slow_fit)
    default_model.cache_clear()
    try:
        with ThreadPoolExecutor(4) as pool:
            models = list(pool.map(lambda _: default_model(), range(4)))
    finally:
        default_model.cache_clear()  # the next test loads the real cache again
    assert fits == [1]
    assert all(m.threshold == trained.threshold for m in models)
