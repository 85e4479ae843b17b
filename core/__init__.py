"""The ticket engine: pure domain model, decide(), allowed_actions() and the async service over ports.

Nothing in this package performs I/O or imports a framework; see design.md.
"""
