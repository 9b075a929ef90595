"""inferobs exporter for OpenTelemetry: ``otlp``, each invocation's span (one child per
stage) and FaaS metrics, over OTLP gRPC or HTTP/protobuf.

Selected by name (``INFEROBS_EXPORTERS=otlp``) or as an object in
``inferobs.configure(exporters=[OTLPExporter(...)])``; configured by the
standard ``OTEL_EXPORTER_OTLP_*`` variables. Importing this package loads
nothing of OpenTelemetry: the exporter does, when it is made (at init).
"""

from .exporter import OTLPExporter

__all__ = ["OTLPExporter"]
