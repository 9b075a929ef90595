"""inferobs exporter for Azure Monitor: ``azure`` sends each invocation to Application Insights
as a span with one child per stage and as custom metrics, and drift windows' PSI as gauges.

Selected by name (``INFEROBS_EXPORTERS=azure``) or as an object in
``inferobs.configure(exporters=[AzureMonitorExporter(...)])``. Importing this
package loads the standard library and inferobs only; the Azure SDK is
imported on the sending thread, when the first batch goes.
"""

from .exporter import AzureMonitorExporter

__all__ = ["AzureMonitorExporter"]
