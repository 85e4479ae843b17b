"""The callback fuzz: property-based fuzzing of every platform callback endpoint through the real
app (the tests and what they check: test_callback_fuzz.py). Its modules:

- `support`: database snapshots and watches, the app with both platforms, held inbox workers,
  crafted ciphertexts, log watching, the hypothesis runner (case counts: tests/case_counts.py);
- `runner`: `Fuzzer` (sends a built case, checks the properties) and `fuzz` (one endpoint and
  layer, `EXAMPLES`), with the requests, answers and endpoints they deal in;
- `reasons`: each endpoint's documented refusals; `world`: the seeded ticket and its cards, and
  the people the cases act as;
- `strategies`: the strategy pieces the endpoints share;
- `wecom_cases`, `dingtalk_events`, `dingtalk_robot`, `dingtalk_card`, `cut_short`: each
  endpoint's cases (dataclasses, strategies, builders); `explicit`: the cases run first.
"""

import pkgutil

import pytest

# the checks live in these modules, not in the test module: pytest rewrites their asserts too, so a
# failure reports as it would in a test module
pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))
