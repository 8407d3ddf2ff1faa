"""Fixtures for the Microsoft Graph tests: ``fake_graph`` (see tests/graph/fake_graph)."""

from tests.graph.fake_graph.fixture import fake_graph

__all__ = ["fake_graph"]
