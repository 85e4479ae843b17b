"""The rendezvous between a DingTalk card-click answer and the processing of that click."""

from __future__ import annotations

from bot.dingtalk.answers import ClickAnswers


async def test_an_answer_offered_while_the_route_waits_is_taken() -> None:
    answers = ClickAnswers()
    future = answers.expect("k")  # the route expects an answer before the click is processed
    assert answers.offer("k", {"status": "done"}) is True
    assert await answers.wait("k", future, 5.0) == {"status": "done"}


async def test_a_late_answer_is_refused_so_the_notifier_updates_the_card() -> None:
    answers = ClickAnswers()
    future = answers.expect("k")
    assert await answers.wait("k", future, 0) is None  # the budget ran out
    assert answers.offer("k", {"status": "done"}) is False


async def test_an_answer_nobody_expects_is_refused() -> None:
    assert ClickAnswers().offer("nobody", {}) is False
