"""Telemetry: spans and metrics reach an OpenTelemetry SDK that the user configures.

The SDK's providers are process-wide and can be set only once, so the scenario runs in
a child process with in-memory exporters and reports what they caught as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

SCENARIO = textwrap.dedent(
    """
    import json

    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

    import anyio
    import pybreaker

    from ordercore.resilience import Breaker, Pipeline

    async def create_waybill() -> None:
        raise ConnectionError("refused")

    async def main() -> None:
        machine = pybreaker.CircuitBreaker(name="courier.sf", fail_max=1)
        pipeline = Pipeline(service="courier.sf", breaker=Breaker(machine))
        try:
            await pipeline.call(create_waybill)
        except ConnectionError:
            pass

    anyio.run(main)
    found = {"spans": [], "metrics": {}}
    for span in spans.get_finished_spans():
        found["spans"].append({
            "name": span.name,
            "service": span.attributes.get("ordercore.service"),
            "events": [event.name for event in span.events],
            "status": span.status.status_code.name,
        })
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found["metrics"][metric.name] = [
                    [dict(point.attributes), getattr(point, "value", None)]
                    for point in metric.data.data_points
                ]
    print(json.dumps(found))
    """
)


@pytest.fixture(scope="module")
def caught() -> dict[str, Any]:
    pytest.importorskip("opentelemetry.sdk")
    result = subprocess.run(
        [sys.executable, "-c", SCENARIO],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_each_call_is_a_span_with_the_breaker_events(caught: dict[str, Any]) -> None:
    """The call is span ordercore.resilience.create_waybill, with the breaker opening in it."""
    assert caught["spans"] == [
        {
            "name": "ordercore.resilience.create_waybill",
            "service": "courier.sf",
            "events": ["ordercore.resilience.breaker.state_change", "exception"],
            "status": "ERROR",
        }
    ]


def test_the_breaker_state_is_a_metric(caught: dict[str, Any]) -> None:
    """The state gauge reads 2 (open) for the service, and the transition is counted."""
    assert caught["metrics"]["ordercore.resilience.breaker.state"] == [
        [{"ordercore.service": "courier.sf"}, 2]
    ]
    assert caught["metrics"]["ordercore.resilience.breaker.transitions"] == [
        [{"ordercore.service": "courier.sf", "ordercore.state": "open"}, 1]
    ]
