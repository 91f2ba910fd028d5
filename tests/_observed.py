"""What djredis's observers reported, read back with the real libraries: spans from the
OpenTelemetry SDK's in-memory exporter, samples from a prometheus_client registry."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry


class Traced:
    """The SDK provider djredis is instrumented with, and the spans it finished."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def parent_of(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        found = [s for s in self.spans() if s.context.span_id == span.parent.span_id]
        return found[0] if found else None


def scrape(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """One sample, as a scrape reads it (figures sampled at collection are read now)."""
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
