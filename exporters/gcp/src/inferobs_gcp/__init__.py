"""inferobs exporter for Google Cloud Monitoring: ``gcp``, per-instance custom metrics.

Selected by name (``INFEROBS_EXPORTERS=gcp``) or as an object in
``inferobs.configure(exporters=[CloudMonitoringExporter(...)])``. Importing
this package loads the standard library and inferobs only; the Cloud
Monitoring client loads on the sender's thread at the first write.
"""

from .exporter import CloudMonitoringExporter

__all__ = ["CloudMonitoringExporter"]
