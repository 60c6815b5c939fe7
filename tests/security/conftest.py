"""The attack suite runs against the same real gateway over three real nodes as the
gateway tests."""

from tests.gateway.conftest import TODAY, Api, gateway

__all__ = ["TODAY", "Api", "gateway"]
