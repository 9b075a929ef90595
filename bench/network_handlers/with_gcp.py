"""inferobs with the ``gcp`` exporter, writing to the Cloud Monitoring stand-in on loopback.

The client is made here, on an insecure channel to ``BENCH_MONITORING_ADDRESS``
with anonymous credentials, as docs/gcp.md says to point the exporter at another
endpoint: offline, the default client would look for Google credentials. So
google-cloud-monitoring is imported with this module (in the cold start's init),
where by default it loads on the sender thread at the first write.
"""

from __future__ import annotations

import os

import grpc  # type: ignore[import-untyped]
from google.auth.credentials import AnonymousCredentials
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import (
    MetricServiceGrpcTransport,
)
from with_inferobs import handler

import inferobs as obs
from inferobs_gcp import CloudMonitoringExporter

__all__ = ["handler"]

_channel = grpc.insecure_channel(os.environ["BENCH_MONITORING_ADDRESS"])
_transport = MetricServiceGrpcTransport(channel=_channel, credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
obs.configure(
    exporters=[
        CloudMonitoringExporter(client=monitoring_v3.MetricServiceClient(transport=_transport))
    ]
)
