"""What the answers cost, in US dollars: a price table per model applied to each response's token usage.

    table = PriceTable()                                  # the published prices below
    priced = table.price(usage, "gpt-realtime-2025-08-28")  # a dated snapshot takes its family's prices
    priced.usd, priced.label                              # 0.0123, "$0.0123"

A realtime model bills each response's input again and again (the whole conversation goes in each time), by
kind (text, audio, image), with cached input at a fraction of the price, and its output by kind. So a
response costs

    (text in - cached text) x text_in + cached text x cached_text_in + (the same for audio and image)
    + text out x text_out + audio out x audio_out          (prices in USD per 1M tokens)

The usage's `cached_tokens_details` says which kind the cached tokens were; cached tokens a server did not
split by kind are priced as uncached (an upper bound) and the figure says so. Input transcription (the
`gpt-4o-mini-transcribe` text of what you said) is billed apart by the provider and is not in here.

The offline engine (`parley-offline`) costs nothing. A model the table has no price for is "no price for
MODEL", never $0. Users edit the table (`PriceTable.overrides` / `from_setting`, kept in the settings under
`PRICES_KEY`); a budget (`CostMeter`) says once when the conversation's cost reaches it. Plain data, no I/O.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping

from .usage import TokenUsage

__all__ = ["ModelPrice", "PriceTable", "Priced", "CostTotal", "CostMeter", "PUBLISHED", "OFFLINE_MODEL",
           "PRICE_FIELDS", "FIELD_LABELS", "PRICES_KEY", "BUDGET_KEY", "money", "budget_text", "parse_budget"]

#: The settings keys: the user's changes to the table ({model: {field: USD per 1M, ...}}) and the budget (USD).
PRICES_KEY = "pricing.models"
BUDGET_KEY = "pricing.budget_usd"
#: The embedded engine's model name (`desktop.engine.session_state.ENGINE_MODEL`): it costs nothing.
OFFLINE_MODEL = "parley-offline"
FREE_TEXT = "free (offline)"

#: The eight prices of a model, USD per 1M tokens, in the order the dialog shows them.
PRICE_FIELDS = ("text_in", "cached_text_in", "audio_in", "cached_audio_in", "image_in", "cached_image_in",
                "text_out", "audio_out")
FIELD_LABELS = {
    "text_in": "text in", "cached_text_in": "cached text in", "audio_in": "audio in",
    "cached_audio_in": "cached audio in", "image_in": "image in", "cached_image_in": "cached image in",
    "text_out": "text out", "audio_out": "audio out",
}
#: The highest price accepted, USD per 1M tokens (a typo such as 3200 instead of 32 still fits; 1e9 does not).
MAX_PRICE = 10_000.0


@dataclass(frozen=True)
class ModelPrice:
    """One model's prices in USD per 1M tokens, with where they come from and of when."""

    text_in: float = 0.0
    cached_text_in: float = 0.0
    audio_in: float = 0.0
    cached_audio_in: float = 0.0
    image_in: float = 0.0
    cached_image_in: float = 0.0
    text_out: float = 0.0
    audio_out: float = 0.0
    as_of: str = ""  # "2026-12-07": the day the figures were read (or edited)
    source: str = ""  # where they were read, or "edited by you"

    def figures(self) -> tuple[float, ...]:
        return tuple(getattr(self, f) for f in PRICE_FIELDS)

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {f: getattr(self, f) for f in PRICE_FIELDS}
        record.update(as_of=self.as_of, source=self.source)
        return record

    @classmethod
    def from_record(cls, record: Any) -> "ModelPrice":
        """From `to_record`'s data; ValueError with a sentence a user can act on when a figure is not a price."""
        if not isinstance(record, dict):
            raise ValueError("not a table of prices")
        values: dict[str, Any] = {}
        for name in PRICE_FIELDS:
            raw = record.get(name, 0.0)
            values[name] = check_price(raw, FIELD_LABELS[name])
        values["as_of"] = str(record.get("as_of") or "")[:40]
        values["source"] = str(record.get("source") or "")[:300]
        return cls(**values)


def check_price(raw: Any, what: str = "a price") -> float:
    """A price in USD per 1M tokens from a number or text ("32", "$0.40"); ValueError saying what is wrong."""
    if isinstance(raw, bool):
        raise ValueError(f"{what}: {raw!r} is not a number")
    if isinstance(raw, str):
        text = raw.strip().lstrip("$").strip().replace(",", "")
        try:
            raw = float(text) if text else 0.0
        except ValueError:
            raise ValueError(f"{what}: {raw.strip()!r} is not a number of dollars") from None
    if not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ValueError(f"{what}: {raw!r} is not a number")
    if raw < 0:
        raise ValueError(f"{what}: a price cannot be below 0")
    if raw > MAX_PRICE:
        raise ValueError(f"{what}: ${raw:g} per 1M tokens is more than ${MAX_PRICE:,.0f}; is it per 1M tokens?")
    return float(raw)


_LOOKED_UP = "2026-12-07"
_GA_SOURCE = ("OpenAI model pages (developers.openai.com/api/docs/models), read on 2026-12-07")

#: The provider's published prices, USD per 1M tokens, as read on the day in `as_of`. Each entry's `source`
#: says what could be confirmed; edit them in Connection → Prices and budget… when they change or your contract
#: differs.
PUBLISHED: dict[str, ModelPrice] = {
    "gpt-realtime": ModelPrice(
        4.00, 0.40, 32.00, 0.40, 5.00, 0.50, 16.00, 64.00, _LOOKED_UP,
        "OpenAI's published gpt-realtime prices, text $4 / $16 and audio $32 / $0.40 cached / $64, as OpenAI's "
        "cookbook and others quote them; the gpt-realtime page itself could not be read here: cached text and the "
        "image figures are those OpenAI publishes for its same-priced successor gpt-realtime-1.5 (read 2026-12-07)"),
    "gpt-realtime-mini": ModelPrice(
        0.60, 0.06, 10.00, 0.30, 0.80, 0.08, 2.40, 20.00, _LOOKED_UP,
        "OpenAI's gpt-realtime-2.1-mini page, whose comparison lists gpt-realtime-mini at the same $0.60 text "
        "input; the gpt-realtime-mini page itself could not be read here, so its cached, audio and image figures "
        "are taken from gpt-realtime-2.1-mini (read 2026-12-07): check them against your bill"),
    "gpt-realtime-1.5": ModelPrice(4.00, 0.40, 32.00, 0.40, 5.00, 0.50, 16.00, 64.00, _LOOKED_UP, _GA_SOURCE),
    "gpt-realtime-2": ModelPrice(4.00, 0.40, 32.00, 0.40, 5.00, 0.50, 24.00, 64.00, _LOOKED_UP, _GA_SOURCE),
    "gpt-realtime-2.1": ModelPrice(4.00, 0.40, 32.00, 0.40, 5.00, 0.50, 24.00, 64.00, _LOOKED_UP, _GA_SOURCE),
    "gpt-realtime-2.1-mini": ModelPrice(0.60, 0.06, 10.00, 0.30, 0.80, 0.08, 2.40, 20.00, _LOOKED_UP, _GA_SOURCE),
}

_SNAPSHOT = re.compile(r"^(?P<family>.+?)-\d{4}-\d{2}-\d{2}$")


def family_of(model: str) -> str:
    """"gpt-realtime-2025-08-28" -> "gpt-realtime": a dated snapshot's family name (others unchanged)."""
    m = _SNAPSHOT.match(model.strip())
    return m.group("family") if m else model.strip()


def money(usd: float) -> str:
    """"$0.0123" below a dollar (four places: one answer costs fractions of a cent), "$1.23" above."""
    if usd <= 0:
        return "$0.00"
    if usd < 0.00005:
        return "<$0.0001"
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def budget_text(usd: float) -> str:
    """A budget as the user typed it: "$0.50", "$2.00"; finer ones as `money` gives them ("$0.0125")."""
    cents = usd * 100
    return f"${usd:,.2f}" if abs(cents - round(cents)) < 1e-6 else money(usd)


def parse_budget(text: str) -> float | None:
    """"0.50", "$0.50" -> 0.5; "" or "none" -> None (no budget). ValueError with a reason otherwise."""
    text = text.strip()
    if not text or text.lower() in ("none", "no", "off"):
        return None
    value = text.lstrip("$").strip().replace(",", "")
    try:
        usd = float(value)
    except ValueError:
        raise ValueError(f"The budget {text!r} is not an amount of dollars (for example 0.50).") from None
    if not math.isfinite(usd) or usd <= 0:
        raise ValueError("The budget must be more than $0 (leave it empty for none).")
    if usd > 1_000_000:
        raise ValueError("The budget is more than $1,000,000; leave it empty for none.")
    return usd


@dataclass(frozen=True)
class Priced:
    """One response priced: `usd` is None when the model has no price (then `label` says so, not $0)."""

    model: str | None
    usd: float | None
    free: bool = False
    #: USD by price field ("audio_in": 0.0096, ...); empty when free or unpriced.
    parts: Mapping[str, float] = field(default_factory=dict)
    #: The table's entry the price came from ("gpt-realtime" for a snapshot of it), its date and source.
    priced_as: str = ""
    as_of: str = ""
    source: str = ""
    #: Tokens the arithmetic had to guess at: cached ones with no kind (priced as uncached), input or output
    #: tokens with no kind (priced as text).
    unsplit_cached: int = 0
    unkinded: int = 0

    @property
    def label(self) -> str:
        if self.free:
            return FREE_TEXT
        if self.usd is None:
            return f"no price for {self.model}" if self.model else "no price (the server named no model)"
        return money(self.usd)


@dataclass(frozen=True)
class PriceTable:
    """Prices per model: the published ones with the user's changes and additions on top."""

    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(PUBLISHED))

    @classmethod
    def from_setting(cls, value: Any) -> "tuple[PriceTable, list[str]]":
        """The published table with the user's saved changes (`overrides()`'s data) applied; entries that cannot
        be read are left out and said why (the published price stays)."""
        prices = dict(PUBLISHED)
        problems: list[str] = []
        if isinstance(value, dict):
            for model, record in value.items():
                name = str(model).strip()
                if not name:
                    continue
                try:
                    prices[name] = ModelPrice.from_record(record)
                except ValueError as exc:
                    problems.append(f"The saved price of {name} was not used: {exc}.")
        elif value is not None:
            problems.append("The saved prices were not a table; the published prices are used.")
        return cls(prices), problems

    def overrides(self) -> dict[str, Any]:
        """What differs from the published table (changed or added models), for the settings file."""
        return {model: p.to_record() for model, p in self.prices.items()
                if PUBLISHED.get(model) is None or PUBLISHED[model].figures() != p.figures()}

    def lookup(self, model: str | None) -> tuple[str, ModelPrice] | None:
        """The entry for `model`: itself, else its family (a dated snapshot), case aside."""
        if not model:
            return None
        by_lower = {name.lower(): name for name in self.prices}
        for candidate in (model.strip(), family_of(model)):
            name = by_lower.get(candidate.lower())
            if name is not None:
                return name, self.prices[name]
        return None

    def price(self, usage: TokenUsage, model: str | None) -> Priced:
        if model is not None and family_of(model).lower() == OFFLINE_MODEL:
            return Priced(model, 0.0, free=True, source="the embedded offline engine runs on this machine")
        found = self.lookup(model)
        if found is None:
            return Priced(model, None)
        name, p = found
        cached = {"text": min(usage.input_cached_text, usage.input_text),
                  "audio": min(usage.input_cached_audio, usage.input_audio),
                  "image": min(usage.input_cached_image, usage.input_image)}
        unsplit = max(0, usage.input_cached - sum(cached.values()))
        # Input or output the server gave no kind for is priced as text, and counted in `unkinded` to say so.
        loose_in = max(0, usage.input_tokens - usage.input_text - usage.input_audio - usage.input_image)
        loose_out = max(0, usage.output_tokens - usage.output_text - usage.output_audio)
        tokens = {
            "text_in": usage.input_text - cached["text"] + loose_in, "cached_text_in": cached["text"],
            "audio_in": usage.input_audio - cached["audio"], "cached_audio_in": cached["audio"],
            "image_in": usage.input_image - cached["image"], "cached_image_in": cached["image"],
            "text_out": usage.output_text + loose_out, "audio_out": usage.output_audio,
        }
        parts = {f: n * getattr(p, f) / 1_000_000 for f, n in tokens.items() if n}
        return Priced(model, sum(parts.values()), parts=parts, priced_as=name, as_of=p.as_of, source=p.source,
                      unsplit_cached=unsplit, unkinded=loose_in + loose_out)


@dataclass
class CostTotal:
    """The sum of a conversation's priced responses, and which ones could not be priced."""

    usd: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    priced: int = 0  # responses with a price
    free: int = 0  # responses of the offline engine
    unpriced: dict[str, int] = field(default_factory=dict)  # model (or "") -> responses without a price
    sources: dict[str, str] = field(default_factory=dict)  # table entry -> "as_of: source"
    as_of: dict[str, str] = field(default_factory=dict)  # table entry -> the day of its figures
    unsplit_cached: int = 0
    unkinded: int = 0

    def add(self, one: Priced) -> None:
        if one.free:
            self.free += 1
            return
        if one.usd is None:
            key = one.model or ""
            self.unpriced[key] = self.unpriced.get(key, 0) + 1
            return
        self.priced += 1
        self.usd += one.usd
        for name, usd in one.parts.items():
            self.parts[name] = self.parts.get(name, 0.0) + usd
        self.sources[one.priced_as] = f"{one.as_of}: {one.source}" if one.as_of else one.source
        self.as_of[one.priced_as] = one.as_of
        self.unsplit_cached += one.unsplit_cached
        self.unkinded += one.unkinded

    @property
    def responses(self) -> int:
        return self.priced + self.free + sum(self.unpriced.values())

    def _unpriced_text(self) -> str:
        names = [m for m in self.unpriced if m]
        text = "no price for " + ", ".join(names) if names else ""
        if "" in self.unpriced:
            text += ("; " if text else "") + "no price (the server named no model)"
        return text

    @property
    def label(self) -> str:
        """"$0.0123", "free (offline)", "no price for X", or "$0.0123 + no price for X"; "" before any response."""
        if not self.responses:
            return ""
        if self.unpriced:
            return f"{money(self.usd)} + {self._unpriced_text()}" if self.priced else self._unpriced_text()
        if self.priced:
            return money(self.usd)
        return FREE_TEXT

    def details(self) -> str:
        """The split and where the prices come from, for a tooltip or a report."""
        n = self.responses
        lines = [f"Cost of {n} response{'s' if n != 1 else ''} in this conversation: {self.label}"]
        for name in PRICE_FIELDS:
            if self.parts.get(name):
                lines.append(f"  {FIELD_LABELS[name]}: {money(self.parts[name])}")
        if self.free:
            lines.append(f"{self.free} answered by the offline engine: {FREE_TEXT}")
        if self.unpriced:
            lines.append(f"{sum(self.unpriced.values())} not counted: {self._unpriced_text()} "
                         "(add it in Connection → Prices and budget…)")
        if self.unsplit_cached:
            lines.append(f"{self.unsplit_cached:,} cached tokens the server did not split by kind "
                         "are priced as uncached")
        if self.unkinded:
            lines.append(f"{self.unkinded:,} tokens of no stated kind are priced as text")
        for name, source in self.sources.items():
            lines += textwrap.wrap(f"Prices of {name}, {source}", 100, subsequent_indent="  ")
        if self.priced:
            lines.append("Input transcription is billed apart and is not included.")
        return "\n".join(lines)


class CostMeter:
    """The conversation's running cost and its budget: `add` each response; `budget_reached()` is True once
    when the cost first reaches the budget (again only after the budget is changed or the meter reset)."""

    def __init__(self, table: PriceTable | None = None, budget_usd: float | None = None) -> None:
        self.table = table or PriceTable()
        self.budget_usd = budget_usd
        self.total = CostTotal()
        self._announced: float | None = None
        self._responses: list[tuple[TokenUsage, str | None]] = []

    def add(self, usage: TokenUsage, model: str | None) -> Priced:
        one = self.table.price(usage, model)
        self.total.add(one)
        self._responses.append((usage, model))
        return one

    def set_table(self, table: PriceTable) -> None:
        """Price the conversation so far again, and what follows, with `table`."""
        self.table = table
        self.total = CostTotal()
        for usage, model in self._responses:
            self.total.add(table.price(usage, model))

    def reset(self) -> None:
        self.total = CostTotal()
        self._announced = None
        self._responses = []

    def set_budget(self, budget_usd: float | None) -> None:
        if budget_usd != self.budget_usd:
            self._announced = None
        self.budget_usd = budget_usd

    @property
    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.total.usd >= self.budget_usd

    def budget_reached(self) -> bool:
        if not self.over_budget or self._announced == self.budget_usd:
            return False
        self._announced = self.budget_usd
        return True

