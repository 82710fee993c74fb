"""A small Prometheus-style metrics registry (counters, gauges, histograms).

Rules: metric names are declared once with help text and a fixed label set;
label values come from a bounded vocabulary (states, reasons), never from
peer-supplied free text beyond a short token, so the registry stays bounded.
Gauges may be backed by a callable read at render time. Rendering follows the
Prometheus text exposition format 0.0.4.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence

LabelValues = tuple[str, ...]
MAX_SERIES_PER_METRIC = 256
"""Past this many label combinations, new ones are folded into `other`."""


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)

    def _key(
        self, labels: dict[str, str] | None, known: Mapping[LabelValues, object]
    ) -> LabelValues:
        given = labels or {}
        key = tuple(str(given.get(n, "")) for n in self.label_names)
        if key not in known and len(known) >= MAX_SERIES_PER_METRIC:
            key = tuple("other" for _ in self.label_names)
        return key

    def _label_text(self, key: LabelValues, extra: str = "") -> str:
        parts = [f'{n}="{_escape(v)}"' for n, v in zip(self.label_names, key, strict=True)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def samples(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> str:
        head = f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, value: float = 1.0, labels: dict[str, str] | None = None) -> None:
        key = self._key(labels, self._values)
        self._values[key] = self._values.get(key, 0.0) + value

    def value(self, labels: dict[str, str] | None = None) -> float:
        return self._values.get(self._key(labels, self._values), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{self._label_text(k)} {_fmt(v)}" for k, v in self._values.items()]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        read: Callable[[], dict[LabelValues, float]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}
        self._read = read

    def set(self, value: float, labels: dict[str, str] | None = None) -> None:
        self._values[self._key(labels, self._values)] = value

    def current(self) -> dict[LabelValues, float]:
        return self._read() if self._read is not None else dict(self._values)

    def samples(self) -> list[str]:
        return [f"{self.name}{self._label_text(k)} {_fmt(v)}" for k, v in self.current().items()]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text, ())
        self.buckets = sorted(buckets)
        self._counts = [0] * (len(self.buckets) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.sum += value

    def samples(self) -> list[str]:
        lines: list[str] = []
        running = 0
        for bound, n in zip([*self.buckets, math.inf], self._counts, strict=True):
            running += n
            lines.append(f'{self.name}_bucket{{le="{_fmt(bound)}"}} {running}')
        lines.append(f"{self.name}_sum {_fmt(self.sum)}")
        lines.append(f"{self.name}_count {self.count}")
        return lines


class Registry:
    """Holds every metric of one agent; services add theirs with the same calls."""

    def __init__(self, prefix: str = "gossip_") -> None:
        self.prefix = prefix
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        existing = self._metrics.get(metric.name)
        if existing is not None:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        found = self._metrics.get(self.prefix + name)
        if isinstance(found, Counter):
            return found
        metric = Counter(self.prefix + name, help_text, labels)
        self._add(metric)
        return metric

    def gauge(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        read: Callable[[], dict[LabelValues, float]] | None = None,
    ) -> Gauge:
        metric = Gauge(self.prefix + name, help_text, labels, read)
        self._add(metric)
        return metric

    def histogram(self, name: str, help_text: str, buckets: Sequence[float]) -> Histogram:
        metric = Histogram(self.prefix + name, help_text, buckets)
        self._add(metric)
        return metric

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(self.prefix + name)

    def render(self) -> str:
        return "".join(m.render() for m in self._metrics.values())
