import io
import json

from common.logging import configure_logging, get_logger


def test_json_lines_with_service_and_static_event_names():
    stream = io.StringIO()
    configure_logging("demo", "INFO", json=True, stream=stream)
    log = get_logger("demo.tests")
    log.info("tx_submitted", tx_id="ab" * 32, fee_lovelace=170000)
    log.debug("hidden_at_info")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    assert lines[0]["event"] == "tx_submitted"
    assert lines[0]["service"] == "demo"
    assert lines[0]["fee_lovelace"] == 170000
    assert lines[0]["level"] == "info"
    assert "timestamp" in lines[0]


def test_unknown_level_is_refused():
    import pytest

    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("demo", "LOUD")


def test_stdlib_records_become_json_lines_too():
    import logging

    stream = io.StringIO()
    configure_logging("demo", "INFO", json=True, stream=stream)
    logging.getLogger("thirdparty").warning('he said "hi" \\ %s', "there")
    logging.getLogger("httpx").info("HTTP Request: GET / \"HTTP/1.1 200 OK\"")  # chatty library: dropped
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [{"event": 'he said "hi" \\ there', "logger": "thirdparty", "level": "warning",
                      "service": "demo", "timestamp": lines[0]["timestamp"]}]
    assert lines[0]["timestamp"].endswith("Z")
