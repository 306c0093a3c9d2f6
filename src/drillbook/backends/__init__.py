"""Platform backends. Each subpackage registers faults, probes, recovery steps and ledgers by name.

See :mod:`drillbook.backends.base` for the contracts.
"""
