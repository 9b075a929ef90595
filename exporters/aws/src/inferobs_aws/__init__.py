"""inferobs exporters for AWS: ``aws.emf`` (CloudWatch metrics from the record's own line)
and ``aws.xray`` (a subsegment per invocation with one per stage, to the X-Ray daemon).

Selected by name (``INFEROBS_EXPORTERS=aws.emf,aws.xray``) or as objects in
``inferobs.configure(exporters=[...])``; the modules load only when chosen.
"""

__all__: list[str] = []
