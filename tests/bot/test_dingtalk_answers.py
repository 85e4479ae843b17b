"""The rendezvous between a DingTalk card-click answer and the processing of that click."""

from __future__ import annotations

from bot.dingtalk.answers import ClickAnswers

confirmed: list[bool] = []


async def confirm(ok: bool) -> None:
    confirmed.append(ok)


async def test_an_answer_offered_while_the_route_waits_is_taken() -> None:
    answers = ClickAnswers()
    future = answers.expect("k")  # the route expects an answer before the click is processed
    assert answers.offer("k", {"status": "done"}, confirm) is True
    offer = await answers.wait("k", future, 5.0)
    assert offer is not None and offer.params == {"status": "done"} and offer.confirm is confirm


async def test_a_late_answer_is_refused_so_the_notifier_updates_the_card() -> None:
    answers = ClickAnswers()
    future = answers.expect("k")
    assert await answers.wait("k", future, 0) is None  # the budget ran out
    assert answers.offer("k", {"status": "done"}, confirm) is False


async def test_a_declined_answer_ends_the_wait_at_once() -> None:
    answers = ClickAnswers()
    future = answers.expect("k")
    answers.decline("k")
    assert await answers.wait("k", future, 60.0) is None  # no waiting out the budget


async def test_an_answer_nobody_expects_is_refused() -> None:
    assert ClickAnswers().offer("nobody", {}, confirm) is False
