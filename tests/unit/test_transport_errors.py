import pytest

from edge_agent.errors import CommError
from edge_agent.transports import NoAnswer
from edge_agent.transports.modbus_tcp import exception_error

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("code", "silent", "text"),
    [
        (2, False, "Modbus exception 2 (illegal data address)"),
        (4, False, "Modbus exception 4 (server device failure)"),
        (11, True, "Modbus exception 11 (gateway target device failed to respond): check the unit"),
        (99, False, "Modbus exception 99 (unknown)"),
    ],
)
def test_exception_replies_name_their_code(code, silent, text):
    err = exception_error("elec-1", "FC03 0+2 unit 5 at 10.0.0.7:502", code)
    assert isinstance(err, CommError) and isinstance(err, NoAnswer) is silent
    assert str(err).startswith("elec-1: FC03 0+2 unit 5 at 10.0.0.7:502: " + text)
