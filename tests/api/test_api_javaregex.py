"""Java → Python regex translation: the dialect differences that change a verdict."""

from __future__ import annotations

import pytest

from forklift.api.javaregex import Unsupported, compile_java
from forklift.api.validation import service_model


@pytest.mark.parametrize(("pattern", "good", "bad"), [
    ("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", ["a", "a-b", "a--b", "a" * 63], ["", "-a", "a-", "a_b", "a" * 64]),
    ("arn:[\\p{Alnum}\\-]+:lambda:[\\p{Alnum}\\-]+:[0-9]{12}:function:.*",
     ["arn:aws:lambda:us-east-1:123456789012:function:f"], ["arn:awsé:lambda:us-east-1:123456789012:function:f"]),
    ("([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)", ["Grüße 12 ½", "日本語", ""], ["a!b", "tab\there"]),
    ("\\A\\S[\\p{Print}]*\\z", ["model.tar.gz", "a b"], [" lead", "a\n", "aé"]),
    ("\\p{ASCII}*", ["plain text\t"], ["naïve"]),
    ("[\\S]+", ["registry/repo:tag"], ["with space", "no\u00a0break" + "\n"]),
    (".*", ["anything at all"], ["line\nbreak", "carriage\rreturn", "next\u0085line", "sep\u2028arator"]),
    ("^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?$", ["ok-1"], ["ok-1\n\n", "-x"]),
    ("[\\w-_]*", ["snake_and-kebab"], ["dot.ted", "ünicode"]),
    ("\\d+", ["0123"], ["٣"]),  # Java's \d is ASCII-only
    ("[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*", ["emoji 😀\t"], ["bell\x07"]),
    ("(?<word>ab)c(?<=bc)", ["abc"], ["ab"]),
    ("\\Qa.b\\E", ["a.b"], ["axb"]),
])
def test_java_semantics(pattern: str, good: list[str], bad: list[str]) -> None:
    compiled = compile_java(pattern)
    for text in good:
        assert compiled.fullmatch(text), (pattern, text)
    for text in bad:
        assert not compiled.fullmatch(text), (pattern, text)


def test_dollar_allows_one_final_line_terminator_like_java() -> None:
    compiled = compile_java("abc$")
    assert compiled.fullmatch("abc")
    assert compiled.match("abc\n") and compiled.match("abc\r\n")
    assert not compiled.fullmatch("abc\n")  # matches() still needs the whole input consumed


@pytest.mark.parametrize("pattern", ["[a-z&&[^e]]", "[\\P{L}x]", "\\R"])
def test_unsupported_constructs_are_refused_not_guessed(pattern: str) -> None:
    with pytest.raises(Unsupported):
        compile_java(pattern)


@pytest.mark.parametrize("service", ["sagemaker", "sagemaker-runtime", "logs"])
def test_every_pattern_in_the_models_compiles(service: str) -> None:
    model = service_model(service)
    patterns = {model.shape_for(n).metadata.get("pattern") for n in model.shape_names} - {None}
    for pattern in patterns:
        compile_java(pattern)


def test_a_pattern_that_backtracks_exponentially_under_re_gets_a_verdict() -> None:
    # SageMaker's ClusterSchedulerPriorityClassName: under `re`, 28 characters took seconds and each
    # one more doubles it; 200 would never finish.
    compiled = compile_java("[a-z0-9]([-a-z0-9]*[a-z0-9]){0,39}?")
    assert not compiled.fullmatch("a" * 200 + "!")
    assert compiled.fullmatch("a" * 40) and compiled.fullmatch("a-b--c")


@pytest.mark.parametrize(("pattern", "text", "verdict"), [
    ("\\s", "\x0b", True),  # Java's \s has \x0b, RE2's has not: kept on `re`
    ("(?i)k", "\u212a", False),  # Java's (?i) folds ASCII only (the Kelvin sign is not k)
    ("a\\z", "a", True), ("[\\u00e9]x", "éx", True), ("\\x{1F600}", "😀", True),
])
def test_what_re2_reads_otherwise_keeps_java_meaning(pattern: str, text: str, verdict: bool) -> None:
    assert bool(compile_java(pattern).fullmatch(text)) is verdict


def test_a_count_past_re2s_cap_is_split_not_left_to_backtracking() -> None:
    # SageMaker's RepositoryUrl: RE2 caps a count at 1000, and under `re` 20 path segments never end.
    compiled = compile_java("https://([.\\-_a-zA-Z0-9]+/?){3,1016}")
    assert not compiled.fullmatch("https://" + "a/" * 200 + "!")
    assert compiled.fullmatch("https://git.example.com/org/repo") and not compiled.fullmatch("https://a/b")
    assert compiled.fullmatch("https://" + "a/" * 1016) and not compiled.fullmatch("https://" + "a/" * 1017)
