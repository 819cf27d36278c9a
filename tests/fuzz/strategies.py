"""Hypothesis strategies for hostile input: JSON that is almost right, JSON that is wrong, and raw bytes.

`messages(valid)` mixes, for one topic:
  * the valid shape `valid` with one field replaced by something nasty;
  * arbitrary JSON values (NaN, huge integers, NUL, long strings, nesting);
  * raw bytes (not UTF-8, not JSON, empty).
`generate(strategy, n)` draws `n` examples with Hypothesis's own engine.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# How many generated messages per consumer / files: small in `make test`, 1,000 / 200 in `make test-chaos`.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FILES = int(os.environ.get("FUZZ_FILES", str(max(EXAMPLES // 5, 8))))

nasty_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(["a", "\x00", "é", "\u202e", "=", "\n", '"']), max_size=30),
    st.text(min_size=250, max_size=400),
    st.just("=HYPERLINK(\"http://x\")"),
)
nasty_number = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.integers(min_value=2**31 - 3, max_value=2**31 + 3),
    st.integers(min_value=2**63 - 3, max_value=2**63 + 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(0), st.just(-1),
)
scalars = st.one_of(st.none(), st.booleans(), nasty_number, nasty_text)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(nasty_text, children, max_size=4),
    max_leaves=12,
)
deep = st.integers(min_value=30, max_value=1500).map(lambda n: "[" * n + "]" * n)


def encode(value: Any) -> bytes:
    """JSON text as any client may send it: NaN and Infinity tokens included."""
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def near_valid(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """The valid shape with one field changed, dropped, or a nasty extra field."""
    fields = sorted(valid)

    def mutate(choice: tuple[str, Any, str]) -> bytes:
        field, value, how = choice
        data = dict(valid)
        if how == "replace":
            data[field] = value
        elif how == "drop":
            data.pop(field, None)
        else:
            data["extra\x00" if isinstance(value, bool) else "extra"] = value
        return encode(data)

    return st.tuples(st.sampled_from(fields), json_values, st.sampled_from(["replace", "replace", "drop", "extra"])).map(mutate)


def messages(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(encode(valid)),
        near_valid(valid),
        near_valid(valid),
        json_values.map(encode),
        deep.map(str.encode),
        st.binary(max_size=64),
    )


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """`n` examples of `strategy`, drawn by Hypothesis (no shrinking: this is for volume)."""
    drawn: list[Any] = []

    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn
