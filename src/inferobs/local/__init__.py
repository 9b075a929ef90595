"""Run handlers locally the way their platform runs them (loopback only).

Not imported by ``import inferobs``: tests, the demo and users running a
handler on their laptop import it explicitly.
"""
