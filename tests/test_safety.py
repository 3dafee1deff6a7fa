"""The safety check (indgang.safety): the labelled set, the linguistic handling it rests on, the
emergency reply and the configurable crisis lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from indgang.i18n import t
from indgang.safety import SafetyAssessment, assess, check, crisis_lines, crisis_reply, lines_for
from indgang.safety.detector import default_detector
from indgang.safety.model import concepts_in, default_model
from indgang.safety.patterns import Lexicon, PatternError, PatternSet, compile_pattern
from indgang.safety.rules import CATEGORIES, RULES_DIR, load
from indgang.safety.text import Words, fold, split
from indgang.settings import get_settings
from indgang.sms.compose import measure

DATA = Path(__file__).parents[1] / "indgang" / "safety" / "training" / "team.yaml"
MESSAGES = yaml.safe_load(DATA.read_text(encoding="utf-8"))["messages"]
CRISIS = [m for m in MESSAGES if m["crisis"]]
CALM = [m for m in MESSAGES if not m["crisis"]]


def _ids(messages: list[dict]) -> list[str]:
    return [m["text"][:60] for m in messages]


# ---------------------------------------------------------------- the labelled set


def test_the_labelled_set_is_large_and_labelled() -> None:
    assert len(MESSAGES) >= 200 and len(CRISIS) >= 80 and len(CALM) >= 120
    assert len({m["text"] for m in MESSAGES}) == len(MESSAGES), "duplicate messages"
    assert {m["half"] for m in MESSAGES} >= {"a", "b"}
    for m in CRISIS:
        assert m["category"] in CATEGORIES, m
    calm_reasons = {"idiom", "past", "need", "negated", "child_concern", "everyday"}
    assert {m["category"] for m in CALM} == calm_reasons


def test_every_crisis_message_is_caught() -> None:
    missed = [m["text"] for m in CRISIS if not assess(m["text"]).crisis]
    assert not missed, f"recall {1 - len(missed) / len(CRISIS):.3f}; missed: {missed}"


def test_false_alarms_stay_at_most_two_percent() -> None:
    alarms = [m["text"] for m in CALM if assess(m["text"]).crisis]
    assert len(alarms) / len(CALM) <= 0.02, f"false alarms: {alarms}"


@pytest.mark.parametrize("message", CRISIS, ids=_ids(CRISIS))
def test_a_crisis_gets_its_category(message: dict) -> None:
    assert message["category"] in assess(message["text"]).categories


@pytest.mark.parametrize("message", CRISIS, ids=_ids(CRISIS))
def test_a_relative_writing_about_someone_else_is_recognised(message: dict) -> None:
    assert assess(message["text"]).about_other == bool(message.get("about_other"))


def test_a_concern_for_a_child_is_flagged_and_only_then() -> None:
    flagged = {m["text"] for m in CALM if assess(m["text"]).child_concern}
    expected = {m["text"] for m in CALM if m["category"] == "child_concern"}
    assert flagged == expected


# ---------------------------------------------------------------- linguistic handling


@pytest.mark.parametrize(
    "text",
    [
        "jeg er dødtræt af at udfylde skemaer",
        "vi slår tiden ihjel i venteværelset",
        "jeg dør af grin",
        "det tager livet af mig at vente",
        "DØDTRÆT!!! hvornår svarer I",
        "jeg kunne slå ham ihjel når han glemmer sine nøgler",
        "det slår mig at I ikke har svaret",
        "jeg slår mig ned i Odense",
        "min kæreste slog op med mig",
        "this waiting is killing me",
        "I'm dying to hear from you",
        "I'd kill for a cup of coffee",
        "jeg kunne slå mig selv i hovedet over det",
    ],
)
def test_everyday_idioms_are_calm(text: str) -> None:
    assessment = assess(text)
    assert not assessment.crisis and not assessment.child_concern


@pytest.mark.parametrize(
    "text",
    [
        "det er selvmodsigende",  # one letter from "selvmord", but another word
        "vi skal understøtte borgeren",  # one letter from "underret-"
        "vores datter har voldsomme nedsmeltninger",  # "vold" inside a word
        "jeg skal dokumentere min indkomst",  # "do" (= "dø" without ø) starting a longer word
        "dørene på bostedet er låst om natten",
    ],
)
def test_words_are_matched_whole_not_as_substrings(text: str) -> None:
    # the precise layers' contract; what the classifier reads into a sentence is measured on the
    # blind batches (it reads "låst" as English "last", as the folding writes both alike)
    assessment = assess(text)
    assert not {"rules", "concepts"} & set(assessment.layers)
    assert assessment.rules == ()


@pytest.mark.parametrize(
    "text",
    [
        "jeg vil dø",
        "jeg vil doe",
        "jeg vil do",
        "jeg vil dö",
        "jeg vil døøøø",
        "JEG VIL DØ!!!",
        "slå mig selv ihjel",
        "slaa mig selv ihjel",
        "sla mig selv ihjel",
        "skære i mig selv",
        "skaere i mig selv",
        "selvmorstanker",
    ],
)
def test_spellings_with_and_without_danish_letters_are_the_same(text: str) -> None:
    assert assess(text).crisis


def test_folding_gives_one_spelling() -> None:
    assert fold("Dø") == fold("doe") == fold("do") == fold("dö")
    assert fold("slå") == fold("slaa") == fold("sla")
    assert fold("skære") == fold("skaere")
    assert fold("don't") == "dont"
    assert fold("112") == "112"  # digits are never collapsed


def test_texting_spellings_fold_to_the_word() -> None:
    assert fold("ikk") == fold("ik") == fold("ikke")


@pytest.mark.parametrize(
    "text",
    [
        "hjaelp min storebror har min lillesoester om halsen han klemmer og hun kan ikk faa luft",
        "min mand kom hjem nu, han er meget fuld og han slår mig i hovedet",  # not "slå sig selv i hovedet"
        "slår mig selv i hovedet med flasker når trangen kommer",
        "I've been having thoughts of killing myself for about a month now.",  # not "kill for a ..."
        "mand ved busstoppestedet siger han vil smide sig ud foran den næste bus",
        "I am on the top of the parking house at the hospital. I will jump now",
    ],
)
def test_danger_that_an_idiom_or_a_spelling_once_hid(text: str) -> None:
    assert assess(text).crisis


@pytest.mark.parametrize(
    ("text", "crisis"),
    [
        ("politiet er kommet, de tog kniven, han er ok", False),  # a weapon taken away
        ("min ven kom ind og tog kniven fra mig", False),
        ("han tog kniven og gik ud", True),
        ("han har ikke sagt noget om at ville gøre sig selv noget", False),
        ("She hasn't said anything about hurting herself", False),
        ("jeg vil gøre mig selv noget", True),
        ("Mit barnebarn siger, at jeg slår ham ihjel med alle mine spørgsmål", False),
        ("han slår mig ihjel med en kniv", True),
        ("few years back i tried to take my own life. got help and im in a good place now", False),
        ("politiet kom og han har lagt kniven fra sig", False),
        ("Min søn på 8 kan ikke koncentrere sig, og han slår andre børn", False),
        ("naboen tæsker sine børn", True),
        ("De nye regler om kørsel til lægen slår mig ihjel", False),
        (
            "Hun forsøgte at tage sit liv, da hun var ung. Det er over 70 år siden, "
            "og hun har haft et lykkeligt liv.",
            False,
        ),
    ],
)
def test_the_rules_read_what_ends_or_denies_a_danger(text: str, crisis: bool) -> None:
    assert default_detector().assess(text).crisis is crisis


def test_english_do_and_a_phone_not_answered_are_not_danger_words() -> None:
    assert "wish_dead" not in concepts_in("how do i get him to get help")
    assert "wish_dead" in concepts_in("jeg vil bare do")
    assert "body_danger" not in concepts_in("Udlejer svarer ikke når jeg ringer")
    assert "body_danger" in concepts_in("han svarer ikke når jeg rusker i ham")
    assert "body_danger" not in concepts_in("Forældrene reagerer ikke på beskeder")
    assert "body_danger" in concepts_in("hun reagerer ikke på tiltale")
    # "nøgen" without ø is "nogen" (someone)
    assert "child_harm" not in concepts_in("er der nogen der kan hjaelpe min lillebror, han er 10")


def test_a_goodbye_and_then_silence_is_danger_a_landlords_silence_is_not() -> None:
    assert assess("hun skrev farvel til mig og nu er hendes telefon slukket").crisis
    assert "gone_silent" not in concepts_in("Udlejer tager ikke telefonen")


def test_negation_is_specific_to_the_pattern() -> None:
    assert not assess("jeg vil ikke dø").crisis
    assert assess("jeg vil ikke leve mere").crisis  # the negation is part of the danger
    assert not assess("I'm not suicidal").crisis
    assert not assess("jeg tænker ikke på selvmord").crisis
    assert assess("jeg har ikke lyst til at leve").crisis
    assert not assess("jeg har aldrig tænkt på at skade mig selv").crisis


def test_uncertainty_and_blocked_negation_still_alarm() -> None:
    assert assess("jeg ved ikke om jeg har selvmordstanker").crisis
    assert assess("I don't know if I want to live anymore").crisis
    assert assess("jeg kan ikke stoppe med at tænke på selvmord").crisis
    assert assess("I can't stop thinking about killing myself").crisis


def test_a_negation_in_another_clause_does_not_calm() -> None:
    assert assess("jeg har ikke sovet, og jeg vil dø").crisis


def test_the_end_of_a_clause_matters() -> None:
    assert assess("jeg orker ikke mere").crisis
    assert assess("jeg orker ikke mere, jeg vil bare væk").crisis
    assert not assess("jeg orker ikke mere papirarbejde").crisis
    assert assess("I can't take it anymore").crisis
    assert not assess("I can't take it anymore with these forms").crisis


def test_the_distant_past_is_not_acute_unless_it_is_back() -> None:
    assert not assess("jeg forsøgte selvmord for 5 år siden").crisis
    assert not assess("jeg var udsat for vold for 10 år siden og vil gerne tale med nogen").crisis
    assert not assess("hun var selvskadende som teenager").crisis
    assert assess("jeg forsøgte selvmord for 5 år siden og nu har jeg tankerne igen").crisis
    assert assess("jeg forsøgte selvmord i går").crisis


def test_violence_in_the_simple_past_needs_a_recent_time() -> None:
    assert not assess("min eksmand slog mig da vi var gift").crisis
    assert assess("han slog mig i går").crisis
    assert assess("han har slået mig").crisis  # perfect tense: it may still be going on
    assert assess("han slår mig").crisis


def test_the_subject_decides_between_suicide_and_violence() -> None:
    assert assess("jeg vil slå mig ihjel").categories == {"suicide"}
    assert assess("han vil slå mig ihjel").categories == {"violence"}
    assert assess("hvis jeg går, så slår han mig ihjel").categories == {"violence"}  # subject after the verb
    assert not assess("min chef slår mig ihjel hvis jeg kommer for sent").crisis


def test_a_reference_to_someone_else_who_died_is_not_acute() -> None:
    assert not assess("min far døde sidste år og jeg har brug for hjælp til papirerne").crisis
    assert not assess("min bror begik selvmord").crisis
    assert not assess("min bror døde af en overdosis").crisis
    assert assess("min bror har taget en overdosis").crisis


def test_a_relative_writing_about_someone_else() -> None:
    assessment = assess("min søn skrev at han vil slå sig selv ihjel")
    assert assessment.crisis and assessment.about_other and assessment.categories == {"suicide"}
    assert not assess("min stedfar slår mig").about_other  # the writer is the one at risk
    assert assess("min mand drikker hver dag").about_other  # also outside a crisis


def test_a_child_disclosing_abuse() -> None:
    assessment = assess("min stedfar slår mig")
    assert assessment.crisis and assessment.categories == {"child_at_risk", "violence"}
    assert assess("jeg er 12 og har lyst til at dø").young


def test_a_concern_for_someone_elses_child_is_not_a_crisis() -> None:
    assessment = assess("jeg er bekymret for et barn i min opgang")
    assert assessment.child_concern and not assessment.crisis
    assert not assess("jeg er bekymret for mit barn").child_concern  # a question for family guidance
    assert not assess("jeg vil indberette min indkomst").child_concern  # "report" without a child
    acute = assess("naboen tæsker sine børn lige nu")
    assert acute.crisis and not acute.child_concern  # a crisis is never only a concern


def test_neglect_of_someone_elses_child_that_only_the_model_reads_as_danger_is_a_concern_to_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the child in one sentence, what the writer sees in the next; when the learned layer alone
    # reads it as danger (not acute): guidance on reporting it, with 112 if the child is in danger
    # now. The model's score is set, as each retrain moves it.
    told = (
        "The girl next door is maybe 6. She comes to me for food after school almost every day and"
        " her clothes are dirty. I think nobody takes care of her properly. What should I do?"
    )
    real = default_model()

    class ReadsDanger:
        threshold = real.threshold

        def score(self, text: str) -> tuple[float, float]:
            return (0.95, 0.1) if "girl next door" in text else real.score(text)

    monkeypatch.setattr(check, "default_model", ReadsDanger)
    assessment = assess(told)
    assert assessment.layers == () and assessment.child_concern and not assessment.crisis
    monkeypatch.undo()
    # a child telling of their own hunger, and harm a rule names, stay a crisis
    own = "er 13.. vi har ikke haft mad derhjemme siden fredag og mor drikker. jeg er saa sulten"
    assert assess(own).crisis
    assert assess("Pigen ovenpå er 6. Hendes far slår hende hver aften, og hun er altid sulten.").crisis


def test_a_parents_words_on_a_childs_age_and_others_giving_up_raise_no_alarm() -> None:
    # "han er 8" is the son's age, "jeg er alene" the parent: no child telling of harm
    tired = "hej min søn har autisme han er 8. jeg er alene og meget træt. kan han være andet sted nogen dage"
    assert "concept.child_harmed" not in assess(tired).rules
    assert "concept.child_harmed" in assess("er 8 og er alene hjemme og har ikke fået mad siden i går").rules
    assert "suicide.exhausted" not in assess("skolen siger de kan ikke gøre mere for hende").rules
    assert "suicide.exhausted" in assess("jeg kan altså ikke mere").rules


def test_language_of_the_writer() -> None:
    assert assess("I just want to die").language == "en"
    assert assess("kill myself").language == "en"  # too short to guess: the English rule decides
    assert assess("jeg vil dø").language == "da"


def test_the_assessment_names_rules_never_text() -> None:
    assessment = assess("min søn Peter skrev at han vil slå sig selv ihjel i aften")
    assert assessment.rules
    assert all(re.fullmatch(r"[a-z_]+\.[a-z_]+", rule) for rule in assessment.rules)
    with pytest.raises(FrozenInstanceError):
        assessment.crisis = False  # type: ignore[misc]


def test_empty_and_odd_input_is_calm() -> None:
    for text in ["", "   ", "???", "😀", "112"]:
        assessment = assess(text)
        assert not assessment.crisis and assessment.rules == ()


# ---------------------------------------------------------------- patterns and rule files


def _words(pattern: str, text: str, lexicon: dict[str, list[str]] | None = None) -> bool:
    words = split(text)
    masked = [False] * len(words)
    return any(
        p.match_at(words, masked, i) is not None
        for p in compile_pattern(pattern, Lexicon(lexicon or {}))
        for i in range(len(words))
    )


def test_pattern_gaps_anchors_and_exclusions() -> None:
    assert _words("vil dø", "jeg vil bare dø")  # one word may lie between
    assert not _words("vil dø", "jeg vil gerne bare dø")
    assert _words("vil .. dø", "jeg vil gerne bare dø")  # ".." allows up to four
    assert not _words("vil +dø", "jeg vil bare dø")  # "+" allows none
    assert _words("orker ikke mere $", "jeg orker ikke mere, hjælp")
    assert not _words("orker ikke mere $", "jeg orker ikke mere papir")
    assert _words("slår mig !ned", "han slår mig")
    assert not _words("slår mig !ned", "han slår mig ned")
    assert _words("selv? ihjel", "ihjel") and _words("mig selv? ihjel", "mig selv ihjel")
    assert _words("selvmord*", "selvmordstanker") and _words("*vold", "partnervold")
    assert _words("taget #10 piller", "har taget 20 piller") and not _words(
        "taget #10 piller", "taget 2 piller"
    )
    assert _words("@me ihjel", "os ihjel", {"me": ["mig", "os"]})
    assert not _words("vil dø", "jeg vil. dø")  # never across a sentence boundary
    assert _words("if i (was gone|died)", "if i was gone") and _words("if i (was gone|died)", "if i died")
    assert not _words("if i (was gone|died)", "if i gone")
    with pytest.raises(PatternError, match="parentheses"):
        compile_pattern("if (was gone|died", Lexicon({}))


def test_whole_words_tolerate_one_typo_but_stems_do_not() -> None:
    assert _words("overdosis", "overdossis") and _words("overdosis", "ovredosis")
    assert not _words("dræbe", "dræbt")  # short words: exact only
    assert not _words("selvmord*", "selvmodsigende")


def test_the_first_word_index_finds_what_trying_every_pattern_finds() -> None:
    ruleset = load(RULES_DIR)
    texts = [m["text"] for m in MESSAGES] + ["selvmrod", "ovredosis", "20 panodiler", "partnervold i hjemmet"]
    for text in texts:
        words = split(text)
        masked = [False] * len(words)
        for patterns in (ruleset.rules, ruleset.idioms, ruleset.markers):
            indexed = sorted(_found(patterns, words, masked))
            every = sorted(
                (position, found)
                for position, (pattern, _) in enumerate(patterns.entries)
                for start in range(len(words))
                if (found := pattern.match_at(words, masked, start)) is not None
            )
            assert indexed == every, text


def _found(patterns: PatternSet, words: Words, masked: list[bool]) -> list[tuple[int, tuple[int, ...]]]:
    """(entry position, match) for each match `find` reports."""
    positions = {id(payload): i for i, (_, payload) in enumerate(patterns.entries)}
    assert len(positions) == len(patterns.entries)
    return [(positions[id(payload)], found) for payload, found in patterns.find(words, masked)]


def test_the_rule_files_load_and_are_checked(tmp_path: Path) -> None:
    ruleset = load(RULES_DIR)
    assert ruleset.marker_scopes["past"] == "sentence"
    for bad, message in [
        ("rules: [{id: x.y, categories: [suicide], da: ['@nowhere dø']}]", "unknown lexicon entry"),
        ("rules: [{id: x.y, categories: [danger], da: ['dø']}]", "unknown categories"),
        ("rules: [{id: x.y, categories: [suicide], da: ['vil|$ dø']}]", "operator inside"),
        ("rules: [{id: x.y, categories: [suicide], requires: nope, da: ['dø']}]", "unknown marker"),
        ("lexicon: {w: [yes]}\nrules: [{id: x.y, categories: [suicide], da: ['@w']}]", "not a word"),
    ]:
        (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
        with pytest.raises(PatternError, match=message):
            load(tmp_path)


# ---------------------------------------------------------------- the emergency reply


def _assessment(categories: set[str], language: str = "da", **flags: bool) -> SafetyAssessment:
    return SafetyAssessment(
        crisis=True,
        categories=frozenset(categories),
        child_concern=False,
        language=language,  # type: ignore[arg-type]
        about_other=flags.get("about_other", False),
        young=flags.get("young", False),
        rules=(),
    )


def test_the_reply_to_suicidal_thoughts() -> None:
    reply = crisis_reply(assess("jeg har lyst til at dø"))
    assert "112" in reply and "70 201 201" in reply
    assert reply.index("112") < reply.index("70 201 201")  # 112 first
    assert "1888" not in reply and "116 111" not in reply
    assert reply.startswith(t("safety.crisis.opening.self", "da"))


def test_the_reply_fits_the_situation() -> None:
    violence = crisis_reply(assess("min mand slår mig"))
    assert "1888" in violence and "70 201 201" not in violence
    child = crisis_reply(assess("min stedfar slår mig"))
    assert "116 111" in child and "1888" in child
    assert child.startswith(t("safety.crisis.opening.child", "da"))
    young = crisis_reply(assess("jeg er 14 og vil ikke leve mere"))
    assert "70 201 201" in young and "116 111" in young
    relative = crisis_reply(assess("min søn skrev at han vil slå sig selv ihjel"))
    assert relative.startswith(t("safety.crisis.opening.other", "da"))


def test_the_reply_is_in_the_writers_language() -> None:
    english = crisis_reply(assess("I just want to die"))
    assert english.startswith(t("safety.crisis.opening.self", "en")) and "112" in english
    assert crisis_reply(assess("I just want to die"), "da").startswith(t("safety.crisis.opening.self", "da"))


@pytest.mark.parametrize("language", ["da", "en"])
def test_every_reply_fits_in_two_plain_sms(language: str) -> None:
    categories = sorted(CATEGORIES)
    for size in range(1, len(categories) + 1):
        for combo in combinations(categories, size):
            for about_other in (False, True):
                for young in (False, True):
                    reply = crisis_reply(
                        _assessment(set(combo), language, about_other=about_other, young=young)
                    )
                    sms = measure(reply)
                    assert sms.encoding == "GSM-7" and sms.segments <= 2, reply
                    assert "112" in reply


def test_lines_for_each_category() -> None:
    def numbers(categories: set[str], **flags: bool) -> list[str]:
        return [line.number for line in lines_for(_assessment(categories, **flags))]

    assert numbers({"suicide"}) == ["112", "70 201 201"]
    assert numbers({"self_harm"}) == ["112", "70 201 201"]
    assert numbers({"violence"}) == ["112", "1888"]
    assert numbers({"child_at_risk", "violence"}) == ["112", "116 111", "1888"]
    assert numbers({"suicide"}, young=True) == ["112", "70 201 201", "116 111"]
    assert numbers(set()) == ["112", "70 201 201"]  # never 112 alone


def test_child_concern_guidance_names_the_report() -> None:
    assert "underretning" in t("safety.child_concern", "da")
    assert "underretning" in t("safety.child_concern", "en")


# ---------------------------------------------------------------- the crisis lines as data


def test_crisis_lines_as_data_for_tap_to_call() -> None:
    lines = crisis_lines("da")
    assert lines[0].emergency and lines[0].tel_uri == "tel:112"
    by_id = {line.id: line for line in lines}
    assert by_id["livslinien"].tel_uri == "tel:+4570201201"
    assert by_id["boernetelefonen"].number == "116 111"
    assert by_id["lev_uden_vold"].number == "1888"
    assert all(line.audience and line.hours for line in lines)
    assert crisis_lines("en")[1].audience != crisis_lines("da")[1].audience


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_lines_are_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    own = tmp_path / "lines.yaml"
    own.write_text(
        yaml.safe_dump(
            {
                "lines": [
                    {
                        "id": "emergency",
                        "name": "112",
                        "number": "112",
                        "tel": "112",
                        "emergency": True,
                        "for": {"da": "Akut fare"},
                        "hours": {"da": "døgnåben"},
                    },
                    {
                        "id": "local",
                        "name": "Kommunens akuttelefon",
                        "number": "12 34 56 78",
                        "tel": "+4512345678",
                        "categories": ["suicide", "violence"],
                        "for": {"da": "Borgere i kommunen"},
                        "hours": {"da": "døgnåben"},
                    },
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("CRISIS_LINES_FILE", str(own))
    get_settings.cache_clear()
    reply = crisis_reply(assess("jeg har lyst til at dø"))
    assert "12 34 56 78" in reply and "70 201 201" not in reply
    assert crisis_lines("en")[1].audience == "Borgere i kommunen"  # Danish when no English text


def test_a_lines_file_without_an_emergency_number_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    own = tmp_path / "lines.yaml"
    own.write_text("lines: []\n", encoding="utf-8")
    monkeypatch.setenv("CRISIS_LINES_FILE", str(own))
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="emergency"):
        crisis_lines("da")
