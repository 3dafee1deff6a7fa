from indgang.language import guess_language


def test_clear_english_and_danish_are_told_apart() -> None:
    assert guess_language("I need help with alcohol") == "en"
    assert guess_language("my son has autism, what can we do") == "en"
    assert guess_language("jeg har brug for hjælp") == "da"
    assert guess_language("min mand drikker hver dag") == "da"


def test_too_short_to_tell() -> None:
    assert guess_language("ok") is None
    assert guess_language("2") is None
